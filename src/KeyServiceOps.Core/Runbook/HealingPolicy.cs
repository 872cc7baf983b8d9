using System;
using System.Collections.Generic;
using System.Linq;
using KeyServiceOps.Core.RingBalancer;

namespace KeyServiceOps.Core.Runbook
{
    /// <summary>Why self-healing did, or did not do, something. PowerShell sees the name (<see cref="SelfHealingAction.Reason"/>).</summary>
    public enum HealingReason
    {
        Unhealthy, Recovered, CapacityGuard, MaxEjection, PanicFloor, Hysteresis, RestartBudget, RestartBackoff,
        FailingRemediation, Maintenance, StartupGrace, DependencyFault, LockHeld, Error, AlreadyRestarted,
    }

    /// <summary>What one pass saw of one watched target: whether Kong lists it in rotation, and its health check.</summary>
    public sealed class HealingObservation
    {
        public string Target { get; set; }
        public string Address { get; set; }
        public int Port { get; set; }
        /// <summary>The target as Kong lists it in rotation; null when it is out (taken out by this healer).</summary>
        public RingBalancerTarget Listed { get; set; }
        public bool Healthy { get; set; }
        public string Status { get; set; }
        public string Detail { get; set; }
        /// <summary>Tagged for maintenance (the healer asks the ring-balancer's rule; the policy only reads the answer).</summary>
        public bool Maintenance { get; set; }
    }

    /// <summary>
    /// One step the policy decided. <see cref="Act"/> false: held back, final (the reason says why). <see cref="Act"/> true:
    /// the healer is to carry it out — still subject to the capacity guard (removals), the operator's answer and the remote.
    /// </summary>
    public sealed class HealingStep
    {
        public string Target { get; set; }
        public HealingAction Action { get; set; }
        public bool Act { get; set; }
        public HealingReason Reason { get; set; }
        public string Detail { get; set; }
        public int Failures { get; set; }
        public int Successes { get; set; }
        /// <summary>For an escalation: the addresses whose incidents to escalate.</summary>
        public IReadOnlyList<string> EscalateAddresses { get; set; } = Array.Empty<string>();
        public override string ToString() => $"{Action} {Target}: {(Act ? "act" : "hold")} ({Reason}) {Detail}";
    }

    /// <summary>The decisions of one pass, in the order the healer carries them out, and what it counted.</summary>
    public sealed class HealingPlan
    {
        public List<HealingStep> Steps { get; } = new List<HealingStep>();
        public int Checked { get; set; }
        public int Unhealthy { get; set; }
        public bool Panic { get; set; }
        public int HealthyInRotation { get; set; }
        public int InRotation { get; set; }
    }

    /// <summary>
    /// The self-healing policy: a deterministic function of (what Kong lists, the health checks, the remembered state, the
    /// limits, the clock). No I/O: it updates the counters of the state it is given and returns the steps; the healer
    /// (<see cref="SelfHealer"/>) holds the lock, reads Kong, probes, asks, acts, writes notes and saves the state.
    /// </summary>
    public static class HealingPolicy
    {
        /// <summary>
        /// The targets to look at this pass: those in rotation (not counting ones this healer marked unhealthy), and those this
        /// healer took out. Forgets targets that are neither. Throws UpstreamEmpty when Kong lists nothing in rotation.
        /// </summary>
        public static List<string> Watch(HealingState state, string upstream, IEnumerable<RingBalancerTarget> targets, out Dictionary<string, RingBalancerTarget> present)
        {
            var list = targets.Where(t => t.Weight > 0).ToList();
            if (list.Count == 0)
                throw new OpsException("UpstreamEmpty", OpsErrorCategory.InvalidResult,
                    $"Kong lists upstream '{upstream}' with no target in rotation. Self-healing stops: an empty upstream is never a state to heal from.", upstream,
                    recommendedAction: "Check -Upstream and the Kong Admin address; put healthy targets back by hand (Add-RingBalancerTarget) before starting self-healing again.");
            // A target this healer marked unhealthy stays listed with its weight: it counts as out until marked healthy.
            bool Marked(string target) => state.Targets.TryGetValue(target, out var st) && st.RemovedBySelfHealing && st.RemovedWith == RemovalMethod.MarkUnhealthy;
            present = new Dictionary<string, RingBalancerTarget>(StringComparer.OrdinalIgnoreCase);
            foreach (var t in list) if (!Marked(t.Target)) present[t.Target] = t;
            var inRotation = present; // an out parameter cannot be used inside a lambda
            var watch = present.Values.Select(t => t.Target)
                .Concat(state.Targets.Values.Where(s => s.RemovedBySelfHealing && !inRotation.ContainsKey(s.Target)).Select(s => s.Target))
                .Distinct(StringComparer.OrdinalIgnoreCase).ToList();
            var watched = new HashSet<string>(watch, StringComparer.OrdinalIgnoreCase);
            foreach (var gone in state.Targets.Keys.Where(k => !watched.Contains(k)).ToList()) state.Targets.Remove(gone);
            return watch;
        }

