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

namespace KeyServiceOps.Core.Tests
{
    /// <summary>The self-healing contract's limits as pure functions, on a fake clock, without a lab.</summary>
    public class HealingLimitsTests
    {
        private static readonly DateTimeOffset T0 = new DateTimeOffset(2026, 12, 3, 12, 0, 0, TimeSpan.Zero);

        [Theory]
        [InlineData(3, 0.10, 1)]   // always one
        [InlineData(10, 0.10, 1)]
        [InlineData(19, 0.10, 1)]
        [InlineData(20, 0.10, 2)]
        [InlineData(50, 0.10, 5)]
        [InlineData(10, 0.30, 3)]
        public void Max_ejection_is_a_share_of_the_upstream_but_always_one(int total, double share, int expected)
            => Assert.Equal(expected, HealingLimits.MaxOut(total, share));

        [Fact]
        public void Max_ejection_counts_targets_already_out()
        {
            Assert.True(HealingLimits.EjectionAllows(20, 1, 0.10));
            Assert.False(HealingLimits.EjectionAllows(20, 2, 0.10));
            Assert.False(HealingLimits.EjectionAllows(3, 1, 0.10));
        }

        [Theory]
        [InlineData(2, 5, true)]
        [InlineData(3, 5, false)]
        [InlineData(1, 2, false)]   // half healthy is not under a 50 % floor
        [InlineData(0, 0, false)]
        public void The_panic_floor_holds_when_fewer_than_the_share_are_healthy(int healthy, int inRotation, bool panic)
            => Assert.Equal(panic, HealingLimits.InPanic(healthy, inRotation, 0.5));

        [Fact]
        public void Back_off_doubles_from_10_s_to_5_min_and_resets_after_10_min_healthy()
        {
            var initial = TimeSpan.FromSeconds(10); var max = TimeSpan.FromMinutes(5);
            Assert.Null(HealingLimits.BackoffUntil(null, 0, initial, max));
            var waits = Enumerable.Range(1, 8).Select(level => (HealingLimits.BackoffUntil(T0, level, initial, max).Value - T0).TotalSeconds).ToList();
            Assert.Equal(new double[] { 10, 20, 40, 80, 160, 300, 300, 300 }, waits);

            // Healthy for 9 minutes, a failure, then 10 minutes healthy: only the unbroken 10 minutes reset the level.
            int level = 4; DateTimeOffset? since = null;
            for (int m = 0; m <= 9; m++) (level, since) = HealingLimits.AfterObservation(level, since, true, T0.AddMinutes(m), TimeSpan.FromMinutes(10));
            Assert.Equal(4, level);
            (level, since) = HealingLimits.AfterObservation(level, since, false, T0.AddMinutes(9.5), TimeSpan.FromMinutes(10));
            Assert.Null(since);
            for (int m = 10; m <= 19; m++) (level, since) = HealingLimits.AfterObservation(level, since, true, T0.AddMinutes(m), TimeSpan.FromMinutes(10));
            Assert.Equal(4, level);
            (level, since) = HealingLimits.AfterObservation(level, since, true, T0.AddMinutes(20), TimeSpan.FromMinutes(10));
            Assert.Equal(0, level);
        }

        [Fact]
        public void Remediation_is_failing_when_most_judged_restarts_of_the_hour_did_not_recover()
        {
            var log = new List<RestartRecord>
            {
                new RestartRecord { At = T0.AddMinutes(-90), Recovered = false },  // over an hour ago: not counted
                new RestartRecord { At = T0.AddMinutes(-30), Recovered = true },
                new RestartRecord { At = T0.AddMinutes(-20), Recovered = false },
                new RestartRecord { At = T0.AddMinutes(-1), Recovered = null },    // not judged yet
            };
            Assert.False(HealingLimits.RemediationFailing(log, T0, 0.5, 2, out var judged, out var failed));
            Assert.Equal((2, 1), (judged, failed));
            log.Add(new RestartRecord { At = T0.AddMinutes(-10), Recovered = false });
            Assert.True(HealingLimits.RemediationFailing(log, T0, 0.5, 2, out judged, out failed));
            Assert.Equal((3, 2), (judged, failed));
            Assert.False(HealingLimits.RemediationFailing(log, T0, 0.5, 4, out _, out _)); // not enough judged yet
        }

