using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace KeyServiceOps.Core
{
    /// <summary>
    /// One actor per instance, across processes on this machine: the runbook, a restart, a ring-balancer change and
    /// the self-healer each hold the instance's lock (an exclusively opened file in the lock folder) while they act.
    /// A second actor waits up to its timeout, then gets InstanceBusy naming the holder (process, host, since, what).
    /// Re-entrant within one logical flow: the runbook's restart and removal do not wait for the runbook itself.
    /// </summary>
    public sealed class InstanceLock : IDisposable
    {
        private static readonly AsyncLocal<HashSet<string>> Held = new AsyncLocal<HashSet<string>>();
        private readonly FileStream _file;
        private readonly string _key;
        private readonly string _holderPath;
        private readonly HashSet<string> _held;

        private InstanceLock(FileStream file, string key, string holderPath, HashSet<string> held) { _file = file; _key = key; _holderPath = holderPath; _held = held; }

        public static string DefaultDirectory()
        {
            var env = Environment.GetEnvironmentVariable("KEYSERVICEOPS_LOCK_DIR");
            if (!string.IsNullOrEmpty(env)) return env;
            var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            return Path.Combine(string.IsNullOrEmpty(home) ? Path.GetTempPath() : home, ".keyserviceops", "locks");
        }

        private static string FileName(string key)
        {
            var safe = new StringBuilder();
            foreach (var c in key) safe.Append(char.IsLetterOrDigit(c) || c == '.' || c == '-' ? c : '_');
            return safe.ToString();
        }

        /// <summary>Takes the lock on <paramref name="key"/> (an instance address), waiting up to <paramref name="timeout"/>.</summary>
        public static Task<IDisposable> AcquireAsync(string directory, string key, string purpose, TimeSpan timeout, CancellationToken ct)
        {
            // Made here, synchronously, so the set lives in the caller's flow: what the async part adds to it is
            // seen by everything the caller runs next (an AsyncLocal set inside an async method would not be).
            if (Held.Value == null) Held.Value = new HashSet<string>();
            return AcquireCoreAsync(Held.Value, directory, (key ?? "").ToLowerInvariant(), purpose, timeout, ct);
        }

        private static async Task<IDisposable> AcquireCoreAsync(HashSet<string> held, string directory, string key, string purpose, TimeSpan timeout, CancellationToken ct)
        {
            lock (held) if (held.Contains(key)) return new Nothing(); // this flow holds it already
            directory = string.IsNullOrEmpty(directory) ? DefaultDirectory() : directory;
            try { Directory.CreateDirectory(directory); }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
            {
                throw Unwritable("create the lock folder", directory, e);
            }
            var path = Path.Combine(directory, FileName(key) + ".lock");
            var holderPath = Path.Combine(directory, FileName(key) + ".holder");
            var deadline = DateTime.UtcNow + timeout;
            var random = new Random();
            while (true)
            {
                try
                {
                    var fs = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
                    var me = $"process {Process.GetCurrentProcess().Id} on {Environment.MachineName} ({Environment.UserName}) since {DateTimeOffset.UtcNow:yyyy-MM-dd HH:mm:ss}Z: {purpose}";
                    try { File.WriteAllText(holderPath, me); } catch (Exception e) when (e is IOException || e is UnauthorizedAccessException) { }
                    lock (held) held.Add(key);
                    return new InstanceLock(fs, key, holderPath, held);
                }
                catch (IOException) when (!(DateTime.UtcNow >= deadline))
                {
                    await Task.Delay(50 + random.Next(50), ct).ConfigureAwait(false);
                }
                catch (IOException)
                {
                    string holder;
                    try { holder = File.ReadAllText(holderPath); } catch (Exception e) when (e is IOException || e is UnauthorizedAccessException) { holder = "another process"; }
                    throw new OpsException("InstanceBusy", OpsErrorCategory.ResourceBusy,
                        $"{key} is being worked on by {holder}. Waited {timeout.TotalSeconds:0.#} s; nothing was changed.", key,
                        recommendedAction: "Let the other operator's command finish (see Get-KeyServiceAuditLog), then run yours again, or wait longer with -LockTimeoutSec.");
                }
                catch (UnauthorizedAccessException e)
                {
                    throw Unwritable("open the lock file", path, e);
                }
            }
        }

        public void Dispose()
        {
            try { File.Delete(_holderPath); } catch (Exception e) when (e is IOException || e is UnauthorizedAccessException) { }
            _file.Dispose();
            lock (_held) _held.Remove(_key);
        }

        private sealed class Nothing : IDisposable { public void Dispose() { } }

        private static OpsException Unwritable(string what, string path, Exception e)
            => new OpsException("LockDirectoryUnwritable", OpsErrorCategory.PermissionDenied, $"Cannot {what} '{path}': {e.Message}. Nothing was changed.", path,
                recommendedAction: "Set KEYSERVICEOPS_LOCK_DIR (or -LockDirectory) to a writable folder shared by every operator of this machine.", inner: e);
    }
}
