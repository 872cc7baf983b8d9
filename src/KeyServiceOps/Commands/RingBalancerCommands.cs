using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using KeyServiceOps.Core;
using KeyServiceOps.Core.RingBalancer;
using KeyServiceOps.Bases;

namespace KeyServiceOps.Commands
{
    [Cmdlet(VerbsCommon.Get, "RingBalancerTarget")]
    [OutputType(typeof(RingBalancerTarget))]
    public sealed class GetRingBalancerTargetCommand : KongCmdlet
    {
        private const int ActivityId = 3101;

        [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
        [ArgumentCompleter(typeof(UpstreamCompleter))]
        public string Upstream { get; set; }

        /// <summary>Wildcard filter on the target string (e.g. 10.0.0.*).</summary>
        [Parameter] [ArgumentCompleter(typeof(TargetCompleter))] public string Target { get; set; }

        /// <summary>Skip Kong's health view (one request fewer per page).</summary>
        [Parameter] public SwitchParameter NoHealth { get; set; }

        protected override void ProcessRecord() => PerItem(() =>
        {
            var upstream = UpstreamOrDefault(Upstream);
            var kong = RingBalancer.Kong;
            var progress = new Progress<int>(n => TryPost(() => Progress(ActivityId, $"Reading targets of upstream '{upstream}'", $"{n} targets read")));
            var targets = Await(kong.GetTargetsAsync(upstream, Cancellation, progress));
            if (!NoHealth)
            {
                var health = Await(kong.GetHealthAsync(upstream, Cancellation));
                foreach (var t in targets) t.KongHealth = health.TryGetValue(t.Target, out var h) ? h : null;
            }
            ProgressDone(ActivityId, $"Reading targets of upstream '{upstream}'");
            var pattern = Target == null ? null : new WildcardPattern(Target, WildcardOptions.IgnoreCase);
            foreach (var t in targets)
                if (pattern == null || pattern.IsMatch(t.Target)) WriteObject(t);
        });
    }