        [Fact]
        public void The_status_reports_what_is_out_the_budget_left_the_back_off_and_the_limits()
        {
            var state = new HealingState { Pass = 7 };
            state.Targets["10.0.0.5:8888"] = new HealingTargetState
            {
                Target = "10.0.0.5:8888", RemovedBySelfHealing = true, RemovedAt = T0.AddMinutes(-3), RemovedWith = RemovalMethod.Drain, Failures = 4,
                Restarts = new List<DateTimeOffset> { T0.AddMinutes(-70), T0.AddMinutes(-2) }, BackoffLevel = 2,
            };
            state.Targets["10.0.0.6:8888"] = new HealingTargetState { Target = "10.0.0.6:8888", Successes = 9 };
            state.RestartLog.Add(new RestartRecord { At = T0.AddMinutes(-2), Target = "10.0.0.5:8888", Recovered = false });
            var st = SelfHealingStatus.From(state, new SelfHealingOptions { Restart = true }, "/tmp/state.json", T0);
            Assert.Equal(new[] { "10.0.0.5:8888" }, st.TargetsOut);
            Assert.Equal((1, 1), (st.RestartsLastHour, st.RestartsNotRecovered));
            var t = st.Targets[0];
            Assert.Equal(("10.0.0.5:8888", true, "Drain", 1, 2), (t.Target, t.Out, t.RemovedWith, t.RestartsLastHour, t.RestartBudgetLeft));
            Assert.Null(t.BackoffUntil); // level 2 = 20 s after the restart 2 minutes ago: over
            Assert.Equal(T0.AddMinutes(-2).AddSeconds(20), SelfHealingStatus.From(state, new SelfHealingOptions(), null, T0.AddMinutes(-2).AddSeconds(5)).Targets[0].BackoffUntil);
            Assert.Null(st.Targets[1].RemovedWith);
            Assert.Contains(st.Limits, l => l.Contains("max ejection 10%"));
            Assert.Contains(st.Limits, l => l.Contains("panic floor"));
            Assert.Contains(st.Limits, l => l.Contains("back-off 10 s doubling to 5 min"));
        }

        [Fact]
        public void The_hourly_budget_says_when_the_next_restart_is_possible()
        {
            var r = new[] { T0.AddMinutes(-50), T0.AddMinutes(-20), T0.AddMinutes(-5) };
            Assert.Equal((3, (DateTimeOffset?)T0.AddMinutes(10)), HealingLimits.Budget(r, T0, 3));
            Assert.Equal((3, (DateTimeOffset?)null), HealingLimits.Budget(r, T0, 4));
            Assert.Equal(2, HealingLimits.Budget(r, T0.AddMinutes(15), 3).used);
        }
    }

    /// <summary>The limits as the healer keeps them, against the lab, on a fake clock.</summary>
    public class SelfHealingContractTests
    {
        private static readonly CancellationToken None = CancellationToken.None;
        private static Task<bool> Yes(string t, string a) => Task.FromResult(true);

        private static SelfHealingOptions Opts(Func<DateTimeOffset> clock = null) => new SelfHealingOptions
        {
            StatePath = Path.Combine(Path.GetTempPath(), $"kso-heal-{Guid.NewGuid():N}.json"), FailuresToRemove = 1, PassesToAdd = 1,
            Clock = clock ?? (() => DateTimeOffset.UtcNow),
        };

        private static int InRotation(Lab.Estate.Lab lab) => lab.Kong.Targets(lab.Upstream).Count(t => t.Weight > 0);

