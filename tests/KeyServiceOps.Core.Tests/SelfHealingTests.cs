using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using KeyServiceOps.Core.Runbook;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using Xunit;
using Xunit.Abstractions;

namespace KeyServiceOps.Core.Tests
{
    public class SelfHealingTests
    {
        private static readonly CancellationToken None = CancellationToken.None;
        private static Task<bool> Yes(string t, string a) => Task.FromResult(true);
        private readonly ITestOutputHelper _out;
        public SelfHealingTests(ITestOutputHelper o) { _out = o; }

        private static SelfHealingOptions Opts(string state = null) => new SelfHealingOptions
        {
            StatePath = state ?? Path.Combine(Path.GetTempPath(), $"kso-heal-{Guid.NewGuid():N}.json"),
        };

        private static bool In(Lab.Estate.Lab lab, SimInstance i) => lab.Kong.Targets(lab.Upstream).Any(t => t.Target == i.Target && t.Weight > 0);

        [Fact]
        public async Task A_removal_whose_answer_never_comes_is_remembered_and_the_target_comes_back_when_healthy()
        {
            // Kong commits the DELETE and the answer is lost (timeout, or Ctrl+C while waiting): the healer cannot know it
            // landed, so it must keep its mark; the next pass sees the target gone, and adds it back once healthy.
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 4 });
            using var rig = new OpsRig(lab, c => c.Http.Timeout = TimeSpan.FromSeconds(1));
            var healer = rig.Healer();
            var o = Opts(); o.FailuresToRemove = 1; o.PassesToAdd = 1;
            await lab[1].SetModeAsync(InstanceMode.Down);
            lab.Kong.DeleteLandsThenHangs = 1;
            var p1 = await healer.PassAsync(o, Yes, null, None);
            // Issue #25: the lost answer is read back from Kong's listing: it landed, so the pass reports it done.
            Assert.Equal((HealingAction.Remove, StepOutcome.Done), (Assert.Single(p1).ActionValue, p1[0].OutcomeValue));
            Assert.False(In(lab, lab[1]));                                   // it landed
            Assert.Contains("answer was lost", rig.Audit.Read(null, lab[1].Target, "RemoveTarget").Last().Detail);
            Assert.True(SelfHealer.Load(o.StatePath).Targets[lab[1].Target].RemovedBySelfHealing);
            await lab[1].SetModeAsync(InstanceMode.Up);
            var p2 = await healer.PassAsync(o, Yes, null, None);
            Assert.Equal((HealingAction.Add, StepOutcome.Done), (Assert.Single(p2).ActionValue, p2[0].OutcomeValue));
            Assert.True(In(lab, lab[1]));
        }

        [Fact]
        public async Task A_pass_reads_Kong_for_the_guard_once_per_batch_and_still_counts_its_own_removals()
        {
            // Issue #32: the capacity guard is re-validated against Kong right before the pass acts, once per batch of
            // removals, not once per target; within the batch, each removal is judged on that read with the batch's own
            // removals counted out, so the share limit holds without a re-read.
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 12 });
            using var rig = new OpsRig(lab, c => c.Removal.MaxRemoveShare = 0.34);  // at most 4 of 12 out at once
            var healer = rig.Healer();
            var o = Opts(); o.FailuresToRemove = 1; o.MaxEjectionShare = 0.5;        // the policy alone would take 6
            for (int i = 0; i < 6; i++) await lab[i].SetModeAsync(InstanceMode.Down);
            lab.Kong.ClearRequests();
            var pass = await healer.PassAsync(o, Yes, null, None);
            var listings = lab.Kong.Requests.Count(r => System.Text.RegularExpressions.Regex.IsMatch(r, $@"^GET /upstreams/{lab.Upstream}/targets(\?|$)"));
            Assert.Equal(4, pass.Count(a => a.ActionValue == HealingAction.Remove && a.OutcomeValue == StepOutcome.Done));
            Assert.Equal(2, pass.Count(a => a.ReasonValue == HealingReason.CapacityGuard && a.Detail.StartsWith("RemoveShareExceeded")));
            Assert.Equal(8, lab.Kong.Targets(lab.Upstream).Count(t => t.Weight > 0));
            // The pass's own listing, then one guard read for all six decisions (per target it was seven or more).
            Assert.True(listings <= 2, $"{listings} listings of the targets: {string.Join(", ", lab.Kong.Requests.Where(r => r.StartsWith("GET /upstreams")))}");
        }

        [Fact]
        public async Task A_refused_removal_is_forgotten_the_target_never_left()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 4 });
            using var rig = new OpsRig(lab);
            var healer = rig.Healer();
            var o = Opts(); o.FailuresToRemove = 1;
            await lab[1].SetModeAsync(InstanceMode.Down);
            lab.Kong.FailWrites = 1;                                         // Kong answers 500: nothing changed
            var p1 = await healer.PassAsync(o, Yes, null, None);
            Assert.Equal(StepOutcome.Failed, Assert.Single(p1).OutcomeValue);
            Assert.True(In(lab, lab[1]));
            Assert.False(SelfHealer.Load(o.StatePath).Targets[lab[1].Target].RemovedBySelfHealing);
        }

        [Fact]
        public async Task A_dead_instance_is_removed_after_exactly_N_passes_and_added_back_M_passes_after_it_recovers()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 4, PagerDuty = true });
            var inc = lab.PagerDuty.AddAlert(lab[0].Address);
            using var rig = new OpsRig(lab);
            var healer = rig.Healer();
            var o = Opts();
            await lab[0].SetModeAsync(InstanceMode.Down);
            var p1 = await healer.PassAsync(o, Yes, null, None);
            var p2 = await healer.PassAsync(o, Yes, null, None);
            Assert.True(In(lab, lab[0]));
            Assert.All(p1.Concat(p2), a => Assert.Equal("Hysteresis", a.Reason));
            var p3 = await healer.PassAsync(o, Yes, null, None);
            Assert.False(In(lab, lab[0]));
            var removed = Assert.Single(p3);
            Assert.Equal((HealingAction.Remove, StepOutcome.Done, inc.Id), (removed.ActionValue, removed.OutcomeValue, removed.IncidentId));

            await lab[0].SetModeAsync(InstanceMode.Up);
            var p4 = await healer.PassAsync(o, Yes, null, None);
            Assert.False(In(lab, lab[0]));
            Assert.Equal("Hysteresis", Assert.Single(p4).Reason);
            var p5 = await healer.PassAsync(o, Yes, null, None);
            Assert.True(In(lab, lab[0]));
            Assert.Equal((HealingAction.Add, StepOutcome.Done), (Assert.Single(p5).ActionValue, p5[0].OutcomeValue));
            var notes = lab.PagerDuty.Incident(inc.Id).Notes.Select(n => n.Content).ToList();
            Assert.Contains(notes, n => n.Contains("removed by self-healing"));
            Assert.Contains(notes, n => n.Contains("added back by self-healing"));
            Assert.Equal(new[] { "RemoveTarget", "AddIncidentNote", "AddTarget", "AddIncidentNote" }, rig.Audit.Read().Select(a => a.Action));
        }

        [Fact]
        public async Task A_pass_interrupted_during_the_note_after_a_removal_still_remembers_the_removal()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 4, PagerDuty = true });
            lab.PagerDuty.AddAlert(lab[0].Address);
            using var rig = new OpsRig(lab);
            rig.Ctx.PagerDuty.MaxRetries = 50; rig.Ctx.PagerDuty.MaxBackoff = TimeSpan.FromSeconds(2);
            var healer = new SelfHealer(rig.Ctx, rig.Rb, rig.Health, rig.Restarter,
                new KeyServiceOps.Core.PagerDuty.PagerDutyClient(rig.Ctx.ForPagerDuty(), rig.Log, rig.Audit, TimeSpan.FromMilliseconds(200)), rig.Log);
            var o = Opts(); o.FailuresToRemove = 1;
            await lab[0].SetModeAsync(InstanceMode.Down);
            using var cts = new CancellationTokenSource();
            // The removal is confirmed; then PagerDuty rate-limits every request, and Ctrl+C comes during the note.
            Task<bool> ConfirmThenStorm(string t, string a) { lab.PagerDuty.RateLimitNotes = true; cts.CancelAfter(2500); return Task.FromResult(true); }
            await Assert.ThrowsAnyAsync<Exception>(() => healer.PassAsync(o, ConfirmThenStorm, null, cts.Token));
            Assert.False(In(lab, lab[0]));
            var state = File.ReadAllText(o.StatePath);
            Assert.Contains(lab[0].Target, state);
            Assert.Contains("\"RemovedBySelfHealing\": true", state);
            // The next passes re-add it once healthy, as if the pass had not been interrupted.
            Assert.Contains(lab.PagerDuty.Requests, r => r.Contains("/notes")); // it was in the note when interrupted
            lab.PagerDuty.RateLimitNotes = false;
            await lab[0].SetModeAsync(InstanceMode.Up);
            var passes = 0;
            while (!In(lab, lab[0]) && passes < 5) { await healer.PassAsync(o, Yes, null, None); passes++; }
            Assert.True(In(lab, lab[0]));
            Assert.Equal(o.PassesToAdd, passes);
        }

        [Fact]
        public async Task Every_pass_emits_one_summary_also_when_nothing_is_to_do_and_under_WhatIf()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3 });
            using var rig = new OpsRig(lab);
            var healer = rig.Healer(); var o = Opts();
            var sums = new List<SelfHealingPassSummary>();
            var quiet = await healer.PassAsync(o, Yes, null, None, sums.Add);
            Assert.Empty(quiet);
            var s = Assert.Single(sums);
            Assert.Equal((1, 3, 0, 0), (s.Pass, s.TargetsChecked, s.Unhealthy, s.Actions));
            Assert.Equal(lab.Upstream, s.Upstream);
            await lab[1].SetModeAsync(InstanceMode.Down);
            o.WhatIf = true;
            await healer.PassAsync(o, Yes, null, None, sums.Add);
            Assert.Equal(2, sums.Count);
            Assert.True(sums[1].WhatIf);
            Assert.Equal(1, sums[1].Unhealthy);
            Assert.Contains("Hysteresis x1", sums[1].HeldBack);
        }

        [Fact]
        public async Task A_flapping_instance_is_never_removed_with_the_default_hysteresis()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3 });
            using var rig = new OpsRig(lab);
            var healer = rig.Healer(); var o = Opts();
            for (int i = 0; i < 12; i++)
            {
                await lab[1].SetModeAsync(i % 2 == 0 ? InstanceMode.Error500 : InstanceMode.Up);
                await healer.PassAsync(o, Yes, null, None);
                Assert.True(In(lab, lab[1]));
            }
            Assert.Empty(rig.Audit.Read());
        }

        [Fact]
        public async Task With_every_instance_dead_the_last_target_is_kept()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3 });
            using var rig = new OpsRig(lab);
            rig.Ctx.Removal.MaxRemoveShare = 1.0;
            var healer = rig.Healer(); var o = Opts();
            // The contract's own limits opened wide, so the ring-balancer guard is what holds.
            o.FailuresToRemove = 1; o.PassesToAdd = 5; o.PanicThreshold = 0; o.MaxEjectionShare = 1.0;
            await lab[0].SetModeAsync(InstanceMode.Down);
            await healer.PassAsync(o, Yes, null, None);
            Assert.Equal(2, lab.Kong.Targets(lab.Upstream).Count(t => t.Weight > 0));
            // The one out recovers (not yet added back); the two in rotation die: neither may go.
            await lab[0].SetModeAsync(InstanceMode.Up);
            // A freshly started server can miss its first 1 s probe on a loaded machine: wait until it answers.
            for (int k = 0; k < 50 && !(await rig.Health.CheckAsync(Endpoint.Parse(lab[0].Address, 8888), None)).Healthy; k++) await Task.Delay(100);
            await lab[1].SetModeAsync(InstanceMode.Down);
            await lab[2].SetModeAsync(InstanceMode.Down);
            var all = await healer.PassAsync(o, Yes, null, None);
            Assert.Equal(2, lab.Kong.Targets(lab.Upstream).Count(t => t.Weight > 0));
            Assert.Contains(all, a => a.Reason == "CapacityGuard" && a.Detail.Contains("LastHealthyTarget"));
            // Every instance dead at once: a hard stop, nothing taken out.
            await lab[0].SetModeAsync(InstanceMode.Down);
            var e = await Assert.ThrowsAsync<OpsException>(() => healer.PassAsync(o, Yes, null, None));
            Assert.Equal("AllTargetsFailing", e.ErrorId);
            Assert.Equal(2, lab.Kong.Targets(lab.Upstream).Count(t => t.Weight > 0));
        }

        [Fact]
        public async Task The_default_share_guard_keeps_half_the_upstream_and_maintenance_targets_are_left_alone()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 4 });
            lab.Kong.AddTarget(lab.Upstream, $"{lab.Block}.90:8888", 100, "maintenance"); // down, but marked for maintenance
            using var rig = new OpsRig(lab);
            var healer = rig.Healer(); var o = Opts();
            await lab[0].SetModeAsync(InstanceMode.Down);
            var all = new List<SelfHealingAction>();
            for (int p = 0; p < 3; p++) all.AddRange(await healer.PassAsync(o, Yes, null, None));
            Assert.Contains(all, a => a.Target.EndsWith(".90:8888") && a.Reason == "Maintenance");
            Assert.Contains(lab.Kong.Targets(lab.Upstream), t => t.Target.EndsWith(".90:8888"));
            Assert.False(In(lab, lab[0]));
        }

        [Fact]
        public async Task WhatIf_runs_the_whole_decision_and_changes_nothing()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3 });
            using var rig = new OpsRig(lab);
            var healer = rig.Healer(); var o = Opts();
            await lab[0].SetModeAsync(InstanceMode.Down);
            for (int p = 0; p < 2; p++) await healer.PassAsync(o, Yes, null, None);
            var stateBefore = File.ReadAllText(o.StatePath);
            o.WhatIf = true;
            var r = await healer.PassAsync(o, Yes, null, None);
            Assert.Equal(StepOutcome.WouldDo, Assert.Single(r).OutcomeValue);
            Assert.True(In(lab, lab[0]));
            Assert.Equal(stateBefore, File.ReadAllText(o.StatePath));
            Assert.Empty(rig.Audit.Read());
        }

        [Fact]
        public async Task A_second_healer_waits_for_the_lock_and_does_nothing_when_it_cannot_get_it()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 2 });
            using var rig = new OpsRig(lab);
            var o = Opts(); o.LockTimeout = TimeSpan.FromMilliseconds(300);
            using (new FileStream(o.StatePath + ".lock", FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None))
            {
                var r = await rig.Healer().PassAsync(o, Yes, null, None);
                Assert.Equal("LockHeld", Assert.Single(r).Reason);
            }
            Assert.Empty(await rig.Healer().PassAsync(o, Yes, null, None));
        }

        [Fact]
        public async Task Two_healers_at_once_do_not_fight()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 4 });
            using var rig = new OpsRig(lab);
            var state = Opts().StatePath;
            await lab[0].SetModeAsync(InstanceMode.Down);
            for (int round = 0; round < 4; round++)
            {
                var a = rig.Healer().PassAsync(new SelfHealingOptions { StatePath = state }, Yes, null, None);
                var b = rig.Healer().PassAsync(new SelfHealingOptions { StatePath = state }, Yes, null, None);
                await Task.WhenAll(a, b);
            }
            // Eight passes, serialised by the lock: removed once, on the third pass.
            Assert.Equal(8, SelfHealer.Load(state).Pass);
            Assert.Single(rig.Audit.Read(null, null, "RemoveTarget"));
            Assert.False(In(lab, lab[0]));
        }

        [Fact]
        public async Task A_crash_looping_instance_is_restarted_at_most_K_times_per_hour()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true });
            await lab[0].ApplyScenarioAsync(FaultScenario.PortInUse, persists: true);
            using var rig = new OpsRig(lab);
            var now = DateTimeOffset.UtcNow;
            var o = Opts();
            o.Restart = true; o.MaxRestartsPerHour = 3; o.RestartBackoff = TimeSpan.FromMinutes(1); o.StartupGrace = TimeSpan.FromMinutes(2);
            o.FailingRemediationMinimum = 1000; // this test is about the hourly budget alone (the stop has its own test)
            o.Clock = () => now;
            var restarts = new List<DateTimeOffset>();
            var reasons = new List<string>();
            var healer = rig.Healer();
            for (int p = 0; p < 150; p++) // 150 passes, one simulated minute apart
            {
                foreach (var a in await healer.PassAsync(o, Yes, null, None))
                {
                    if (a.ActionValue == HealingAction.Restart && a.OutcomeValue == StepOutcome.Done) restarts.Add(now);
                    reasons.Add(a.Reason);
                }
                now = now.AddMinutes(1);
            }
            Assert.Equal(restarts.Count, lab[0].Restarts);
            Assert.InRange(restarts.Count, 3, 9);
            foreach (var r in restarts) Assert.True(restarts.Count(x => x >= r && x < r.AddHours(1)) <= 3, $"more than 3 restarts in the hour from {r}");
            Assert.Contains("RestartBudget", reasons);
            Assert.Contains("StartupGrace", reasons);
        }

        [Fact]
        public async Task Chaos_the_upstream_never_empties_healthy_instances_come_back_and_every_change_is_audited()
        {
            var seed = Environment.GetEnvironmentVariable("KSO_CHAOS_SEED") is string s && int.TryParse(s, out var v) ? v : Environment.TickCount & 0xFFFF;
            _out.WriteLine($"chaos seed {seed} (rerun with KSO_CHAOS_SEED={seed})");
            var rnd = new Random(seed);
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 5, PagerDuty = true });
            foreach (var i in lab.Instances) lab.PagerDuty.AddAlert(i.Address);
            using var rig = new OpsRig(lab);
            rig.Ctx.Removal.MaxRemoveShare = 1.0; // let the last-healthy guard be the one that holds
            var healer = rig.Healer(); var o = Opts();
            var healthyStreak = lab.Instances.ToDictionary(i => i.Address, _ => 0);
            const int M = 2;
            int removals = 0, additions = 0, guarded = 0, failedActions = 0, interrupted = 0, allFailing = 0, limitsHeld = 0;
            var afterInterrupt = false;
            try
            {
                for (int pass = 1; pass <= 250; pass++)
                {
                    // Change the world: deaths, recoveries, Kong 5xx bursts, PagerDuty 429s.
                    foreach (var i in lab.Instances)
                    {
                        var roll = rnd.NextDouble();
                        if (i.Mode == InstanceMode.Up && roll < 0.12) await i.SetModeAsync(rnd.Next(2) == 0 ? InstanceMode.Down : InstanceMode.Error500);
                        else if (i.Mode != InstanceMode.Up && roll < 0.3) await i.SetModeAsync(InstanceMode.Up);
                    }
                    var kongBurst = rnd.NextDouble() < 0.08;
                    if (kongBurst) { if (rnd.Next(2) == 0) lab.Kong.FailAll = rnd.Next(1, 4); else lab.Kong.FailWrites = rnd.Next(1, 3); }
                    if (rnd.NextDouble() < 0.1) lab.PagerDuty.RateLimitNext = rnd.Next(1, 3);

                    var before = lab.Kong.Targets(lab.Upstream).Where(t => t.Weight > 0).Select(t => t.Target).ToHashSet();
                    var auditBefore = rig.Audit.Read().Count();
                    // Now and then Ctrl+C lands in the middle of a pass.
                    var interrupt = rnd.NextDouble() < 0.08;
                    using var cts = new CancellationTokenSource();
                    if (interrupt) cts.CancelAfter(rnd.Next(0, 150));
                    List<SelfHealingAction> actions = null;
                    try { actions = await healer.PassAsync(o, Yes, null, cts.Token); }
                    catch (Exception e) when (interrupt && OpsException.IsCancel(e))
                    {
                        interrupted++;
                        await Task.Delay(1000); // a request cut off by Ctrl+C may still land at Kong: let it settle before the snapshot
                    }
                    catch (OpsException e) when (e.ErrorId == "AllTargetsFailing")
                    {
                        // The contract's hard stop: every instance down at once is never "remove them all".
                        allFailing++;
                        lab.Kong.FailAll = 0; lab.Kong.FailWrites = 0;
                        Assert.Equal(before, lab.Kong.Targets(lab.Upstream).Where(t => t.Weight > 0).Select(t => t.Target).ToHashSet());
                        continue;
                    }
                    lab.Kong.FailAll = 0; lab.Kong.FailWrites = 0;
                    var after = lab.Kong.Targets(lab.Upstream).Where(t => t.Weight > 0).Select(t => t.Target).ToHashSet();

                    Assert.True(after.Count >= 1, $"pass {pass}: the upstream is empty");
                    // Every audit line parses, and every outcome line follows its own intent line (write-ahead).
                    var raw = (File.Exists(rig.Ctx.Safety.AuditLogPath) ? File.ReadAllLines(rig.Ctx.Safety.AuditLogPath) : new string[0]).Select(Newtonsoft.Json.Linq.JObject.Parse).ToList();
                    var intents = new HashSet<string>();
                    foreach (var line in raw)
                    {
                        var op = (string)line["op"];
                        if ((string)line["outcome"] == "Started") intents.Add(op);
                        else if (op != null) Assert.True(intents.Contains(op), $"pass {pass}: an outcome line with no intent before it: {line}");
                    }
                    // Every change Kong saw has its audit line, interrupted or not: the log's latest word on a target that
                    // changed agrees with Kong. (A request cut off by Ctrl+C may reach Kong after this pass's snapshot, so
                    // the line can come from an earlier pass: it was written before the request was sent.)
                    var all = rig.Audit.Read().Where(e => e.Action == "RemoveTarget" || e.Action == "AddTarget").ToList();
                    string Latest(string t) => all.LastOrDefault(e => e.Target == t)?.Action;
                    foreach (var t in before.Except(after)) Assert.True(Latest(t) == "RemoveTarget", $"pass {pass}: {t} left Kong, the audit log's last word on it is {Latest(t) ?? "nothing"}");
                    foreach (var t in after.Except(before)) Assert.True(Latest(t) == "AddTarget", $"pass {pass}: {t} came back, the audit log's last word on it is {Latest(t) ?? "nothing"}");
                    if (actions == null) { foreach (var i in lab.Instances) healthyStreak[i.Address] = 0; afterInterrupt = true; continue; }
                    // Right after an interrupted pass, a late request of that pass may change Kong during this one: the
                    // audit's last word (above) still has to agree, the per-pass accounting below starts again next pass.
                    if (afterInterrupt) { afterInterrupt = false; continue; }
                    // Every change to Kong was an action the healer reported, and is in the audit log.
                    var removed = before.Except(after).ToList(); var added = after.Except(before).ToList();
                    var done = actions.Where(a => a.OutcomeValue == StepOutcome.Done).ToList();
                    Assert.Equal(removed.OrderBy(x => x), done.Where(a => a.ActionValue == HealingAction.Remove).Select(a => a.Target).OrderBy(x => x));
                    Assert.Equal(added.OrderBy(x => x), done.Where(a => a.ActionValue == HealingAction.Add).Select(a => a.Target).OrderBy(x => x));
                    removals += removed.Count; additions += added.Count;
                    guarded += actions.Count(a => a.Reason == "CapacityGuard"); limitsHeld += actions.Count(a => a.Reason == "MaxEjection" || a.Reason == "PanicFloor"); failedActions += actions.Count(a => a.OutcomeValue == StepOutcome.Failed);
                    var newAudit = rig.Audit.Read().Skip(auditBefore).ToList();
                    foreach (var t in removed) Assert.Contains(newAudit, e => e.Action == "RemoveTarget" && e.Target == t);
                    foreach (var t in added) Assert.Contains(newAudit, e => e.Action == "AddTarget" && e.Target == t);

                    // A healthy instance is not kept out longer than M passes once faults clear (Kong answering again).
                    foreach (var i in lab.Instances)
                    {
                        healthyStreak[i.Address] = i.Mode == InstanceMode.Up && !kongBurst ? healthyStreak[i.Address] + 1 : 0;
                        if (healthyStreak[i.Address] > M) Assert.True(after.Contains(i.Target), $"pass {pass}: {i.Target} healthy for {healthyStreak[i.Address]} passes but still out");
                    }
                }
                _out.WriteLine($"{removals} removals, {additions} additions, {guarded} guarded, {failedActions} failed actions (Kong 5xx), {interrupted} passes interrupted, {limitsHeld} held by max ejection or the panic floor, {allFailing} hard stops (all failing)");
                // The schedule must actually have exercised the healer, or the invariants prove nothing.
                Assert.True(removals >= 5 && additions >= 5, $"too quiet a schedule: {removals} removals, {additions} additions");
            }
            catch (Exception)
            {
                _out.WriteLine($"FAILED with chaos seed {seed} after {removals} removals, {additions} additions");
                Console.WriteLine($"Chaos test failed with seed {seed}: rerun with KSO_CHAOS_SEED={seed}");
                throw;
            }
        }
    }
}
