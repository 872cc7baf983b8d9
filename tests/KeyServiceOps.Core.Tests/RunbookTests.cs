using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using KeyServiceOps.Core.Diagnosis;
using KeyServiceOps.Core.Health;
using KeyServiceOps.Core.PagerDuty;
using KeyServiceOps.Core.Remote;
using KeyServiceOps.Core.RingBalancer;
using KeyServiceOps.Core.Runbook;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using Xunit;
using KeyServiceOps.Core.Audit;

namespace KeyServiceOps.Core.Tests
{
    /// <summary>Everything a runbook or healer needs, wired to one lab.</summary>
    internal sealed class OpsRig : IDisposable
    {
        public OpsContext Ctx;
        public ListLog Log = new ListLog();
        public SshSessionPool Pool = new SshSessionPool();
        public RingBalancerService Rb;
        public DockerClient Docker;
        public HealthChecker Health;
        public KeyServiceRestarter Restarter;
        public PagerDutyClient Pd;
        public AuditLog Audit;

        /// <param name="configure">Settings to change before the clients are made (each client takes its settings when made).</param>
        public OpsRig(Lab.Estate.Lab lab, Action<OpsContext> configure = null)
        {
            Ctx = lab.Ssh != null ? TestCtx.ForSsh(lab, TestCtx.KnownHostsFor(lab)) : TestCtx.For(lab);
            Ctx.Health.Timeout = TimeSpan.FromSeconds(1);
            Ctx.Healing.FaultOwners["CipherDependency"] = "cipher-owner@example.com";
            configure?.Invoke(Ctx);
            Audit = new AuditLog(Ctx.Safety.AuditLogPath);
            Health = HealthChecker.FromContext(Ctx, Log);
            Rb = new RingBalancerService(Ctx, new KongClient(Ctx.ForKong(), Log), Health, Audit, Log);
            Docker = new DockerClient(new RemoteShell(Pool, Log), Log);
            Ctx.Leases = new VmLeases(Ctx, new RemoteShell(Pool, Log), Log); // as every cmdlet has it (without SSH settings it only says so in -Verbose)
            Restarter = new KeyServiceRestarter(Docker, Health, Audit, null, Ctx.Healing.FaultOwners, Log);
            if (lab.PagerDuty != null)
            {
                Ctx.PagerDuty.Uri = lab.PagerDuty.BaseUri; Ctx.PagerDuty.Token = Secret.FromPlainText(lab.PagerDuty.Token);
                Ctx.PagerDuty.From = "oncall@example.com"; Ctx.PagerDuty.MaxRetries = 6; Ctx.PagerDuty.MaxBackoff = TimeSpan.FromMilliseconds(200);
                Pd = new PagerDutyClient(Ctx.ForPagerDuty(), Log, Audit, TimeSpan.FromMilliseconds(5));
            }
        }

        public RunbookRunner Runner() => new RunbookRunner(Ctx, Rb, Docker, Restarter, Health, Pd, Audit, null, Log);
        public SelfHealer Healer() => new SelfHealer(Ctx, Rb, Health, Restarter, Pd, Log);
        public void Dispose() => Pool.Dispose();
    }

    public class RunbookTests
    {
        private static readonly CancellationToken None = CancellationToken.None;
        private static Task<bool> Yes(string t, string a) => Task.FromResult(true);
        private static Task<bool> No(string t, string a) => Task.FromResult(false);

        private static async Task<(RunbookSummary, List<RunbookStepResult>)> Run(OpsRig rig, SimInstance inst, bool whatIf = false)
        {
            var steps = new List<RunbookStepResult>();
            var s = await rig.Runner().RunAsync(Endpoint.Parse(inst.Address, 8888),
                new RunbookOptions { RestartTimeout = TimeSpan.FromSeconds(8), PollInterval = TimeSpan.FromMilliseconds(100), WhatIf = whatIf, EscalationLogLines = 20 },
                whatIf ? No : Yes, steps.Add, None);
            return (s, steps);
        }

        private static bool InUpstream(Lab.Estate.Lab lab, SimInstance i) => lab.Kong.Targets(lab.Upstream).Any(t => t.Target == i.Target && t.Weight > 0);
        private static int Writes(Lab.Estate.Lab lab) => lab.Kong.Requests.Count(r => !r.StartsWith("GET"));
        private static int PdWrites(Lab.Estate.Lab lab) => lab.PagerDuty.Requests.Count(r => !r.StartsWith("GET"));

