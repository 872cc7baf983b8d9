using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using KeyServiceOps.Core.Audit;
using KeyServiceOps.Core.PagerDuty;
using KeyServiceOps.Core.Remote;
using KeyServiceOps.Core.RingBalancer;
using KeyServiceOps.Core.Runbook;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using Xunit;

namespace KeyServiceOps.Core.Tests
{
    /// <summary>
    /// Issue #25: several responders, one actor; outcomes read from the remote, never guessed. Each test plays one row of
    /// docs/failure-model.md against the lab: real sshd, the Kong and PagerDuty emulators, two "machines" (each its own lock
    /// folder and audit log) sharing one estate.
    /// </summary>
    public class CoordinationTests
    {
        private static readonly CancellationToken None = CancellationToken.None;
        private static Task<bool> Yes(string t, string a) => Task.FromResult(true);

        /// <summary>A second machine: its own lock folder and audit log (its own HOME), the same estate.</summary>
        internal static OpsRig Machine(Lab.Estate.Lab lab, Action<OpsContext> configure = null)
            => new OpsRig(lab, c =>
            {
                c.Safety.LockDirectory = Path.Combine(Path.GetTempPath(), "kso-machine-" + Guid.NewGuid().ToString("N").Substring(0, 8), "locks");
                c.Safety.AuditLogPath = Path.Combine(Path.GetDirectoryName(c.Safety.LockDirectory), "audit.jsonl");
                configure?.Invoke(c);
            });

        private static Task<RunbookSummary> Runbook(OpsRig rig, SimInstance inst, string incident, List<RunbookStepResult> steps = null, double restartTimeoutSec = 8)
            => rig.Runner().RunAsync(Endpoint.Parse(inst.Address, 8888),
                new RunbookOptions { IncidentId = incident, RestartTimeout = TimeSpan.FromSeconds(restartTimeoutSec), PollInterval = TimeSpan.FromMilliseconds(100), EscalationLogLines = 5 },
                Yes, (steps ?? new List<RunbookStepResult>()).Add, None);

        private static bool In(Lab.Estate.Lab lab, SimInstance i) => lab.Kong.Targets(lab.Upstream).Any(t => t.Target == i.Target && t.Weight > 0);

        private static string Last(AuditLog audit, string target, string action) => audit.Read(null, target, action).Last().Outcome;

