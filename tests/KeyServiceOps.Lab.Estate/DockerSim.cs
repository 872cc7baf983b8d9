using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.AspNetCore.Http;

namespace KeyServiceOps.Lab.Estate
{
    /// <summary>How the Docker CLI on an instance VM behaves (shared/contracts/docker-cli.md, "Errors").</summary>
    public enum DockerMode { Ok, DaemonDown, NotInstalled, RequiresRoot }

    /// <summary>What happens after `docker restart` has restarted the container (issue #25's lost answers).</summary>
    /// <summary>
    /// Faults around `docker restart` (issue #25): its answer stalls, or the SSH connection drops, after the restart;
    /// DropDuringStopGrace drops the connection at once and the restart lands 3 s later (docker still inside the
    /// container's stop grace: running, the same start time, when the client reads back).
    /// </summary>
    public enum AfterRestartFault { None, Stall, DropConnection, DropDuringStopGrace }

    public sealed record DockerCall(string Address, string[] Args, bool Sudo, DateTimeOffset At);

    /// <summary>
    /// The lab's control endpoint behind the `docker` and `sudo` shims: GET /docker?ip=&amp;sudo=&amp;a=ARG... answers
    /// with "1 line" (stdout), "2 line" (stderr) and a final "X code"; GET /sudo?ip= answers "ok" or "password".
    /// </summary>
    public sealed class DockerSim
    {
        private readonly Func<string, SimInstance> _byAddress;
        public DockerSim(Func<string, SimInstance> byAddress) { _byAddress = byAddress; }

        /// <summary>Every docker command the shim ran, in order (tests check what reached a server, and what did not).</summary>
        public ConcurrentQueue<DockerCall> Calls { get; } = new ConcurrentQueue<DockerCall>();

        public async Task HandleAsync(HttpContext ctx)
        {
            var ip = ctx.Request.Query["ip"].ToString();
            var inst = _byAddress(ip);
            if (ctx.Request.Path == "/sudo")
            {
                await ctx.Response.WriteAsync(inst != null && !inst.SudoNeedsPassword ? "ok" : "password");
                return;
            }
            var args = ctx.Request.Query["a"].Select(a => a ?? "").ToArray();
            var sudo = ctx.Request.Query["sudo"] == "1";
            Calls.Enqueue(new DockerCall(ip, args, sudo, DateTimeOffset.UtcNow));
            ctx.Response.ContentType = "text/plain; charset=utf-8";
            var w = new Answer(ctx.Response);
            int code;
            try { code = await RunAsync(inst, args, sudo, w, ctx.RequestAborted); }
            catch (OperationCanceledException) { return; }
            await w.ExitAsync(code);
        }

        private static async Task<int> RunAsync(SimInstance inst, string[] args, bool sudo, Answer w, CancellationToken ct)
        {
            if (inst == null) { await w.ErrAsync("lab: this address is not a simulated instance"); return 1; }
            switch (inst.Docker)
            {
                case DockerMode.NotInstalled:
                    await w.ErrAsync("bash: docker: command not found"); return 127;
                case DockerMode.DaemonDown:
                    await w.ErrAsync("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"); return 1;
                case DockerMode.RequiresRoot when !sudo:
                    await w.ErrAsync("permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock: Get \"http://%2Fvar%2Frun%2Fdocker.sock/v1.47/containers/json\": dial unix /var/run/docker.sock: connect: permission denied");
                    return 1;
            }
            if (args.Length == 0) { await w.ErrAsync("lab: docker with no arguments"); return 1; }
            var rest = args.Skip(1).ToList();
            switch (args[0])
            {
                case "logs": return await LogsAsync(inst, rest, w, ct);
                case "restart": return await RestartAsync(inst, rest, w);
                case "inspect": return await InspectAsync(inst, rest, w);
                default: await w.ErrAsync($"docker: '{args[0]}' is not a docker command."); return 1;
            }
        }

        private static bool NameMatches(SimInstance inst, string name) => name == inst.ContainerName;

