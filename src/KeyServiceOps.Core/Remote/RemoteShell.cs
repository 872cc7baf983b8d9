using System;
using System.IO;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using Renci.SshNet.Common;

namespace KeyServiceOps.Core.Remote
{
    /// <summary>
    /// Runs one command on a pooled session and streams its stdout and stderr line by line to callbacks as
    /// they arrive (nothing is collected into one string). A session found dead before the command starts is
    /// replaced once, transparently. Cancellation closes the channel.
    /// </summary>
    public sealed class RemoteShell
    {
        private readonly SshSessionPool _pool;
        private readonly IOpsLog _log;

        public RemoteShell(SshSessionPool pool, IOpsLog log)
        {
            _pool = pool ?? throw new ArgumentNullException(nameof(pool));
            _log = log ?? NullOpsLog.Instance;
        }

        /// <summary>Runs <paramref name="command"/>; returns its exit status. <paramref name="timeout"/> null means none (Ctrl+C still cancels).</summary>
        public async Task<int> RunAsync(SshTarget target, string command, Action<string> stdout, Action<string> stderr, TimeSpan? timeout, CancellationToken ct)
        {
            for (int attempt = 1; ; attempt++)
            {
                var session = await _pool.GetAsync(target, _log, ct).ConfigureAwait(false);
                var started = false;
                try
                {
                    return await RunOnAsync(session, command, stdout, stderr, timeout, ct, () => started = true).ConfigureAwait(false);
                }
                catch (Exception e) when (!started && attempt == 1 && IsDeadSession(e))
                {
                    _log.Verbose($"SSH: the session to {target.Display} died ({e.GetType().Name}); reconnecting once.");
                    _pool.Invalidate(session);
                }
                catch (Exception e) when (IsDeadSession(e))
                {
                    _pool.Invalidate(session);
                    throw new OpsException("SshConnectionLost", OpsErrorCategory.ConnectionError,
                        $"The SSH connection to {target.Display} was lost while running `{command}`.", target.Host,
                        recommendedAction: "Run the command again; if it keeps failing, check the VM and the network path to it.", inner: e);
                }
            }
        }

        private static bool IsDeadSession(Exception e)
            => e is SshConnectionException || e is SocketException || e is ObjectDisposedException || (e is InvalidOperationException && e.Message.IndexOf("connect", StringComparison.OrdinalIgnoreCase) >= 0);

