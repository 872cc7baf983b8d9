using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using KeyServiceOps.Core.Audit;
using KeyServiceOps.Core.Diagnosis;
using KeyServiceOps.Core.Health;
using KeyServiceOps.Core.Remote;
using KeyServiceOps.Core.Runbook;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using Xunit;

namespace KeyServiceOps.Core.Tests
{
    /// <summary>One VM with an api_key_service container, as a contract test drives it (simulated or real Docker).</summary>
    public interface IDockerVm
    {
        string Address { get; }
        string Target { get; }
        /// <summary>The service writes one line to its stdout or stderr now.</summary>
        Task WriteLogAsync(string text, bool stderr);
        Task ApplyScenarioAsync(FaultScenario scenario, bool? persists = null);
        /// <summary>The HTTP server stops answering (connections accepted, never answered).</summary>
        Task HangAsync();
        /// <summary>How many times the container has been restarted so far (compare before and after).</summary>
        Task<int> RestartsAsync();
        Task RemoveContainerAsync();
        Task StopDaemonAsync();
        /// <summary>Makes the SSH user unable to use the daemon (sudo still works); returns the user to log in as.</summary>
        Task<string> RequireRootAsync();
        Task<bool> IsHealthyAsync();
    }

    /// <summary>A lab for the docker contract: its VMs, SSH trust, and PagerDuty for the runbook.</summary>
    public interface IDockerBackend
    {
        Lab.Estate.Lab Lab { get; }
        string KnownHosts { get; }
        /// <summary>A VM whose container is running and healthy, in the upstream, and no other test touches.</summary>
        Task<IDockerVm> FreshAsync();
        /// <summary>Targets of <paramref name="count"/> other healthy instances (for an upstream of the test's own).</summary>
        Task<IReadOnlyList<string>> HealthyOthersAsync(IDockerVm vm, int count);
    }

    public sealed class SimDockerBackend : IDockerBackend, IAsyncLifetime
    {
        public Lab.Estate.Lab Lab { get; private set; }
        public string KnownHosts { get; private set; }

