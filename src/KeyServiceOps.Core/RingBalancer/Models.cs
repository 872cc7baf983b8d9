using System.Collections.Generic;
using System;
using System.Threading;
using System.Threading.Tasks;

namespace KeyServiceOps.Core.RingBalancer
{
    /// <summary>A target of a Kong upstream (the runbook's ring-balancer), with Kong's health view when asked.</summary>
    public sealed class RingBalancerTarget
    {
        public string Upstream { get; set; }
        public string Id { get; set; }
        public string Target { get; set; }
        public string Address { get; set; }
        public int Port { get; set; }
        public int Weight { get; set; }
        public TextList Tags { get; set; } = new TextList();
        public DateTimeOffset? CreatedAt { get; set; }
        /// <summary>HEALTHY, UNHEALTHY, DNS_ERROR, HEALTHCHECKS_OFF (Kong does not know), or null when not asked.</summary>
        public string KongHealth { get; set; }
        public override string ToString() => Target;
    }

    public sealed class UpstreamInfo
    {
        public string Id { get; set; }
        public string Name { get; set; }
        /// <summary>healthchecks.threshold: percentage of available weight under which Kong answers 503.</summary>
        public double Threshold { get; set; }
        public bool ActiveHealthchecks { get; set; }
        public TextList Tags { get; set; } = new TextList();
    }

    public enum TargetChangeAction { Removed, Drained, Added, Restored, AlreadyAbsent, AlreadyPresent, MarkedUnhealthy, MarkedHealthy }


    /// <summary>What `GET /` says about the Kong node: version and mode, read once per session.</summary>
    public sealed class KongNodeInfo
    {
        public string Version { get; set; }
        public int Major { get; set; }
        public int Minor { get; set; }
        /// <summary>configuration.database: postgres, cassandra, or "off" (DB-less).</summary>
        public string Database { get; set; }
        /// <summary>configuration.role: traditional, control_plane or data_plane.</summary>
        public string Role { get; set; }
        public bool DbLess => string.Equals(Database, "off", StringComparison.OrdinalIgnoreCase);
        public bool ControlPlane => string.Equals(Role, "control_plane", StringComparison.OrdinalIgnoreCase);
        public bool DataPlane => string.Equals(Role, "data_plane", StringComparison.OrdinalIgnoreCase);
        /// <summary>2.x: health marks are POST, weight-0 targets are invisible to a single-target GET.</summary>
        public bool Era2 => Major == 2;
        public override string ToString() => $"Kong {Version ?? "(version unknown)"}, database {Database ?? "?"}, role {Role ?? "?"}";
    }

    /// <summary>
    /// What Remove-/Add-RingBalancerTarget did. Carries the weight and tags the target had, so piping a
    /// removal into Add-RingBalancerTarget restores it exactly.
    /// </summary>
    public sealed class TargetChange
    {
        /// <summary>The typed value for code; PowerShell sees <see cref="Action"/> (its name), so JSON and CSV read the same as the views.</summary>
        internal TargetChangeAction ActionValue { get; set; }
        public string Action => ActionValue.ToString();
        public string Upstream { get; set; }
        public string Target { get; set; }
        public string Address { get; set; }
        public int Port { get; set; }
        public int Weight { get; set; }
        public TextList Tags { get; set; } = new TextList();
        public string Id { get; set; }
        public bool Forced { get; set; }
        public string Actor { get; set; } = "manual";
        public DateTimeOffset Time { get; set; } = DateTimeOffset.UtcNow;
        public string Detail { get; set; }
        public string IncidentId { get; set; }
        /// <summary>How it was taken out (or put back): Add-RingBalancerTarget binds it by name to undo the same way.</summary>
        internal RemovalMethod MethodValue { get; set; }
        public string Method => MethodValue.ToString();
        public override string ToString() => $"{Action} {Target} ({Upstream})";
    }

