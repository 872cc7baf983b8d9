using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace KeyServiceOps.Core
{
    /// <summary>
    /// A lease on an instance that every actor must pass, wherever it runs: taken after this machine's own lock, released
    /// with it. <see cref="InstanceLock"/> calls it; <see cref="VmLeases"/> keeps it on the instance's VM.
    /// </summary>
    public interface IInstanceLeases
    {
        /// <summary>Takes the lease on <paramref name="address"/>, waiting up to <paramref name="timeout"/> for another holder (then InstanceBusy).</summary>
        Task<IDisposable> AcquireAsync(string address, string purpose, TimeSpan timeout, CancellationToken ct);
    }


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
            // KEYSERVICEOPS_LOCK_DIR is read by the settings catalog (lockDirectory), like every other variable.
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
        /// <param name="leases">The lease every actor on every machine passes (on the VM); taken after this machine's lock, within the same timeout.</param>
        /// <param name="log">Where a wait for another actor is shown as it happens (a progress bar with the holder and a countdown).</param>
        public static Task<IDisposable> AcquireAsync(string directory, string key, string purpose, TimeSpan timeout, CancellationToken ct, IInstanceLeases leases = null, IOpsLog log = null)
        {
            // Made here, synchronously, so the set lives in the caller's flow: what the async part adds to it is
            // seen by everything the caller runs next (an AsyncLocal set inside an async method would not be).
            if (Held.Value == null) Held.Value = new HashSet<string>();
            return AcquireWithLeaseAsync(Held.Value, directory, (key ?? "").ToLowerInvariant(), purpose, timeout, ct, leases, log);
        }

        private static async Task<IDisposable> AcquireWithLeaseAsync(HashSet<string> held, string directory, string key, string purpose, TimeSpan timeout, CancellationToken ct, IInstanceLeases leases, IOpsLog log)
        {
            var sw = Stopwatch.StartNew();
            var local = await AcquireCoreAsync(held, directory, key, purpose, timeout, ct, log).ConfigureAwait(false);
            if (leases == null || local is Nothing) return local;
            try
            {
                var left = timeout - sw.Elapsed;
                var lease = await leases.AcquireAsync(key, purpose, left < TimeSpan.Zero ? TimeSpan.Zero : left, ct).ConfigureAwait(false);
                return new Both(lease, local);
            }
            catch { local.Dispose(); throw; }
        }

        /// <summary>The VM's lease and this machine's lock: released in that order.</summary>
        private sealed class Both : IDisposable
        {
            private readonly IDisposable _first, _second;
            public Both(IDisposable first, IDisposable second) { _first = first; _second = second; }
            public void Dispose() { try { _first.Dispose(); } finally { _second.Dispose(); } }
        }

        /// <summary>InstanceBusy: another actor holds the instance (here, or on its VM); nothing was changed.</summary>
        internal static OpsException Busy(string key, string holder, TimeSpan waited)
            => new OpsException("InstanceBusy", OpsErrorCategory.ResourceBusy,
                $"{key} is being worked on by {holder}. Waited {waited.TotalSeconds:0.#} s; nothing was changed.", key,
                recommendedAction: "Let the other operator's command finish (see Get-KeyServiceAuditLog and the incident's notes), then run yours again, or wait longer with -LockTimeoutSec.");

        private static async Task<IDisposable> AcquireCoreAsync(HashSet<string> held, string directory, string key, string purpose, TimeSpan timeout, CancellationToken ct, IOpsLog log)
        {
            lock (held) if (held.Contains(key)) return new Nothing(); // this flow holds it already
            directory = string.IsNullOrEmpty(directory) ? DefaultDirectory() : directory;
            var unsafeFolder = SafeFile.FolderProblem(Path.Combine(directory, "x.lock"));
            if (unsafeFolder != null) throw Unwritable("use the lock folder", directory, new UnsafeFileException(unsafeFolder)); // before it is made
            try { SafeFile.CreateFolder(directory); }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
            {
                throw Unwritable("create the lock folder", directory, e);
            }
            var path = Path.Combine(directory, FileName(key) + ".lock");
            var holderPath = Path.Combine(directory, FileName(key) + ".holder");
            FileStream fs;
            // Never through a symlink another user of a shared folder planted, never in a world-writable folder without
            // the sticky bit (issue #26): refused, typed. Another process holding it: waited for (monotonic), then Busy.
            string Holder()
            {
                try { return SafeFile.IsLink(holderPath) ? "another process" : SafeFile.ReadSmall(holderPath, 1024); }
                catch (Exception e) when (e is IOException || e is UnauthorizedAccessException) { return "another process"; }
            }
            var activity = $"Waiting for {key}";
            var shown = false;
            try
            {
                fs = await SafeFile.OpenExclusiveAsync(path, timeout, ct, waited =>
                {
                    shown = true;
                    WaitProgress.Waiting(log, activity, "held by " + SafeText.Neutralize(Holder()), timeout - waited);
                }).ConfigureAwait(false);
            }
            catch (UnsafeFileException e) { throw Unwritable("use the lock file", path, e); }
            catch (UnauthorizedAccessException e) { throw Unwritable("open the lock file", path, e); }
            catch (IOException) { throw Busy(key, Holder(), timeout); }
            finally { if (shown) WaitProgress.Over(log, activity); }
            var me = $"process {Process.GetCurrentProcess().Id} on {Environment.MachineName} ({Environment.UserName}) since {DateTimeOffset.UtcNow:yyyy-MM-dd HH:mm:ss}Z: {purpose}";
            // Replaced by rename, never written through: a planted <ip>.holder symlink is replaced, its target untouched.
            try { SafeFile.WriteAllText(holderPath, me); } catch (Exception e) when (e is IOException || e is UnauthorizedAccessException) { }
            lock (held) held.Add(key);
            return new InstanceLock(fs, key, holderPath, held);
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
