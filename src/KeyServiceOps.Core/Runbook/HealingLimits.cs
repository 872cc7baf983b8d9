using System;
using System.Collections.Generic;
using System.Linq;

namespace KeyServiceOps.Core.Runbook
{
    /// <summary>One restart self-healing made, and whether the instance was healthy once its start-up grace ended.</summary>
    public sealed class RestartRecord
    {
        public DateTimeOffset At { get; set; }
        public string Target { get; set; }
        /// <summary>Null until judged (the first pass after the start-up grace).</summary>
        public bool? Recovered { get; set; }
    }

    /// <summary>
    /// The self-healing contract's limits as pure functions of (state, limits, clock): no I/O, so each is tested on a
    /// fake clock without a lab. The healer asks them and does only the I/O around them.
    /// </summary>
    public static class HealingLimits
    {
        /// <summary>
        /// Max ejection: at most <paramref name="share"/> of the upstream out at once, counting targets already out,
        /// but always one (Envoy's max_ejection_percent rule: 10 % by default, and at least one host).
        /// </summary>
        public static int MaxOut(int totalTargets, double share) => Math.Max(1, (int)Math.Floor(totalTargets * share + 1e-9));

        public static bool EjectionAllows(int totalTargets, int outNow, double share) => outNow < MaxOut(totalTargets, share);

        /// <summary>
        /// Panic floor: fewer than <paramref name="threshold"/> of the targets in rotation healthy means a shared cause
        /// (a dependency, the network, the probe itself): take nothing out. Envoy and Kong balance across all hosts then.
        /// </summary>
        public static bool InPanic(int healthy, int inRotation, double threshold) => inRotation > 0 && healthy < threshold * inRotation;

        /// <summary>
        /// Kubernetes' crash-loop back-off per target: <paramref name="initial"/> after the first restart, doubling to
        /// <paramref name="max"/>; null when a restart is allowed now (no restart yet).
        /// </summary>
        public static DateTimeOffset? BackoffUntil(DateTimeOffset? lastRestart, int level, TimeSpan initial, TimeSpan max)
        {
            if (lastRestart == null || level <= 0) return null;
            var ticks = initial.Ticks * (1L << Math.Min(30, level - 1));
            return lastRestart.Value + TimeSpan.FromTicks(Math.Min(ticks, max.Ticks));
        }

        /// <summary>
        /// The back-off level after a health observation: it resets to 0 once the target has been healthy without a
        /// break for <paramref name="resetAfter"/> (10 minutes in Kubernetes). Returns (level, healthySince).
        /// </summary>
        public static (int level, DateTimeOffset? healthySince) AfterObservation(int level, DateTimeOffset? healthySince, bool healthy, DateTimeOffset now, TimeSpan resetAfter)
        {
            if (!healthy) return (level, null);
            var since = healthySince ?? now;
            return now - since >= resetAfter ? (0, since) : (level, since);
        }

        /// <summary>
        /// Stop on failing remediation: of the restarts in the hour before <paramref name="now"/> that have been judged,
        /// more than <paramref name="share"/> did not recover (and at least <paramref name="minimum"/> were judged).
        /// </summary>
        public static bool RemediationFailing(IEnumerable<RestartRecord> log, DateTimeOffset now, double share, int minimum, out int judged, out int failed)
        {
            var recent = (log ?? Enumerable.Empty<RestartRecord>()).Where(r => now - r.At < TimeSpan.FromHours(1) && r.Recovered != null).ToList();
            judged = recent.Count;
            failed = recent.Count(r => r.Recovered == false);
            return judged >= minimum && failed > share * judged;
        }

        /// <summary>The hourly budget: restarts of this target in the hour before <paramref name="now"/>, and when the next is possible.</summary>
        public static (int used, DateTimeOffset? nextAt) Budget(IEnumerable<DateTimeOffset> restarts, DateTimeOffset now, int perHour)
        {
            var recent = (restarts ?? Enumerable.Empty<DateTimeOffset>()).Where(r => now - r < TimeSpan.FromHours(1)).OrderBy(r => r).ToList();
            return (recent.Count, recent.Count >= perHour ? recent[recent.Count - perHour].AddHours(1) : (DateTimeOffset?)null);
        }
    }
}
