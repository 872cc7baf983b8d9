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

        public SshSessionPool Pool => _pool;

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
                var outPump = Task.Factory.StartNew(() => Pump(cmd.OutputStream, Count(stdout)), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
                var errPump = Task.Factory.StartNew(() => Pump(cmd.ExtendedOutputStream, Count(stderr)), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
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
                await Task.WhenAll(outPump, errPump).ConfigureAwait(false);
                var status = cmd.ExitStatus ?? -1;
                _log.Debug($"SSH {target.Display}: exit status {status}");
                return status;
            }
        }

        /// <summary>Reads a channel stream to its end, one callback per line (UTF-8, \n or \r\n).</summary>
        private static void Pump(Stream s, Action<string> onLine)
        {
            using (var r = new StreamReader(s, new UTF8Encoding(false), false, 64 * 1024))
            {
                string line;
                while ((line = r.ReadLine()) != null) onLine?.Invoke(line);
            }
        }
    }
}