        private static async Task<int> LogsAsync(SimInstance inst, List<string> a, Answer w, CancellationToken ct)
        {
            bool timestamps = false, follow = false; int? tail = null; DateTimeOffset? since = null, until = null; string name = null;
            var now = DateTimeOffset.UtcNow;
            for (int i = 0; i < a.Count; i++)
            {
                switch (a[i])
                {
                    case "-t": case "--timestamps": timestamps = true; break;
                    case "-f": case "--follow": follow = true; break;
                    case "-n": case "--tail":
                        var t = a[++i];
                        if (t == "all") tail = null;
                        else if (int.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out var n)) tail = n;
                        else { await w.ErrAsync($"invalid value for \"tail\": {t}"); return 1; }
                        break;
                    case "--since":
                        if (!TryParseTime(a[++i], now, out var s)) { await w.ErrAsync($"invalid value for \"since\": {a[i]}"); return 1; }
                        since = s; break;
                    case "--until":
                        if (!TryParseTime(a[++i], now, out var u)) { await w.ErrAsync($"invalid value for \"until\": {a[i]}"); return 1; }
                        until = u; break;
                    default:
                        if (a[i].StartsWith("-")) { await w.ErrAsync($"unknown flag: {a[i]}"); return 1; }
                        name = a[i]; break;
                }
            }
            if (name == null || !NameMatches(inst, name)) { await w.ErrAsync($"Error response from daemon: No such container: {name}"); return 1; }

            string Fmt(LogLine l) => timestamps ? l.Time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff", CultureInfo.InvariantCulture) + "00Z " + l.Text : l.Text;
            bool InRange(LogLine l) => (since == null || l.Time >= since) && (until == null || l.Time <= until);

            if (inst.GeneratedLogLines > 0)
            {
                await GeneratedAsync(inst, tail, timestamps, w, ct);
                return 0;
            }
            List<LogLine> snapshot;
            lock (inst.Log) snapshot = inst.Log.ToList();
            var selected = snapshot.Where(InRange).ToList();
            if (tail != null)
            {
                // --tail N: the last N lines of the container's log, both streams counted together (as the real engine's
                // json-file log does; the contract's "of each stream" was wrong, found against real Docker).
                selected = selected.TakeLast(tail.Value).ToList();
            }
            foreach (var l in selected) await (l.Stderr ? w.ErrAsync(Fmt(l)) : w.OutAsync(Fmt(l)));
            if (inst.RawLogFile != null) await w.FileAsync(inst.RawLogFile);
            await w.FlushAsync();
            if (!follow) return 0;
            var seen = snapshot.Count;
            while (!ct.IsCancellationRequested && (until == null || DateTimeOffset.UtcNow <= until))
            {
                List<LogLine> fresh;
                lock (inst.Log) fresh = inst.Log.Skip(seen).ToList();
                seen += fresh.Count;
                foreach (var l in fresh.Where(InRange)) await (l.Stderr ? w.ErrAsync(Fmt(l)) : w.OutAsync(Fmt(l)));
                await w.FlushAsync();
                try { await Task.Delay(50, ct); } catch (OperationCanceledException) { break; }
            }
            return 0;
        }

        /// <summary>A long-lived container's log: request lines on stdout, one warning on stderr every 1000 lines.</summary>
        private static async Task GeneratedAsync(SimInstance inst, int? tail, bool timestamps, Answer w, CancellationToken ct)
        {
            var total = inst.GeneratedLogLines;
            long first = tail == null ? 0 : Math.Max(0, total - tail.Value);
            var t0 = DateTimeOffset.UtcNow.AddSeconds(-total / 1000.0);
            for (long i = first; i < total; i++)
            {
                ct.ThrowIfCancellationRequested();
                var at = t0.AddTicks(i * 10_000).UtcDateTime;
                var ts = at.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff", CultureInfo.InvariantCulture) + "00Z";
                var stderr = i % 1000 == 999;
                var text = stderr
                    ? $"time=\"{ts}\" level=warning msg=\"slow request to cipher service\" duration_ms={i % 997} seq={i}"
                    : $"time=\"{ts}\" level=info msg=\"GET /api/v1/apikeys/k-{i % 100000:D6} 200\" duration_ms={i % 13} request_id=r{i:D9}";
                var line = timestamps ? ts + " " + text : text;
                await (stderr ? w.ErrAsync(line) : w.OutAsync(line));
            }
            await w.FlushAsync();
        }

        private static async Task<int> RestartAsync(SimInstance inst, List<string> a, Answer w)
        {
            string name = null;
            for (int i = 0; i < a.Count; i++)
            {
                if (a[i] == "-t" || a[i] == "--time") { i++; continue; }
                if (a[i].StartsWith("-")) { await w.ErrAsync($"unknown flag: {a[i]}"); return 1; }
                name = a[i];
            }
            if (name == null || !NameMatches(inst, name)) { await w.ErrAsync($"Error response from daemon: No such container: {name}"); return 1; }
            if (inst.AfterRestart == AfterRestartFault.DropDuringStopGrace)
            {
                inst.AfterRestart = AfterRestartFault.None;
                _ = Task.Run(async () => { await Task.Delay(TimeSpan.FromSeconds(3)); inst.SimulateRestart(); });
                await w.DropAsync();
                return 0;
            }
            inst.SimulateRestart();
            // Faults after the restart has happened (issue #25): the answer never comes, or the SSH connection drops.
            switch (inst.AfterRestart)
            {
                case AfterRestartFault.Stall:
                    inst.AfterRestart = AfterRestartFault.None;
                    await Task.Delay(Timeout.Infinite, w.Aborted);
                    return 0;
                case AfterRestartFault.DropConnection:
                    inst.AfterRestart = AfterRestartFault.None;
                    await w.DropAsync();
                    return 0;
            }
            await w.OutAsync(name);
            return 0;
        }

