using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using KeyServiceOps.Core.Audit;
using KeyServiceOps.Core.Runbook;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using Xunit;
using Xunit.Abstractions;

namespace KeyServiceOps.Core.Tests
{
    /// <summary>
    /// Issue #25's seeded chaos: two responders on two "machines" (each its own lock folder, audit log and self-healing
    /// state) work one estate while the faults of docs/failure-model.md are drawn at random: Kong writes that land then
    /// a gateway 504, writes a gateway refuses, restarts whose answer stalls or whose SSH connection drops, a PagerDuty
    /// outage, restarts that do not help, slow restarts. Rerun a failure with KSO_CHAOS_SEED.
    /// </summary>
    public class TwoMachineChaosTests
    {
        private static readonly CancellationToken None = CancellationToken.None;
        private static Task<bool> Yes(string t, string a) => Task.FromResult(true);
        private readonly ITestOutputHelper _out;
        public TwoMachineChaosTests(ITestOutputHelper o) { _out = o; }

        private static Task<RunbookSummary> Runbook(OpsRig rig, SimInstance inst, string incident, string actor)
            => rig.Runner().RunAsync(Endpoint.Parse(inst.Address, 8888),
                new RunbookOptions { IncidentId = incident, RestartTimeout = TimeSpan.FromSeconds(3), PollInterval = TimeSpan.FromMilliseconds(100), EscalationLogLines = 5, Actor = actor, IncidentClockSlack = TimeSpan.FromSeconds(2) },
                Yes, _ => { }, None);