    [Cmdlet(VerbsCommon.Remove, "RingBalancerTarget", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
    [OutputType(typeof(TargetChange))]
    public sealed class RemoveRingBalancerTargetCommand : KongCmdlet
    {
        /// <summary>How long to wait for another operator acting on the same instance before InstanceBusy.</summary>
        [Parameter] public double LockTimeoutSec { get; set; }

        protected override IReadOnlyDictionary<string, string> Overrides => OverrideMap;
        private static readonly IReadOnlyDictionary<string, string> OverrideMap = SettingParameters.Join(SettingParameters.Kong, SettingParameters.LockTimeout);

        private int _removed;

        [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [ArgumentCompleter(typeof(TargetCompleter))]
        [TargetInput]
        public InstancePipeBind Target { get; set; }

        [Parameter(ValueFromPipelineByPropertyName = true)]
        [Alias("IPAddress", "ComputerName", "Host")]
        public string Address { get; set; }

        [Parameter(ValueFromPipelineByPropertyName = true), ValidateRange(0, 65535)]
        public int Port { get; set; }

        [Parameter(ValueFromPipelineByPropertyName = true)]
        [ArgumentCompleter(typeof(UpstreamCompleter))]
        public string Upstream { get; set; }

        [Parameter(ValueFromPipelineByPropertyName = true)]
        [ArgumentCompleter(typeof(IncidentCompleter))]
        public string IncidentId { get; set; }

        /// <summary>
        /// How to take it out: Delete (the runbook's step; the default unless the context's RemovalMethod says
        /// otherwise), Drain (weight 0: id and tags kept) or MarkUnhealthy (Kong's health mark: no database write,
        /// so declarative config does not revert it; needs health checks on the upstream; not on a control plane or DB-less).
        /// </summary>
        [Parameter] public RemovalMethod Method { get; set; }
        /// <summary>Same as -Method Drain.</summary>
        [Parameter] public SwitchParameter Drain { get; set; }
        /// <summary>Past the safety guards (last target, share out of rotation, Kong's threshold): audited. Never skips the healthy-target question.</summary>
        [Parameter] public SwitchParameter Force { get; set; }
        /// <summary>Take it out although it is healthy and taking traffic, without the question (the warning stays).</summary>
        [Parameter] public SwitchParameter EvenIfHealthy { get; set; }
        [Parameter] public SwitchParameter PassThru { get; set; }

        protected override void ProcessRecord() => PerItem(() =>
        {
            var upstream = UpstreamOrDefault(Upstream);
            var wanted = TargetInput.Resolve(Target?.Target(), Address, Port, Settings.Health.Port);
            var method = Drain ? RemovalMethod.Drain : MyInvocation.BoundParameters.ContainsKey(nameof(Method)) ? Method : Settings.Removal.Method;
            TargetChange AlreadyAbsent(int weight, string detail) => new TargetChange
            {
                ActionValue = TargetChangeAction.AlreadyAbsent, Upstream = upstream, Target = wanted, Address = Address, Port = Port, Weight = weight,
                IncidentId = IncidentId, MethodValue = method, Detail = detail,
            };
            if (Drain && MyInvocation.BoundParameters.ContainsKey(nameof(Method)) && Method != RemovalMethod.Drain)
                ThrowArgument("ConflictingRemovalMethod", $"-Drain and -Method {Method} ask for two different ways out.", Method, "Give one: -Method Drain (same as -Drain), -Method Delete or -Method MarkUnhealthy.");
            // Refused here, before the guard probes anything, when this Kong cannot do it (DB-less, control plane).
            Await(RingBalancer.CheckMethodAsync(method, wanted, Cancellation));
            var current = Await(RingBalancer.ResolveAsync(upstream, wanted, Cancellation));
            if (current == null && method == RemovalMethod.Drain)
            {
                var drained = Await(RingBalancer.FindIncludingDrainedAsync(upstream, wanted, Cancellation));
                if (drained != null)
                {
                    WriteWarning($"Target {drained.Target} is already drained (weight 0) in upstream '{upstream}'; nothing to do.");
                    return;
                }
            }
            if (current == null)
            {
                // Absent: removed earlier (the audit log says by whom), or never there — a typo gets an error, not "already absent" (#27 row 9).
                var history = Audit.Read(null, wanted, null).Where(e => (e.Action != null && e.Action.EndsWith("Target", StringComparison.Ordinal) || e.Action == "MarkTargetUnhealthy") && string.Equals(e.Upstream, upstream, StringComparison.OrdinalIgnoreCase)).ToList();
                var lastOut = history.LastOrDefault(e => e.Action != "AddTarget");
                if (history.Count == 0)
                {
                    WriteOpsError(new OpsException("TargetNotInUpstream", OpsErrorCategory.ObjectNotFound,
                        $"Target {wanted} is not in upstream '{upstream}', and this machine's audit log has no record of it ever being there: a typo, or removed from another machine (a responder, self-healing elsewhere). Nothing was changed.", wanted,
                        recommendedAction: $"Check the address (Get-RingBalancerTarget -Upstream {upstream} lists the targets; Tab completes them), or the incident's notes (Get-PagerDutyIncidentNote) for who removed it."));
                    // -PassThru still carries it on (a re-run of `… -PassThru | Add-PagerDutyIncidentNote` keeps working).
                    if (PassThru) WriteObject(AlreadyAbsent(100, "not in the upstream; no record of it here: 100 (Kong's default)"));
                    return;
                }
                WriteWarning(lastOut != null
                    ? $"Target {wanted} is already absent from upstream '{upstream}': {(lastOut.Actor ?? "someone")} took it out at {lastOut.Time:yyyy-MM-dd HH:mm:ss}Z ({lastOut.Action}, {lastOut.Outcome}); nothing to do."
                    : $"Target {wanted} is already absent from upstream '{upstream}' (the audit log knows it; someone else removed it); nothing to do.");
                if (PassThru)
                {
                    // The weight it had when it was taken out, from the audit log; 100 (Kong's default) when the log does not say.
                    var known = RingBalancer.LastKnownWeight(wanted);
                    WriteObject(AlreadyAbsent(known ?? 100, known != null ? $"already absent; it had weight {known} when last taken out (audit log)" : "already absent; its old weight is not in the audit log: 100 (Kong's default)"));
                }
                return;
            }
            if (method == RemovalMethod.Drain && current.Weight == 0)
            {
                WriteWarning($"Target {current.Target} is already drained (weight 0) in upstream '{upstream}'; nothing to do.");
                return;
            }
            if (!IsWhatIf && method != RemovalMethod.MarkUnhealthy)
            {
                // A healthy target taking traffic: the guards may allow it, the operator is asked (#27 row 2).
                var h = Await(NewHealthChecker().CheckAsync(new Endpoint(current.Address, current.Port), Cancellation));
                if (h.Healthy && !WarnAndAsk($"{current.Target} is operational and taking traffic: taking it out lowers capacity.",
                        $"Take {current.Target} out of '{upstream}' although it is healthy?", "Healthy target", EvenIfHealthy, "-EvenIfHealthy"))
                {
                    WriteVerbose($"{current.Target}: kept (declined: it is healthy).");
                    return;
                }
            }
            WriteVerbose($"Checking it is safe to take {current.Target} out of upstream '{upstream}' (fresh read of the targets, health probe of the others), after your answer and inside the instance's lease.");
            var verb = method == RemovalMethod.Drain ? "Drain (set weight 0)" : method == RemovalMethod.MarkUnhealthy ? "Mark unhealthy in Kong" : "Remove";
            // The one removal path (issue #25): lease → confirm → guard on a fresh read → change → read-back → outcome.
            var removal = Await(RingBalancer.RemoveSafelyAsync(new RemovalRequest
            {
                Upstream = upstream, Target = current, Method = method, RemovedInBatch = _removed, Force = Force, WhatIf = IsWhatIf, Incident = IncidentId,
                ConfirmTarget = $"{current.Target} (id {current.Id}, weight {current.Weight})",
                Action = $"{verb} from ring-balancer upstream '{upstream}'" + (Force ? " (-Force: also past the safety guard)" : ""),
            }, ConfirmAsync, Cancellation));
            if (!removal.Guard.Allowed && !Force)
            {
                WriteOpsError(new OpsException(removal.Guard.ErrorId, OpsErrorCategory.InvalidOperation, "Refused: " + removal.Guard.Reason, current.Target,
                    recommendedAction: "Recover another instance first. Only if you accept an outage, repeat with -Force (audited)."));
                return;
            }
            if (removal.NoLongerWanted != null) { WriteWarning(removal.NoLongerWanted); return; }
            if (removal.Change == null) return;
            var change = removal.Change;
            _removed++;
            if (PassThru) WriteObject(change);
        });
    }

    [Cmdlet(VerbsCommon.Add, "RingBalancerTarget", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
    [OutputType(typeof(TargetChange))]
    public sealed class AddRingBalancerTargetCommand : KongCmdlet
    {
        /// <summary>How long to wait for another operator acting on the same instance before InstanceBusy.</summary>
        [Parameter] public double LockTimeoutSec { get; set; }

        protected override IReadOnlyDictionary<string, string> Overrides => OverrideMap;
        private static readonly IReadOnlyDictionary<string, string> OverrideMap = SettingParameters.Join(SettingParameters.Kong, SettingParameters.LockTimeout);

        [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [TargetInput]
        [ArgumentCompleter(typeof(AddTargetCompleter))]
        public InstancePipeBind Target { get; set; }

        [Parameter(ValueFromPipelineByPropertyName = true)]
        [Alias("IPAddress", "ComputerName", "Host")]
        public string Address { get; set; }

        [Parameter(ValueFromPipelineByPropertyName = true), ValidateRange(0, 65535)]
        public int Port { get; set; }

        [Parameter(ValueFromPipelineByPropertyName = true)]
        [ArgumentCompleter(typeof(UpstreamCompleter))]
        public string Upstream { get; set; }

        [Parameter(ValueFromPipelineByPropertyName = true), ValidateRange(0, 65535)]
        public int Weight { get; set; } = 100;

        [Parameter(ValueFromPipelineByPropertyName = true)]
        public string[] Tags { get; set; }

        [Parameter(ValueFromPipelineByPropertyName = true)]
        [ArgumentCompleter(typeof(IncidentCompleter))]
        public string IncidentId { get; set; }

        /// <summary>
        /// How it was taken out, so it is put back the same way: Delete (POST it again), Drain (the old weight back)
        /// or MarkUnhealthy (Kong's healthy mark). Binds from the object Remove-RingBalancerTarget -PassThru returned;
        /// the context's RemovalMethod when not given.
        /// </summary>
        [Parameter(ValueFromPipelineByPropertyName = true)]
        public RemovalMethod Method { get; set; }

        /// <summary>Add without checking health first.</summary>
        [Parameter] public SwitchParameter Force { get; set; }
        [Parameter] public SwitchParameter PassThru { get; set; }

        protected override void ProcessRecord() => PerItem(() =>
        {
            var upstream = UpstreamOrDefault(Upstream);
            var method = MyInvocation.BoundParameters.ContainsKey(nameof(Method)) ? Method : Settings.Removal.Method;
            var wanted = TargetInput.Resolve(Target?.Target(), Address, Port, Settings.Health.Port);
            if (Guid.TryParse(wanted, out _))
                ThrowArgument("TargetIdNotAddable", $"'{wanted}' is a target id; adding needs an address such as 10.0.0.5:8888.", wanted,
                    "Pass the address: Add-RingBalancerTarget 10.0.0.5:8888 (or pipe the object Remove-RingBalancerTarget -PassThru returned).");
            var how = method == RemovalMethod.MarkUnhealthy ? "Mark healthy in Kong, in ring-balancer upstream" : method == RemovalMethod.Drain ? "Restore the weight (or add) in ring-balancer upstream" : "Add to ring-balancer upstream";
            if (!ShouldProcess($"{wanted} (weight {Weight}{(Tags?.Length > 0 ? ", tags " + string.Join(",", Tags) : "")})", $"{how} '{upstream}'" + (Force ? " without a health check" : " after a health check")))
                return;
            var change = Await(RingBalancer.AddAsync(new AddRequest { Upstream = upstream, Target = wanted, Weight = Weight, Tags = Tags, SkipHealthCheck = Force, Incident = IncidentId, Method = method }, Cancellation));
            if (change.ActionValue == TargetChangeAction.AlreadyPresent)
                WriteWarning($"Target {wanted} is already in upstream '{upstream}': nothing changed.");
            if (PassThru) WriteObject(change);
        });
    }

    internal static class TargetInput
    {
        /// <summary>-Target wins; else -Address (+ -Port). Validated and normalised to Kong's stored form.</summary>
        public static string Resolve(string target, string address, int port, int defaultPort)
        {
            var input = !string.IsNullOrWhiteSpace(target) ? target
                : !string.IsNullOrWhiteSpace(address) ? (port > 0 && !address.Contains(":") ? $"{address}:{port}" : address)
                : null;
            if (input == null)
                throw new OpsException("TargetMissing", OpsErrorCategory.InvalidArgument, "No target given: pass -Target 10.0.0.5:8888 or -Address 10.0.0.5, or pipe a target.", null,
                    recommendedAction: "Give the instance as IP:PORT, e.g. -Target 10.0.0.5:8888, or pipe Get-RingBalancerTarget / Test-KeyServiceHealth output.");
            return RingBalancerService.NormalizeTarget(input, defaultPort);
        }
    }
}