    /// <summary>What <see cref="RingBalancerService.RemoveSafelyAsync"/> is asked to do.</summary>
    public sealed class RemovalRequest
    {
        public string Upstream { get; set; }
        public RingBalancerTarget Target { get; set; }
        public RemovalMethod Method { get; set; }
        /// <summary>Removals already made by the same caller (a pipeline, a self-healing pass), counted by the share guard.</summary>
        public int RemovedInBatch { get; set; }
        /// <summary>Go past a refusing guard (audited as forced).</summary>
        public bool Force { get; set; }
        public bool WhatIf { get; set; }
        public string Actor { get; set; }
        public string Incident { get; set; }
        /// <summary>What the confirmation prompt names (default: the target) and says (default: "Remove from …").</summary>
        public string ConfirmTarget { get; set; }
        public string Action { get; set; }
        /// <summary>Runs after the guard allowed it and before Kong is asked (self-healing remembers the removal here).</summary>
        public Action BeforeChange { get; set; }
        /// <summary>
        /// Asked inside the lease, after the answer: is the removal still wanted? (Self-healing re-checks health: another
        /// responder may have fixed the instance while this one waited.) Returns null to go on, or why not.
        /// </summary>
        public Func<CancellationToken, Task<string>> StillWanted { get; set; }
        /// <summary>The batch this removal belongs to (a self-healing pass): the guard reads Kong once per batch, not per removal (#32).</summary>
        public RemovalBatch Batch { get; set; }
    }

    /// <summary>
    /// Removals judged on one read of the upstream (#32): the first removal of the batch reads Kong (the upstream, its
    /// targets, Kong's health, the audit log's removals not put back) right before it acts; each later one is judged on
    /// that read with the batch's own removals counted out, and probes already answered are not asked again. A fresh
    /// read is taken after <see cref="MaxRemovalsPerRead"/> removals, after <see cref="MaxAge"/>, and after a removal
    /// whose answer was lost or refused.
    /// </summary>
    public sealed class RemovalBatch
    {
        public int MaxRemovalsPerRead { get; set; } = 25;
        public TimeSpan MaxAge { get; set; } = TimeSpan.FromSeconds(10);
        /// <summary>How many times Kong was read for the guard in this batch.</summary>
        public int Reads { get; private set; }

        internal sealed class GuardRead
        {
            public string Upstream;
            public DateTimeOffset At;
            public UpstreamInfo Info;
            public List<RingBalancerTarget> Targets;
            public Dictionary<string, string> KongHealth;
            public IReadOnlyDictionary<string, string> RemovedAndNotBack;
            public readonly Dictionary<string, bool> Probed = new Dictionary<string, bool>(StringComparer.OrdinalIgnoreCase);
        }

        internal GuardRead Read { get; private set; }
        internal HashSet<string> RemovedSinceRead { get; } = new HashSet<string>(StringComparer.OrdinalIgnoreCase);

        internal bool Valid(string upstream, DateTimeOffset now)
            => Read != null && string.Equals(Read.Upstream, upstream, StringComparison.Ordinal) && RemovedSinceRead.Count < MaxRemovalsPerRead && now - Read.At < MaxAge;

        internal RemovalBatch Take(GuardRead read) { Read = read; RemovedSinceRead.Clear(); Reads++; return this; }
        internal void Removed(string target) => RemovedSinceRead.Add(target);
        internal void Invalidate() => Read = null;
    }

    /// <summary>What the one removal path did: the guard's decision, and the change when there was one.</summary>
    public sealed class RemovalResult
    {
        public GuardDecision Guard { get; set; }
        /// <summary>Null when nothing was changed (declined, -WhatIf, or the guard refused).</summary>
        public TargetChange Change { get; set; }
        public bool Declined { get; set; }
        public bool Forced { get; set; }
        /// <summary>Why the removal was no longer wanted when its turn came (<see cref="RemovalRequest.StillWanted"/>); nothing changed.</summary>
        public string NoLongerWanted { get; set; }
    }

    public sealed class GuardDecision
    {
        public bool Allowed { get; set; }
        public string ErrorId { get; set; }
        public string Reason { get; set; }
        public int TotalTargets { get; set; }
        public int HealthyRemaining { get; set; }
        /// <summary>Targets out of rotation now (drained, marked or found unhealthy, removed and not back), not counting this one.</summary>
        public int OutOfRotation { get; set; }
    }
}
