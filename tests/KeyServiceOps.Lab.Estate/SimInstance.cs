using System;
using System.Collections.Generic;
using System.Net;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace KeyServiceOps.Lab.Estate
{
    /// <summary>How a simulated api_key_service answers its health endpoint.</summary>
    public enum InstanceMode { Up, Down, Hung, Error500, WrongBody, HugeBody }

    public sealed class LogLine
    {
        public DateTimeOffset Time { get; set; }
        public bool Stderr { get; set; }
        public string Text { get; set; }
    }

    /// <summary>
    /// One simulated api_key_service instance on IP:8888 (its own Kestrel server, so Down is a real
    /// connection refused) plus the state its container would have: status, exit code, restart count, log.
    /// </summary>
    public sealed class SimInstance : IAsyncDisposable
    {
        public const string HealthyBody = "{\"status\":\"ok\",\"message\":\"The API is available and operational.\"}";
        private readonly object _gate = new object();
        private readonly CancellationTokenSource _dispose = new CancellationTokenSource();
        private WebApplication _app;
        private int _healthRequests;

        // Hundreds of lab servers in one process: no config-file watchers (each costs an inotify instance, limit 128).
        static SimInstance() => Environment.SetEnvironmentVariable("DOTNET_hostBuilder__reloadConfigOnChange", "false");

        public SimInstance(string address, int port = 8888) { Address = address; Port = port; }

        public string Address { get; }
        public int Port { get; }
        public string Target => $"{Address}:{Port}";
        public string HealthUrl => $"http://{Address}:{Port}/api/auth/healthz";
        public InstanceMode Mode { get; private set; } = InstanceMode.Down;
        public int HealthRequests => _healthRequests;
        public int HugeBodyBytes { get; set; } = 50 * 1024 * 1024;
        public long HugeBodyBytesSent;

        // Container state (docker inspect)
        public string ContainerStatus { get; set; } = "running";
        public int ExitCode { get; set; }
        public bool OomKilled { get; set; }
        public string ContainerError { get; set; } = "";
        /// <summary>
        /// What `docker inspect --format '{{.RestartCount}}'` prints: restarts made by the restart policy. Real Docker
        /// leaves it alone on a manual `docker restart` (checked against the real engine in the lab), so the lab does too.
        /// </summary>
        public int PolicyRestartCount { get; set; }
        /// <summary>How many `docker restart` commands this instance served: the lab's own count, not Docker's.</summary>
        public int Restarts { get; set; }
        public DateTimeOffset StartedAt { get; set; } = DateTimeOffset.UtcNow.AddHours(-2);
        public DateTimeOffset? FinishedAt { get; set; }
        public string ContainerName { get; set; } = "api_key_service";
        /// <summary>docker's container id (64 hex characters); a re-created container gets a new one.</summary>
        public string ContainerId { get; set; } = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)).ToLowerInvariant();

        /// <summary>The container's log, in the order written. Generated lines may also come from <see cref="LogGenerator"/>.</summary>
        public List<LogLine> Log { get; } = new List<LogLine>();
        /// <summary>When set, `docker logs` streams this many generated lines instead of <see cref="Log"/> (benchmarks).</summary>
        public long GeneratedLogLines { get; set; }

        /// <summary>What a restart does: the mode after it (and after <see cref="RestartDelay"/>), or null to keep the fault.</summary>
        public InstanceMode? ModeAfterRestart { get; set; } = InstanceMode.Up;
        public TimeSpan RestartDelay { get; set; } = TimeSpan.FromMilliseconds(300);
        public FaultScenario? Scenario { get; private set; }
        public DockerMode Docker { get; set; } = DockerMode.Ok;
        public bool SudoNeedsPassword { get; set; }
        /// <summary>
        /// A file on the VM whose bytes `docker logs` sends as they are, after the log's lines (a 200 MiB line without a
        /// newline, invalid UTF-8): the lab does not pass them through its text protocol. --tail does not count them.
        /// </summary>
        public string RawLogFile { get; set; }
        /// <summary>The next `docker restart` restarts, then its answer stalls or its SSH connection drops (once).</summary>
        public AfterRestartFault AfterRestart { get; set; }
        private int _exitCodeOfScenario;

        /// <summary>docker inspect --format '{{json .State}}'.</summary>
        public string StateJson()
        {
            lock (_gate)
            {
                var running = ContainerStatus == "running";
                return new System.Text.Json.Nodes.JsonObject
                {
                    ["Status"] = ContainerStatus, ["Running"] = running, ["Paused"] = false, ["Restarting"] = ContainerStatus == "restarting",
                    ["OOMKilled"] = OomKilled, ["Dead"] = false, ["Pid"] = running ? 4242 : 0, ["ExitCode"] = ExitCode, ["Error"] = ContainerError,
                    ["StartedAt"] = DockerTime(StartedAt),
                    ["FinishedAt"] = FinishedAt == null ? "0001-01-01T00:00:00Z" : DockerTime(FinishedAt.Value),
                }.ToJsonString();
            }
        }

        private static string DockerTime(DateTimeOffset t)
            => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff", System.Globalization.CultureInfo.InvariantCulture) + "00Z";

        /// <summary>
        /// Puts the instance into a fault: its container exits, its log gets the lines that fault writes, and
        /// health is down. With <paramref name="persists"/> a restart hits the same fault again.
        /// </summary>
        public async Task ApplyScenarioAsync(FaultScenario scenario, bool? persists = null)
        {
            var p = persists ?? (scenario == FaultScenario.CipherDependency || scenario == FaultScenario.IamDependency);
            Scenario = scenario;
            ModeAfterRestart = p ? null : InstanceMode.Up;
            var (lines, exit, oom) = FaultScenarios.Lines(scenario, DateTimeOffset.UtcNow.AddSeconds(-30));
            foreach (var l in lines) lock (Log) Log.Add(l);
            lock (_gate)
            {
                ContainerStatus = "exited"; ExitCode = exit; OomKilled = oom; FinishedAt = DateTimeOffset.UtcNow;
                _exitCodeOfScenario = exit;
            }
            await SetModeAsync(InstanceMode.Down);
        }

        /// <summary>What `docker restart` does here: the container starts; after <see cref="RestartDelay"/> it is up, or hits its fault again.</summary>
        public void SimulateRestart()
        {
            lock (_gate)
            {
                Restarts++;
                // Docker records the stop of the running container (or keeps the exit time of an exited one).
                if (ContainerStatus == "running") FinishedAt = DateTimeOffset.UtcNow;
                ContainerStatus = "running"; ExitCode = 0; OomKilled = false; ContainerError = "";
                StartedAt = DateTimeOffset.UtcNow;
            }
            foreach (var l in FaultScenarios.Startup(DateTimeOffset.UtcNow)) lock (Log) Log.Add(l);
            var after = ModeAfterRestart;
            var scenario = Scenario;
            _ = Task.Run(async () =>
            {
                try { await Task.Delay(RestartDelay, _dispose.Token); } catch (OperationCanceledException) { return; }
                if (after != null)
                {
                    AppendLog("time=\"" + DockerTime(DateTimeOffset.UtcNow) + "\" level=info msg=\"http server listening\" addr=\"0.0.0.0:8888\"");
                    Scenario = null;
                    await SetModeAsync(after.Value);
                }
                else if (scenario != null)
                {
                    var (lines, exit, oom) = FaultScenarios.Lines(scenario.Value, DateTimeOffset.UtcNow, withStartup: false);
                    foreach (var l in lines) lock (Log) Log.Add(l);
                    lock (_gate) { ContainerStatus = "exited"; ExitCode = exit; OomKilled = oom; FinishedAt = DateTimeOffset.UtcNow; }
                }
            });
        }

        // Mode changes one at a time: a restart's "back up" and a test's "Up" at the same moment both saw no listener
        // and both bound the port; the second failed with "address in use" (a 500 from the lab's control endpoint).
        private readonly SemaphoreSlim _modeGate = new SemaphoreSlim(1, 1);

        public async Task SetModeAsync(InstanceMode mode)
        {
            await _modeGate.WaitAsync();
            try { await SetModeCoreAsync(mode); }
            finally { _modeGate.Release(); }
        }

        private async Task SetModeCoreAsync(InstanceMode mode)
        {
            WebApplication toStop = null;
            bool start = false;
            lock (_gate)
            {
                Mode = mode;
                if (mode == InstanceMode.Down && _app != null) { toStop = _app; _app = null; }
                else if (mode != InstanceMode.Down && _app == null) start = true;
            }
            if (toStop != null) { await toStop.StopAsync(); await toStop.DisposeAsync(); }
            if (start) await StartAsync();
        }

        private async Task StartAsync()
        {
            var b = WebApplication.CreateSlimBuilder();
            b.Logging.ClearProviders();
            b.WebHost.UseKestrel(o => o.Listen(IPAddress.Parse(Address), Port));
            b.WebHost.UseShutdownTimeout(TimeSpan.FromMilliseconds(100));
            var app = b.Build();
            app.Run(HandleAsync);
            await app.StartAsync();
            lock (_gate)
            {
                if (_app == null && Mode != InstanceMode.Down) { _app = app; return; }
            }
            await app.StopAsync(); await app.DisposeAsync();
        }

        private async Task HandleAsync(HttpContext ctx)
        {
            if (ctx.Request.Path != "/api/auth/healthz") { ctx.Response.StatusCode = 404; return; }
            Interlocked.Increment(ref _healthRequests);
            switch (Mode)
            {
                case InstanceMode.Hung:
                    using (var cts = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted, _dispose.Token))
                    {
                        try { await Task.Delay(Timeout.Infinite, cts.Token); } catch (OperationCanceledException) { }
                    }
                    ctx.Abort();
                    return;
                case InstanceMode.Error500:
                    ctx.Response.StatusCode = 500;
                    await ctx.Response.WriteAsync("<html><body>500 Internal Server Error</body></html>");
                    return;
                case InstanceMode.WrongBody:
                    ctx.Response.ContentType = "application/json";
                    await ctx.Response.WriteAsync("{\"status\":\"starting\",\"message\":\"cipher config not loaded\"}");
                    return;
                case InstanceMode.HugeBody:
                    ctx.Response.ContentType = "text/plain";
                    ctx.Response.ContentLength = HugeBodyBytes;
                    var chunk = Encoding.ASCII.GetBytes(new string('x', 64 * 1024));
                    try
                    {
                        for (long sent = 0; sent < HugeBodyBytes; sent += chunk.Length)
                        {
                            var n = (int)Math.Min(chunk.Length, HugeBodyBytes - sent);
                            await ctx.Response.Body.WriteAsync(chunk.AsMemory(0, n), ctx.RequestAborted);
                            Interlocked.Add(ref HugeBodyBytesSent, n);
                        }
                    }
                    catch (Exception) { }
                    return;
                default:
                    ctx.Response.ContentType = "application/json";
                    await ctx.Response.WriteAsync(HealthyBody);
                    return;
            }
        }

        public void AppendLog(string text, bool stderr = false, DateTimeOffset? at = null)
        {
            lock (Log) Log.Add(new LogLine { Time = at ?? DateTimeOffset.UtcNow, Stderr = stderr, Text = text });
        }

        public async ValueTask DisposeAsync()
        {
            _dispose.Cancel();
            await SetModeAsync(InstanceMode.Down);
        }
    }
}