        private static async Task<int> InspectAsync(SimInstance inst, List<string> a, Answer w)
        {
            string format = null, name = null;
            for (int i = 0; i < a.Count; i++)
            {
                if (a[i] == "-f" || a[i] == "--format") { format = a[++i]; continue; }
                if (a[i].StartsWith("--format=")) { format = a[i].Substring(9); continue; }
                name = a[i];
            }
            if (name == null || !NameMatches(inst, name)) { await w.ErrAsync($"Error: No such object: {name}"); return 1; }
            switch (format)
            {
                case "{{json .State}}":
                    await w.OutAsync(inst.StateJson());
                    return 0;
                case "{{.RestartCount}}":
                    await w.OutAsync(inst.PolicyRestartCount.ToString(CultureInfo.InvariantCulture));
                    return 0;
                case "{{.Id}}":
                    await w.OutAsync(inst.ContainerId);
                    return 0;
                case "{{.RestartCount}} {{.Id}}":
                    await w.OutAsync(inst.PolicyRestartCount.ToString(CultureInfo.InvariantCulture) + " " + inst.ContainerId);
                    return 0;
                default:
                    await w.ErrAsync($"lab: inspect format '{format}' is not simulated");
                    return 1;
            }
        }

        private static readonly Regex Duration = new Regex(@"^(?:(\d+(?:\.\d+)?)(h|ms|m|s))+$");
        private static readonly Regex DurationPart = new Regex(@"(\d+(?:\.\d+)?)(h|ms|m|s)");

        /// <summary>Docker's --since/--until: RFC 3339, a Unix timestamp, or a Go duration relative to now.</summary>
        public static bool TryParseTime(string s, DateTimeOffset now, out DateTimeOffset t)
        {
            t = default;
            if (Duration.IsMatch(s))
            {
                var total = TimeSpan.Zero;
                foreach (Match m in DurationPart.Matches(s))
                {
                    var v = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
                    total += m.Groups[2].Value switch { "h" => TimeSpan.FromHours(v), "m" => TimeSpan.FromMinutes(v), "s" => TimeSpan.FromSeconds(v), _ => TimeSpan.FromMilliseconds(v) };
                }
                t = now - total;
                return true;
            }
            if (Regex.IsMatch(s, @"^\d+(\.\d+)?$"))
            {
                t = DateTimeOffset.UnixEpoch.AddSeconds(double.Parse(s, CultureInfo.InvariantCulture));
                return true;
            }
            // RFC 3339 with up to nanoseconds: .NET parses 7 fractional digits.
            var trimmed = Regex.Replace(s, @"(\.\d{7})\d+", "$1");
            return DateTimeOffset.TryParse(trimmed, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out t);
        }

        /// <summary>Writes the shim's line protocol, buffered, flushed at the end or on demand.</summary>
        private sealed class Answer
        {
            private readonly HttpResponse _r;
            private readonly StringBuilder _buf = new StringBuilder(64 * 1024);
            public Answer(HttpResponse r) { _r = r; }
            public CancellationToken Aborted => _r.HttpContext.RequestAborted;
            /// <summary>Tells the shim to kill its sshd session process: the client sees the connection drop mid-command.</summary>
            public async Task DropAsync() { await AddAsync("D ", "drop"); await FlushAsync(); }
            public Task OutAsync(string line) => AddAsync("1 ", line);
            public Task ErrAsync(string line) => AddAsync("2 ", line);
            /// <summary>The shim cats this file (on the VM) to stdout: bytes the line protocol could not carry.</summary>
            public Task FileAsync(string path) => AddAsync("F ", path);
            public async Task ExitAsync(int code) { await AddAsync("X ", code.ToString(CultureInfo.InvariantCulture)); await FlushAsync(); }
            private Task AddAsync(string prefix, string line)
            {
                _buf.Append(prefix).Append(line.Replace('\n', ' ')).Append('\n');
                return _buf.Length >= 60 * 1024 ? FlushAsync() : Task.CompletedTask;
            }
            public async Task FlushAsync()
            {
                if (_buf.Length == 0) return;
                var s = _buf.ToString(); _buf.Clear();
                await _r.WriteAsync(s);
                await _r.Body.FlushAsync();
            }
        }
    }
}
