using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;

namespace KeyServiceOps.Core.Runbook
{
    /// <summary>What self-healing knows about one target between passes, read from its state file.</summary>
    public sealed class SelfHealingTargetStatus
    {
        public string Target { get; set; }
        /// <summary>Taken out by self-healing (and not yet put back).</summary>
        public bool Out { get; set; }
        public DateTimeOffset? OutSince { get; set; }
        public string RemovedWith { get; set; }
        public int Failures { get; set; }
        public int Successes { get; set; }
        public int RestartsLastHour { get; set; }
        public int RestartBudgetLeft { get; set; }
        public int BackoffLevel { get; set; }
        public DateTimeOffset? BackoffUntil { get; set; }
        public DateTimeOffset? GraceUntil { get; set; }
        public override string ToString() => Target;
    }

    /// <summary>Get-KeyServiceSelfHealingStatus: the targets out and since when, counters, budgets, and the limits in force.</summary>
    public sealed class SelfHealingStatus
    {
        public string StatePath { get; set; }
        public int Pass { get; set; }
        public TextList TargetsOut { get; set; } = new TextList();
        public DateTimeOffset? PanicSince { get; set; }
        public DateTimeOffset? RestartsStoppedSince { get; set; }
        public int RestartsLastHour { get; set; }
        public int RestartsNotRecovered { get; set; }
        public TextList Limits { get; set; } = new TextList();
        public List<SelfHealingTargetStatus> Targets { get; set; } = new List<SelfHealingTargetStatus>();

        /// <summary>Reads nothing but the state it is given: the cmdlet loads the file, tests pass a state and a clock.</summary>
        public static SelfHealingStatus From(HealingState state, SelfHealingOptions o, string statePath, DateTimeOffset now)
        {
            var total = Math.Max(1, state.Targets.Count);
            var log = (state.RestartLog ?? new List<RestartRecord>()).Where(r => now - r.At < TimeSpan.FromHours(1)).ToList();
            var st = new SelfHealingStatus
            {
                StatePath = statePath, Pass = state.Pass, PanicSince = state.PanicSince, RestartsStoppedSince = state.RemediationStoppedSince,
                RestartsLastHour = log.Count, RestartsNotRecovered = log.Count(r => r.Recovered == false),
                TargetsOut = new TextList(state.Targets.Values.Where(t => t.RemovedBySelfHealing).Select(t => t.Target)),
                Limits = new TextList(new[]
                {
                    $"remove after {o.FailuresToRemove} failed checks, add back after {o.PassesToAdd} passing",
                    state.Targets.Count == 0
                        ? $"max ejection {Pct(o.MaxEjectionShare)} of the upstream, always one (no targets known yet)"
                        : $"max ejection {Pct(o.MaxEjectionShare)} of the upstream, always one (now at most {HealingLimits.MaxOut(state.Targets.Count, o.MaxEjectionShare)} of {state.Targets.Count})",
                    $"panic floor: nothing out under {Pct(o.PanicThreshold)} healthy",
                    "every target failing at once or an empty upstream: hard stop",
                    $"restarts {(o.Restart ? "on" : "off")}: at most {o.MaxRestartsPerHour}/hour per target, back-off {Secs(o.RestartBackoff)} doubling to {Secs(o.RestartBackoffMax)}, reset after {Secs(o.BackoffResetAfter)} healthy",
                    $"restarts stop when over {Pct(o.FailingRemediationShare)} of the hour's (at least {o.FailingRemediationMinimum}) did not recover",
                }),
            };
            foreach (var t in state.Targets.Values.OrderBy(t => t.Target, StringComparer.OrdinalIgnoreCase))
            {
                var (used, _) = HealingLimits.Budget(t.Restarts, now, o.MaxRestartsPerHour);
                var until = HealingLimits.BackoffUntil(t.Restarts.Count > 0 ? t.Restarts.Max() : (DateTimeOffset?)null, t.BackoffLevel, o.RestartBackoff, o.RestartBackoffMax);
                st.Targets.Add(new SelfHealingTargetStatus
                {
                    Target = t.Target, Out = t.RemovedBySelfHealing, OutSince = t.RemovedAt, RemovedWith = t.RemovedBySelfHealing ? (t.RemovedWith ?? RemovalMethod.Delete).ToString() : null,
                    Failures = t.Failures, Successes = t.Successes, RestartsLastHour = used, RestartBudgetLeft = Math.Max(0, o.MaxRestartsPerHour - used),
                    BackoffLevel = t.BackoffLevel, BackoffUntil = until != null && until > now ? until : null, GraceUntil = t.GraceUntil != null && t.GraceUntil > now ? t.GraceUntil : null,
                });
            }
            return st;
        }

        internal static string Pct(double share) => (share * 100).ToString("0.#", CultureInfo.InvariantCulture) + "%";

        private static string Secs(TimeSpan t) => t.TotalSeconds >= 60 && t.TotalSeconds % 60 == 0 ? $"{t.TotalMinutes:0} min" : $"{t.TotalSeconds.ToString("0.#", CultureInfo.InvariantCulture)} s";
    }
}