        public async Task InitializeAsync()
        {
            Lab = await KeyServiceOps.Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 30, Ssh = true, PagerDuty = true });
            KnownHosts = TestCtx.KnownHostsFor(Lab);
        }

        public Task<IDockerVm> FreshAsync() => Task.FromResult<IDockerVm>(new Vm(Lab.NextUnused(), Lab));
        public Task<IReadOnlyList<string>> HealthyOthersAsync(IDockerVm vm, int count)
            => Task.FromResult<IReadOnlyList<string>>(Enumerable.Range(0, count).Select(_ => Lab.NextUnused().Target).ToList());
        public async Task DisposeAsync() => await Lab.DisposeAsync();

        private sealed class Vm : IDockerVm
        {
            private readonly SimInstance _i;
            private readonly Lab.Estate.Lab _lab;
            public Vm(SimInstance i, Lab.Estate.Lab lab) { _i = i; _lab = lab; }
            public string Address => _i.Address;
            public string Target => _i.Target;
            public Task WriteLogAsync(string text, bool stderr) { _i.AppendLog(text, stderr); return Task.CompletedTask; }
            public Task ApplyScenarioAsync(FaultScenario s, bool? persists = null) => _i.ApplyScenarioAsync(s, persists);
            public Task HangAsync() => _i.SetModeAsync(InstanceMode.Hung);
            public Task<int> RestartsAsync() => Task.FromResult(_i.Restarts);
            public Task RemoveContainerAsync() { _i.ContainerName = "gone-" + Guid.NewGuid().ToString("N"); return Task.CompletedTask; }
            public Task StopDaemonAsync() { _i.Docker = DockerMode.DaemonDown; return Task.CompletedTask; }
            public Task<string> RequireRootAsync() { _i.Docker = DockerMode.RequiresRoot; return Task.FromResult(_lab.Ssh.User); }
            public Task<bool> IsHealthyAsync() => Task.FromResult(_i.Mode == InstanceMode.Up);
        }
    }

    /// <summary>Three VMs, each with its own real dockerd; every test gets a VM with a freshly created container.</summary>
    public sealed class RealDockerBackend : IDockerBackend, IAsyncLifetime
    {
        private int _next;
        public Lab.Estate.Lab Lab { get; private set; }
        public string KnownHosts { get; private set; }

        public async Task InitializeAsync()
        {
            Lab = await KeyServiceOps.Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 0, RealDockerVms = 3, Ssh = true, PagerDuty = true });
            KnownHosts = TestCtx.KnownHostsFor(Lab);
        }

        public async Task<IDockerVm> FreshAsync()
        {
            var vm = Lab.Vms[Interlocked.Increment(ref _next) % Lab.Vms.Count];
            // Three VMs serve every test of the class: the chosen one gets a new container, the others are mended
            // when an earlier test left them broken, and all are back in the upstream (with 3 targets, one left out
            // by an earlier test would hold back the next removal).
            foreach (var v in Lab.Vms)
            {
                if (v != vm && v.DaemonRunning && await v.IsHealthyAsync()) continue;
                v.ClearScenario();
                await v.StartDaemonAsync();
                await v.RunContainerAsync();
            }
            var present = Lab.Kong.Targets(Lab.Upstream).Where(t => t.Weight > 0).Select(t => t.Target).ToHashSet();
            foreach (var v in Lab.Vms.Where(v => !present.Contains(v.Target))) Lab.Kong.AddTarget(Lab.Upstream, v.Target);
            return new Vm(vm);
        }

        public Task<IReadOnlyList<string>> HealthyOthersAsync(IDockerVm vm, int count)
            => Task.FromResult<IReadOnlyList<string>>(Lab.Vms.Where(v => v.Address != vm.Address).Take(count).Select(v => v.Target).ToList());

        public async Task DisposeAsync() => await Lab.DisposeAsync();

        private sealed class Vm : IDockerVm
        {
            private readonly RealVm _v;
            public Vm(RealVm v) { _v = v; }
            public string Address => _v.Address;
            public string Target => _v.Target;
            public Task WriteLogAsync(string text, bool stderr) => _v.WriteLogAsync(text, stderr);
            public Task ApplyScenarioAsync(FaultScenario s, bool? persists = null) => _v.ApplyScenarioAsync(s, persists);
            public Task HangAsync() => _v.HangAsync();
            public async Task<int> RestartsAsync() => await _v.StartsAsync() - 1;
            public async Task RemoveContainerAsync() => await _v.DockerAsync("rm", "-f", RealDockerEstate.Container);
            public Task StopDaemonAsync() => _v.StopDaemonAsync();
            public async Task<string> RequireRootAsync()
            {
                await RealDockerEstate.EnsureUnprivilegedUserAsync();
                return RealDockerEstate.UnprivilegedUser;
            }
            public Task<bool> IsHealthyAsync() => _v.IsHealthyAsync();
        }
    }

    /// <summary>
    /// The docker side of the runbook, written once and run against two backends: the lab's simulation and a real
    /// Docker Engine. Where they disagree the real engine is right and the simulation is fixed.
    /// </summary>
    public abstract class DockerContractTests<TBackend> where TBackend : IDockerBackend
    {
        protected static readonly CancellationToken None = CancellationToken.None;
        private static Task<bool> Yes(string t, string a) => Task.FromResult(true);
        protected readonly TBackend B;
        protected DockerContractTests(TBackend backend) { B = backend; }

        private (DockerClient docker, SshSessionPool pool, ListLog log) Docker()
        {
            var pool = new SshSessionPool();
            var log = new ListLog();
            return (new DockerClient(new RemoteShell(pool, log), log), pool, log);
        }

        private SshTarget Target(IDockerVm vm, Action<OpsContext> tweak = null)
        {
            var c = TestCtx.ForSsh(B.Lab, B.KnownHosts);
            tweak?.Invoke(c);
            return SshTarget.For(c, vm.Address);
        }

        private static async Task<List<LogEntry>> Logs(DockerClient d, SshTarget t, LogQuery q)
        {
            var list = new List<LogEntry>();
            await d.LogsAsync(t, q, list.Add, None);
            return list;
        }

        private static string Msg(LogEntry e) => e.Message.Split('"').Length > 3 ? e.Message.Split('"')[3] : e.Message;

        [Fact]
        public async Task Logs_keep_order_and_streams_apart_tail_is_per_stream_and_since_cuts_by_time()
        {
            var vm = await B.FreshAsync();
            var tag = Guid.NewGuid().ToString("N").Substring(0, 6);
            for (int i = 0; i < 6; i++)
            {
                await vm.WriteLogAsync($"time=\"x\" level=info msg=\"{tag} request {i}\"", false);
                if (i < 3) await vm.WriteLogAsync($"time=\"x\" level=error msg=\"{tag} problem {i}\"", true);
            }
            await Task.Delay(1100);
            var cut = DateTimeOffset.UtcNow;
            await Task.Delay(1100);
            await vm.WriteLogAsync($"time=\"x\" level=info msg=\"{tag} request late\"", false);
            var (d, pool, _) = Docker();
            using (pool)
            {
                var all = (await Logs(d, Target(vm), new LogQuery())).Where(e => e.Message.Contains(tag)).ToList();
                Assert.Equal(10, all.Count);
                Assert.Equal(Enumerable.Range(0, 6).Select(i => $"{tag} request {i}").Append($"{tag} request late"),
                    all.Where(e => e.StreamValue == LogStream.Stdout).Select(Msg));
                Assert.Equal(Enumerable.Range(0, 3).Select(i => $"{tag} problem {i}"), all.Where(e => e.StreamValue == LogStream.Stderr).Select(Msg));
                Assert.All(all.Where(e => e.StreamValue == LogStream.Stderr), e => Assert.Equal(LogLevel.Error, e.LevelValue));
                Assert.All(all, e => Assert.NotNull(e.Timestamp));
                Assert.All(all, e => Assert.Equal(vm.Address, e.Address));
                // Sequence numbers follow arrival and never repeat.
                var seqs = all.Select(e => e.Sequence).ToList();
                Assert.Equal(seqs.Distinct().Count(), seqs.Count);

                // --tail counts lines of the container's log, both streams together (the real engine's json-file log;
                // the contract once said "of each stream", and the simulation did so, until the real engine said otherwise).
                var tail = await Logs(d, Target(vm), new LogQuery { Tail = 5 });
                Assert.Equal(new[] { $"{tag} problem 2", $"{tag} request 3", $"{tag} request 4", $"{tag} request 5", $"{tag} request late" }, tail.Select(Msg).OrderBy(m => m, StringComparer.Ordinal));
                Assert.Equal(new[] { $"{tag} problem 2" }, tail.Where(e => e.StreamValue == LogStream.Stderr).Select(Msg));

                var since = await Logs(d, Target(vm), new LogQuery { Since = ShellText.ValidTime(cut, "Since") });
                Assert.Equal(new[] { $"{tag} request late" }, since.Where(e => e.Message.Contains(tag)).Select(Msg));
            }
        }

        [Fact]
        public async Task Follow_delivers_new_lines_as_they_are_written_and_cancel_frees_the_session()
        {
            var vm = await B.FreshAsync();
            await vm.WriteLogAsync("level=info msg=\"before\"", false);
            var (d, pool, _) = Docker();
            using (pool)
            {
                var got = new BlockingCollection<LogEntry>();
                using var cts = new CancellationTokenSource();
                var run = d.LogsAsync(Target(vm), new LogQuery { Follow = true, Tail = 1 }, got.Add, cts.Token);
                Assert.True(got.TryTake(out var first, 20000));
                Assert.True(first.Message.Contains("before"), $"first line: {first.Message} ({first.StreamValue})");
                await vm.WriteLogAsync("level=error msg=\"after\"", true);
                Assert.True(got.TryTake(out var second, 20000));
                Assert.Contains("after", second.Message);
                Assert.Equal(LogStream.Stderr, second.StreamValue);
                cts.Cancel();
                await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
                var state = await d.InspectAsync(Target(vm), None);
                Assert.Equal("running", state.Status);
            }
        }

        [Fact]
        public async Task Inspect_after_an_out_of_memory_kill_reports_it()
        {
            var vm = await B.FreshAsync();
            await vm.ApplyScenarioAsync(FaultScenario.OutOfMemory);
            var (d, pool, _) = Docker();
            using (pool)
            {
                var s = await d.InspectAsync(Target(vm), None);
                Assert.Equal("exited", s.Status);
                Assert.False(s.Running);
                Assert.True(s.OOMKilled);
                Assert.Equal(137, s.ExitCode);
                Assert.Equal(0, s.Pid);
                Assert.NotNull(s.StartedAt);
                Assert.NotNull(s.FinishedAt);
                Assert.True(s.FinishedAt > DateTimeOffset.UtcNow.AddMinutes(-5), $"FinishedAt {s.FinishedAt}");
                Assert.True(s.FinishedAt >= s.StartedAt);
                var faults = await d.DiagnoseAsync(Target(vm), 200, FaultRuleSet.Default, new Dictionary<string, string>(), None);
                Assert.Equal("OutOfMemory", Assert.Single(faults).Category);
            }
        }

        [Fact]
        public async Task A_manual_restart_moves_StartedAt_and_leaves_RestartCount_alone()
        {
            var vm = await B.FreshAsync();
            var (d, pool, _) = Docker();
            using (pool)
            {
                var before = await d.InspectAsync(Target(vm), None);
                Assert.Equal("running", before.Status);
                Assert.True(before.Running);
                Assert.Null(before.FinishedAt);
                await Task.Delay(1100);
                await d.RestartAsync(Target(vm), null, None);
                var after = await d.InspectAsync(Target(vm), None);
                Assert.True(after.StartedAt > before.StartedAt, $"StartedAt {before.StartedAt:o} -> {after.StartedAt:o}");
                Assert.Equal(before.RestartCount, after.RestartCount);
                Assert.Equal(0, after.RestartCount);
                Assert.NotNull(after.FinishedAt);
            }
        }

        [Theory]
        [InlineData(FaultScenario.CipherDependency, "CipherDependency", true)]
        [InlineData(FaultScenario.IamDependency, "IamDependency", true)]
        [InlineData(FaultScenario.PortInUse, "PortInUse", false)]
        [InlineData(FaultScenario.CleanCrash, "Unknown", false)]
        public async Task Each_fault_is_found_from_the_container_logs_and_state(FaultScenario scenario, string category, bool dependency)
        {
            var vm = await B.FreshAsync();
            await vm.ApplyScenarioAsync(scenario);
            var (d, pool, _) = Docker();
            using (pool)
            {
                var faults = await d.DiagnoseAsync(Target(vm), 200, FaultRuleSet.Default, new Dictionary<string, string>(), None);
                var f = Assert.Single(faults);
                Assert.Equal(category, f.Category);
                Assert.Equal(dependency, f.Dependency);
                Assert.Equal(dependency ? f : null, FaultAnalyzer.BlockingFault(faults));
                var s = await d.InspectAsync(Target(vm), None);
                Assert.Equal("exited", s.Status);
                Assert.NotEqual(0, s.ExitCode);
            }
        }

        private KeyServiceRestarter Restarter(DockerClient d, ListLog log, string audit)
        {
            var ctx = TestCtx.ForSsh(B.Lab, B.KnownHosts);
            return new KeyServiceRestarter(d, HealthChecker.FromContext(ctx, log, TimeSpan.FromSeconds(1)), new AuditLog(audit), null, null, log);
        }

        [Fact]
        public async Task Restart_and_wait_brings_a_crashed_container_back_once()
        {
            var vm = await B.FreshAsync();
            await vm.ApplyScenarioAsync(FaultScenario.CleanCrash);
            Assert.False(await vm.IsHealthyAsync());
            var before = await vm.RestartsAsync();
            var audit = Path.GetTempFileName();
            var (d, pool, log) = Docker();
            using (pool)
            {
                var r = await Restarter(d, log, audit).RestartAsync(Target(vm), new RestartOptions { Wait = true, Timeout = TimeSpan.FromSeconds(60), PollInterval = TimeSpan.FromMilliseconds(200) }, null, None);
                Assert.True(r.Restarted);
                Assert.True(r.Recovered, r.Status);
                Assert.True(r.Health.Healthy);
                Assert.Equal("Unknown", r.FaultCategory);
                Assert.Equal(before + 1, await vm.RestartsAsync());
                Assert.True(await vm.IsHealthyAsync());
                Assert.Equal("Recovered", new AuditLog(audit).Read(null, null, "RestartContainer").Single().Outcome);
            }
        }

        [Fact]
        public async Task Restart_is_refused_on_a_dependency_fault_unless_forced_and_forced_it_does_not_recover()
        {
            var vm = await B.FreshAsync();
            await vm.ApplyScenarioAsync(FaultScenario.CipherDependency);
            var before = await vm.RestartsAsync();
            var audit = Path.GetTempFileName();
            var (d, pool, log) = Docker();
            using (pool)
            {
                var restarter = Restarter(d, log, audit);
                var e = await Assert.ThrowsAsync<OpsException>(() => restarter.RestartAsync(Target(vm), new RestartOptions(), null, None));
                Assert.Equal("DependencyFaultNoRestart", e.ErrorId);
                Assert.Equal(before, await vm.RestartsAsync());
                var r = await restarter.RestartAsync(Target(vm), new RestartOptions { Force = true, Wait = true, Timeout = TimeSpan.FromSeconds(3), PollInterval = TimeSpan.FromMilliseconds(200) }, null, None);
                Assert.True(r.Restarted);
                Assert.False(r.Recovered);
                Assert.Equal(before + 1, await vm.RestartsAsync());
                Assert.True(new AuditLog(audit).Read(null, null, "RestartContainer").Single().Forced);
            }
        }

        [Fact]
        public async Task A_hung_service_times_out_its_health_check_and_a_restart_cures_it()
        {
            var vm = await B.FreshAsync();
            await vm.HangAsync();
            var (d, pool, log) = Docker();
            using (pool)
            {
                var h = await HealthChecker.FromContext(TestCtx.ForSsh(B.Lab, B.KnownHosts), log, TimeSpan.FromSeconds(1)).CheckAsync(Endpoint.Parse(vm.Address, 8888), None);
                Assert.Equal(HealthStatus.Timeout, h.StatusValue);
                var s = await d.InspectAsync(Target(vm), None);
                Assert.Equal("running", s.Status);
                var r = await Restarter(d, log, Path.GetTempFileName()).RestartAsync(Target(vm), new RestartOptions { Wait = true, Timeout = TimeSpan.FromSeconds(60), PollInterval = TimeSpan.FromMilliseconds(200) }, null, None);
                Assert.True(r.Recovered, r.Status);
            }
        }

        [Fact]
        public async Task A_missing_container_is_ContainerNotFound_for_logs_inspect_and_restart()
        {
            var vm = await B.FreshAsync();
            await vm.RemoveContainerAsync();
            var (d, pool, _) = Docker();
            using (pool)
            {
                var t = Target(vm);
                Assert.Equal("ContainerNotFound", (await Assert.ThrowsAsync<OpsException>(() => d.LogsAsync(t, new LogQuery(), _ => { }, None))).ErrorId);
                Assert.Equal("ContainerNotFound", (await Assert.ThrowsAsync<OpsException>(() => d.InspectAsync(t, None))).ErrorId);
                Assert.Equal("ContainerNotFound", (await Assert.ThrowsAsync<OpsException>(() => d.RestartAsync(t, null, None))).ErrorId);
            }
        }

        [Fact]
        public async Task A_stopped_daemon_is_DockerDaemonUnavailable()
        {
            var vm = await B.FreshAsync();
            await vm.StopDaemonAsync();
            var (d, pool, _) = Docker();
            using (pool)
            {
                var t = Target(vm);
                Assert.Equal("DockerDaemonUnavailable", (await Assert.ThrowsAsync<OpsException>(() => d.InspectAsync(t, None))).ErrorId);
                Assert.Equal("DockerDaemonUnavailable", (await Assert.ThrowsAsync<OpsException>(() => d.LogsAsync(t, new LogQuery { Tail = 5 }, _ => { }, None))).ErrorId);
                Assert.Equal("DockerDaemonUnavailable", (await Assert.ThrowsAsync<OpsException>(() => d.RestartAsync(t, null, None))).ErrorId);
            }
        }

        [Fact]
        public async Task A_user_without_docker_rights_gets_DockerPermissionDenied_and_UseSudo_works()
        {
            var vm = await B.FreshAsync();
            var user = await vm.RequireRootAsync();
            var (d, pool, _) = Docker();
            using (pool)
            {
                var plain = Target(vm, c => c.Ssh.User = user);
                var e = await Assert.ThrowsAsync<OpsException>(() => d.InspectAsync(plain, None));
                Assert.Equal("DockerPermissionDenied", e.ErrorId);
                Assert.Contains("-UseSudo", e.RecommendedAction);
                var sudo = Target(vm, c => c.Ssh.User = user); sudo.UseSudo = true;
                var s = await d.InspectAsync(sudo, None);
                Assert.Equal("running", s.Status);
                await vm.WriteLogAsync("level=info msg=\"read with sudo\"", false);
                Assert.Contains(await Logs(d, sudo, new LogQuery { Tail = 5 }), l => l.Message.Contains("read with sudo"));
            }
        }

        [Fact]
        public async Task The_runbook_from_the_alert_removes_reads_restarts_waits_and_adds_back_with_notes()
        {
            var vm = await B.FreshAsync();
            await vm.ApplyScenarioAsync(FaultScenario.CleanCrash);
            var inc = B.Lab.PagerDuty.AddAlert(vm.Address);
            var before = await vm.RestartsAsync();
            using var rig = new OpsRig(B.Lab);
            var steps = new List<RunbookStepResult>();
            var s = await rig.Runner().RunAsync(Endpoint.Parse(vm.Address, 8888),
                new RunbookOptions { IncidentId = inc.Id, RestartTimeout = TimeSpan.FromSeconds(60), PollInterval = TimeSpan.FromMilliseconds(200), EscalationLogLines = 20 },
                Yes, steps.Add, None);
            Assert.True(s.FinalState == "Recovered", string.Join("\n", steps));
            Assert.Equal(before + 1, await vm.RestartsAsync());
            Assert.True(await vm.IsHealthyAsync());
            Assert.Contains(B.Lab.Kong.Targets(B.Lab.Upstream), t => t.Target == vm.Target && t.Weight > 0);
            var notes = B.Lab.PagerDuty.Incident(inc.Id).Notes.Select(n => n.Content).ToList();
            Assert.Contains(notes, n => n.Contains("manually removed target " + vm.Target));
            Assert.Contains(notes, n => n.Contains("added target " + vm.Target));
            Assert.Equal(new[] { "RemoveTarget", "RestartContainer", "AddTarget" },
                rig.Audit.Read().Where(a => a.Action != "AddIncidentNote").Select(a => a.Action).Distinct());
        }

        [Fact]
        public async Task The_runbook_stops_at_a_dependency_fault_leaves_the_instance_out_and_escalates()
        {
            var vm = await B.FreshAsync();
            await vm.ApplyScenarioAsync(FaultScenario.IamDependency);
            var inc = B.Lab.PagerDuty.AddAlert(vm.Address);
            var before = await vm.RestartsAsync();
            using var rig = new OpsRig(B.Lab);
            var steps = new List<RunbookStepResult>();
            var s = await rig.Runner().RunAsync(Endpoint.Parse(vm.Address, 8888),
                new RunbookOptions { IncidentId = inc.Id, RestartTimeout = TimeSpan.FromSeconds(10), PollInterval = TimeSpan.FromMilliseconds(200), EscalationLogLines = 20 },
                Yes, steps.Add, None);
            Assert.Equal(before, await vm.RestartsAsync());
            Assert.DoesNotContain(B.Lab.Kong.Targets(B.Lab.Upstream), t => t.Target == vm.Target && t.Weight > 0);
            Assert.NotEqual("Recovered", s.FinalState);
            Assert.Contains(steps, x => x.Detail != null && x.Detail.Contains("IamDependency"));
        }

        [Fact]
        public async Task Self_healing_with_restart_takes_a_dead_instance_out_restarts_it_and_puts_it_back()
        {
            var vm = await B.FreshAsync();
            await vm.ApplyScenarioAsync(FaultScenario.CleanCrash);
            var before = await vm.RestartsAsync();
            // An upstream of the test's own: this instance and two healthy ones (the healer never takes out more than half).
            var upstream = "heal-" + Guid.NewGuid().ToString("N").Substring(0, 8);
            B.Lab.Kong.AddUpstream(upstream);
            foreach (var t in (await B.HealthyOthersAsync(vm, 2)).Append(vm.Target)) B.Lab.Kong.AddTarget(upstream, t);
            using var rig = new OpsRig(B.Lab);
            rig.Ctx.Kong.Upstream = upstream;
            var healer = rig.Healer();
            var o = new SelfHealingOptions
            {
                Upstream = upstream,
                StatePath = Path.Combine(Path.GetTempPath(), $"kso-heal-{Guid.NewGuid():N}.json"),
                FailuresToRemove = 1, PassesToAdd = 1, Restart = true, StartupGrace = TimeSpan.Zero,
            };
            bool In() => B.Lab.Kong.Targets(upstream).Any(t => t.Target == vm.Target && t.Weight > 0);
            var actions = new List<SelfHealingAction>();
            for (int pass = 0; pass < 30 && !(actions.Any(a => a.ActionValue == HealingAction.Add && a.Target == vm.Target) && In()); pass++)
            {
                actions.AddRange(await healer.PassAsync(o, Yes, null, None));
                await Task.Delay(300);
            }
            var mine = actions.Where(a => a.Target == vm.Target).Select(a => (a.ActionValue, a.OutcomeValue)).ToList();
            Assert.Contains((HealingAction.Remove, StepOutcome.Done), mine);
            Assert.Contains((HealingAction.Restart, StepOutcome.Done), mine);
            Assert.Contains((HealingAction.Add, StepOutcome.Done), mine);
            Assert.True(In());
            Assert.Equal(before + 1, await vm.RestartsAsync());
        }
    }

    public sealed class SimulatedDockerContractTests : DockerContractTests<SimDockerBackend>, IClassFixture<SimDockerBackend>
    {
        public SimulatedDockerContractTests(SimDockerBackend b) : base(b) { }
    }

    public sealed class RealDockerContractTests : DockerContractTests<RealDockerBackend>, IClassFixture<RealDockerBackend>
    {
        public RealDockerContractTests(RealDockerBackend b) : base(b) { }
    }
}
