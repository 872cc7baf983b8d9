using System;
using System.Collections.Generic;
using System.Linq;
using KeyServiceOps.Core.RingBalancer;
using KeyServiceOps.Core.Runbook;
using Xunit;

namespace KeyServiceOps.Core.Tests
{
    /// <summary>
    /// The self-healing decision as a pure function of (Kong's listing, the checks, the state, the limits, the clock):
    /// no lab, no Kong, no sockets, no files — a fake clock and a state object.
    /// </summary>
    public class HealingPolicyTests
    {
        private static readonly DateTimeOffset T0 = new DateTimeOffset(2026, 12, 3, 12, 0, 0, TimeSpan.Zero);

        private static string Key(int i) => $"10.0.0.{i}:8888";
        private static RingBalancerTarget Listed(int i, int weight = 100, params string[] tags)
            => new RingBalancerTarget { Target = Key(i), Address = $"10.0.0.{i}", Port = 8888, Weight = weight, Tags = new TextList(tags) };

        /// <summary>One pass: Kong lists <paramref name="listed"/>; <paramref name="sick"/> fail their checks.</summary>
        private static HealingPlan Pass(HealingState state, IEnumerable<RingBalancerTarget> listed, ISet<int> sick, SelfHealingOptions o, DateTimeOffset now,
            bool canRestart = false, ISet<int> maintenance = null)
        {
            var watch = HealingPolicy.Watch(state, "ks", listed, out var present);
            var seen = watch.Select(w =>
            {
                var i = int.Parse(w.Split(':')[0].Split('.')[3]);
                present.TryGetValue(w, out var t);
                return new HealingObservation
                {
                    Target = w, Address = $"10.0.0.{i}", Port = 8888, Listed = t, Healthy = !sick.Contains(i),
                    Status = sick.Contains(i) ? "Down" : "Up", Maintenance = maintenance?.Contains(i) == true,
                };
            }).ToList();
            return HealingPolicy.Decide(state, "ks", seen, o, now, canRestart);
        }

        private static List<RingBalancerTarget> Fleet(int n) => Enumerable.Range(1, n).Select(i => Listed(i)).ToList();
        private static HashSet<int> Set(params int[] i) => new HashSet<int>(i);

        [Fact]
        public void A_failing_target_is_held_by_hysteresis_then_removed_on_the_nth_failure()
        {
            var state = new HealingState();
            var o = new SelfHealingOptions { FailuresToRemove = 3 };
            var fleet = Fleet(4);
            var p1 = Pass(state, fleet, Set(2), o, T0);
            var p2 = Pass(state, fleet, Set(2), o, T0.AddSeconds(10));
            var p3 = Pass(state, fleet, Set(2), o, T0.AddSeconds(20));
            Assert.Equal(("Hysteresis", false, 1), (Assert.Single(p1.Steps).Reason.ToString(), p1.Steps[0].Act, p1.Steps[0].Failures));
            Assert.Equal((HealingReason.Hysteresis, 2), (Assert.Single(p2.Steps).Reason, p2.Steps[0].Failures));
            var remove = Assert.Single(p3.Steps);
            Assert.Equal((HealingAction.Remove, true, Key(2), 3), (remove.Action, remove.Act, remove.Target, remove.Failures));
            // A healthy check in between starts the count again.
            var state2 = new HealingState();
            Pass(state2, fleet, Set(2), o, T0);
            Pass(state2, fleet, Set(), o, T0.AddSeconds(10));
            Assert.Equal(1, Assert.Single(Pass(state2, fleet, Set(2), o, T0.AddSeconds(20)).Steps).Failures);
        }

        [Fact]
        public void Max_ejection_counts_the_removals_planned_in_the_same_pass()
        {
            var state = new HealingState();
            var o = new SelfHealingOptions { FailuresToRemove = 1, MaxEjectionShare = 0.10 };
            var plan = Pass(state, Fleet(20), Set(3, 4, 5), o, T0);
            Assert.Equal(2, plan.Steps.Count(x => x.Action == HealingAction.Remove && x.Act));          // 10 % of 20
            var held = Assert.Single(plan.Steps, x => !x.Act);
            Assert.Equal((HealingReason.MaxEjection, Key(5)), (held.Reason, held.Target));
            Assert.Contains("2 of 20 targets already out", held.Detail);
        }