        /// <summary>
        /// Decides the pass: counts each observation into the state (hysteresis, back-off reset, restart judgments), then, per
        /// target, what to do or why not. <paramref name="canRestart"/>: restarts are asked for and possible. Throws
        /// AllTargetsFailing when every watched target failed (the probe's or a shared dependency's fault, not each instance's).
        /// </summary>
        /// <summary>
        /// Times read back from the state file are checked against the clock now (issue #25: a clock step, or a file
        /// written on a host whose clock ran ahead): a start-up grace further ahead than its own span is expired; a time
        /// recorded in the future (restarts, removals, panic, healthy-since) is taken as now, so a back-off, a budget or a
        /// hold never lasts longer than its own maximum. Returns one sentence per repair, for a warning.
        /// </summary>
        public static List<string> SanitizeTimes(HealingState state, DateTimeOffset now, SelfHealingOptions limits)
        {
            var said = new List<string>();
            var slack = TimeSpan.FromMinutes(1);
            DateTimeOffset? Clamp(DateTimeOffset? t, string what)
            {
                if (t == null || t.Value <= now + slack) return t;
                said.Add($"{what} is {(t.Value - now).TotalMinutes:0} min in the future ({t.Value:yyyy-MM-ddTHH:mm:ssZ}; the clock stepped back?): taken as now");
                return now;
            }
            foreach (var s in state.Targets.Values)
            {
                if (s.GraceUntil != null && s.GraceUntil.Value > now + limits.StartupGrace + slack)
                {
                    said.Add($"{s.Target}: start-up grace until {s.GraceUntil:yyyy-MM-ddTHH:mm:ssZ} is further ahead than its own span ({limits.StartupGrace.TotalSeconds:0} s): treated as expired");
                    s.GraceUntil = now;
                }
                s.RemovedAt = Clamp(s.RemovedAt, $"{s.Target}: removed-at");
                s.HealthySince = Clamp(s.HealthySince, $"{s.Target}: healthy-since");
                s.Restarts = (s.Restarts ?? new List<DateTimeOffset>()).Select(r => Clamp(r, $"{s.Target}: a restart time").Value).ToList();
            }
            foreach (var r in state.RestartLog ?? new List<RestartRecord>()) r.At = Clamp(r.At, $"{r.Target}: a restart-log time").Value;
            state.PanicSince = Clamp(state.PanicSince, "panic-since");
            state.RemediationStoppedSince = Clamp(state.RemediationStoppedSince, "remediation-stopped-since");
            return said;
        }

