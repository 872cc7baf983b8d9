using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using KeyServiceOps.Core.Diagnosis;
using KeyServiceOps.Core.Health;
using KeyServiceOps.Core.Remote;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using Xunit;
using KeyServiceOps.Core.Audit;

namespace KeyServiceOps.Core.Tests
{
    /// <summary>One SSH lab (a real sshd) shared by the tests of a class; each test uses its own instances.</summary>
    public sealed class SshLabFixture : IAsyncLifetime
    {
        public Lab.Estate.Lab Lab { get; private set; }
        public string KnownHosts { get; private set; }

        public async Task InitializeAsync()
        {
            Lab = await KeyServiceOps.Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 36, Ssh = true });
            KnownHosts = TestCtx.KnownHostsFor(Lab);
        }

        /// <summary>An instance no other test of the class uses.</summary>
        public SimInstance Fresh() => Lab.NextUnused();

        public async Task DisposeAsync() => await Lab.DisposeAsync();
    }

    public class SshTests : IClassFixture<SshLabFixture>
    {
        private static readonly CancellationToken None = CancellationToken.None;
        private readonly SshLabFixture _f;
        public SshTests(SshLabFixture f) { _f = f; }

        private Lab.Estate.Lab Lab => _f.Lab;

        private (DockerClient docker, SshSessionPool pool, ListLog log) Docker()
        {
            var pool = new SshSessionPool();
            var log = new ListLog();
            return (new DockerClient(new RemoteShell(pool, log), log), pool, log);
        }

        private SshTarget Target(SimInstance i, Action<OpsContext> tweak = null)
        {
            var c = TestCtx.ForSsh(Lab, _f.KnownHosts);
            tweak?.Invoke(c);
            return SshTarget.For(c, i.Address);
        }

        private static async Task<List<LogEntry>> Logs(DockerClient d, SshTarget t, LogQuery q)
        {
            var list = new List<LogEntry>();
            await d.LogsAsync(t, q, list.Add, None);
            return list;
        }

        [Fact]
        public async Task Logs_stream_in_order_with_stdout_and_stderr_apart_and_honour_tail_and_since()
        {
            var inst = _f.Fresh();
            var t0 = DateTimeOffset.UtcNow.AddMinutes(-30);
            for (int i = 0; i < 10; i++) inst.AppendLog($"time=\"x\" level=info msg=\"request {i}\"", false, t0.AddMinutes(i));
            for (int i = 0; i < 5; i++) inst.AppendLog($"time=\"x\" level=error msg=\"problem {i}\"", true, t0.AddMinutes(i).AddSeconds(30));
            var (d, pool, _) = Docker();
            using (pool)
            {
                var all = await Logs(d, Target(inst), new LogQuery());
                Assert.Equal(15, all.Count);
                var outs = all.Where(e => e.StreamValue == LogStream.Stdout).ToList();
                var errs = all.Where(e => e.StreamValue == LogStream.Stderr).ToList();
                Assert.Equal(Enumerable.Range(0, 10).Select(i => $"request {i}"), outs.Select(e => e.Message.Split('"')[3]));
                Assert.Equal(Enumerable.Range(0, 5).Select(i => $"problem {i}"), errs.Select(e => e.Message.Split('"')[3]));
                Assert.All(outs, e => Assert.Equal(LogLevel.Info, e.LevelValue));
                Assert.All(errs, e => Assert.Equal(LogLevel.Error, e.LevelValue));
                Assert.All(all, e => Assert.Equal(inst.Address, e.Address));
                // Timestamps are docker's (nanosecond RFC 3339), parsed back to the time written.
                Assert.Equal(t0.AddMinutes(3).UtcTicks / 10, outs[3].Timestamp.Value.UtcTicks / 10);
                Assert.Equal(Enumerable.Range(1, 15).Select(i => (long)i), all.Select(e => e.Sequence));

                // --tail counts both streams together, in the order written (the problems were written last).
                var tail = await Logs(d, Target(inst), new LogQuery { Tail = 3 });
                Assert.Equal(new[] { "problem 2", "problem 3", "problem 4" }, tail.Select(e => e.Message.Split('"')[3]));

                var since = await Logs(d, Target(inst), new LogQuery { Since = ShellText.ValidTime(t0.AddMinutes(7).AddSeconds(-1), "Since") });
                Assert.Equal(new[] { "request 7", "request 8", "request 9" }, since.Select(e => e.Message.Split('"')[3]));
                var until = await Logs(d, Target(inst), new LogQuery { Until = ShellText.ValidTime(t0.AddMinutes(1).AddSeconds(1), "Until") });
                Assert.Equal(new[] { "request 0", "problem 0", "request 1" }.OrderBy(x => x), until.Select(e => e.Message.Split('"')[3]).OrderBy(x => x));
            }
        }

        [Fact]
        public async Task Inspect_reports_the_container_state()
        {
            var inst = _f.Fresh();
            await inst.ApplyScenarioAsync(FaultScenario.OutOfMemory);
            inst.PolicyRestartCount = 3;
            var (d, pool, _) = Docker();
            using (pool)
            {
                var s = await d.InspectAsync(Target(inst), None);
                Assert.Equal("exited", s.Status);
                Assert.False(s.Running);
                Assert.True(s.OOMKilled);
                Assert.Equal(137, s.ExitCode);
                Assert.Equal(3, s.RestartCount);
                Assert.NotNull(s.FinishedAt);
                Assert.True(s.FinishedAt > DateTimeOffset.UtcNow.AddMinutes(-1));
                Assert.Equal(inst.Address, s.Address);
            }
        }

        [Theory]
        [InlineData(FaultScenario.CipherDependency, "CipherDependency", true, FaultAction.AssignToOwner)]
        [InlineData(FaultScenario.IamDependency, "IamDependency", true, FaultAction.AssignToOwner)]
        [InlineData(FaultScenario.OutOfMemory, "OutOfMemory", false, FaultAction.Restart)]
        [InlineData(FaultScenario.PortInUse, "PortInUse", false, FaultAction.Restart)]
        [InlineData(FaultScenario.CleanCrash, "Unknown", false, FaultAction.Restart)]
        public async Task Each_fault_scenario_is_found_from_its_logs(FaultScenario scenario, string category, bool dependency, FaultAction action)
        {
            var inst = _f.Fresh();
            for (int i = 0; i < 50; i++) inst.AppendLog($"time=\"x\" level=info msg=\"GET /api/v1/apikeys 200\" n={i}", false, DateTimeOffset.UtcNow.AddMinutes(-5).AddSeconds(i));
            await inst.ApplyScenarioAsync(scenario);
            var (d, pool, _) = Docker();
            using (pool)
            {
                var a = new FaultAnalyzer(null, new Dictionary<string, string> { ["CipherDependency"] = "cipher-owner@example.com" });
                await d.LogsAsync(Target(inst), new LogQuery { Tail = 200 }, a.Add, None);
                var faults = a.Results();
                var f = Assert.Single(faults);
                Assert.Equal(category, f.Category);
                Assert.Equal(dependency, f.Dependency);
                Assert.Equal(action, f.ActionValue);
                Assert.Equal(inst.Address, f.Address);
                Assert.NotEmpty(f.Evidence);
                Assert.InRange(f.Evidence.Count, 1, 5);
                Assert.NotNull(f.FirstSeen);
                Assert.True(f.LastSeen >= f.FirstSeen);
                Assert.Equal(category == "CipherDependency" ? "cipher-owner@example.com" : null, f.Owner);
                Assert.Equal(dependency ? f : null, FaultAnalyzer.BlockingFault(faults));
            }
        }

        private KeyServiceRestarter Restarter(DockerClient d, ListLog log, string audit)
        {
            var ctx = TestCtx.ForSsh(Lab, _f.KnownHosts);
            return new KeyServiceRestarter(d, HealthChecker.FromContext(ctx, log, TimeSpan.FromSeconds(1)), new AuditLog(audit), null, null, log);
        }

        [Fact]
        public async Task Restart_with_wait_recovers_and_says_how_long_it_took()
        {
            var inst = _f.Fresh();
            await inst.ApplyScenarioAsync(FaultScenario.OutOfMemory);
            inst.RestartDelay = TimeSpan.FromSeconds(2); // long enough that the first health poll always finds it still starting, on a busy machine too
            var audit = Path.GetTempFileName();
            var (d, pool, log) = Docker();
            using (pool)
            {
                var progress = new List<RestartProgress>();
                var r = await Restarter(d, log, audit).RestartAsync(Target(inst), new RestartOptions { Wait = true, Timeout = TimeSpan.FromSeconds(20), PollInterval = TimeSpan.FromMilliseconds(100), IncidentId = "PINC1" }, progress.Add, None);
                Assert.True(r.Restarted);
                Assert.True(r.Recovered);
                Assert.Equal("Recovered", r.Status);
                Assert.True(r.Elapsed >= TimeSpan.FromMilliseconds(1900), $"recovered after {r.Elapsed}, before the simulated start-up delay");
                Assert.True(r.HealthChecks >= 2);
                Assert.True(r.Health.Healthy);
                Assert.Equal("OutOfMemory", r.FaultCategory);
                Assert.Equal(1, inst.Restarts);
                Assert.Contains(progress, p => p.Phase.StartsWith("waiting for health"));
                var entry = new AuditLog(audit).Read(null, null, "RestartContainer").Single();
                Assert.Equal("Recovered", entry.Outcome);
                Assert.Equal("PINC1", entry.Incident);
                Assert.Equal("OutOfMemory", (string)entry.BeforeData["lastFault"]);
                Assert.True((bool)entry.AfterData["recovered"]);
                Assert.True((double)entry.AfterData["seconds"] >= 0.6);
            }
        }

        [Fact]
        public async Task Restart_with_wait_times_out_when_the_fault_persists()
        {
            var inst = _f.Fresh();
            await inst.ApplyScenarioAsync(FaultScenario.PortInUse, persists: true);
            var audit = Path.GetTempFileName();
            var (d, pool, log) = Docker();
            using (pool)
            {
                var sw = Stopwatch.StartNew();
                var r = await Restarter(d, log, audit).RestartAsync(Target(inst), new RestartOptions { Wait = true, Timeout = TimeSpan.FromSeconds(1.5), PollInterval = TimeSpan.FromMilliseconds(200) }, null, None);
                Assert.True(r.Restarted);
                Assert.False(r.Recovered);
                Assert.Equal("NotRecovered", r.Status);
                Assert.Equal(HealthStatus.Down, r.Health.StatusValue);
                // What happened, not how long it took: it polled more than once and gave up only after the timeout.
                Assert.True(r.HealthChecks >= 2, $"{r.HealthChecks} health checks");
                Assert.True(sw.Elapsed.TotalSeconds >= 1.4, $"gave up after {sw.Elapsed}, before the 1.5 s timeout");
                Assert.Equal("NotRecovered", new AuditLog(audit).Read(null, null, "RestartContainer").Single().Outcome);
            }
        }

        [Fact]
        public async Task Restart_is_refused_on_a_dependency_fault_unless_forced()
        {
            var inst = _f.Fresh();
            await inst.ApplyScenarioAsync(FaultScenario.CipherDependency);
            var audit = Path.GetTempFileName();
            var (d, pool, log) = Docker();
            using (pool)
            {
                var restarter = Restarter(d, log, audit);
                var e = await Assert.ThrowsAsync<OpsException>(() => restarter.RestartAsync(Target(inst), new RestartOptions(), null, None));
                Assert.Equal("DependencyFaultNoRestart", e.ErrorId);
                Assert.Contains("CipherDependency", e.Message);
                Assert.DoesNotContain(Lab.Ssh.Docker.Calls, c => c.Address == inst.Address && c.Args[0] == "restart");
                Assert.Equal(0, inst.Restarts);

                var r = await restarter.RestartAsync(Target(inst), new RestartOptions { Force = true }, null, None);
                Assert.True(r.Restarted);
                Assert.Null(r.Recovered);
                Assert.Equal(1, inst.Restarts);
                Assert.True(new AuditLog(audit).Read(null, null, "RestartContainer").Single().Forced);
            }
        }

        [Fact]
        public async Task Health_through_ssh_runs_curl_on_the_vm()
        {
            var up = _f.Fresh(); var down = _f.Fresh();
            await down.SetModeAsync(InstanceMode.Down);
            var (d, pool, _) = Docker();
            using (pool)
            {
                var h = await d.CurlHealthAsync(Target(up), 8888, OpsContext.DefaultHealthPath, OpsContext.DefaultExpectedText, TimeSpan.FromSeconds(2), None);
                Assert.True(h.Healthy);
                Assert.Equal("Ssh", h.Via);
                Assert.Equal(200, h.HttpStatus);
                Assert.Equal("http://localhost:8888/api/auth/healthz", h.Url);
                var h2 = await d.CurlHealthAsync(Target(down), 8888, OpsContext.DefaultHealthPath, OpsContext.DefaultExpectedText, TimeSpan.FromSeconds(2), None);
                Assert.Equal(HealthStatus.Down, h2.StatusValue);
                Assert.False(h2.Healthy);
            }
        }

        [Theory]
        [InlineData("api_key_service; touch /tmp/kso-pwned")]
        [InlineData("$(touch /tmp/kso-pwned)")]
        [InlineData("`touch /tmp/kso-pwned`")]
        [InlineData("api_key_service'")]
        [InlineData("-rf")]
        public async Task A_container_name_with_shell_metacharacters_is_refused_before_any_connection(string name)
        {
            File.Delete("/tmp/kso-pwned");
            var inst = _f.Fresh();
            var before = Lab.Ssh.AcceptedConnections();
            var calls = Lab.Ssh.Docker.Calls.Count;
            var (d, pool, _) = Docker();
            using (pool)
            {
                var e = Assert.Throws<OpsException>(() => Target(inst, c => c.Ssh.ContainerName = name));
                Assert.Equal("InvalidContainerName", e.ErrorId);
                var t = Target(inst); t.Container = name;
                var e2 = await Assert.ThrowsAsync<OpsException>(() => d.LogsAsync(t, new LogQuery(), _ => { }, None));
                Assert.Equal("InvalidContainerName", e2.ErrorId);
                var e3 = await Assert.ThrowsAsync<OpsException>(() => d.RestartAsync(t, null, None));
                Assert.Equal("InvalidContainerName", e3.ErrorId);
                Assert.Equal(0, pool.Connects);
            }
            Assert.Equal(before, Lab.Ssh.AcceptedConnections());
            Assert.Equal(calls, Lab.Ssh.Docker.Calls.Count);
            Assert.False(File.Exists("/tmp/kso-pwned"));
        }

        [Theory]
        [InlineData("10m; id")]
        [InlineData("$(id)")]
        [InlineData("yesterday")]
        public void A_since_value_docker_would_not_take_is_refused(string since)
        {
            var e = Assert.Throws<OpsException>(() => DockerClient.LogsCommand(Target(_f.Lab[0]), new LogQuery { Since = since }));
            Assert.Equal("InvalidTime", e.ErrorId);
        }

        [Fact]
        public void Commands_quote_every_value()
        {
            var t = Target(_f.Lab[0]); t.UseSudo = true;
            Assert.Equal("sudo -n docker logs --timestamps --tail '200' --since '10m' 'api_key_service'",
                DockerClient.LogsCommand(t, new LogQuery { Tail = 200, Since = "10m" }));
            Assert.Equal("'it'\\''s'", ShellText.Quote("it's"));
        }

        [Theory]
        [InlineData(DockerMode.NotInstalled, false, false, "DockerNotInstalled")]
        [InlineData(DockerMode.DaemonDown, false, false, "DockerDaemonUnavailable")]
        [InlineData(DockerMode.RequiresRoot, false, false, "DockerPermissionDenied")]
        [InlineData(DockerMode.RequiresRoot, true, true, "SudoPasswordRequired")]
        [InlineData(DockerMode.Ok, false, false, "ContainerNotFound")]
        public async Task Every_docker_error_in_the_contract_has_its_own_error_id(DockerMode mode, bool sudo, bool sudoNeedsPassword, string errorId)
        {
            var inst = _f.Fresh();
            inst.Docker = mode; inst.SudoNeedsPassword = sudoNeedsPassword;
            var (d, pool, _) = Docker();
            using (pool)
            {
                var t = Target(inst, c => c.Ssh.UseSudo = sudo);
                if (errorId == "ContainerNotFound") t.Container = "api_key_service_old";
                var logs = await Assert.ThrowsAsync<OpsException>(() => d.LogsAsync(t, new LogQuery { Tail = 5 }, _ => { }, None));
                var inspect = await Assert.ThrowsAsync<OpsException>(() => d.InspectAsync(t, None));
                var restart = await Assert.ThrowsAsync<OpsException>(() => d.RestartAsync(t, null, None));
                foreach (var e in new[] { logs, inspect, restart })
                {
                    Assert.Equal(errorId, e.ErrorId);
                    Assert.Equal(inst.Address, e.TargetObject);
                    Assert.False(string.IsNullOrEmpty(e.RecommendedAction));
                    Assert.False(string.IsNullOrEmpty(e.Details));
                }
            }
        }

        [Fact]
        public async Task UseSudo_fixes_permission_denied()
        {
            var inst = _f.Fresh();
            inst.Docker = DockerMode.RequiresRoot;
            var (d, pool, _) = Docker();
            using (pool)
            {
                var s = await d.InspectAsync(Target(inst, c => c.Ssh.UseSudo = true), None);
                Assert.Equal("running", s.Status);
                Assert.True(Lab.Ssh.Docker.Calls.Last(c => c.Address == inst.Address).Sudo);
            }
        }

        [Fact]
        public async Task One_pooled_connection_serves_several_commands_and_a_dead_one_is_replaced()
        {
            var inst = _f.Fresh();
            var (d, pool, log) = Docker();
            using (pool)
            {
                var before = Lab.Ssh.AcceptedConnections();
                await d.InspectAsync(Target(inst), None);
                await d.LogsAsync(Target(inst), new LogQuery { Tail = 10 }, _ => { }, None);
                await d.RestartAsync(Target(inst), 1, None);
                await d.CurlHealthAsync(Target(inst), 8888, OpsContext.DefaultHealthPath, OpsContext.DefaultExpectedText, TimeSpan.FromSeconds(2), None);
                Assert.Equal(1, pool.Connects);
                Assert.Equal(before + 1, await WaitFor(() => Lab.Ssh.AcceptedConnections(), before + 1));
                Assert.Contains("reusing the session", log.All);
            }
        }

        private static async Task<int> WaitFor(Func<int> read, int expected)
        {
            var v = read();
            for (int i = 0; i < 40 && v != expected; i++) { await Task.Delay(50); v = read(); }
            return v;
        }

        [Fact]
        public async Task A_command_that_overruns_its_timeout_is_a_typed_error_and_the_channel_is_closed()
        {
            var inst = _f.Fresh();
            var (_, pool, log) = Docker();
            using (pool)
            {
                var shell = new RemoteShell(pool, log);
                var sw = Stopwatch.StartNew();
                var e = await Assert.ThrowsAsync<OpsException>(() => shell.RunAsync(Target(inst), "sleep 30", null, null, TimeSpan.FromMilliseconds(500), None));
                Assert.Equal("SshCommandTimeout", e.ErrorId);
                Assert.Contains("sleep 30", e.Message);
                Assert.Contains(inst.Address, e.Message);
                Assert.Equal(0, await shell.RunAsync(Target(inst), "true", null, null, TimeSpan.FromSeconds(5), None));
            }
        }

        [Fact]
        public async Task A_passphrase_protected_pem_key_works_and_a_wrong_or_missing_passphrase_is_a_clear_error()
        {
            var inst = _f.Fresh();
            var (d, pool, log) = Docker();
            using (pool)
            {
                var t = Target(inst, c => { c.Ssh.KeyPath = Lab.Ssh.RsaPemKeyPath; c.Ssh.KeyPassphrase = Secret.FromPlainText(LabSsh.RsaPassphrase); });
                Assert.Equal("running", (await d.InspectAsync(t, None)).Status);

                var wrong = Target(inst, c => { c.Ssh.KeyPath = Lab.Ssh.RsaPemKeyPath; c.Ssh.KeyPassphrase = Secret.FromPlainText("not-the-passphrase"); c.Ssh.User = "root"; });
                wrong.Port = Lab.Ssh.Port; wrong.User = Lab.Ssh.User + "x"; // a different pool key: a new connection
                var e = await Assert.ThrowsAsync<OpsException>(() => d.InspectAsync(wrong, None));
                Assert.Equal("SshKeyInvalid", e.ErrorId);
                Assert.DoesNotContain("not-the-passphrase", e.Message);

                var none = Target(inst, c => c.Ssh.KeyPath = Lab.Ssh.RsaPemKeyPath); none.User = Lab.Ssh.User + "y";
                Assert.Equal("SshKeyPassphraseRequired", (await Assert.ThrowsAsync<OpsException>(() => d.InspectAsync(none, None))).ErrorId);
                Assert.DoesNotContain(LabSsh.RsaPassphrase, log.All);
            }
        }

        [Fact]
        public async Task A_jump_host_forwards_the_connection_and_the_target_key_is_still_checked()
        {
            var bastion = _f.Fresh(); var inst = _f.Fresh();
            var (d, pool, _) = Docker();
            using (pool)
            {
                var t = Target(inst, c => c.Ssh.JumpHost = $"{Lab.Ssh.User}@{bastion.Address}:{Lab.Ssh.Port}");
                var s = await d.InspectAsync(t, None);
                Assert.Equal(inst.Address, s.Address);
                // The docker shim saw the target's address, so the command ran on the target, not the bastion.
                Assert.Equal(inst.Address, Lab.Ssh.Docker.Calls.Last().Address);
                Assert.Equal(2, pool.Connects);
            }
        }
    }

    /// <summary>Host-key tests change known_hosts and the server's key: each has its own lab.</summary>
    public class SshHostKeyTests
    {
        private static readonly CancellationToken None = CancellationToken.None;

        private static (DockerClient, SshSessionPool) Docker()
        {
            var pool = new SshSessionPool();
            return (new DockerClient(new RemoteShell(pool, new ListLog()), new ListLog()), pool);
        }

        [Fact]
        public async Task Unknown_key_is_refused_accept_new_records_it_then_a_changed_key_is_its_own_error()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 1, Ssh = true });
            var known = Path.Combine(Path.GetTempPath(), $"kso-known-{Guid.NewGuid():N}");
            var ctx = TestCtx.ForSsh(lab, known);
            var (d, pool) = Docker();
            using (pool)
            {
                var e = await Assert.ThrowsAsync<OpsException>(() => d.InspectAsync(SshTarget.For(ctx, lab[0].Address), None));
                Assert.Equal("SshHostKeyUnknown", e.ErrorId);
                Assert.Equal(OpsErrorCategory.SecurityError, e.Category);
                Assert.Contains(lab.Ssh.HostKeyFingerprint, e.Message);
                Assert.Empty(lab.Ssh.Docker.Calls);

                ctx.Ssh.AcceptNewHostKey = true;
                await d.InspectAsync(SshTarget.For(ctx, lab[0].Address), None);
                Assert.Contains(lab.Ssh.KnownHostsEntry(lab[0].Address), File.ReadAllText(known));
            }
            ctx.Ssh.AcceptNewHostKey = false;
            var (d2, pool2) = Docker();
            using (pool2) await d2.InspectAsync(SshTarget.For(ctx, lab[0].Address), None);

            var oldFingerprint = lab.Ssh.HostKeyFingerprint;
            await lab.Ssh.RegenerateHostKeyAsync();
            var calls = lab.Ssh.Docker.Calls.Count;
            foreach (var accept in new[] { false, true })
            {
                ctx.Ssh.AcceptNewHostKey = accept; // accept-new never overrides a changed key
                var (d3, pool3) = Docker();
                using (pool3)
                {
                    var e = await Assert.ThrowsAsync<OpsException>(() => d3.InspectAsync(SshTarget.For(ctx, lab[0].Address), None));
                    Assert.Equal("SshHostKeyChanged", e.ErrorId);
                    Assert.Contains(oldFingerprint, e.Message);
                    Assert.Contains(lab.Ssh.HostKeyFingerprint, e.Message);
                    Assert.Contains($"[{lab[0].Address}]:{lab.Ssh.Port}", e.Message);
                    Assert.Contains("ssh-keygen -R", e.RecommendedAction);
                }
            }
            Assert.Equal(calls, lab.Ssh.Docker.Calls.Count);
        }

        [Fact]
        public async Task A_pooled_session_is_never_reused_past_a_changed_key_an_empty_known_hosts_or_a_wrong_passphrase()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 1, Ssh = true });
            var good = TestCtx.KnownHostsFor(lab);
            var ctx = TestCtx.ForSsh(lab, good);
            var (d, pool) = Docker();
            using (pool)
            {
                // One normal connection, pooled (as in one pwsh process).
                Assert.Equal("running", (await d.InspectAsync(SshTarget.For(ctx, lab[0].Address), None)).Status);
                var calls = lab.Ssh.Docker.Calls.Count;

                // A known_hosts file that holds a different (changed) key for this host.
                var changed = Path.Combine(Path.GetTempPath(), $"kso-known-{Guid.NewGuid():N}");
                var otherKey = Path.Combine(Path.GetTempPath(), $"kso-hk-{Guid.NewGuid():N}");
                var gen = System.Diagnostics.Process.Start("ssh-keygen", $"-q -t ed25519 -N \"\" -f {otherKey}");
                gen.WaitForExit();
                var pub = File.ReadAllText(otherKey + ".pub").Trim().Split(' ');
                File.WriteAllText(changed, $"[{lab[0].Address}]:{lab.Ssh.Port} {pub[0]} {pub[1]}\n");
                var c1 = TestCtx.ForSsh(lab, changed);
                Assert.Equal("SshHostKeyChanged", (await Assert.ThrowsAsync<OpsException>(() => d.InspectAsync(SshTarget.For(c1, lab[0].Address), None))).ErrorId);

                // An empty known_hosts file.
                var empty = Path.GetTempFileName();
                var c2 = TestCtx.ForSsh(lab, empty);
                Assert.Equal("SshHostKeyUnknown", (await Assert.ThrowsAsync<OpsException>(() => d.InspectAsync(SshTarget.For(c2, lab[0].Address), None))).ErrorId);

                // A wrong passphrase for the (passphrase-protected) key of the same user.
                var c3 = TestCtx.ForSsh(lab, good);
                c3.Ssh.KeyPath = lab.Ssh.RsaPemKeyPath;
                c3.Ssh.KeyPassphrase = Secret.FromPlainText("not-the-passphrase");
                Assert.Equal("SshKeyInvalid", (await Assert.ThrowsAsync<OpsException>(() => d.InspectAsync(SshTarget.For(c3, lab[0].Address), None))).ErrorId);

                Assert.Equal(calls, lab.Ssh.Docker.Calls.Count); // none of them ran a command
                // The good settings still reuse the pooled session.
                var connects = pool.Connects;
                Assert.Equal("running", (await d.InspectAsync(SshTarget.For(ctx, lab[0].Address), None)).Status);
                Assert.Equal(connects, pool.Connects);
            }
        }

        [Fact]
        public async Task Hashed_known_hosts_entries_match_and_a_pooled_session_cut_by_the_server_is_replaced()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 2, Ssh = true });
            var known = Path.Combine(Path.GetTempPath(), $"kso-known-{Guid.NewGuid():N}");
            File.WriteAllLines(known, new[] { "# hashed, as ssh-keygen -H writes them", lab.Ssh.HashedKnownHostsEntry(lab[0].Address), lab.Ssh.HashedKnownHostsEntry(lab[1].Address) });
            var ctx = TestCtx.ForSsh(lab, known);
            var (d, pool) = Docker();
            using (pool)
            {
                Assert.Equal("running", (await d.InspectAsync(SshTarget.For(ctx, lab[0].Address), None)).Status);
                Assert.Equal(1, pool.Connects);
                await lab.Ssh.RestartAsync();
                Assert.Equal("running", (await d.InspectAsync(SshTarget.For(ctx, lab[0].Address), None)).Status);
                Assert.Equal(2, pool.Connects);
            }
        }

        [Fact]
        public void Known_hosts_matching_follows_openssh()
        {
            Assert.True(KnownHostsFile.HostMatches("10.0.0.5,10.0.0.6", "10.0.0.6"));
            Assert.True(KnownHostsFile.HostMatches("[10.0.0.5]:2222", "[10.0.0.5]:2222"));
            Assert.False(KnownHostsFile.HostMatches("10.0.0.5", "[10.0.0.5]:2222"));
            Assert.True(KnownHostsFile.HostMatches("10.0.0.*", "10.0.0.77"));
            Assert.False(KnownHostsFile.HostMatches("10.0.0.*,!10.0.0.77", "10.0.0.77"));
            Assert.Equal("10.0.0.5", KnownHostsFile.HostToken("10.0.0.5", 22));
            Assert.Equal("[10.0.0.5]:2222", KnownHostsFile.HostToken("10.0.0.5", 2222));
        }
    }
}