        [Fact]
        public async Task Max_ejection_takes_out_one_of_ten_and_the_summary_names_what_it_held_back()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 10 });
            foreach (var i in new[] { 1, 4, 7 }) await lab[i].SetModeAsync(InstanceMode.Down);
            using var rig = new OpsRig(lab);
            var sums = new List<SelfHealingPassSummary>();
            var actions = await rig.Healer().PassAsync(Opts(), Yes, null, None, sums.Add);
            Assert.Single(actions, a => a.ActionValue == HealingAction.Remove && a.OutcomeValue == StepOutcome.Done);
            Assert.Equal(2, actions.Count(a => a.Reason == "MaxEjection"));
            Assert.Equal(9, InRotation(lab));
            Assert.Contains("MaxEjection x2", Assert.Single(sums).HeldBack);
            // Still one out next pass: the one already out counts.
            var again = await rig.Healer().PassAsync(new SelfHealingOptions { StatePath = Opts().StatePath }, Yes, null, None);
            Assert.Equal(9, InRotation(lab));
        }

        [Fact]
        public async Task Under_the_panic_floor_nothing_is_taken_out_and_the_incidents_are_escalated_once()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 4, PagerDuty = true });
            var inc = lab.PagerDuty.AddAlert(lab[1].Address);
            foreach (var i in new[] { 1, 2, 3 }) await lab[i].SetModeAsync(InstanceMode.Down);
            using var rig = new OpsRig(lab);
            var o = Opts();
            var first = await rig.Healer().PassAsync(o, Yes, null, None);
            var second = await rig.Healer().PassAsync(o, Yes, null, None);
            Assert.Equal(4, InRotation(lab));
            Assert.All(first.Concat(second).Where(a => a.ActionValue == HealingAction.Remove), a => Assert.Equal("PanicFloor", a.Reason));
            var esc = Assert.Single(first.Concat(second), a => a.ActionValue == HealingAction.Escalate);
            Assert.Equal(("PanicFloor", StepOutcome.Done, inc.Id), (esc.Reason, esc.OutcomeValue, esc.IncidentId));
            Assert.Equal(2, lab.PagerDuty.Incident(inc.Id).Level);
            Assert.Contains(lab.PagerDuty.Incident(inc.Id).Notes, n => n.Content.Contains("self-healing escalated"));
            // Back above the floor: removals resume.
            await lab[2].SetModeAsync(InstanceMode.Up);
            await lab[3].SetModeAsync(InstanceMode.Up);
            var third = await rig.Healer().PassAsync(o, Yes, null, None);
            Assert.Contains(third, a => a.ActionValue == HealingAction.Remove && a.OutcomeValue == StepOutcome.Done && a.Target == lab[1].Target);
        }

        [Fact]
        public async Task Every_target_failing_at_once_is_a_hard_stop_that_changes_nothing()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3 });
            foreach (var i in lab.Instances) await i.SetModeAsync(InstanceMode.Down);
            using var rig = new OpsRig(lab);
            var e = await Assert.ThrowsAsync<OpsException>(() => rig.Healer().PassAsync(Opts(), Yes, null, None));
            Assert.Equal("AllTargetsFailing", e.ErrorId);
            Assert.Equal(OpsErrorCategory.ResourceUnavailable, e.Category);
            Assert.NotNull(e.RecommendedAction);
            Assert.Equal(3, InRotation(lab));
            Assert.Equal(0, lab.Kong.Requests.Count(r => !r.StartsWith("GET")));
        }

        [Fact]
        public async Task An_upstream_Kong_lists_as_empty_is_a_hard_stop()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 2 });
            foreach (var t in lab.Kong.Targets(lab.Upstream)) lab.Kong.SetWeight(lab.Upstream, t.Target, 0);
            using var rig = new OpsRig(lab);
            var e = await Assert.ThrowsAsync<OpsException>(() => rig.Healer().PassAsync(Opts(), Yes, null, None));
            Assert.Equal("UpstreamEmpty", e.ErrorId);
            Assert.Equal(0, lab.Kong.Requests.Count(r => !r.StartsWith("GET")));
        }

        private static async Task<(List<DateTimeOffset> restarts, List<SelfHealingAction> all)> CrashLoop(Lab.Estate.Lab lab, SelfHealingOptions o, Func<DateTimeOffset> getNow, Action<TimeSpan> advance, int passes)
        {
            using var rig = new OpsRig(lab);
            var healer = rig.Healer();
            var restarts = new List<DateTimeOffset>(); var all = new List<SelfHealingAction>();
            for (int p = 0; p < passes; p++) // one simulated 15 s apart
            {
                foreach (var a in await healer.PassAsync(o, Yes, null, None))
                {
                    if (a.ActionValue == HealingAction.Restart && a.OutcomeValue == StepOutcome.Done) restarts.Add(getNow());
                    all.Add(a);
                }
                advance(TimeSpan.FromSeconds(15));
            }
            return (restarts, all);
        }

        [Fact]
        public async Task Restarts_of_a_crash_looping_target_back_off_from_10_s_doubling()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true });
            await lab[0].ApplyScenarioAsync(FaultScenario.PortInUse, persists: true);
            var now = DateTimeOffset.UtcNow;
            var o = Opts(() => now);
            o.Restart = true; o.MaxRestartsPerHour = 20; o.StartupGrace = TimeSpan.FromSeconds(5); o.FailingRemediationMinimum = 1000;
            var (restarts, all) = await CrashLoop(lab, o, () => now, d => now += d, 40);
            Assert.Equal(restarts.Count, lab[0].Restarts);
            // Passes are 15 s apart: restarts at +15, +30, +60, +105, +195, +360 s (back-off 10, 20, 40, 80, 160 s).
            var gaps = restarts.Zip(restarts.Skip(1), (a, b) => (b - a).TotalSeconds).ToList();
            Assert.Equal(new double[] { 15, 30, 45, 90, 165 }, gaps);
            Assert.Contains(all, a => a.Reason == "RestartBackoff" && a.Detail.Contains("back-off level"));
        }

        [Fact]
        public async Task Restarts_that_do_not_recover_stop_with_one_escalation()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true, PagerDuty = true });
            var inc = lab.PagerDuty.AddAlert(lab[0].Address);
            await lab[0].ApplyScenarioAsync(FaultScenario.PortInUse, persists: true);
            var now = DateTimeOffset.UtcNow;
            var o = Opts(() => now);
            o.Restart = true; o.MaxRestartsPerHour = 10; o.StartupGrace = TimeSpan.FromSeconds(30);
            var (restarts, all) = await CrashLoop(lab, o, () => now, d => now += d, 30);
            Assert.Equal(restarts.Count, lab[0].Restarts);
            // Two restarts judged (each at the end of its 30 s grace), neither recovered: no third.
            Assert.Equal(2, restarts.Count);
            Assert.Contains(all, a => a.ActionValue == HealingAction.Restart && a.Reason == "FailingRemediation");
            var esc = Assert.Single(all, a => a.ActionValue == HealingAction.Escalate);
            Assert.Equal(("FailingRemediation", inc.Id), (esc.Reason, esc.IncidentId));
            Assert.Equal(2, lab.PagerDuty.Incident(inc.Id).Level);
        }
    }
}