        [Fact]
        public async Task A_healthy_instance_changes_nothing()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true, PagerDuty = true });
            lab.PagerDuty.AddAlert(lab[0].Address);
            using var rig = new OpsRig(lab);
            var (s, steps) = await Run(rig, lab[0]);
            Assert.Equal("Healthy", s.FinalState);
            Assert.Equal(new[] { 1, 2, 3, 4, 5 }, steps.Select(x => x.Step));
            Assert.Equal(StepOutcome.Done, steps[0].OutcomeValue);
            Assert.All(steps.Skip(1), x => Assert.Equal(StepOutcome.Skipped, x.OutcomeValue));
            Assert.Equal(0, Writes(lab));
            Assert.Equal(0, PdWrites(lab));
            Assert.Empty(lab.Ssh.Docker.Calls);
            Assert.Empty(s.Actions);
        }

        [Fact]
        public async Task A_PagerDuty_storm_after_the_removal_never_abandons_the_instance_out_of_rotation()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true, PagerDuty = true });
            await lab[0].ApplyScenarioAsync(FaultScenario.CleanCrash);
            var inc = lab.PagerDuty.AddAlert(lab[0].Address);
            using var rig = new OpsRig(lab);
            var steps = new List<RunbookStepResult>();
            // PagerDuty starts answering 500 to everything the moment the first change is confirmed (step 2).
            Task<bool> StormAfterFirstChange(string t, string a) { lab.PagerDuty.ServerErrorNext = 100000; return Task.FromResult(true); }
            var s = await rig.Runner().RunAsync(Endpoint.Parse(lab[0].Address, 8888),
                new RunbookOptions { IncidentId = inc.Id, RestartTimeout = TimeSpan.FromSeconds(8), PollInterval = TimeSpan.FromMilliseconds(100), EscalationLogLines = 20 },
                StormAfterFirstChange, steps.Add, None);
            Assert.True(s.FinalState == "Recovered", string.Join("\n", steps));
            Assert.True(InUpstream(lab, lab[0]), "the instance was left out of the ring-balancer");
            Assert.Equal(1, lab[0].Restarts);
            Assert.Empty(lab.PagerDuty.Incident(inc.Id).Notes);
            Assert.True(s.PendingNotes.Count >= 3, string.Join("\n", s.PendingNotes));
            Assert.Contains(s.PendingNotes, n => n.Contains("manually removed target " + lab[0].Target));
            Assert.Contains(rig.Log.Lines, l => l.Contains("Could not add the note") && l.Contains("pending-notes"));
            // The notes wait in the durable outbox; once PagerDuty answers, the next command writes them, once.
            var outbox = NoteOutbox.For(rig.Ctx);
            Assert.Equal(s.PendingNotes.Count, outbox.Pending().Count);
            lab.PagerDuty.ServerErrorNext = 0;
            var (written, left) = await outbox.FlushAsync(rig.Pd, rig.Log, None);
            Assert.Equal((s.PendingNotes.Count, 0), (written, left));
            Assert.Equal(s.PendingNotes.OrderBy(x => x), lab.PagerDuty.Incident(inc.Id).Notes.Select(n => n.Content).OrderBy(x => x));
            Assert.Equal((0, 0), await outbox.FlushAsync(rig.Pd, rig.Log, None));
            Assert.Equal(s.PendingNotes.Count, lab.PagerDuty.Incident(inc.Id).Notes.Count);

            // Four commands ending at once each flush the outbox while PagerDuty is slow: every note lands once (two
            // flushers both found a note missing and both added it before).
            foreach (var i in Enumerable.Range(1, 5)) outbox.Add(new PendingNote { IncidentId = inc.Id, Content = $"kept note {i}", Since = DateTimeOffset.UtcNow });
            lab.PagerDuty.NoteReadDelayMs = 300;
            await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() => outbox.FlushAsync(rig.Pd, rig.Log, None))));
            lab.PagerDuty.NoteReadDelayMs = 0;
            foreach (var i in Enumerable.Range(1, 5)) Assert.Single(lab.PagerDuty.Incident(inc.Id).Notes, n => n.Content.EndsWith($"kept note {i}"));
            Assert.Empty(outbox.Pending());
        }

        [Fact]
        public async Task Two_runbooks_for_one_instance_at_once_restart_it_once_and_note_once()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true, PagerDuty = true });
            await lab[0].ApplyScenarioAsync(FaultScenario.CleanCrash);
            var inc = lab.PagerDuty.AddAlert(lab[0].Address);
            using var rig = new OpsRig(lab);
            var opts = new RunbookOptions { IncidentId = inc.Id, RestartTimeout = TimeSpan.FromSeconds(8), PollInterval = TimeSpan.FromMilliseconds(100) };
            // Two operators (two flows, each its own lock handle, as two processes would have).
            var both = await Task.WhenAll(Enumerable.Range(0, 2).Select(_ => Task.Run(() => rig.Runner().RunAsync(Endpoint.Parse(lab[0].Address, 8888), opts, Yes, null, None))));
            Assert.Equal(new[] { "Healthy", "Recovered" }, both.Select(s => s.FinalState).OrderBy(x => x));
            Assert.Equal(1, lab[0].Restarts);
            Assert.Single(lab.PagerDuty.Incident(inc.Id).Notes, n => n.Content.Contains("manually removed target"));
            Assert.True(InUpstream(lab, lab[0]));
        }

        [Fact]
        public async Task A_second_actor_that_waits_too_long_gets_InstanceBusy_naming_the_holder_and_changes_nothing()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true });
            await lab[0].ApplyScenarioAsync(FaultScenario.CleanCrash);
            using var rig = new OpsRig(lab);
            using (await Task.Run(() => InstanceLock.AcquireAsync(rig.Ctx.Safety.LockDirectory, lab[0].Address, "a test holding it", TimeSpan.Zero, None)))
            {
                var e = await Assert.ThrowsAsync<OpsException>(() => Task.Run(() => rig.Runner().RunAsync(Endpoint.Parse(lab[0].Address, 8888),
                    new RunbookOptions { LockTimeout = TimeSpan.FromMilliseconds(300), PollInterval = TimeSpan.FromMilliseconds(100) }, Yes, null, None)));
                Assert.Equal("InstanceBusy", e.ErrorId);
                Assert.Equal(OpsErrorCategory.ResourceBusy, e.Category);
                Assert.Contains("a test holding it", e.Message);
                Assert.Contains($"process {Environment.ProcessId}", e.Message);
                Assert.Equal(0, Writes(lab));
                Assert.Equal(0, lab[0].Restarts);
            }
        }

        [Fact]
        public async Task No_at_Confirm_ends_Declined_and_WhatIf_ends_WhatIf()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true });
            await lab[0].ApplyScenarioAsync(FaultScenario.CleanCrash);
            using var rig = new OpsRig(lab);
            var declined = await rig.Runner().RunAsync(Endpoint.Parse(lab[0].Address, 8888), new RunbookOptions { PollInterval = TimeSpan.FromMilliseconds(100) }, No, null, None);
            var preview = await rig.Runner().RunAsync(Endpoint.Parse(lab[0].Address, 8888), new RunbookOptions { PollInterval = TimeSpan.FromMilliseconds(100), WhatIf = true }, No, null, None);
            Assert.Equal(("Declined", "WhatIf"), (declined.FinalState, preview.FinalState));
            Assert.Equal(0, Writes(lab));
            Assert.Equal(0, lab[0].Restarts);
        }

        [Fact]
        public async Task A_mistyped_incident_id_is_a_typed_error_before_anything_changes()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true, PagerDuty = true });
            await lab[0].ApplyScenarioAsync(FaultScenario.CleanCrash);
            using var rig = new OpsRig(lab);
            var e = await Assert.ThrowsAsync<OpsException>(() => rig.Runner().RunAsync(Endpoint.Parse(lab[0].Address, 8888),
                new RunbookOptions { IncidentId = "NOPE123", RestartTimeout = TimeSpan.FromSeconds(8), PollInterval = TimeSpan.FromMilliseconds(100) }, Yes, _ => { }, None));
            Assert.Equal("PagerDutyNotFound", e.ErrorId);
            Assert.Equal(0, Writes(lab));
            Assert.True(InUpstream(lab, lab[0]));
            Assert.Equal(0, lab[0].Restarts);
            Assert.Empty(rig.Audit.Read());
        }

        [Fact]
        public async Task A_crashed_instance_is_removed_restarted_recovered_and_added_back_with_notes_and_audit()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true, PagerDuty = true });
            await lab[0].ApplyScenarioAsync(FaultScenario.CleanCrash);
            var inc = lab.PagerDuty.AddAlert(lab[0].Address);
            using var rig = new OpsRig(lab);
            var (s, steps) = await Run(rig, lab[0]);
            Assert.True(s.FinalState == "Recovered", string.Join("\n", steps));
            Assert.Equal(inc.Id, s.IncidentId);
            Assert.Equal(new[] { StepOutcome.Done, StepOutcome.Done, StepOutcome.Done, StepOutcome.Done, StepOutcome.Skipped }, steps.Select(x => x.OutcomeValue));
            Assert.Contains("Unknown", s.Faults);
            Assert.Equal(1, lab[0].Restarts);
            Assert.True(InUpstream(lab, lab[0]));
            var notes = lab.PagerDuty.Incident(inc.Id).Notes.Select(n => n.Content).ToList();
            Assert.Contains(notes, n => n.Contains("manually removed target " + lab[0].Target));
            Assert.Contains(notes, n => n.Contains("restarted api_key_service"));
            Assert.Contains(notes, n => n.Contains("added target " + lab[0].Target + " back"));
            var actions = rig.Audit.Read().Select(a => a.Action).ToList();
            Assert.Contains("RemoveTarget", actions);
            Assert.Contains("RestartContainer", actions);
            Assert.Contains("AddTarget", actions);
            Assert.Equal(3, actions.Count(a => a == "AddIncidentNote"));

            // Re-running is safe: nothing to do, nothing repeated.
            var (again, _) = await Run(rig, lab[0]);
            Assert.Equal("Healthy", again.FinalState);
            Assert.Equal(3, lab.PagerDuty.Incident(inc.Id).Notes.Count);
        }

        [Fact]
        public async Task A_healthy_instance_Kong_still_marks_unhealthy_is_put_back_by_a_re_run_never_reported_nothing_to_fix()
        {
            // An earlier run marked it unhealthy (RemovalMethod MarkUnhealthy) and was stopped before step 4; it is up now.
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true });
            using var rig = new OpsRig(lab, c => c.Removal.Method = RemovalMethod.MarkUnhealthy);
            lab.Kong.ActiveHealthchecks = false; // passive checks only: Kong itself never clears the mark (with active checks it does)
            var t = await rig.Rb.ResolveAsync(lab.Upstream, lab[1].Target, None);
            await lab[1].SetModeAsync(InstanceMode.Down);
            await rig.Rb.RemoveResolvedAsync(lab.Upstream, t, RemovalMethod.MarkUnhealthy, false, null, null, None);
            await lab[1].SetModeAsync(InstanceMode.Up);
            Assert.Equal("UNHEALTHY", lab.Kong.Marks[lab[1].Target]);

            var (s, steps) = await Run(rig, lab[1]);
            Assert.NotEqual("Healthy", s.FinalState);                          // was "Healthy: nothing to fix", the mark left in place
            Assert.Contains("marked unhealthy in Kong", steps[1].Detail);
            Assert.Equal(StepOutcome.Done, steps[3].OutcomeValue);
            Assert.False(lab.Kong.Marks.ContainsKey(lab[1].Target));
            Assert.Equal(0, lab[1].Restarts);
            var (again, _) = await Run(rig, lab[1]);
            Assert.Equal("Healthy", again.FinalState);                         // and a second re-run has nothing to do
        }

        [Fact]
        public async Task A_cipher_fault_removes_the_target_assigns_the_incident_to_the_owner_and_does_not_restart()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true, PagerDuty = true });
            await lab[1].ApplyScenarioAsync(FaultScenario.CipherDependency);
            var inc = lab.PagerDuty.AddAlert(lab[1].Address);
            using var rig = new OpsRig(lab);
            var (s, steps) = await Run(rig, lab[1]);
            Assert.Equal("AssignedToOwner", s.FinalState);
            Assert.False(InUpstream(lab, lab[1]));
            Assert.Equal(0, lab[1].Restarts);
            Assert.Equal(new[] { "PCIPHER" }, lab.PagerDuty.Incident(inc.Id).Assignees);
            Assert.Contains(lab.PagerDuty.Incident(inc.Id).Notes, n => n.Content.Contains("dependency fault CipherDependency") && n.Content.Contains("cipher: failed to fetch configuration"));
            Assert.Equal(StepOutcome.Skipped, steps[3].OutcomeValue);
            Assert.Equal(StepOutcome.Skipped, steps[4].OutcomeValue);
        }

        [Fact]
        public async Task A_fault_that_persists_after_restart_is_escalated_to_level_2_with_log_lines()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true, PagerDuty = true });
            await lab[2].ApplyScenarioAsync(FaultScenario.PortInUse, persists: true);
            var inc = lab.PagerDuty.AddAlert(lab[2].Address);
            using var rig = new OpsRig(lab);
            var steps = new List<RunbookStepResult>();
            var s = await rig.Runner().RunAsync(Endpoint.Parse(lab[2].Address, 8888),
                new RunbookOptions { RestartTimeout = TimeSpan.FromSeconds(1), PollInterval = TimeSpan.FromMilliseconds(100), EscalationLogLines = 20 }, Yes, steps.Add, None);
            Assert.Equal("Escalated", s.FinalState);
            Assert.Equal(2, lab.PagerDuty.Incident(inc.Id).Level);
            var note = lab.PagerDuty.Incident(inc.Id).Notes.Last().Content;
            Assert.Contains("escalated to level 2", note);                  // what PagerDuty confirmed, written after it
            Assert.Contains("address already in use", note);
            Assert.False(InUpstream(lab, lab[2]));
            Assert.Equal(StepOutcome.Skipped, steps[3].OutcomeValue);
            Assert.Equal(StepOutcome.Done, steps[4].OutcomeValue);
        }

        [Theory]
        [InlineData(null)]
        [InlineData(FaultScenario.CleanCrash)]
        [InlineData(FaultScenario.CipherDependency)]
        [InlineData(FaultScenario.PortInUse)]
        public async Task WhatIf_walks_every_step_and_changes_nothing(FaultScenario? scenario)
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true, PagerDuty = true });
            if (scenario != null) await lab[0].ApplyScenarioAsync(scenario.Value, persists: scenario == FaultScenario.PortInUse);
            var inc = lab.PagerDuty.AddAlert(lab[0].Address);
            using var rig = new OpsRig(lab);
            var (s, steps) = await Run(rig, lab[0], whatIf: true);
            Assert.Equal(5, steps.Count);
            if (scenario != null)
            {
                Assert.Equal("WhatIf", s.FinalState);
                Assert.Contains(steps, x => x.OutcomeValue == StepOutcome.WouldDo);
            }
            Assert.Equal(0, Writes(lab));
            Assert.Equal(0, PdWrites(lab));
            Assert.DoesNotContain(lab.Ssh.Docker.Calls, c => c.Args[0] == "restart");
            Assert.Equal(0, lab[0].Restarts);
            Assert.Empty(rig.Audit.Read());
            Assert.Empty(lab.PagerDuty.Incident(inc.Id).Notes);
        }

        [Fact]
        public async Task A_dependency_fault_without_an_incident_says_so_instead_of_claiming_a_hand_over()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true, PagerDuty = true });
            await lab[1].ApplyScenarioAsync(FaultScenario.IamDependency);
            using var rig = new OpsRig(lab);
            var (s, steps) = await Run(rig, lab[1]);
            Assert.Equal("DependencyFault", s.FinalState);
            Assert.Null(s.IncidentId);
            Assert.Equal(StepOutcome.Failed, steps[2].OutcomeValue);
            Assert.Contains("no open incident", steps[2].Detail);
            Assert.Equal(0, lab[1].Restarts);
        }

        [Fact]
        public async Task A_target_self_healing_already_removed_is_recognised()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true, PagerDuty = true });
            await lab[0].ApplyScenarioAsync(FaultScenario.OutOfMemory);
            using var rig = new OpsRig(lab);
            var t = await rig.Rb.ResolveAsync(lab.Upstream, lab[0].Target, None);
            await rig.Rb.RemoveResolvedAsync(lab.Upstream, t, RemovalMethod.Delete, false, "self-healing", null, None);
            var (s, steps) = await Run(rig, lab[0]);
            Assert.Equal(StepOutcome.AlreadyDone, steps[1].OutcomeValue);
            Assert.Contains("self-healing already removed it", steps[1].Detail);
            Assert.Equal("Recovered", s.FinalState);
        }
    }
}