        [Fact]
        public void Targets_already_out_by_this_healer_count_against_the_ejection_limit()
        {
            var state = new HealingState();
            var o = new SelfHealingOptions { FailuresToRemove = 1 };
            var fleet = Fleet(10);
            var first = Pass(state, fleet, Set(2), o, T0);
            HealingPolicy.MarkRemoved(state.Targets[Key(2)], T0, RemovalMethod.Delete);        // the healer carried it out
            var second = Pass(state, fleet.Where(t => t.Target != Key(2)).ToList(), Set(2, 3), o, T0.AddSeconds(10));
            Assert.True(Assert.Single(first.Steps).Act);
            var held = Assert.Single(second.Steps, x => x.Target == Key(3));
            Assert.Equal((false, HealingReason.MaxEjection), (held.Act, held.Reason));
        }

        [Fact]
        public void Under_the_panic_floor_nothing_is_taken_out_and_the_escalation_is_planned_once()
        {
            var state = new HealingState();
            var o = new SelfHealingOptions { FailuresToRemove = 1, MaxEjectionShare = 1.0 };
            var fleet = Fleet(4);
            var first = Pass(state, fleet, Set(1, 2, 3), o, T0);
            var second = Pass(state, fleet, Set(1, 2, 3), o, T0.AddSeconds(10));
            var esc = Assert.Single(first.Steps, x => x.Action == HealingAction.Escalate);
            Assert.Equal((true, HealingReason.PanicFloor), (esc.Act, esc.Reason));
            Assert.Equal(new[] { "10.0.0.1", "10.0.0.2", "10.0.0.3" }, esc.EscalateAddresses);
            Assert.All(first.Steps.Concat(second.Steps).Where(x => x.Action == HealingAction.Remove), x => Assert.Equal((false, HealingReason.PanicFloor), (x.Act, x.Reason)));
            Assert.DoesNotContain(second.Steps, x => x.Action == HealingAction.Escalate);
            Assert.Equal(T0, state.PanicSince);
            // Back above the floor: the panic ends, and a later panic escalates again.
            Pass(state, fleet, Set(1), o, T0.AddSeconds(20));
            Assert.Null(state.PanicSince);
        }

        [Fact]
        public void Every_target_failing_at_once_and_an_empty_upstream_are_hard_stops()
        {
            var o = new SelfHealingOptions();
            var all = Assert.Throws<OpsException>(() => Pass(new HealingState(), Fleet(3), Set(1, 2, 3), o, T0));
            Assert.Equal("AllTargetsFailing", all.ErrorId);
            var empty = Assert.Throws<OpsException>(() => HealingPolicy.Watch(new HealingState(), "ks", new[] { Listed(1, weight: 0) }, out _));
            Assert.Equal("UpstreamEmpty", empty.ErrorId);
        }

        [Fact]
        public void A_removed_target_comes_back_after_the_passes_to_add_and_only_if_this_healer_took_it_out()
        {
            var state = new HealingState();
            var o = new SelfHealingOptions { FailuresToRemove = 1, PassesToAdd = 2 };
            var fleet = Fleet(5);
            Pass(state, fleet, Set(4), o, T0);
            HealingPolicy.MarkRemoved(state.Targets[Key(4)], T0, RemovalMethod.Drain);
            var rest = fleet.Where(t => t.Target != Key(4)).ToList();
            var p1 = Pass(state, rest, Set(), o, T0.AddSeconds(10));
            var p2 = Pass(state, rest, Set(), o, T0.AddSeconds(20));
            Assert.Equal((HealingAction.Add, false, HealingReason.Hysteresis), (p1.Steps[0].Action, p1.Steps[0].Act, p1.Steps[0].Reason));
            Assert.Equal((HealingAction.Add, true, Key(4)), (p2.Steps[0].Action, p2.Steps[0].Act, p2.Steps[0].Target));
            Assert.Equal(RemovalMethod.Drain, HealingPolicy.RemovedWith(state.Targets[Key(4)]));
            // A target someone else took out is forgotten, never added back.
            var other = new HealingState();
            Pass(other, fleet, Set(), o, T0);
            var withoutFive = fleet.Take(4).ToList();
            Assert.Empty(Pass(other, withoutFive, Set(), o, T0.AddSeconds(10)).Steps);
            Assert.False(other.Targets.ContainsKey(Key(5)));
        }