        private async Task<int> RunOnAsync(SshSession session, string command, Action<string> stdout, Action<string> stderr, TimeSpan? timeout, CancellationToken ct, Action onStarted)
        {
            var target = session.Target;
            _log.Verbose($"SSH {target.Display}: {command}");
            Interlocked.Increment(ref session.Commands);
            using (var cts = CancellationTokenSource.CreateLinkedTokenSource(ct))
            using (var cmd = session.Client.CreateCommand(command))
            {
                if (timeout != null) cts.CancelAfter(timeout.Value);
                var exec = cmd.ExecuteAsync(cts.Token);
                onStarted();
                // The readers block on the channel streams: dedicated threads, so many concurrent commands (or a
                // long --follow) never starve the thread pool that SSH.NET's own continuations need.
                long lines = 0;
                Action<string> Count(Action<string> a) => l => { Interlocked.Increment(ref lines); a?.Invoke(l); };
                // Each channel stream is drained as fast as it arrives into a spill buffer (memory, then a temporary
                // file), and lines are read from there at the pace of the consumer: SSH.NET never holds a backlog.
                using var outSpill = new SpillBuffer(SpillMemoryBytes);
                using var errSpill = new SpillBuffer(SpillMemoryBytes / 4);
                var outDrain = Drain(cmd.OutputStream, outSpill);
                var errDrain = Drain(cmd.ExtendedOutputStream, errSpill);
                var outPump = Task.Factory.StartNew(() => Pump(outSpill, Count(stdout)), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
                var errPump = Task.Factory.StartNew(() => Pump(errSpill, Count(stderr)), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
                try
                {
                    await exec.ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    _log.Verbose($"SSH {target.Display}: cancelled `{command}`; the channel is closed.");
                    throw new OperationCanceledException(ct);
                }
                catch (OperationCanceledException)
                {
                    throw new OpsException("SshCommandTimeout", OpsErrorCategory.OperationTimeout,
                        $"`{command}` on {target.Display} did not finish within {timeout?.TotalSeconds:0.#} s ({Interlocked.Read(ref lines)} output lines had arrived); it was cancelled and its channel closed.",
                        target.Host, recommendedAction: "Raise -CommandTimeoutSec, or check why the command hangs on the VM (e.g. a stuck docker daemon).");
                }
                await Task.WhenAll(outDrain, errDrain).ConfigureAwait(false);
                await Task.WhenAll(outPump, errPump).ConfigureAwait(false);
                if (outSpill.PeakSpilledBytes > 0) _log.Debug($"SSH {target.Display}: the consumer fell behind; up to {outSpill.PeakSpilledBytes / 1024} KiB of output waited in a temporary file.");
                var status = cmd.ExitStatus ?? -1;
                _log.Debug($"SSH {target.Display}: exit status {status}");
                return status;
            }
        }

        /// <summary>Bytes received on one channel between two young-generation collections (see <see cref="Drain"/>).</summary>
        public static long CollectEveryBytes = 16L * 1024 * 1024;

        /// <summary>Bytes of stdout kept in memory per command before the rest waits in a temporary file.</summary>
        public static int SpillMemoryBytes = 1024 * 1024;

        /// <summary>Copies a channel stream into <paramref name="spill"/> on a dedicated thread until the channel ends.</summary>
        private static Task Drain(Stream channel, SpillBuffer spill)
            => Task.Factory.StartNew(() =>
            {
                try
                {
                    var buf = new byte[64 * 1024];
                    int n;
                    long sinceCollect = 0;
                    while ((n = channel.Read(buf, 0, buf.Length)) > 0)
                    {
                        spill.Write(buf, 0, n);
                        // A long stream (a 200 MiB line, days of logs) leaves SSH.NET's packet buffers behind as garbage;
                        // left to the runtime, the heap grows by a whole young-generation budget before it is collected
                        // (+80 MiB measured on a 200 MiB line). A young-generation collection every 16 MiB received keeps
                        // the operator's pwsh within its bound (issue #26: ≤ 64 MB) for about a millisecond each.
                        if ((sinceCollect += n) >= CollectEveryBytes) { sinceCollect = 0; GC.Collect(0, GCCollectionMode.Forced, blocking: true); }
                    }
                }
                catch (Exception e) when (e is IOException || e is ObjectDisposedException) { }
                finally { spill.Complete(); }
            }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

        /// <summary>
        /// The longest line handed on, in characters (issue #26: one 200 MiB line without a newline took pwsh past 2 GiB).
        /// A longer line is cut there, marked with its full length, and the rest of it is skipped as it is read: memory
        /// stays bounded whatever the line. Invalid UTF-8 becomes U+FFFD, never an error.
        /// </summary>
        public static int MaxLineChars = 64 * 1024;

        /// <summary>Reads the buffered stream to its end, one callback per line (UTF-8, \n or \r\n), each at most <see cref="MaxLineChars"/>.</summary>
        private static void Pump(SpillBuffer s, Action<string> onLine)
        {
            try
            {
                using (var r = new StreamReader(s, new UTF8Encoding(false), false, 64 * 1024, leaveOpen: true))
                {
                    var lines = new BoundedLineReader(r, MaxLineChars);
                    string line;
                    while ((line = lines.ReadLine()) != null) onLine?.Invoke(line);
                }
            }
            catch (Exception)
            {
                // The consumer failed (Ctrl+C, an error downstream): drop what is buffered and what still arrives.
                s.Abandon();
                throw;
            }
        }
    }

    /// <summary>
    /// Splits text into lines (\n or \r\n) of at most a given length, in blocks: a longer line is cut and marked with
    /// its full length, and its rest is read and dropped, so no line costs more memory than the limit.
    /// </summary>
    internal sealed class BoundedLineReader
    {
        private readonly TextReader _r;
        private readonly int _max;
        private readonly char[] _buf = new char[64 * 1024];
        private int _pos, _len;

        public BoundedLineReader(TextReader r, int max) { _r = r; _max = Math.Max(1, max); }

        public string ReadLine()
        {
            StringBuilder sb = null;
            long total = 0;
            var any = false;
            while (true)
            {
                if (_pos >= _len)
                {
                    _len = _r.Read(_buf, 0, _buf.Length);
                    _pos = 0;
                    if (_len <= 0) { _len = 0; return any ? Finish(sb, total) : null; }
                }
                any = true;
                var nl = Array.IndexOf(_buf, '\n', _pos, _len - _pos);
                var end = nl < 0 ? _len : nl;
                var take = end - _pos;
                var room = (int)Math.Max(0, Math.Min(take, _max + 1 - total)); // one more than the limit: a trailing \r is stripped below
                if (room > 0) (sb ?? (sb = new StringBuilder(Math.Min(room, 1024)))).Append(_buf, _pos, room);
                total += take;
                _pos = nl < 0 ? _len : nl + 1;
                if (nl >= 0) return Finish(sb, total);
            }
        }

        private string Finish(StringBuilder sb, long total)
        {
            if (sb == null) return "";
            if (total <= _max + 1 && sb.Length > 0 && sb[sb.Length - 1] == '\r') { sb.Length--; total--; }
            if (total <= _max) return sb.ToString();
            sb.Length = _max;
            return sb.Append(" …[line cut at ").Append(_max.ToString("N0", System.Globalization.CultureInfo.InvariantCulture))
                .Append(" of ").Append(total.ToString("N0", System.Globalization.CultureInfo.InvariantCulture)).Append(" characters]").ToString();
        }
    }
}