        public static HealingPlan Decide(HealingState state, string upstream, IReadOnlyList<HealingObservation> seen, SelfHealingOptions limits, DateTimeOffset now, bool canRestart)
        {
            var plan = new HealingPlan { Checked = seen.Count, Unhealthy = seen.Count(x => !x.Healthy) };
            if (seen.Count > 1 && seen.All(x => !x.Healthy))
                throw new OpsException("AllTargetsFailing", OpsErrorCategory.ResourceUnavailable,
                    $"Every target of upstream '{upstream}' ({seen.Count}) failed its health check in the same pass ({string.Join(", ", seen.Select(x => x.Status).Distinct())}). " +
                    "Self-healing stops and takes nothing out: this is rarely the instances' fault.", upstream,
                    recommendedAction: "Check the probe from this machine (Test-KeyServiceHealth), the network path, and the shared dependencies (cipher, IAM); escalate the incident.");

            var inRotation = seen.Where(x => x.Listed != null).ToList();
            plan.InRotation = inRotation.Count;
            plan.HealthyInRotation = inRotation.Count(x => x.Healthy);
            plan.Panic = HealingLimits.InPanic(plan.HealthyInRotation, plan.InRotation, limits.PanicThreshold);
            if (!plan.Panic) state.PanicSince = null;
            else if (state.PanicSince == null)
            {
                state.PanicSince = now;
                plan.Steps.Add(new HealingStep
                {
                    Action = HealingAction.Escalate, Act = true, Reason = HealingReason.PanicFloor,
                    Detail = $"{plan.HealthyInRotation} of {plan.InRotation} targets in rotation healthy, under the panic floor of {SelfHealingStatus.Pct(limits.PanicThreshold)}: nothing is taken out until more are healthy; escalating",
                    EscalateAddresses = seen.Where(x => !x.Healthy).Take(5).Select(x => x.Address).ToList(),
                });
            }
            state.RestartLog = state.RestartLog.Where(r => now - r.At < TimeSpan.FromHours(1)).ToList();
            // First count what was seen into every target's state, then decide: the decisions read one consistent state.
            foreach (var x in seen)
            {
                var s = Entry(state, x);
                var t = x.Listed;
                if (t != null) { s.Weight = t.Weight; s.Tags = t.Tags?.ToArray() ?? new string[0]; s.RemovedBySelfHealing = false; s.RemovedAt = null; }
                var inGrace = s.GraceUntil != null && now < s.GraceUntil;
                if (!inGrace)
                    foreach (var rec in state.RestartLog.Where(r => string.Equals(r.Target, x.Target, StringComparison.OrdinalIgnoreCase) && r.Recovered == null)) rec.Recovered = x.Healthy;
                (s.BackoffLevel, s.HealthySince) = HealingLimits.AfterObservation(s.BackoffLevel, s.HealthySince, x.Healthy, now, limits.BackoffResetAfter);
                if (x.Healthy) { s.Successes++; s.Failures = 0; }
                else if (!inGrace) { s.Failures++; s.Successes = 0; }
                else s.Successes = 0;
            }
            var total = seen.Count;
            var outNow = state.Targets.Values.Count(x => x.RemovedBySelfHealing);

            foreach (var x in seen)
            {
                var s = state.Targets[x.Target];
                var t = x.Listed;
                var inGrace = s.GraceUntil != null && now < s.GraceUntil;

                void Step(HealingAction action, bool act, HealingReason reason, string detail)
                    => plan.Steps.Add(new HealingStep { Target = x.Target, Action = action, Act = act, Reason = reason, Detail = detail, Failures = s.Failures, Successes = s.Successes });

                if (x.Maintenance)
                {
                    if (!x.Healthy || s.RemovedBySelfHealing) Step(HealingAction.None, false, HealingReason.Maintenance, "marked for maintenance: self-healing leaves it alone");
                    continue;
                }
                if (t != null)
                {
                    if (x.Healthy) continue;
                    if (inGrace) { Step(HealingAction.Remove, false, HealingReason.StartupGrace, $"restarted recently; judged again after {s.GraceUntil:HH:mm:ss}"); continue; }
                    if (s.Failures < limits.FailuresToRemove) { Step(HealingAction.Remove, false, HealingReason.Hysteresis, $"{x.Status}: failure {s.Failures} of {limits.FailuresToRemove} before removal"); continue; }
                    if (plan.Panic) { Step(HealingAction.Remove, false, HealingReason.PanicFloor, $"{plan.HealthyInRotation} of {plan.InRotation} targets in rotation healthy (floor {SelfHealingStatus.Pct(limits.PanicThreshold)}): taking nothing out"); continue; }
                    if (!HealingLimits.EjectionAllows(total, outNow, limits.MaxEjectionShare))
                    {
                        Step(HealingAction.Remove, false, HealingReason.MaxEjection, $"{outNow} of {total} targets already out; at most {HealingLimits.MaxOut(total, limits.MaxEjectionShare)} at once ({SelfHealingStatus.Pct(limits.MaxEjectionShare)}, always one)");
                        continue;
                    }
                    // Counted as out from here on, so the pass never plans more removals than the limit allows; a removal the
                    // guard or the operator then refuses leaves its slot unused until the next pass.
                    outNow++;
                    Step(HealingAction.Remove, true, HealingReason.Unhealthy, $"{x.Status} {s.Failures} times");
                    continue;
                }
                // Out of rotation, taken out by this healer.
                if (x.Healthy)
                {
                    if (s.Successes < limits.PassesToAdd) { Step(HealingAction.Add, false, HealingReason.Hysteresis, $"healthy {s.Successes} of {limits.PassesToAdd} passes before it is added back"); continue; }
                    Step(HealingAction.Add, true, HealingReason.Recovered, $"healthy {s.Successes} passes");
                    continue;
                }
                if (canRestart) DecideRestart(state, s, limits, now, Step);
            }
            return plan;
        }