        [Fact]
        public void A_target_marked_unhealthy_by_this_healer_counts_as_out_although_kong_still_lists_it()
        {
            var state = new HealingState();
            var o = new SelfHealingOptions { FailuresToRemove = 1, PassesToAdd = 1 };
            var fleet = Fleet(4);
            Pass(state, fleet, Set(1), o, T0);
            HealingPolicy.MarkRemoved(state.Targets[Key(1)], T0, RemovalMethod.MarkUnhealthy);
            var watch = HealingPolicy.Watch(state, "ks", fleet, out var present);
            Assert.Contains(Key(1), watch);
            Assert.False(present.ContainsKey(Key(1)));
            var back = Pass(state, fleet, Set(), o, T0.AddSeconds(10));
            Assert.Equal((HealingAction.Add, true), (back.Steps[0].Action, back.Steps[0].Act));
        }

        [Fact]
        public void Maintenance_is_left_alone()
        {
            var state = new HealingState();
            var o = new SelfHealingOptions { FailuresToRemove = 1 };
            var plan = Pass(state, Fleet(5), Set(2), o, T0, maintenance: Set(2));
            var step = Assert.Single(plan.Steps);
            Assert.Equal((false, HealingReason.Maintenance), (step.Act, step.Reason));
        }

        [Fact]
        public void Restarts_of_a_target_out_of_rotation_follow_grace_backoff_and_budget_on_the_clock()
        {
            var state = new HealingState();
            var o = new SelfHealingOptions { FailuresToRemove = 1, MaxRestartsPerHour = 3, RestartBackoff = TimeSpan.FromSeconds(10), StartupGrace = TimeSpan.FromSeconds(5),
                                             FailingRemediationMinimum = 100 };
            var fleet = Fleet(5);
            Pass(state, fleet, Set(3), o, T0, canRestart: true);
            HealingPolicy.MarkRemoved(state.Targets[Key(3)], T0, RemovalMethod.Delete);
            var rest = fleet.Where(t => t.Target != Key(3)).ToList();
            var now = T0.AddSeconds(5);
            HealingStep Next() => Assert.Single(Pass(state, rest, Set(3), o, now, canRestart: true).Steps);

            var s = Next();
            Assert.Equal((HealingAction.Restart, true), (s.Action, s.Act));
            HealingPolicy.Restarted(state, state.Targets[Key(3)], now, o);             // back-off level 1: 10 s
            now = now.AddSeconds(3);
            Assert.Equal(HealingReason.StartupGrace, Next().Reason);                  // within 5 s of the restart
            now = now.AddSeconds(5);
            Assert.Equal(HealingReason.RestartBackoff, Next().Reason);                // 8 s after: back-off
            now = now.AddSeconds(3);
            var third = Next();
            Assert.Equal((true, HealingReason.Unhealthy), (third.Act, third.Reason));
            HealingPolicy.Restarted(state, state.Targets[Key(3)], now, o);             // level 2: 20 s
            now = now.AddSeconds(15);
            Assert.Equal(HealingReason.RestartBackoff, Next().Reason);
            now = now.AddSeconds(6);
            Assert.True(Next().Act);
            HealingPolicy.Restarted(state, state.Targets[Key(3)], now, o);
            now = now.AddMinutes(5);
            var budget = Next();
            Assert.Equal((false, HealingReason.RestartBudget), (budget.Act, budget.Reason));
            Assert.Contains("3 restarts in the last hour", budget.Detail);
            now = T0.AddMinutes(61);
            Assert.True(Next().Act);                                                    // the first restart left the hour
            // Without canRestart nothing about restarts is planned.
            Assert.Empty(Pass(state, rest, Set(3), o, now).Steps);
        }