        [Fact]
        public async Task A_removal_Kong_applied_behind_a_gateway_504_is_recorded_as_done_from_Kongs_listing()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 4 });
            using var rig = new OpsRig(lab);
            var t = await rig.Rb.ResolveAsync(lab.Upstream, lab[1].Target, None);
            lab.Kong.WritesLandThenGateway504 = 1;
            var change = await rig.Rb.RemoveResolvedAsync(lab.Upstream, t, RemovalMethod.Delete, false, null, null, None);
            Assert.Equal(TargetChangeAction.Removed, change.ActionValue);
            Assert.False(In(lab, lab[1]));
            var line = rig.Audit.Read(null, lab[1].Target, "RemoveTarget").Last();
            Assert.Equal("Removed", line.Outcome);                         // what Kong's listing showed, not "Failed"
            Assert.Contains("answer was lost", line.Detail);
        }

        [Fact]
        public async Task A_write_a_gateway_refused_before_Kong_saw_it_is_an_ordinary_failure_and_Kong_still_lists_the_target()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 4 });
            using var rig = new OpsRig(lab);
            var t = await rig.Rb.ResolveAsync(lab.Upstream, lab[1].Target, None);
            lab.Kong.FailNextWrites(1, 502, "<html><body>502 Bad Gateway</body></html>");
            var e = await Assert.ThrowsAsync<OpsException>(() => rig.Rb.RemoveResolvedAsync(lab.Upstream, t, RemovalMethod.Delete, false, null, null, None));
            Assert.False(e.OutcomeUnknown);                                // read back: nothing changed
            Assert.Contains("Not applied", e.Message);
            Assert.True(In(lab, lab[1]));
            Assert.Equal(AuditLog.Failed, Last(rig.Audit, lab[1].Target, "RemoveTarget"));
        }

        [Fact]
        public async Task An_add_applied_behind_a_gateway_504_is_recorded_from_Kongs_listing()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 4 });
            using var rig = new OpsRig(lab);
            var t = await rig.Rb.ResolveAsync(lab.Upstream, lab[2].Target, None);
            await rig.Rb.RemoveResolvedAsync(lab.Upstream, t, RemovalMethod.Delete, false, null, null, None);
            lab.Kong.WritesLandThenGateway504 = 1;
            var change = await rig.Rb.AddAsync(new AddRequest { Upstream = lab.Upstream, Target = lab[2].Target, Weight = 100 }, None);
            Assert.Equal(TargetChangeAction.Added, change.ActionValue);
            Assert.True(In(lab, lab[2]));
            Assert.Equal("Added", Last(rig.Audit, lab[2].Target, "AddTarget"));
        }

        [Theory]
        [InlineData(RemovalMethod.Drain)]
        [InlineData(RemovalMethod.MarkUnhealthy)]
        public async Task A_drain_or_unhealthy_mark_and_its_undoing_applied_behind_a_gateway_504_are_recorded_from_Kongs_read_back(RemovalMethod method)
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 4 });
            using var rig = new OpsRig(lab);
            var t = await rig.Rb.ResolveAsync(lab.Upstream, lab[1].Target, None);
            await lab[1].SetModeAsync(InstanceMode.Down);
            var (outAction, outAudit, backAction, backAudit) = method == RemovalMethod.Drain
                ? (TargetChangeAction.Drained, "DrainTarget", TargetChangeAction.Restored, "AddTarget")
                : (TargetChangeAction.MarkedUnhealthy, "MarkTargetUnhealthy", TargetChangeAction.MarkedHealthy, "MarkTargetHealthy");

            lab.Kong.WritesLandThenGateway504 = 1;
            var taken = await rig.Rb.RemoveResolvedAsync(lab.Upstream, t, method, false, null, null, None);
            Assert.Equal(outAction, taken.ActionValue);                      // what Kong shows, not KongInvalidResponse
            Assert.False(In(lab, lab[1]) && method == RemovalMethod.Drain);
            if (method == RemovalMethod.MarkUnhealthy) Assert.Equal("UNHEALTHY", lab.Kong.Marks[lab[1].Target]);
            var line = rig.Audit.Read(null, lab[1].Target, outAudit).Last();
            Assert.Equal(outAction.ToString(), line.Outcome);
            Assert.Contains("answer was lost", line.Detail);

            await lab[1].SetModeAsync(InstanceMode.Up);
            lab.Kong.WritesLandThenGateway504 = 1;
            var back = await rig.Rb.AddAsync(new AddRequest { Upstream = lab.Upstream, Target = lab[1].Target, Weight = 100, Method = method }, None);
            Assert.Equal(backAction, back.ActionValue);
            Assert.True(In(lab, lab[1]));
            Assert.False(lab.Kong.Marks.ContainsKey(lab[1].Target));
            var backLine = rig.Audit.Read(null, lab[1].Target, backAudit).Last();
            Assert.Equal(backAction.ToString(), backLine.Outcome);
            Assert.Contains("answer was lost", backLine.Detail);
        }

        [Fact]
        public async Task Self_healing_keeps_a_removal_a_gateway_504_hid_and_adds_the_target_back()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 4 });
            using var rig = new OpsRig(lab);
            var healer = rig.Healer();
            var o = new SelfHealingOptions { StatePath = Path.Combine(Path.GetTempPath(), $"kso-heal-{Guid.NewGuid():N}.json"), FailuresToRemove = 1, PassesToAdd = 1 };
            await lab[1].SetModeAsync(InstanceMode.Down);
            lab.Kong.WritesLandThenGateway504 = 1;
            var p1 = await healer.PassAsync(o, Yes, null, None);
            Assert.Equal((HealingAction.Remove, StepOutcome.Done), (Assert.Single(p1).ActionValue, p1[0].OutcomeValue));
            Assert.True(SelfHealer.Load(o.StatePath).Targets[lab[1].Target].RemovedBySelfHealing);
            await lab[1].SetModeAsync(InstanceMode.Up);
            var p2 = await healer.PassAsync(o, Yes, null, None);
            Assert.Equal(HealingAction.Add, Assert.Single(p2).ActionValue);
            Assert.True(In(lab, lab[1]));
            // The audit log's last word on the target agrees with Kong.
            Assert.Equal("Added", rig.Audit.Read(null, lab[1].Target).Last(e => e.Action.EndsWith("Target")).Outcome);
        }

        [Theory]
        [InlineData(AfterRestartFault.Stall)]
        [InlineData(AfterRestartFault.DropConnection)]
        public async Task A_restart_whose_answer_is_lost_is_read_back_from_docker_and_never_repeated_for_the_incident(AfterRestartFault fault)
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true, PagerDuty = true });
            var inc = lab.PagerDuty.AddAlert(lab[0].Address);
            using var rig = new OpsRig(lab, c => c.Ssh.CommandTimeout = TimeSpan.FromSeconds(3));
            await lab[0].SetModeAsync(InstanceMode.Down);
            lab[0].AfterRestart = fault;
            var s1 = await Runbook(rig, lab[0], inc.Id);
            Assert.Equal("Recovered", s1.FinalState);
            Assert.Equal(1, lab[0].Restarts);
            var restart = rig.Audit.Read(null, lab[0].Address, "RestartContainer").Last();
            Assert.Equal("Recovered", restart.Outcome);                     // not Failed
            Assert.Contains("docker inspect shows it started again", restart.Detail);
            // It goes down again; a re-run for the same incident does not restart a second time.
            await lab[0].SetModeAsync(InstanceMode.Down);
            var steps = new List<RunbookStepResult>();
            var s2 = await Runbook(rig, lab[0], inc.Id, steps, restartTimeoutSec: 1);
            Assert.Equal(1, lab[0].Restarts);
            Assert.Contains("not restarted twice", steps.Single(x => x.Step == 3).Detail);
            Assert.Equal("Escalated", s2.FinalState);
        }

        [Fact]
        public async Task A_restart_whose_connection_drops_inside_the_stop_grace_is_never_recorded_not_restarted()
        {
            // docker is still stopping the container (running, the same start time) when the client reads back: the old
            // read-back concluded "Not restarted" (Failed) and the run stopped; the restart then landed anyway.
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true, PagerDuty = true });
            var inc = lab.PagerDuty.AddAlert(lab[0].Address);
            using var rig = new OpsRig(lab, c => c.Ssh.CommandTimeout = TimeSpan.FromSeconds(3));
            await lab[0].SetModeAsync(InstanceMode.Down);
            lab[0].AfterRestart = AfterRestartFault.DropDuringStopGrace;
            var steps = new List<RunbookStepResult>();
            var s = await Runbook(rig, lab[0], inc.Id, steps);
            Assert.True(s.FinalState == "Recovered", string.Join("\n", steps));
            Assert.Equal(1, lab[0].Restarts);
            var restart = rig.Audit.Read(null, lab[0].Address, "RestartContainer").Last();
            Assert.NotEqual("Failed", restart.Outcome);
            Assert.Contains("docker inspect shows it started again", restart.Detail);
            Assert.True(In(lab, lab[0]));
        }

        [Fact]
        public async Task Two_machines_one_incident_at_once_restart_once_the_second_waits_on_the_VMs_lease()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true, PagerDuty = true });
            var inc = lab.PagerDuty.AddAlert(lab[0].Address);
            using var a = Machine(lab, c => c.Safety.LockTimeout = TimeSpan.FromSeconds(60));
            using var b = Machine(lab, c => c.Safety.LockTimeout = TimeSpan.FromSeconds(60));
            Assert.NotEqual(a.Ctx.Safety.LockDirectory, b.Ctx.Safety.LockDirectory);
            await lab[0].SetModeAsync(InstanceMode.Down);
            lab[0].RestartDelay = TimeSpan.FromSeconds(2);                  // the first is still waiting on its restart
            var first = Runbook(a, lab[0], inc.Id);
            while (!lab.Ssh.Docker.Calls.Any(c => c.Args[0] == "restart")) await Task.Delay(20);
            var second = Runbook(b, lab[0], inc.Id);
            var results = await Task.WhenAll(first, second);
            Assert.Equal(1, lab[0].Restarts);
            Assert.Equal("Recovered", results[0].FinalState);
            Assert.Equal("Healthy", results[1].FinalState);                 // it found the work done
            Assert.Single(lab.PagerDuty.Incident(inc.Id).Notes, n => n.Content.Contains("manually removed target"));
            Assert.Equal(1, lab.PagerDuty.Incident(inc.Id).Level);           // nobody escalated
        }

        [Fact]
        public async Task Every_restart_path_checks_inside_the_lease_a_responder_that_looked_first_never_restarts_twice()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true, PagerDuty = true });
            var inc = lab.PagerDuty.AddAlert(lab[0].Address);
            using var a = Machine(lab);
            using var b = Machine(lab);
            await lab[0].SetModeAsync(InstanceMode.Down);
            var ssh = SshTarget.For(a.Ctx, lab[0].Address);
            // Both looked before either restarted: no restart for the incident anywhere yet.
            Assert.Null(await a.Restarter.FindPriorRestartAsync(ssh, inc.Id, None));
            Assert.Null(await b.Restarter.FindPriorRestartAsync(SshTarget.For(b.Ctx, lab[0].Address), inc.Id, None));
            var first = await a.Restarter.RestartAsync(ssh, new RestartOptions { IncidentId = inc.Id, Leases = a.Ctx.Leases, LockDirectory = a.Ctx.Safety.LockDirectory }, null, None);
            Assert.True(first.Restarted);
            // The second machine's restart (the cmdlet's path) finds A's restart in the VM's journal, inside the lease.
            var e = await Assert.ThrowsAsync<AlreadyRestartedException>(() => b.Restarter.RestartAsync(SshTarget.For(b.Ctx, lab[0].Address),
                new RestartOptions { IncidentId = inc.Id, Leases = b.Ctx.Leases, LockDirectory = b.Ctx.Safety.LockDirectory }, null, None));
            Assert.Equal("AlreadyRestartedForIncident", e.ErrorId);
            Assert.Contains("the VM's restart journal", e.Message);
            Assert.Equal(1, lab[0].Restarts);
            Assert.Empty(b.Audit.Read(null, lab[0].Address, "RestartContainer"));  // no intent: nothing was run
            // Self-healing on B, the same incident: skipped, with the reason, and still one restart.
            await lab[0].SetModeAsync(InstanceMode.Down);
            var healer = b.Healer();
            var o = new SelfHealingOptions { StatePath = Path.Combine(Path.GetDirectoryName(b.Ctx.Safety.LockDirectory), "heal.json"), FailuresToRemove = 1, Restart = true };
            var seen = new List<SelfHealingAction>();
            for (int i = 0; i < 3 && !seen.Any(x => x.ActionValue == HealingAction.Restart); i++) seen.AddRange(await healer.PassAsync(o, Yes, null, None));
            var r = seen.Single(x => x.ActionValue == HealingAction.Restart);
            Assert.Equal("AlreadyRestarted", r.Reason);
            Assert.Equal(1, lab[0].Restarts);
            // Without an incident the cmdlet's path restarts (the operator asked for it explicitly).
            var again = await b.Restarter.RestartAsync(SshTarget.For(b.Ctx, lab[0].Address), new RestartOptions { Leases = b.Ctx.Leases, LockDirectory = b.Ctx.Safety.LockDirectory }, null, None);
            Assert.True(again.Restarted);
            Assert.Equal(2, lab[0].Restarts);
        }

        [Fact]
        public async Task A_note_PagerDuty_added_behind_a_gateway_502_is_read_back_never_sent_twice()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 1, PagerDuty = true });
            var inc = lab.PagerDuty.AddAlert(lab[0].Address);
            using var rig = Machine(lab);
            lab.PagerDuty.NotesLandThenGateway502 = 1;
            var note = await rig.Pd.AddNoteAsync(inc.Id, "manually removed target 10.9.9.9:8888", None);
            Assert.Equal("manually removed target 10.9.9.9:8888", note.Content);
            Assert.Single(lab.PagerDuty.Incident(inc.Id).Notes);                        // one note, not a retried second one
            Assert.Equal(1, lab.PagerDuty.Requests.Count(r => r.StartsWith("POST")));
            Assert.Equal("Added", Last(rig.Audit, inc.Id, "AddIncidentNote"));
            // An outage (500 to everything, the notes unreadable too): sent once, not retried; Unknown (it may have
            // landed), never Failed.
            lab.PagerDuty.Outage = true;
            var e = await Assert.ThrowsAsync<OpsException>(() => rig.Pd.AddNoteAsync(inc.Id, "second note", None));
            Assert.True(e.OutcomeUnknown);
            Assert.Equal(2, lab.PagerDuty.Requests.Count(r => r.StartsWith("POST")));
            Assert.Equal("Unknown", Last(rig.Audit, inc.Id, "AddIncidentNote"));
        }

        [Fact]
        public async Task A_second_machine_that_cannot_wait_gets_InstanceBusy_naming_the_holder_and_changes_nothing()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true });
            using var a = Machine(lab);
            using var b = Machine(lab, c => c.Safety.LockTimeout = TimeSpan.FromSeconds(1));
            using (await a.Ctx.Leases.AcquireAsync(lab[0].Address, "operator A's runbook", TimeSpan.FromSeconds(5), None))
            {
                var t = await b.Rb.ResolveAsync(lab.Upstream, lab[0].Target, None);
                var e = await Assert.ThrowsAsync<OpsException>(() => b.Rb.RemoveResolvedAsync(lab.Upstream, t, RemovalMethod.Delete, false, null, null, None));
                Assert.Equal("InstanceBusy", e.ErrorId);
                Assert.Contains("operator A's runbook", e.Message);
                Assert.True(In(lab, lab[0]));
            }
            // Released: B goes ahead.
            var t2 = await b.Rb.ResolveAsync(lab.Upstream, lab[0].Target, None);
            await b.Rb.RemoveResolvedAsync(lab.Upstream, t2, RemovalMethod.Delete, true, null, null, None);
            Assert.False(In(lab, lab[0]));
        }

        [Fact]
        public async Task A_lease_whose_holder_stopped_renewing_lapses_and_is_taken_over_with_a_warning()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true });
            using var a = Machine(lab);
            // A holder that died: its lease file says it expired a second ago (the VM's clock).
            var file = Path.Combine(lab.Ssh.VmStateDir, $"lease-{lab[0].Address}-api_key_service");
            Directory.CreateDirectory(lab.Ssh.VmStateDir);
            File.WriteAllText(file, $"deadbeef\n{DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 1}\nghost@other-host pid 1: a killed runbook\n");
            using (await a.Ctx.Leases.AcquireAsync(lab[0].Address, "operator A", TimeSpan.FromSeconds(2), None))
                Assert.Contains("operator A", File.ReadAllText(file));
            Assert.Contains(a.Log.Lines, l => l.StartsWith("W ") && l.Contains("lapsed lease") && l.Contains("ghost@other-host"));
            Assert.False(File.Exists(file));                                 // released
        }

        [Theory]
        [InlineData("banner")]
        [InlineData("no flock")]
        [InlineData("folder not ours")]
        [InlineData("unreachable")]
        [InlineData("rewrites output")]
        public async Task The_lease_on_a_VM_that_prints_lacks_flock_or_cannot_be_reached_is_held_warned_or_refused_never_silently_skipped(string vm)
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 2, Ssh = true });
            var theirs = Path.Combine(Path.GetTempPath(), "kso-theirs-" + Guid.NewGuid().ToString("N").Substring(0, 8));
            switch (vm)
            {
                case "banner": // a VM whose shell start-up prints before every command (motd, "Last login", a .bashrc echo)
                    lab.Ssh.ShellPrelude = "echo 'Welcome to vm-01 (KeyServiceOps lab)'; echo 'HELD by nobody: this line is not the answer'";
                    break;
                case "no flock":
                    lab.Ssh.ShellPrelude = "command() { if [ \"$1\" = -v ] && [ \"$2\" = flock ]; then return 1; fi; builtin command \"$@\"; }";
                    break;
                case "folder not ours":
                    Directory.CreateDirectory(theirs);
                    if (!OperatingSystem.IsWindows() && Environment.UserName == "root") File.SetUnixFileMode(theirs, (UnixFileMode)Convert.ToInt32("777", 8));
                    System.Diagnostics.Process.Start("chown", new[] { "1001:1001", theirs })!.WaitForExit();
                    lab.Ssh.ShellPrelude = $"export KEYSERVICEOPS_VM_DIR={theirs}";
                    break;
                case "rewrites output": // a wrapper that rewrites every line the command prints
                    lab.Ssh.ShellPrelude = "echo() { builtin echo \"vm-01: $*\"; }";
                    break;
            }
            using var a = Machine(lab, c => { if (vm == "unreachable") c.Ssh.Port = 1; });
            var file = Path.Combine(lab.Ssh.VmStateDir, $"lease-{lab[0].Address}-api_key_service");
            try
            {
                if (vm == "rewrites output")
                {
                    var e = await Assert.ThrowsAsync<OpsException>(() => a.Ctx.Leases.AcquireAsync(lab[0].Address, "operator A", TimeSpan.FromSeconds(2), None));
                    Assert.Equal("VmLeaseUnreadable", e.ErrorId);                 // failed open before: a warning, and the change went ahead
                    Assert.Contains("vm-01: KSOLEASE", e.Message);
                    return;
                }
                using (await a.Ctx.Leases.AcquireAsync(lab[0].Address, "operator A", TimeSpan.FromSeconds(2), None))
                {
                    if (vm == "banner")
                    {
                        Assert.Contains("operator A", File.ReadAllText(file));   // held on the VM (failed open before: the banner was read as the answer)
                        Assert.DoesNotContain(a.Log.Lines, l => l.StartsWith("W "));
                    }
                    else
                    {
                        Assert.False(File.Exists(file));
                        var why = vm == "no flock" ? "flock is not installed" : vm == "folder not ours" ? "is not a folder of this user" : "could not take the lease";
                        Assert.Contains(a.Log.Lines, l => l.StartsWith("W ") && l.Contains(why) && l.Contains("only this machine's lock protects this change"));
                    }
                }
                if (vm == "banner") Assert.False(File.Exists(file));             // released
            }
            finally { if (Directory.Exists(theirs)) Directory.Delete(theirs, true); }
        }

        [Fact]
        public async Task Without_SSH_settings_a_Kong_change_says_in_verbose_that_only_the_local_lock_protects_it()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3 });
            using var rig = Machine(lab);
            Assert.False(rig.Ctx.SshConfiguredFor(lab[1].Address));
            var t = await rig.Rb.ResolveAsync(lab.Upstream, lab[1].Target, None);
            await lab[1].SetModeAsync(InstanceMode.Down);
            var change = await rig.Rb.RemoveResolvedAsync(lab.Upstream, t, RemovalMethod.Delete, false, null, null, None);
            Assert.Equal(TargetChangeAction.Removed, change.ActionValue);
            Assert.Contains(rig.Log.Lines, l => l.StartsWith("V ") && l.Contains(lab[1].Address) && l.Contains("only this machine's lock protects this change"));
            Assert.DoesNotContain(rig.Log.Lines, l => l.StartsWith("W "));       // not a warning: Kong-only use is a setting, not a fault
        }

        [Fact]
        public async Task Planted_symlinks_for_the_VMs_lease_and_restart_journal_never_redirect_a_write()
        {
            // Another user of the VM plants the lease file and the restart journal as links to a victim file.
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 2, Ssh = true });
            using var a = Machine(lab);
            Directory.CreateDirectory(lab.Ssh.VmStateDir);
            var victim = Path.Combine(Path.GetTempPath(), $"kso-vm-victim-{Guid.NewGuid():N}");
            File.WriteAllText(victim, "precious\n");
            try
            {
                File.CreateSymbolicLink(Path.Combine(lab.Ssh.VmStateDir, $"lease-{lab[0].Address}-api_key_service"), victim);
                File.CreateSymbolicLink(Path.Combine(lab.Ssh.VmStateDir, $"restarts-{lab[0].Address}-api_key_service.log"), victim);
                using (await a.Ctx.Leases.AcquireAsync(lab[0].Address, "operator A", TimeSpan.FromSeconds(2), None)) { }
                Assert.Contains(a.Log.Lines, l => l.StartsWith("W ") && l.Contains("symbolic link") && l.Contains("only this machine's lock protects this change"));
                await a.Restarter.RestartAsync(SshTarget.For(a.Ctx, lab[0].Address), new RestartOptions { Wait = false, IncidentId = "QLINK01", Timeout = TimeSpan.FromSeconds(2) }, null, None);
                Assert.Equal(1, lab[0].Restarts);                                   // the restart itself went ahead
                Assert.Equal("precious\n", File.ReadAllText(victim));               // nothing written through either link
                Assert.Empty(await a.Docker.ReadRestartJournalAsync(SshTarget.For(a.Ctx, lab[0].Address), None)); // a linked journal is not read
            }
            finally { File.Delete(victim); }
        }

        [Fact]
        public async Task A_lease_taken_over_while_held_is_said_by_the_next_renewal()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 2, Ssh = true });
            using var a = Machine(lab);
            var file = Path.Combine(lab.Ssh.VmStateDir, $"lease-{lab[0].Address}-api_key_service");
            using (var held = await a.Ctx.Leases.AcquireAsync(lab[0].Address, "operator A", TimeSpan.FromSeconds(2), None))
            {
                // Our renewals failed for a whole Ttl (a partition); another machine found the lease lapsed and took it.
                File.WriteAllText(file, $"othertoken\n{DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 90}\nsecond@other-host pid 7: restart for incident Q2\n");
                var h = Assert.IsType<VmLeases.HeldLease>(held);
                h.RenewNow();
                Assert.True(h.Lost);
                Assert.Contains(a.Log.Lines, l => l.StartsWith("W ") && l.Contains("taken over by second@other-host"));
                Assert.Contains("second@other-host", File.ReadAllText(file));     // never written back over the new holder
            }
            Assert.Contains("second@other-host", File.ReadAllText(file));         // nor released
        }

        [Fact]
        public async Task A_slow_yes_never_acts_on_a_stale_reading_the_guard_runs_after_the_answer()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3 });
            using var rig = new OpsRig(lab);
            var t = await rig.Rb.ResolveAsync(lab.Upstream, lab[0].Target, None);
            // While the operator reads the prompt, the other two instances die: removing this one now would leave none.
            async Task<bool> SlowYes(string target, string action)
            {
                await lab[1].SetModeAsync(InstanceMode.Down);
                await lab[2].SetModeAsync(InstanceMode.Down);
                return true;
            }
            var result = await rig.Rb.RemoveSafelyAsync(new RemovalRequest { Upstream = lab.Upstream, Target = t, Method = RemovalMethod.Delete }, SlowYes, None);
            Assert.Null(result.Change);
            Assert.Equal("LastHealthyTarget", result.Guard.ErrorId);
            Assert.True(In(lab, lab[0]));
            Assert.Empty(rig.Audit.Read(null, lab[0].Target, "RemoveTarget"));
        }

        [Fact]
        public async Task A_lease_held_by_a_killed_process_of_this_machine_is_taken_over_at_once()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true });
            using var a = Machine(lab);
            var file = Path.Combine(lab.Ssh.VmStateDir, $"lease-{lab[0].Address}-api_key_service");
            Directory.CreateDirectory(lab.Ssh.VmStateDir);
            // Not expired for another minute (within one Ttl: a live renewal), but its process (a SIGKILLed pwsh on this machine) is gone.
            File.WriteAllText(file, $"cafebabe\n{DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 60}\nroot@{Environment.MachineName} pid 2147483000 since 2026-12-05T00:00:00Z: a killed runbook\n");
            using (await a.Ctx.Leases.AcquireAsync(lab[0].Address, "operator A", TimeSpan.Zero, None))
                Assert.Contains("operator A", File.ReadAllText(file));
            Assert.Contains(a.Log.Lines, l => l.StartsWith("W ") && l.Contains("process of this machine that is gone"));
            // Another machine's holder is never judged by our process table: it waits, then InstanceBusy.
            File.WriteAllText(file, $"cafebabe\n{DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 60}\nroot@other-host pid 2147483000 since 2026-12-05T00:00:00Z: a runbook elsewhere\n");
            var e = await Assert.ThrowsAsync<OpsException>(() => a.Ctx.Leases.AcquireAsync(lab[0].Address, "operator A", TimeSpan.Zero, None));
            Assert.Equal("InstanceBusy", e.ErrorId);
            Assert.Contains("other-host", e.Message);
        }

        [Fact]
        public async Task Two_machines_one_after_the_other_never_restart_twice_for_one_incident()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true, PagerDuty = true });
            var inc = lab.PagerDuty.AddAlert(lab[0].Address);
            using var a = Machine(lab);
            using var b = Machine(lab);
            await lab[0].SetModeAsync(InstanceMode.Down);
            lab[0].ModeAfterRestart = InstanceMode.Down;                    // the restart does not help
            var s1 = await Runbook(a, lab[0], inc.Id, restartTimeoutSec: 1);
            Assert.Equal("Escalated", s1.FinalState);
            var steps = new List<RunbookStepResult>();
            var s2 = await Runbook(b, lab[0], inc.Id, steps, restartTimeoutSec: 1);
            Assert.Equal(1, lab[0].Restarts);                               // B read the VM's journal, not its own audit log
            Assert.Contains("the VM's restart journal", steps.Single(x => x.Step == 3).Detail);
            Assert.Empty(b.Audit.Read(null, lab[0].Address, "RestartContainer"));
            Assert.Equal("AlreadyDone", steps.Single(x => x.Step == 2).Outcome); // and the removal note of A, no second one
            Assert.Single(lab.PagerDuty.Incident(inc.Id).Notes, n => n.Content.Contains("manually removed target"));
            Assert.Equal("Escalated", s2.FinalState);
        }

        [Theory]
        [InlineData("-5m")] // behind only: the lab fakes the VM shell's clock, not the one docker's StartedAt comes from
        public async Task A_VM_whose_clock_is_minutes_off_still_never_restarts_twice_for_one_incident(string skew)
        {
            // Found by a hostile review: with the VM's clock 5 min behind, a restart made after the incident opened was
            // journalled "before" it, and the runbook restarted again. Journal times are now read against the VM's own
            // clock, measured as the journal is read.
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true, PagerDuty = true });
            lab.Ssh.ShellPrelude = $"export LD_PRELOAD=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 FAKETIME={skew}";
            await lab[0].SetModeAsync(InstanceMode.Down);
            lab[0].ModeAfterRestart = InstanceMode.Down;                    // it dies again: the runbook looks for a prior restart
            var inc = lab.PagerDuty.AddAlert(lab[0].Address);
            await Task.Delay(1100);
            using var b = Machine(lab);
            using var a = Machine(lab);
            // Machine B restarts it by hand, without naming the incident, after the incident opened.
            await b.Restarter.RestartAsync(SshTarget.For(b.Ctx, lab[0].Address), new RestartOptions { Wait = false, Timeout = TimeSpan.FromSeconds(2) }, null, None);
            Assert.Equal(1, lab[0].Restarts);
            var steps = new List<RunbookStepResult>();
            await Runbook(a, lab[0], inc.Id, steps, restartTimeoutSec: 1);
            Assert.Equal(1, lab[0].Restarts);                               // was 2 with the clock 5 min behind
            Assert.Equal(StepOutcome.AlreadyDone, steps.Single(x => x.Step == 3).OutcomeValue);
        }

        [Fact]
        public async Task In_a_PagerDuty_outage_a_recent_restart_for_another_incident_does_not_stop_this_incidents_restart()
        {
            // Found by a hostile review: with PagerDuty down the incident's opening is unknown, so "any restart in the last
            // 10 min" counted a restart journalled for an earlier incident, and the instance stayed down.
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true, PagerDuty = true });
            using var a = Machine(lab);
            await lab[0].SetModeAsync(InstanceMode.Down);
            await a.Restarter.RestartAsync(SshTarget.For(a.Ctx, lab[0].Address), new RestartOptions { Wait = true, IncidentId = "QEARLIER", Timeout = TimeSpan.FromSeconds(15), PollInterval = TimeSpan.FromMilliseconds(100) }, null, None);
            Assert.Equal(1, lab[0].Restarts);
            await lab[0].SetModeAsync(InstanceMode.Down);                   // down again: a new incident
            var inc = lab.PagerDuty.AddAlert(lab[0].Address);
            lab.PagerDuty.Outage = true;
            var steps = new List<RunbookStepResult>();
            var s = await Runbook(a, lab[0], inc.Id, steps);
            Assert.True(2 == lab[0].Restarts, string.Join("\n", steps.Select(x => $"{x.Step} {x.Outcome} {x.Detail}")));  // restarted for this incident
            Assert.Equal("Recovered", s.FinalState);
        }

        [Fact]
        public async Task A_lease_whose_expiry_is_further_ahead_than_its_own_span_is_taken_over_with_a_warning()
        {
            // A holder whose VM clock ran ahead, or a planted file: "renewed until a year from now" blocked every machine.
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 2, Ssh = true });
            using var a = Machine(lab);
            var file = Path.Combine(lab.Ssh.VmStateDir, $"lease-{lab[0].Address}-api_key_service");
            Directory.CreateDirectory(lab.Ssh.VmStateDir);
            File.WriteAllText(file, $"deadbeef\n{DateTimeOffset.UtcNow.AddYears(1).ToUnixTimeSeconds()}\nghost@ahead pid 1: a runbook on a clock a year ahead\n");
            using (await a.Ctx.Leases.AcquireAsync(lab[0].Address, "operator A", TimeSpan.FromSeconds(2), None))
                Assert.Contains("operator A", File.ReadAllText(file));
            Assert.Contains(a.Log.Lines, l => l.StartsWith("W ") && l.Contains("lapsed lease") && l.Contains("ghost@ahead"));
        }

        [Fact]
        public async Task A_removal_whose_answer_is_lost_and_cannot_be_read_back_is_Unknown_in_the_step_too_never_Failed()
        {
            // Found by a hostile review: the audit log said Unknown, the runbook's step 2 object said Failed.
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 4, Ssh = true, PagerDuty = true });
            var inc = lab.PagerDuty.AddAlert(lab[0].Address);
            using var rig = Machine(lab);
            await lab[0].SetModeAsync(InstanceMode.Down);
            lab.Kong.WritesLandThenGateway504 = 1;
            lab.Kong.FailAfterGateway504 = 12;                             // the read-back cannot tell either
            var steps = new List<RunbookStepResult>();
            var e = await Assert.ThrowsAsync<OpsException>(() => Runbook(rig, lab[0], inc.Id, steps));
            Assert.True(e.OutcomeUnknown);
            Assert.Equal(StepOutcome.Unknown, steps.Single(x => x.Step == 2).OutcomeValue);
            Assert.Equal(AuditLog.Unknown, Last(rig.Audit, lab[0].Target, "RemoveTarget"));
        }

        [Fact]
        public async Task An_Unknown_removal_is_settled_from_Kong_by_the_next_self_healing_pass()
        {
            // Found by a hostile review: the audit log kept Unknown while Kong was readable again; only a later change
            // to that target settled it. A later pass reads Kong's listing and settles it.
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 4, Ssh = true });
            using var rig = Machine(lab);
            var t = await rig.Rb.ResolveAsync(lab.Upstream, lab[1].Target, None);
            await lab[1].SetModeAsync(InstanceMode.Down);
            lab.Kong.WritesLandThenGateway504 = 1;
            lab.Kong.FailAfterGateway504 = 12;
            var e = await Assert.ThrowsAsync<OpsException>(() => rig.Rb.RemoveResolvedAsync(lab.Upstream, t, RemovalMethod.Delete, false, null, null, None));
            Assert.True(e.OutcomeUnknown);
            Assert.Equal(AuditLog.Unknown, Last(rig.Audit, lab[1].Target, "RemoveTarget"));
            lab.Kong.ClearCanned();
            var o = new SelfHealingOptions { StatePath = Path.Combine(Path.GetTempPath(), $"kso-heal-{Guid.NewGuid():N}.json") };
            await rig.Healer().PassAsync(o, Yes, null, None);
            var settled = rig.Audit.Read(null, lab[1].Target, "RemoveTarget").Last();
            Assert.Equal("Removed", settled.Outcome);                       // what Kong shows: the DELETE had landed
            Assert.Contains("settled from Kong's listing", settled.Detail);
            Assert.False(In(lab, lab[1]));
        }

        [Fact]
        public async Task A_state_file_without_its_targets_is_a_typed_error_never_nothing_is_out()
        {
            var path = Path.Combine(Path.GetTempPath(), $"kso-state-{Guid.NewGuid():N}.json");
            try
            {
                foreach (var text in new[] { "{\"Pass\": 8}", "{\"Pass\": 8, \"Targets\": null}", "{\"Pass\": 8, \"Targets\": []}" })
                {
                    File.WriteAllText(path, text);
                    Assert.Equal("SelfHealingStateInvalid", Assert.Throws<OpsException>(() => SelfHealer.Load(path)).ErrorId);
                }
            }
            finally { File.Delete(path); }
            await Task.CompletedTask;
        }

        [Fact]
        public async Task A_PagerDuty_outage_does_not_block_remediation_notes_wait_in_the_outbox()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true, PagerDuty = true });
            var inc = lab.PagerDuty.AddAlert(lab[0].Address);
            using var rig = Machine(lab);
            await lab[0].SetModeAsync(InstanceMode.Down);
            lab.PagerDuty.Outage = true;
            var s = await Runbook(rig, lab[0], inc.Id);
            Assert.Equal("Recovered", s.FinalState);
            Assert.Equal(1, lab[0].Restarts);
            Assert.Contains(s.Warnings, w => w.Contains("PagerDuty did not answer"));
            Assert.True(s.PendingNotes.Count >= 3);
            Assert.Equal(s.PendingNotes.Count, NoteOutbox.For(rig.Ctx).Pending().Count);
        }

        [Theory]
        [InlineData(FaultScenario.PortInUse, false)]        // step 5: escalate to level 2
        [InlineData(FaultScenario.PortInUse, true)]
        [InlineData(FaultScenario.CipherDependency, false)] // step 3: hand over to the dependency's owner
        [InlineData(FaultScenario.CipherDependency, true)]
        public async Task An_escalation_or_hand_over_is_read_back_from_the_incident_landed_behind_a_502_is_done_refused_is_by_hand(FaultScenario fault, bool refused)
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true, PagerDuty = true });
            await lab[2].ApplyScenarioAsync(fault, persists: true);
            var inc = lab.PagerDuty.AddAlert(lab[2].Address);
            using var rig = Machine(lab);
            // Reads answer throughout; every incident update lands then a gateway answers 502 (past the retries), or
            // PagerDuty's write path refuses everything (nothing lands).
            if (refused) lab.PagerDuty.WriteOutage = true; else lab.PagerDuty.UpdatesLandThenGateway502 = 100;
            var steps = new List<RunbookStepResult>();
            var s = await Runbook(rig, lab[2], inc.Id, steps, restartTimeoutSec: 1);
            var escalate = fault == FaultScenario.PortInUse;
            var step = escalate ? steps[4] : steps[2];
            if (refused)
            {
                Assert.Equal(escalate ? "Failed" : "DependencyFault", s.FinalState);   // never Escalated / AssignedToOwner
                Assert.Equal(StepOutcome.Failed, step.OutcomeValue);
                Assert.Contains("by hand", step.Detail);
                Assert.Equal(1, lab.PagerDuty.Incident(inc.Id).Level);
                Assert.Equal(AuditLog.Failed, Last(rig.Audit, inc.Id, "UpdateIncident"));   // read back: not applied
            }
            else
            {
                Assert.Equal(escalate ? "Escalated" : "AssignedToOwner", s.FinalState);
                Assert.Equal(StepOutcome.Done, step.OutcomeValue);
                Assert.DoesNotContain(s.Warnings, w => w.Contains("by hand"));
                if (escalate) Assert.Equal(2, lab.PagerDuty.Incident(inc.Id).Level);
                else Assert.Equal(new[] { "PCIPHER" }, lab.PagerDuty.Incident(inc.Id).Assignees);
                var line = rig.Audit.Read(null, inc.Id, "UpdateIncident").Last();
                Assert.Equal("Updated", line.Outcome);
                Assert.Contains("answer was lost", line.Detail);
            }
            Assert.Equal(escalate ? 1 : 0, lab[2].Restarts);
        }

        [Fact]
        public async Task A_resolved_or_unknown_incident_refuses_the_runbook_before_any_change()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true, PagerDuty = true });
            var inc = lab.PagerDuty.AddAlert(lab[0].Address, status: "resolved");
            using var rig = Machine(lab);
            await lab[0].SetModeAsync(InstanceMode.Down);
            var e = await Assert.ThrowsAsync<OpsException>(() => Runbook(rig, lab[0], inc.Id));
            Assert.Equal("PagerDutyIncidentResolved", e.ErrorId);
            var e2 = await Assert.ThrowsAsync<OpsException>(() => Runbook(rig, lab[0], "PNOTHERE1"));
            Assert.Equal("PagerDutyNotFound", e2.ErrorId);
            Assert.True(In(lab, lab[0]));
            Assert.Equal(0, lab[0].Restarts);
        }

        [Fact]
        public async Task A_change_whose_outcome_line_cannot_be_written_is_never_read_as_nothing_changed()
        {
            // The intent is written, the remote applies the change, then the audit log becomes unwritable (here: replaced
            // by a symlink, which appends refuse; ENOSPC or a rotated file of another owner behave alike).
            var dir = Path.Combine(Path.GetTempPath(), "kso-outcome-" + Guid.NewGuid().ToString("N").Substring(0, 8));
            Directory.CreateDirectory(dir);
            try
            {
                var path = Path.Combine(dir, "audit.jsonl");
                var log = new AuditLog(path);
                var applied = false;
                var e = await Assert.ThrowsAsync<OpsException>(() => log.RecordAsync(new AuditEntry { Action = "RemoveTarget", Target = "10.0.0.5:8888" },
                    () =>
                    {
                        applied = true;
                        File.Move(path, path + ".moved");
                        File.CreateSymbolicLink(path, path + ".moved");
                        return Task.FromResult("Removed");
                    },
                    r => new AuditEntry { Outcome = r }));
                Assert.True(applied);
                Assert.Equal("AuditOutcomeUnwritten", e.ErrorId);
                Assert.True(e.OutcomeUnknown);                                   // callers keep their marks, as after a lost answer
                Assert.Contains("was made", e.Message);
                Assert.Contains("\"outcome\":\"Started\"", File.ReadAllText(path + ".moved"));
            }
            finally { Directory.Delete(dir, true); }
        }

        [Fact]
        public void An_empty_or_torn_state_file_is_a_typed_error_never_read_as_nothing_happened()
        {
            var path = Path.Combine(Path.GetTempPath(), $"kso-heal-{Guid.NewGuid():N}.json");
            try
            {
                File.WriteAllText(path, "");
                Assert.Equal("SelfHealingStateInvalid", Assert.Throws<OpsException>(() => SelfHealer.Load(path)).ErrorId);
                File.WriteAllText(path, "{\"Targets\": {\"10.0.0.1:8888\": {\"RemovedBySel");
                Assert.Equal("SelfHealingStateInvalid", Assert.Throws<OpsException>(() => SelfHealer.Load(path)).ErrorId);
            }
            finally { File.Delete(path); }
        }

        [Fact]
        public void Files_are_replaced_by_rename_never_written_through_a_planted_symlink()
        {
            var dir = Path.Combine(Path.GetTempPath(), "kso-safe-" + Guid.NewGuid().ToString("N").Substring(0, 8));
            Directory.CreateDirectory(dir);
            try
            {
                var victim = Path.Combine(dir, "victim");
                File.WriteAllText(victim, "precious");
                var link = Path.Combine(dir, "10.0.0.5.holder");
                File.CreateSymbolicLink(link, victim);
                SafeFile.WriteAllText(link, "holder text");
                Assert.Equal("precious", File.ReadAllText(victim));
                Assert.Equal("holder text", File.ReadAllText(link));
                Assert.Null(new FileInfo(link).LinkTarget);                 // the link itself was replaced
                if (!OperatingSystem.IsWindows()) Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(link));
                // The audit log refuses a symlink outright.
                var auditLink = Path.Combine(dir, "audit.jsonl");
                File.CreateSymbolicLink(auditLink, victim);
                var e = Assert.Throws<OpsException>(() => new AuditLog(auditLink).Append(new AuditEntry { Action = "x", Target = "y" }));
                Assert.Contains("symbolic link", e.Message);
                Assert.Equal("precious", File.ReadAllText(victim));
            }
            finally { Directory.Delete(dir, true); }
        }
    }
}