        private static void DecideRestart(HealingState state, HealingTargetState s, SelfHealingOptions limits, DateTimeOffset now, Action<HealingAction, bool, HealingReason, string> step)
        {
            if (s.GraceUntil != null && now < s.GraceUntil) { step(HealingAction.Restart, false, HealingReason.StartupGrace, $"restarted recently; waiting until {s.GraceUntil:HH:mm:ss}"); return; }
            var lastRestart = s.Restarts.Count > 0 ? s.Restarts.Max() : (DateTimeOffset?)null;
            s.Restarts = s.Restarts.Where(r => now - r < TimeSpan.FromHours(1)).ToList();
            var (used, nextAt) = HealingLimits.Budget(s.Restarts, now, limits.MaxRestartsPerHour);
            if (nextAt != null)
            {
                step(HealingAction.Restart, false, HealingReason.RestartBudget, $"{used} restarts in the last hour (limit {limits.MaxRestartsPerHour}); next possible at {nextAt:HH:mm:ss}");
                return;
            }
            var until = HealingLimits.BackoffUntil(lastRestart, s.BackoffLevel, limits.RestartBackoff, limits.RestartBackoffMax);
            if (until != null && now < until) { step(HealingAction.Restart, false, HealingReason.RestartBackoff, $"back-off level {s.BackoffLevel}: next restart not before {until:HH:mm:ss}"); return; }
            if (HealingLimits.RemediationFailing(state.RestartLog, now, limits.FailingRemediationShare, limits.FailingRemediationMinimum, out var judged, out var failed))
            {
                var detail = $"{failed} of the last hour's {judged} restarts did not recover (over {SelfHealingStatus.Pct(limits.FailingRemediationShare)}): restarts stopped";
                if (state.RemediationStoppedSince == null)
                {
                    state.RemediationStoppedSince = now;
                    step(HealingAction.Escalate, true, HealingReason.FailingRemediation, detail + "; escalating");
                }
                step(HealingAction.Restart, false, HealingReason.FailingRemediation, detail);
                return;
            }
            state.RemediationStoppedSince = null;
            step(HealingAction.Restart, true, HealingReason.Unhealthy, "would restart the container");
        }

        private static HealingTargetState Entry(HealingState state, HealingObservation x)
        {
            if (!state.Targets.TryGetValue(x.Target, out var s))
                state.Targets[x.Target] = s = new HealingTargetState { Target = x.Target, Address = x.Address, Port = x.Port };
            return s;
        }

        /// <summary>Remembered before Kong is asked: a kill right after the removal must not make the healer forget what it took out.</summary>
        public static void MarkRemoved(HealingTargetState s, DateTimeOffset now, RemovalMethod method)
        { s.RemovedBySelfHealing = true; s.RemovedAt = now; s.Successes = 0; s.RemovedWith = method; }

        /// <summary>The removal failed, or the target was put back: it is no longer out by this healer.</summary>
        public static void ClearRemoved(HealingTargetState s) { s.RemovedBySelfHealing = false; s.RemovedAt = null; s.RemovedWith = null; }

        /// <summary>How a target this healer took out goes back: the same way it went out.</summary>
        public static RemovalMethod RemovedWith(HealingTargetState s) => s.RemovedWith ?? RemovalMethod.Delete;

        /// <summary>A restart happened: the budget, the back-off, the hour's log (judged when the grace ends) and the grace.</summary>
        public static void Restarted(HealingState state, HealingTargetState s, DateTimeOffset now, SelfHealingOptions limits)
        {
            s.Restarts.Add(now);
            s.BackoffLevel++;
            state.RestartLog.Add(new RestartRecord { At = now, Target = s.Target });
            s.GraceUntil = now + limits.StartupGrace;
        }
    }
}