        [Fact]
        public void Restarts_that_do_not_help_stop_restarting_and_escalate_once()
        {
            var state = new HealingState();
            var o = new SelfHealingOptions { FailuresToRemove = 1, MaxRestartsPerHour = 10, RestartBackoff = TimeSpan.FromSeconds(1), RestartBackoffMax = TimeSpan.FromSeconds(1),
                                             StartupGrace = TimeSpan.FromSeconds(5) };
            var fleet = Fleet(5);
            Pass(state, fleet, Set(2), o, T0, canRestart: true);
            HealingPolicy.MarkRemoved(state.Targets[Key(2)], T0, RemovalMethod.Delete);
            var rest = fleet.Where(t => t.Target != Key(2)).ToList();
            var now = T0;
            for (int k = 0; k < 2; k++)
            {
                now = now.AddSeconds(10);
                Assert.True(Assert.Single(Pass(state, rest, Set(2), o, now, canRestart: true).Steps).Act);
                HealingPolicy.Restarted(state, state.Targets[Key(2)], now, o);
            }
            now = now.AddSeconds(10);                                                   // the second restart is judged: failed
            var stop = Pass(state, rest, Set(2), o, now, canRestart: true).Steps;
            Assert.Equal(new[] { (HealingAction.Escalate, true), (HealingAction.Restart, false) }, stop.Select(x => (x.Action, x.Act)));
            Assert.All(stop, x => Assert.Equal(HealingReason.FailingRemediation, x.Reason));
            Assert.All(state.RestartLog, r => Assert.False(r.Recovered));
            now = now.AddSeconds(10);
            var again = Assert.Single(Pass(state, rest, Set(2), o, now, canRestart: true).Steps);
            Assert.Equal((HealingAction.Restart, false, HealingReason.FailingRemediation), (again.Action, again.Act, again.Reason));
        }

        [Fact]
        public void The_policy_is_deterministic_for_the_same_inputs()
        {
            string Run()
            {
                var state = new HealingState();
                var o = new SelfHealingOptions { FailuresToRemove = 2 };
                var rows = new List<string>();
                for (int k = 0; k < 4; k++)
                    rows.AddRange(Pass(state, Fleet(30), Set(3, 7, 11, 12), o, T0.AddSeconds(10 * k)).Steps.Select(x => x.ToString()));
                return string.Join("\n", rows);
            }
            var a = Run();
            Assert.Equal(a, Run());
            Assert.Contains("MaxEjection", a);
        }
        [Fact]
        public void The_removal_method_is_typed_and_the_state_file_keeps_its_name()
        {
            var path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"kso-heal-{Guid.NewGuid():N}.json");
            try
            {
                System.IO.File.WriteAllText(path, "{\"Pass\":4,\"Targets\":{\"10.0.0.5:8888\":{\"Target\":\"10.0.0.5:8888\",\"RemovedBySelfHealing\":true,\"RemovedWith\":\"Drain\"}}}");
                var state = SelfHealer.Load(path);
                Assert.Equal(RemovalMethod.Drain, HealingPolicy.RemovedWith(state.Targets["10.0.0.5:8888"]));
                HealingPolicy.MarkRemoved(state.Targets["10.0.0.5:8888"], T0, RemovalMethod.MarkUnhealthy);
                Assert.Contains("\"RemovedWith\": \"MarkUnhealthy\"", Newtonsoft.Json.JsonConvert.SerializeObject(state, Newtonsoft.Json.Formatting.Indented));
            }
            finally { System.IO.File.Delete(path); }
        }
    }
}
