using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using KeyServiceOps.Core.Diagnosis;
using KeyServiceOps.Core.Health;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace KeyServiceOps.Core.Remote
{

    public sealed class LogQuery
    {
        public int? Tail { get; set; }
        public string Since { get; set; }
        public string Until { get; set; }
        public bool Follow { get; set; }
    }

    /// <summary>
    /// The Docker CLI on an instance's VM over SSH (shared/contracts/docker-cli.md). Every command is built from
    /// validated, single-quoted values; each documented docker failure becomes its own error id.
    /// </summary>
    public sealed class DockerClient
    {
        private readonly RemoteShell _shell;
        private readonly IOpsLog _log;

        public DockerClient(RemoteShell shell, IOpsLog log)
        {
            _shell = shell ?? throw new ArgumentNullException(nameof(shell));
            _log = log ?? NullOpsLog.Instance;
        }

        private static string Docker(SshTarget t) => t.UseSudo ? "sudo -n docker" : "docker";

        public static string LogsCommand(SshTarget t, LogQuery q)
        {
            var sb = new StringBuilder(Docker(t)).Append(" logs --timestamps");
            if (q.Tail != null)
            {
                if (q.Tail < 0) throw new OpsException("InvalidTail", OpsErrorCategory.InvalidArgument, $"-Tail {q.Tail} is negative.", q.Tail, recommendedAction: "Give -Tail 0 or more (the last N lines), or leave it out for the whole log.");
                sb.Append(" --tail ").Append(ShellText.Quote(q.Tail.Value.ToString(CultureInfo.InvariantCulture)));
            }
            if (q.Since != null) sb.Append(" --since ").Append(ShellText.Quote(ShellText.ValidTime(q.Since, "Since")));
            if (q.Until != null) sb.Append(" --until ").Append(ShellText.Quote(ShellText.ValidTime(q.Until, "Until")));
            if (q.Follow) sb.Append(" --follow");
            return sb.Append(' ').Append(ShellText.Quote(ShellText.ValidContainer(t.Container))).ToString();
        }

        /// <summary>
        /// Streams `docker logs` to <paramref name="onEntry"/>, one call per line as it arrives, stdout and stderr
        /// kept apart. Lines on stderr without docker's timestamp are docker's own messages: they make the error.
        /// Returns the number of entries.
        /// </summary>
        public async Task<long> LogsAsync(SshTarget t, LogQuery q, Action<LogEntry> onEntry, CancellationToken ct)
        {
            var command = LogsCommand(t, q);
            long seq = 0;
            var cliErrors = new List<string>();
            var gate = new object();
            // A bounded read comes back in time order across both streams (the help's promise); -Follow keeps arrival
            // order, so a live line is never held back waiting for the other stream.
            var merger = q.Follow ? null : new StreamMerger(e => { e.Sequence = ++seq; onEntry(e); });
            void Emit(string line, LogStream stream)
            {
                var e = LogEntry.Parse(line, stream);
                if (e.Timestamp == null && stream == LogStream.Stderr)
                {
                    lock (gate) if (cliErrors.Count < 20) cliErrors.Add(line);
                    return;
                }
                e.Address = t.Host; e.Container = t.Container;
                lock (gate)
                {
                    if (merger != null) merger.Add(e);
                    else { e.Sequence = ++seq; onEntry(e); }
                }
            }
            int status;
            try { status = await _shell.RunAsync(t, command, l => Emit(l, LogStream.Stdout), l => Emit(l, LogStream.Stderr), null, ct).ConfigureAwait(false); }
            finally { if (merger != null) lock (gate) merger.Finish(); }
            if (status != 0) throw DockerError(t, command, status, string.Join("\n", cliErrors));
            if (cliErrors.Count > 0) _log.Warning($"docker on {t.Host} also said: {string.Join(" | ", cliErrors.Take(3))}");
            return seq;
        }

        /// <summary>The faults in the container's last <paramref name="tail"/> log lines and in its state.</summary>
        public async Task<IReadOnlyList<Fault>> DiagnoseAsync(SshTarget t, int tail, FaultRuleSet rules, IDictionary<string, string> owners, CancellationToken ct)
        {
            var a = new FaultAnalyzer(rules, owners, _log.Warning);
            await LogsAsync(t, new LogQuery { Tail = tail }, a.Add, ct).ConfigureAwait(false);
            a.Add(await InspectAsync(t, ct).ConfigureAwait(false));
            return a.Results();
        }

        public async Task<ContainerState> InspectAsync(SshTarget t, CancellationToken ct)
        {
            var name = ShellText.Quote(ShellText.ValidContainer(t.Container));
            var (status, stdout, stderr) = await CaptureAsync(t, $"{Docker(t)} inspect --format {ShellText.Quote("{{json .State}}")} {name}", ct).ConfigureAwait(false);
            var cmd = $"{Docker(t)} inspect {name}";
            if (status != 0) throw DockerError(t, cmd, status, stderr);
            JObject o;
            try { o = JObject.Parse(stdout); }
            catch (JsonException e)
            {
                throw new OpsException("DockerInvalidOutput", OpsErrorCategory.InvalidResult,
                    $"`docker inspect` on {t.Host} did not print the container state as JSON.", t.Host, details: Clip(stdout),
                    recommendedAction: "Run `docker inspect --format '{{json .State}}' " + t.Container + "` on the VM and check its output.", inner: e);
            }
            var state = new ContainerState
            {
                Address = t.Host, Container = t.Container,
                Status = (string)o["Status"], Running = (bool?)o["Running"] ?? false, Paused = (bool?)o["Paused"] ?? false,
                Restarting = (bool?)o["Restarting"] ?? false, OOMKilled = (bool?)o["OOMKilled"] ?? false, Dead = (bool?)o["Dead"] ?? false,
                Pid = (int?)o["Pid"] ?? 0, ExitCode = (int?)o["ExitCode"] ?? 0, Error = (string)o["Error"],
                StartedAt = DockerTime(o["StartedAt"]), FinishedAt = DockerTime(o["FinishedAt"]),
                Health = (string)o["Health"]?["Status"],
            };
            var (rs, rout, rerr) = await CaptureAsync(t, $"{Docker(t)} inspect --format {ShellText.Quote("{{.RestartCount}} {{.Id}}")} {name}", ct).ConfigureAwait(false);
            if (rs != 0) throw DockerError(t, cmd, rs, rerr);
            var words = rout.Trim().Split(new[] { ' ' }, StringSplitOptions.RemoveEmptyEntries);
            if (words.Length > 0 && int.TryParse(words[0], NumberStyles.None, CultureInfo.InvariantCulture, out var rc)) state.RestartCount = rc;
            if (words.Length > 1 && IsContainerId(words[1])) state.Id = words[1];
            return state;
        }

        /// <summary>
        /// `docker restart`: returns once the process is started, not once the service is healthy. With
        /// <paramref name="journal"/> (incident and actor), a line is first appended to the VM's restart journal, in the
        /// same command: every responder on every machine reads it (<see cref="ReadRestartJournalAsync"/>), stamped with
        /// the VM's own clock, the clock docker's StartedAt uses. A lost answer (timeout, dropped connection) is
        /// <see cref="OpsException.OutcomeUnknown"/>: the restart may have happened.
        /// </summary>
        public async Task RestartAsync(SshTarget t, int? graceSeconds, CancellationToken ct, string journal = null)
        {
            var prefix = new StringBuilder();
            var cmd = new StringBuilder();
            if (journal != null)
                prefix.Append("{ d=\"").Append(VmLeases.VmDir).Append("\"; umask 077; mkdir -p \"$d\" && [ ! -L \"$d\" ] && [ ! -L \"$d/").Append(JournalFile(t)).Append("\" ] && ")
                   // Braced: when a check fails nothing is appended (never through a planted link).
                   .Append("{ c=$(").Append(Docker(t)).Append(" inspect --format '{{.Id}}' ").Append(ShellText.Quote(ShellText.ValidContainer(t.Container))).Append(" 2>/dev/null | head -c 64); ")
                   .Append("printf '%s %s c:%s %s\\n' \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\" ").Append(ShellText.Quote(OneLine(Word(journal, 0))))
                   .Append(" \"${c:--}\" ").Append(ShellText.Quote(OneLine(Word(journal, 1)))).Append(" >> \"$d/").Append(JournalFile(t)).Append("\"; }; } 2>/dev/null; ");
            cmd.Append(Docker(t)).Append(" restart");
            if (graceSeconds != null) cmd.Append(" --time ").Append(ShellText.Quote(graceSeconds.Value.ToString(CultureInfo.InvariantCulture)));
            cmd.Append(' ').Append(ShellText.Quote(ShellText.ValidContainer(t.Container)));
            var text = cmd.ToString();
            // The grace period counts against the timeout: docker waits for it before SIGKILL.
            var timeout = t.CommandTimeout + TimeSpan.FromSeconds(graceSeconds ?? 10);
            int status; string stderr;
            try { (status, _, stderr) = await CaptureAsync(t, prefix + text, ct, timeout).ConfigureAwait(false); }
            catch (OpsException e) when (e.Category == OpsErrorCategory.OperationTimeout || e.Category == OpsErrorCategory.ConnectionError) { throw e.MaybeApplied(); }
            // No exit status: the channel closed under the command (the connection dropped after it was sent).
            if (status == -1) throw new OpsException("SshChannelClosed", OpsErrorCategory.ConnectionError,
                $"The SSH channel to {t.Display} closed before `{text}` reported how it ended.", t.Host,
                recommendedAction: "Check the container (Get-KeyServiceContainer) before restarting again.").MaybeApplied();
            if (status != 0) throw DockerError(t, text, status, stderr);
        }

        private static string JournalFile(SshTarget t) => $"restarts-{VmLeases.SafeName(t.Host)}-{VmLeases.SafeName(t.Container)}.log";

        /// <summary>A docker container id: hex, 12 to 64 characters.</summary>
        internal static bool IsContainerId(string s)
            => s != null && s.Length >= 12 && s.Length <= 64 && s.All(c => (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));

        /// <summary>The journal text's first word (the incident, "-" for none), or the rest (the actor).</summary>
        private static string Word(string journal, int i)
        {
            var parts = (journal ?? "-").Split(new[] { ' ' }, 2);
            return i == 0 ? parts[0] : parts.Length > 1 ? parts[1] : "";
        }

        private static string OneLine(string s)
        {
            var b = new StringBuilder();
            foreach (var c in s ?? "") b.Append(char.IsControl(c) ? ' ' : c);
            return b.ToString();
        }

        /// <summary>One line of the VM's restart journal: when (the VM's clock), and the incident and actor it was written with.</summary>
        public sealed class JournalEntry
        {
            /// <summary>When, on the VM's clock (the clock docker's StartedAt uses).</summary>
            public DateTimeOffset Time { get; set; }
            /// <summary>When, on this machine's clock: <see cref="Time"/> less the VM clock's offset measured as the journal was read (a VM minutes behind or ahead is no longer read as a restart before or after the incident).</summary>
            public DateTimeOffset LocalTime { get; set; }
            public string Incident { get; set; }
            public string Actor { get; set; }
            /// <summary>The container restarted (docker's id), when the line records it.</summary>
            public string ContainerId { get; set; }
        }

        /// <summary>The VM's restart journal (the newest 200 lines); empty when there is none.</summary>
        public async Task<IReadOnlyList<JournalEntry>> ReadRestartJournalAsync(SshTarget t, CancellationToken ct)
        {
            var asked = DateTimeOffset.UtcNow;
            var (status, stdout, _) = await CaptureAsync(t, $"date -u +%s; f=\"{VmLeases.VmDir}/{JournalFile(t)}\"; [ -f \"$f\" ] && [ ! -L \"$f\" ] && tail -n 200 \"$f\"; true", ct).ConfigureAwait(false);
            var answered = DateTimeOffset.UtcNow;
            var list = new List<JournalEntry>();
            if (status != 0) return list;
            // The VM's clock against ours (the middle of the round trip): journal times are the VM's.
            var offset = TimeSpan.Zero;
            var lines = stdout.Split('\n');
            if (lines.Length > 0 && long.TryParse(lines[0].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var vmNow))
            {
                var ours = asked + TimeSpan.FromTicks((answered - asked).Ticks / 2);
                offset = DateTimeOffset.FromUnixTimeSeconds(vmNow) - ours;
                if (Math.Abs(offset.TotalSeconds) < 2) offset = TimeSpan.Zero; // within the second `date` rounds to and the round trip
            }
            foreach (var line in lines)
            {
                var parts = line.Trim().Split(new[] { ' ' }, 3);
                if (parts.Length < 2 || !DateTimeOffset.TryParse(parts[0], CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var when)) continue;
                var e = new JournalEntry { Time = when, LocalTime = when - offset, Incident = parts[1] == "-" ? null : parts[1], Actor = parts.Length > 2 ? parts[2] : null };
                // Lines since issue #25's second part carry the container's id ("c:<id>" or "c:-") before the actor.
                if (e.Actor != null && e.Actor.StartsWith("c:", StringComparison.Ordinal))
                {
                    var rest = e.Actor.Split(new[] { ' ' }, 2);
                    e.ContainerId = IsContainerId(rest[0].Substring(2)) ? rest[0].Substring(2) : null;
                    e.Actor = rest.Length > 1 ? rest[1] : null;
                }
                list.Add(e);
            }
            return list;
        }

        /// <summary>The runbook's own check, run on the VM: curl to localhost (for instances not reachable from here).</summary>
        public async Task<HealthResult> CurlHealthAsync(SshTarget t, int port, string path, string expected, TimeSpan timeout, CancellationToken ct)
        {
            if (port <= 0 || port > 65535) throw new OpsException("InvalidPort", OpsErrorCategory.InvalidArgument, $"Port {port} is out of range.", port, recommendedAction: "Give a port from 1 to 65535 (the key service listens on 8888).");
            if (string.IsNullOrEmpty(path) || path[0] != '/' || path.Any(c => c <= ' ' || c == '\'' || c > '~'))
                throw new OpsException("InvalidHealthPath", OpsErrorCategory.InvalidArgument, $"Health path '{path}' must start with / and hold only printable ASCII without quotes or spaces.", path,
                    recommendedAction: "Give a path such as /api/auth/healthz.");
            var url = $"http://localhost:{port}{path}";
            var secs = Math.Max(1, (int)Math.Ceiling(timeout.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
            var command = $"curl -sS -m {ShellText.Quote(secs)} --max-filesize 65536 -w {ShellText.Quote("\\n%{http_code}")} {ShellText.Quote(url)}";
            var result = new HealthResult { Address = t.Host, Port = port, Url = url, Via = "Ssh", CheckedAt = DateTimeOffset.UtcNow };
            var sw = Stopwatch.StartNew();
            var (status, stdout, stderr) = await CaptureAsync(t, command, ct, timeout + t.CommandTimeout).ConfigureAwait(false);
            result.Latency = sw.Elapsed;
            var lastNl = stdout.LastIndexOf('\n');
            var body = lastNl >= 0 ? stdout.Substring(0, lastNl) : "";
            int.TryParse((lastNl >= 0 ? stdout.Substring(lastNl + 1) : stdout).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var code);
            switch (status)
            {
                case 0:
                    result.HttpStatus = code;
                    if (code < 200 || code > 299) { result.StatusValue = HealthStatus.Unhealthy; result.Detail = $"HTTP {code}"; }
                    else if (body.IndexOf(expected, StringComparison.Ordinal) >= 0) { result.StatusValue = HealthStatus.Up; result.Healthy = true; result.Detail = "The API is available and operational"; }
                    else { result.StatusValue = HealthStatus.Degraded; result.Detail = $"HTTP {code} but the body lacks '{expected}'"; }
                    break;
                case 7: result.StatusValue = HealthStatus.Down; result.Detail = "connection refused (curl on the VM)"; break;
                case 28: result.StatusValue = HealthStatus.Timeout; result.Detail = $"no answer within {secs} s (curl on the VM)"; break;
                case 63: result.StatusValue = HealthStatus.Degraded; result.HttpStatus = code == 0 ? (int?)null : code; result.Detail = "body larger than 64 KiB (curl on the VM stopped reading)"; break;
                case 127:
                    throw new OpsException("CurlNotInstalled", OpsErrorCategory.NotInstalled, $"curl is not installed on {t.Host}.", t.Host, details: Clip(stderr),
                        recommendedAction: "Check health over HTTP instead (Test-KeyServiceHealth without -Via Ssh), or install curl on the VM.");
                default: result.StatusValue = HealthStatus.Error; result.Detail = $"curl exit {status}: {Clip(stderr)}"; break;
            }
            _log.Verbose($"Health {t.Host} via SSH: {result.Status} in {(int)result.Latency.TotalMilliseconds} ms ({result.Detail})");
            return result;
        }

        /// <summary>Runs a short command and keeps (bounded) stdout and stderr.</summary>
        private async Task<(int status, string stdout, string stderr)> CaptureAsync(SshTarget t, string command, CancellationToken ct, TimeSpan? timeout = null)
        {
            var o = new BoundedText(256 * 1024); var e = new BoundedText(16 * 1024);
            var status = await _shell.RunAsync(t, command, o.Add, e.Add, timeout ?? t.CommandTimeout, ct).ConfigureAwait(false);
            return (status, o.ToString(), e.ToString());
        }

        private static DateTimeOffset? DockerTime(JToken v)
        {
            var s = v?.Type == JTokenType.Date ? ((DateTime)v).ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture) : (string)v;
            if (string.IsNullOrEmpty(s) || s.StartsWith("0001-01-01")) return null;
            return LogEntry.TryParseTimestamp(s, out var t, out _) ? t : (DateTimeOffset?)null;
        }

        private static string Clip(string s) => s == null ? null : s.Length > 2000 ? s.Substring(0, 2000) + "…" : s;

        /// <summary>Maps docker's documented failures (stderr, exit status) to their own error ids.</summary>
        public static OpsException DockerError(SshTarget t, string command, int status, string stderr)
        {
            var err = (stderr ?? "").Trim();
            var host = t.Host;
            if (status == 127 || err.Contains("command not found"))
                return new OpsException("DockerNotInstalled", OpsErrorCategory.NotInstalled,
                    $"There is no docker command on {host}'s PATH (`{command}` exited {status}).", host, details: Clip(err),
                    recommendedAction: "Check that this VM runs the key service (Get-KeyServiceInstance), or log in as a user whose PATH has docker.");
            if (err.Contains("a password is required") || err.Contains("a terminal is required"))
                return new OpsException("SudoPasswordRequired", OpsErrorCategory.PermissionDenied,
                    $"`sudo -n` on {host} needs a password, so docker could not run as root.", host, details: Clip(err),
                    recommendedAction: $"Ask for a password-less sudo rule for docker for {t.User}, or connect as a user in the docker group without -UseSudo.");
            if (err.Contains("permission denied while trying to connect to the Docker daemon"))
                return new OpsException("DockerPermissionDenied", OpsErrorCategory.PermissionDenied,
                    $"{t.User} on {host} may not use the Docker daemon.", host, details: Clip(err),
                    recommendedAction: "Use -UseSudo (runs `sudo -n docker`), or set UseSudo for this host in the inventory.");
            if (err.Contains("Cannot connect to the Docker daemon"))
                return new OpsException("DockerDaemonUnavailable", OpsErrorCategory.ResourceUnavailable,
                    $"The Docker daemon on {host} is not running.", host, details: Clip(err),
                    recommendedAction: "The container cannot be read or restarted until dockerd runs: `systemctl status docker` on the VM, or escalate.");
            if (err.Contains("No such container") || err.Contains("No such object"))
                return new OpsException("ContainerNotFound", OpsErrorCategory.ObjectNotFound,
                    $"There is no container '{t.Container}' on {host}.", host, details: Clip(err),
                    recommendedAction: "The container does not exist on this host: check -Container (`docker ps -a` on the VM) and that this is the right VM.");
            return new OpsException("DockerCommandFailed", OpsErrorCategory.InvalidResult,
                $"`{command}` on {host} failed with exit status {status}.", host, details: Clip(err),
                recommendedAction: "Read the remote answer; run the command on the VM by hand to see more.");
        }

        private sealed class BoundedText
        {
            private readonly StringBuilder _sb = new StringBuilder();
            private readonly int _max;
            public BoundedText(int max) { _max = max; }
            public void Add(string line)
            {
                lock (_sb)
                {
                    if (_sb.Length >= _max) return;
                    if (_sb.Length > 0) _sb.Append('\n');
                    _sb.Append(line.Length > _max - _sb.Length ? line.Substring(0, _max - _sb.Length) : line);
                }
            }
            public override string ToString() { lock (_sb) return _sb.ToString(); }
        }
    }
}