        [Fact]
        public async Task Chaos_two_machines_one_estate_one_restart_per_incident_every_change_recorded_audit_agrees_with_Kong()
        {
            var seed = Environment.GetEnvironmentVariable("KSO_CHAOS_SEED") is string s && int.TryParse(s, out var v) ? v : Environment.TickCount & 0xFFFF;
            _out.WriteLine($"chaos seed {seed} (rerun with KSO_CHAOS_SEED={seed})");
            var rnd = new Random(seed);
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 5, Ssh = true, PagerDuty = true });
            void Configure(OpsContext c) { c.Ssh.CommandTimeout = TimeSpan.FromSeconds(3); c.Safety.LockTimeout = TimeSpan.FromSeconds(90); }
            using var a = CoordinationTests.Machine(lab, Configure);
            using var b = Machine2(lab, Configure);
            var healer = b.Healer();
            var heal = new SelfHealingOptions
            {
                StatePath = Path.Combine(Path.GetDirectoryName(b.Ctx.Safety.LockDirectory), "heal.json"),
                FailuresToRemove = 1, PassesToAdd = 1, Restart = true, StartupGrace = TimeSpan.FromSeconds(20), Actor = "self-healing-B",
            };
            var figures = new List<string>();
            var offset = rnd.Next(lab.Instances.Count);
            int rounds = 0, restarts = 0, faultsDrawn = 0, typedErrors = 0, settlingRuns = 0, raced = 0;
            try
            {
                for (int round = 1; round <= 8; round++)
                {
                    rounds++;
                    var victim = lab.Instances[(round - 1 + offset) % lab.Instances.Count]; // each instance rests a few rounds between incidents
                    await victim.SetModeAsync(rnd.Next(2) == 0 ? InstanceMode.Down : InstanceMode.Error500);
                    var inc = lab.PagerDuty.AddAlert(victim.Address);
                    var restartsBefore = victim.Restarts;
                    var kongBefore = Listed(lab);
                    var drawn = new List<string>();
                    if (rnd.NextDouble() < 0.35) { lab.Kong.WritesLandThenGateway504 = rnd.Next(1, 3); drawn.Add($"kong-504x{lab.Kong.WritesLandThenGateway504}"); }
                    if (rnd.NextDouble() < 0.2) { lab.Kong.FailNextWrites(1, 502, "<html><body>502 Bad Gateway</body></html>"); drawn.Add("kong-refused"); }
                    if (rnd.NextDouble() < 0.3) { victim.AfterRestart = rnd.Next(2) == 0 ? AfterRestartFault.Stall : AfterRestartFault.DropConnection; drawn.Add($"ssh-{victim.AfterRestart}"); }
                    if (rnd.NextDouble() < 0.25) { lab.PagerDuty.Outage = true; drawn.Add("pd-outage"); }
                    victim.ModeAfterRestart = rnd.NextDouble() < 0.25 ? InstanceMode.Down : InstanceMode.Up;
                    if (victim.ModeAfterRestart == InstanceMode.Down) drawn.Add("restart-does-not-help");
                    victim.RestartDelay = TimeSpan.FromMilliseconds(rnd.Next(100, 1500));
                    faultsDrawn += drawn.Count;

                    // The two actors, at once: A runs the runbook; B runs it too (a second responder), or self-healing.
                    var bIsHealer = rnd.Next(2) == 0;
                    var bDelay = rnd.Next(0, 1500);
                    var errors = new List<string>();
                    async Task Guard(Func<Task> act)
                    {
                        try { await act(); }
                        catch (OpsException e) when (!e.IsCancellation) { lock (errors) errors.Add(e.ErrorId); }
                    }
                    var ta = Guard(() => Runbook(a, victim, inc.Id, "runbook-A"));
                    var tb = Guard(async () =>
                    {
                        await Task.Delay(bDelay);
                        if (!bIsHealer) { await Runbook(b, victim, inc.Id, "runbook-B"); return; }
                        for (int p = 0; p < 3; p++) { await healer.PassAsync(heal, Yes, null, None); await Task.Delay(300); }
                    });
                    await Task.WhenAll(ta, tb);
                    typedErrors += errors.Count;

                    // The faults clear.
                    lab.Kong.WritesLandThenGateway504 = 0; lab.Kong.ClearCanned(); lab.PagerDuty.Outage = false; victim.AfterRestart = AfterRestartFault.None;
                    await Task.Delay(1600); // a slow restart of this round finishes before the books are read

                    // 1. No restart done twice for one incident, whoever and however they interleaved.
                    var n = victim.Restarts - restartsBefore;
                    restarts += n;
                    Assert.True(n <= 1, $"round {round} ({string.Join(",", drawn)}; B {(bIsHealer ? "self-healing" : "runbook")}): {n} restarts for incident {inc.Id}");
                    // 2. Every change Kong saw has an intent line, on one machine or the other.
                    var kongAfter = Listed(lab);
                    var log = Merged(a, b);
                    foreach (var t in kongBefore.Except(kongAfter).Concat(kongAfter.Except(kongBefore)))
                        Assert.True(log.Any(e => e.Target == t && (e.Action == "RemoveTarget" || e.Action == "AddTarget")), $"round {round}: {t} changed in Kong with no intent line on either machine");
                    // 3. The audit logs' last word on every target agrees with Kong.
                    AssertLastWordAgrees(lab, a, b, $"round {round} ({string.Join(",", drawn)})");

                    // The instance is fixed by hand; a later pass (self-healing) or a re-run of the runbook settles it.
                    victim.ModeAfterRestart = InstanceMode.Up;
                    await victim.SetModeAsync(InstanceMode.Up);
                    await healer.PassAsync(heal, Yes, null, None);
                    if (!Listed(lab).Contains(victim.Target)) { settlingRuns++; await Runbook(a, victim, inc.Id, "runbook-A"); }
                    // 4. No healthy instance stays out of rotation once a later pass completes.
                    foreach (var i in lab.Instances)
                        Assert.True(Listed(lab).Contains(i.Target), $"round {round}: {i.Target} is healthy and still out of rotation");
                    AssertLastWordAgrees(lab, a, b, $"round {round} after settling");
                    lab.PagerDuty.Incident(inc.Id).Status = "resolved";
                    if (errors.Contains("InstanceBusy")) raced++;
                    figures.Add($"round {round}: B {(bIsHealer ? "self-healing" : "runbook")} +{bDelay} ms, faults [{string.Join(",", drawn)}], {n} restart(s), errors [{string.Join(",", errors)}]");
                }
                foreach (var f in figures) _out.WriteLine(f);
                _out.WriteLine($"{rounds} incidents, {restarts} restarts (at most one each), {faultsDrawn} faults drawn, {typedErrors} typed errors, {settlingRuns} runbook re-runs to settle, {raced} rounds with InstanceBusy");
                Assert.True(faultsDrawn >= 5, $"too quiet a schedule: {faultsDrawn} faults drawn");
            }
            catch (Exception)
            {
                foreach (var f in figures) _out.WriteLine(f);
                _out.WriteLine($"FAILED with chaos seed {seed}");
                Console.WriteLine($"Two-machine chaos test failed with seed {seed}: rerun with KSO_CHAOS_SEED={seed}");
                throw;
            }
        }

        /// <summary>The second machine: its own lock folder and audit log, the same estate.</summary>
        private static OpsRig Machine2(Lab.Estate.Lab lab, Action<OpsContext> configure) => CoordinationTests.Machine(lab, configure);

        private static HashSet<string> Listed(Lab.Estate.Lab lab) => lab.Kong.Targets(lab.Upstream).Where(t => t.Weight > 0).Select(t => t.Target).ToHashSet();

        private static List<AuditEntry> Merged(OpsRig a, OpsRig b)
            => a.Audit.Read().Concat(b.Audit.Read()).OrderBy(e => e.Time).ToList();

        /// <summary>For every target either machine changed: the latest settled line (not an intent, not Failed) says what Kong shows.</summary>
        private static void AssertLastWordAgrees(Lab.Estate.Lab lab, OpsRig a, OpsRig b, string when)
        {
            var listed = Listed(lab);
            var changes = Merged(a, b).Where(e => e.Action == "RemoveTarget" || e.Action == "AddTarget").ToList();
            foreach (var g in changes.GroupBy(e => e.Target))
            {
                var last = g.LastOrDefault(e => e.Outcome != AuditLog.Started && e.Outcome != AuditLog.Failed && e.Outcome != AuditLog.Unfinished);
                if (last == null) continue;
                Assert.True(last.Outcome != AuditLog.Unknown, $"{when}: {g.Key}'s last word is Unknown although Kong answered reads: {last.Detail}");
                Assert.True((last.Action == "AddTarget") == listed.Contains(g.Key), $"{when}: {g.Key}: the last word is {last.Action} {last.Outcome} ({last.Detail}) but Kong {(listed.Contains(g.Key) ? "lists" : "does not list")} it");
            }
        }
    }
}
