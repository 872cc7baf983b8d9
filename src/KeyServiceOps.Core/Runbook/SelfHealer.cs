using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using KeyServiceOps.Core.Health;
using KeyServiceOps.Core.PagerDuty;
using KeyServiceOps.Core.Remote;
using KeyServiceOps.Core.RingBalancer;
using Newtonsoft.Json;

namespace KeyServiceOps.Core.Runbook
{
    public sealed class SelfHealingOptions
    {
        public string Upstream { get; set; }
        /// <summary>Consecutive failed checks before a target is removed.</summary>
        public int FailuresToRemove { get; set; } = 3;
        /// <summary>Consecutive passing checks before a removed target is added back.</summary>
        public int PassesToAdd { get; set; } = 2;
        /// <summary>Also restart the container of a removed, still failing instance (with a budget).</summary>
        public bool Restart { get; set; }
        public int MaxRestartsPerHour { get; set; } = 3;
        /// <summary>Back-off per target after its first restart, doubling with each further restart (Kubernetes: 10 s).</summary>
        public TimeSpan RestartBackoff { get; set; } = TimeSpan.FromSeconds(10);
        /// <summary>The longest back-off (Kubernetes: 5 minutes).</summary>
        public TimeSpan RestartBackoffMax { get; set; } = TimeSpan.FromMinutes(5);
        /// <summary>The back-off starts again from <see cref="RestartBackoff"/> after this long healthy (Kubernetes: 10 minutes).</summary>
        public TimeSpan BackoffResetAfter { get; set; } = TimeSpan.FromMinutes(10);
        /// <summary>Max ejection: never more than this share of the upstream out at once, counting targets already out; always one (Envoy: 10 %).</summary>
        public double MaxEjectionShare { get; set; } = 0.10;
        /// <summary>Panic floor: with fewer than this share of the targets in rotation healthy, take nothing out and escalate.</summary>
        public double PanicThreshold { get; set; } = 0.5;
        /// <summary>Stop restarting (and escalate once) when more than this share of the last hour's judged restarts did not recover…</summary>
        public double FailingRemediationShare { get; set; } = 0.5;
        /// <summary>…once at least this many were judged.</summary>
        public int FailingRemediationMinimum { get; set; } = 2;
        /// <summary>The incident escalation level for panic and failing remediation.</summary>
        public int EscalationLevel { get; set; } = 2;
        /// <summary>After a restart, failed checks are not counted for this long.</summary>
        public TimeSpan StartupGrace { get; set; } = TimeSpan.FromSeconds(60);
        public string StatePath { get; set; }
        public TimeSpan LockTimeout { get; set; } = TimeSpan.FromSeconds(10);
        public bool WhatIf { get; set; }
        public string Actor { get; set; } = "self-healing";
        /// <summary>The clock (tests move it to check per-hour budgets).</summary>
        public Func<DateTimeOffset> Clock { get; set; } = () => DateTimeOffset.UtcNow;

        public static string DefaultStatePath()
            => Path.Combine(Path.GetDirectoryName(OpsContext.DefaultAuditLogPath()) ?? Path.GetTempPath(), "selfhealing-state.json");
    }

    public enum HealingAction { None, Remove, Add, Restart, Escalate }

    /// <summary>One decision of a self-healing pass: an action taken, or one not taken and why.</summary>
    public sealed class SelfHealingAction
    {
        public DateTimeOffset Time { get; set; }
        public int Pass { get; set; }
        public string Upstream { get; set; }
        public string Target { get; set; }
        /// <summary>The typed value for code; PowerShell sees <see cref="Action"/> (its name), so JSON and CSV read the same as the views.</summary>
        internal HealingAction ActionValue { get; set; }
        public string Action => ActionValue.ToString();
        /// <summary>Done, Skipped, WouldDo (-WhatIf) or Failed.</summary>
        /// <summary>The typed value for code; PowerShell sees <see cref="Outcome"/> (its name), so JSON and CSV read the same as the views.</summary>
        internal StepOutcome OutcomeValue { get; set; }
        public string Outcome => OutcomeValue.ToString();
        /// <summary>Why: Unhealthy, Recovered, CapacityGuard, MaxEjection, PanicFloor, Hysteresis, RestartBudget, RestartBackoff, FailingRemediation, Maintenance, StartupGrace, DependencyFault, LockHeld, Error.</summary>
        public string Reason { get; set; }
        public string Detail { get; set; }
        public int Failures { get; set; }
        public int Successes { get; set; }
        public string IncidentId { get; set; }
        public override string ToString() => $"pass {Pass} {Action} {Target}: {Outcome} ({Reason}) {Detail}";
    }

    /// <summary>One line per pass, also when nothing was to do and under -WhatIf: a log can tell "ran, all healthy" from "did not run".</summary>
    public sealed class SelfHealingPassSummary
    {
        public DateTimeOffset Time { get; set; }
        public int Pass { get; set; }
        public string Upstream { get; set; }
        public int TargetsChecked { get; set; }
        public int Unhealthy { get; set; }
        /// <summary>Changes made (removed, added back, restarted).</summary>
        public int Actions { get; set; }
        public int WouldDo { get; set; }
        public int Skipped { get; set; }
        public int Failed { get; set; }
        /// <summary>Every limit or reason that held something back this pass, e.g. "CapacityGuard x1".</summary>
        public TextList HeldBack { get; set; } = new TextList();
        public bool WhatIf { get; set; }
        public double Seconds { get; set; }
        public override string ToString() => $"pass {Pass} {Upstream}: {TargetsChecked} checked, {Actions} actions, {Skipped} skipped, {Failed} failed";
    }

    /// <summary>What a pass remembers about each target between passes (the state file).</summary>
    public sealed class HealingTargetState
    {
        public string Target { get; set; }
        public string Address { get; set; }
        public int Port { get; set; }
        public int Weight { get; set; } = 100;
        public string[] Tags { get; set; } = new string[0];
        public int Failures { get; set; }
        public int Successes { get; set; }
        public bool RemovedBySelfHealing { get; set; }
        public DateTimeOffset? RemovedAt { get; set; }
        /// <summary>How it was taken out (Delete, Drain, MarkUnhealthy): it is put back the same way.</summary>
        public string RemovedWith { get; set; }
        public List<DateTimeOffset> Restarts { get; set; } = new List<DateTimeOffset>();
        public DateTimeOffset? GraceUntil { get; set; }
        /// <summary>Back-off level: restarts since the target was last healthy for <see cref="SelfHealingOptions.BackoffResetAfter"/>.</summary>
        public int BackoffLevel { get; set; }
        public DateTimeOffset? HealthySince { get; set; }
    }

    public sealed class HealingState
    {
        public int Pass { get; set; }
        public Dictionary<string, HealingTargetState> Targets { get; set; } = new Dictionary<string, HealingTargetState>(StringComparer.OrdinalIgnoreCase);
        /// <summary>Restarts of the last hour and whether each recovered (for the failing-remediation stop).</summary>
        public List<RestartRecord> RestartLog { get; set; } = new List<RestartRecord>();
        /// <summary>Since when the panic floor holds (escalated once, when it began).</summary>
        public DateTimeOffset? PanicSince { get; set; }
        /// <summary>Since when restarts are stopped because they do not help (escalated once, when it began).</summary>
        public DateTimeOffset? RemediationStoppedSince { get; set; }
    }

    /// <summary>
    /// One reconcile pass of self-healing over an upstream: hysteresis on both edges (N failures to remove, M passes
    /// to add back), the ring-balancer's capacity guards re-read before every removal, maintenance respected, an
    /// optional restart with a per-hour budget and back-off, notes on the incident, and a lock on the state file so
    /// two healers never act at once. Only targets this healer removed are ever added back.
    /// </summary>
    public sealed class SelfHealer
    {
        private readonly OpsContext _ctx;
        private readonly RingBalancerService _rb;
        private readonly HealthChecker _health;
        private readonly KeyServiceRestarter _restarter;
        private readonly PagerDutyClient _pd;
        private readonly IOpsLog _log;

        public SelfHealer(OpsContext ctx, RingBalancerService rb, HealthChecker health, KeyServiceRestarter restarter, PagerDutyClient pagerDuty, IOpsLog log)
        {
            _ctx = ctx; _rb = rb; _health = health; _restarter = restarter; _pd = pagerDuty; _log = log ?? NullOpsLog.Instance;
        }

        public async Task<List<SelfHealingAction>> PassAsync(SelfHealingOptions o, Func<string, string, Task<bool>> confirm, Action<SelfHealingAction> emit, CancellationToken ct,
            Action<SelfHealingPassSummary> summary = null)
        {
            var upstream = o.Upstream ?? _ctx.Upstream;
            var statePath = o.StatePath ?? SelfHealingOptions.DefaultStatePath();
            var results = new List<SelfHealingAction>();
            var sum = new SelfHealingPassSummary { Upstream = upstream, Time = o.Clock(), WhatIf = o.WhatIf };
            var clock = System.Diagnostics.Stopwatch.StartNew();
            void Out(SelfHealingAction a) { a.Upstream = upstream; a.Time = o.Clock(); results.Add(a); emit?.Invoke(a); }
            try { return await PassCoreAsync(o, upstream, statePath, confirm, Out, sum, ct).ConfigureAwait(false) ?? results; }
            finally
            {
                sum.Seconds = Math.Round(clock.Elapsed.TotalSeconds, 3);
                sum.Actions = results.Count(r => r.OutcomeValue == StepOutcome.Done);
                sum.WouldDo = results.Count(r => r.OutcomeValue == StepOutcome.WouldDo);
                sum.Skipped = results.Count(r => r.OutcomeValue == StepOutcome.Skipped);
                sum.Failed = results.Count(r => r.OutcomeValue == StepOutcome.Failed);
                sum.HeldBack = results.Where(r => r.OutcomeValue == StepOutcome.Skipped).GroupBy(r => r.Reason).Select(g => $"{g.Key} x{g.Count()}").ToArray();
                if (!ct.IsCancellationRequested) summary?.Invoke(sum);
            }
        }

        private async Task<List<SelfHealingAction>> PassCoreAsync(SelfHealingOptions o, string upstream, string statePath, Func<string, string, Task<bool>> confirm,
            Action<SelfHealingAction> Out, SelfHealingPassSummary sum, CancellationToken ct)
        {
            List<SelfHealingAction> results = null;

            using (var lockFile = await LockAsync(statePath, o.LockTimeout, ct).ConfigureAwait(false))
            {
                if (lockFile == null)
                {
                    Out(new SelfHealingAction { ActionValue = HealingAction.None, OutcomeValue = StepOutcome.Skipped, Reason = "LockHeld", Detail = $"another self-healing pass holds {statePath}.lock; nothing done" });
                    return results;
                }
                var state = Load(statePath);
                state.Pass++;
                var pass = state.Pass;
                sum.Pass = pass;
                List<RingBalancerTarget> targets;
                try { targets = await _rb.Kong.GetTargetsAsync(upstream, ct).ConfigureAwait(false); }
                catch (OpsException e) when (!e.IsCancellation)
                {
                    Out(new SelfHealingAction { Pass = pass, ActionValue = HealingAction.None, OutcomeValue = StepOutcome.Failed, Reason = "Error", Detail = $"cannot read the upstream's targets ({e.ErrorId}): nothing changed this pass" });
                    if (!o.WhatIf) Save(statePath, state);
                    return results;
                }
                if (targets.Count(t => t.Weight > 0) == 0)
                    throw new OpsException("UpstreamEmpty", OpsErrorCategory.InvalidResult,
                        $"Kong lists upstream '{upstream}' with no target in rotation. Self-healing stops: an empty upstream is never a state to heal from.", upstream,
                        recommendedAction: "Check -Upstream and the Kong Admin address; put healthy targets back by hand (Add-RingBalancerTarget) before starting self-healing again.");
                // A target this healer marked unhealthy stays listed with its weight: it counts as out until marked healthy.
                bool Marked(string target) => state.Targets.TryGetValue(target, out var st) && st.RemovedBySelfHealing && st.RemovedWith == nameof(RemovalMethod.MarkUnhealthy);
                var listed = targets.Where(t => t.Weight > 0).ToDictionary(t => t.Target, StringComparer.OrdinalIgnoreCase);
                var present = listed.Values.Where(t => !Marked(t.Target)).ToDictionary(t => t.Target, StringComparer.OrdinalIgnoreCase);
                // Targets to look at: those in the upstream, and those this healer took out.
                var watch = present.Values.Select(t => t.Target)
                    .Concat(state.Targets.Values.Where(s => s.RemovedBySelfHealing && !present.ContainsKey(s.Target)).Select(s => s.Target))
                    .Distinct(StringComparer.OrdinalIgnoreCase).ToList();
                foreach (var gone in state.Targets.Keys.Where(k => !watch.Contains(k, StringComparer.OrdinalIgnoreCase)).ToList()) state.Targets.Remove(gone);

                var endpoints = watch.Select(w => Endpoint.Parse(w, _ctx.HealthPort)).ToList();
                var probes = await _health.CheckManyAsync(endpoints, Math.Max(1, _ctx.ThrottleLimit), ct).ConfigureAwait(false);
                // A probe cut short by Ctrl+C says nothing about the instance: never act on a cancelled pass's checks.
                ct.ThrowIfCancellationRequested();
                sum.TargetsChecked = probes.Count;
                sum.Unhealthy = probes.Count(p => !p.Healthy);
                var now = o.Clock();
                var removedThisPass = 0;
                // Every target failing at once is the probe's or a shared dependency's fault, not each instance's: hard stop.
                if (probes.Count > 1 && probes.All(p => !p.Healthy))
                    throw new OpsException("AllTargetsFailing", OpsErrorCategory.ResourceUnavailable,
                        $"Every target of upstream '{upstream}' ({probes.Count}) failed its health check in the same pass ({string.Join(", ", probes.Select(p => p.Status).Distinct())}). " +
                        "Self-healing stops and takes nothing out: this is rarely the instances' fault.", upstream,
                        recommendedAction: "Check the probe from this machine (Test-KeyServiceHealth), the network path, and the shared dependencies (cipher, IAM); escalate the incident.");
                var inRotation = watch.Select((w, k) => (w, k)).Where(x => present.ContainsKey(x.w)).ToList();
                var healthyInRotation = inRotation.Count(x => probes[x.k].Healthy);
                var panic = HealingLimits.InPanic(healthyInRotation, inRotation.Count, o.PanicThreshold);
                var total = watch.Count;
                if (!panic) state.PanicSince = null;
                else if (state.PanicSince == null)
                {
                    state.PanicSince = now;
                    var esc = new SelfHealingAction
                    {
                        Pass = pass, ActionValue = HealingAction.Escalate, OutcomeValue = o.WhatIf ? StepOutcome.WouldDo : StepOutcome.Done, Reason = "PanicFloor",
                        Detail = $"{healthyInRotation} of {inRotation.Count} targets in rotation healthy, under the panic floor of {SelfHealingStatus.Pct(o.PanicThreshold)}: nothing is taken out until more are healthy; escalating",
                    };
                    _log.Warning($"Self-healing: upstream '{upstream}' is under its panic floor ({healthyInRotation} of {inRotation.Count} healthy): nothing is taken out; escalate.");
                    if (!o.WhatIf) await EscalateAsync(esc, watch.Where((w, k) => !probes[k].Healthy).Take(5).Select(w => Endpoint.Parse(w, _ctx.HealthPort).Address), o, esc.Detail, ct).ConfigureAwait(false);
                    Out(esc);
                }
                state.RestartLog = state.RestartLog.Where(r => now - r.At < TimeSpan.FromHours(1)).ToList();
                for (int i = 0; i < watch.Count; i++)
                {
                    ct.ThrowIfCancellationRequested();
                    var key = watch[i];
                    var h = probes[i];
                    present.TryGetValue(key, out var t);
                    if (!state.Targets.TryGetValue(key, out var s))
                        state.Targets[key] = s = new HealingTargetState { Target = key, Address = endpoints[i].Address, Port = endpoints[i].Port };
                    if (t != null) { s.Weight = t.Weight; s.Tags = t.Tags?.ToArray() ?? new string[0]; s.RemovedBySelfHealing = false; s.RemovedAt = null; }
                    var inGrace = s.GraceUntil != null && now < s.GraceUntil;
                    if (!inGrace)
                        foreach (var rec in state.RestartLog.Where(r => string.Equals(r.Target, key, StringComparison.OrdinalIgnoreCase) && r.Recovered == null)) rec.Recovered = h.Healthy;
                    (s.BackoffLevel, s.HealthySince) = HealingLimits.AfterObservation(s.BackoffLevel, s.HealthySince, h.Healthy, now, o.BackoffResetAfter);
                    if (h.Healthy) { s.Successes++; s.Failures = 0; }
                    else if (!inGrace) { s.Failures++; s.Successes = 0; }
                    else s.Successes = 0;
                    SelfHealingAction A(HealingAction act, StepOutcome oc, string reason, string detail)
                        => new SelfHealingAction { Pass = pass, Target = key, ActionValue = act, OutcomeValue = oc, Reason = reason, Detail = detail, Failures = s.Failures, Successes = s.Successes };

                    var maintenance = t != null ? _rb.IsMaintenance(t) : _rb.IsMaintenance(new RingBalancerTarget { Target = key, Address = s.Address, Port = s.Port, Tags = s.Tags });
                    if (maintenance)
                    {
                        if (!h.Healthy || s.RemovedBySelfHealing) Out(A(HealingAction.None, StepOutcome.Skipped, "Maintenance", "marked for maintenance: self-healing leaves it alone"));
                        continue;
                    }
                    try
                    {
                        if (t != null)
                        {
                            if (h.Healthy) continue;
                            if (inGrace) { Out(A(HealingAction.Remove, StepOutcome.Skipped, "StartupGrace", $"restarted recently; judged again after {s.GraceUntil:HH:mm:ss}")); continue; }
                            if (s.Failures < o.FailuresToRemove)
                            {
                                Out(A(HealingAction.Remove, StepOutcome.Skipped, "Hysteresis", $"{h.Status}: failure {s.Failures} of {o.FailuresToRemove} before removal"));
                                continue;
                            }
                            if (panic) { Out(A(HealingAction.Remove, StepOutcome.Skipped, "PanicFloor", $"{healthyInRotation} of {inRotation.Count} targets in rotation healthy (floor {SelfHealingStatus.Pct(o.PanicThreshold)}): taking nothing out")); continue; }
                            var outNow = state.Targets.Values.Count(x => x.RemovedBySelfHealing);
                            if (!HealingLimits.EjectionAllows(total, outNow, o.MaxEjectionShare))
                            {
                                Out(A(HealingAction.Remove, StepOutcome.Skipped, "MaxEjection", $"{outNow} of {total} targets already out; at most {HealingLimits.MaxOut(total, o.MaxEjectionShare)} at once ({SelfHealingStatus.Pct(o.MaxEjectionShare)}, always one)"));
                                continue;
                            }
                            // The guard re-reads the upstream right now: never act on the state read at the start of the pass.
                            var guard = await _rb.EvaluateRemovalAsync(upstream, t, removedThisPass, ct).ConfigureAwait(false);
                            if (!guard.Allowed) { Out(A(HealingAction.Remove, StepOutcome.Skipped, "CapacityGuard", $"{guard.ErrorId}: {guard.Reason}")); continue; }
                            // Asked even under -WhatIf, so PowerShell prints its "What if:" line.
                            if (!await confirm(key, $"Remove from upstream '{upstream}' (self-healing: {s.Failures} failed checks)").ConfigureAwait(false) || o.WhatIf)
                            {
                                Out(A(HealingAction.Remove, StepOutcome.WouldDo, "Unhealthy", $"{h.Status} {s.Failures} times: would remove"));
                                continue;
                            }
                            var incident = await IncidentAsync(s.Address, ct).ConfigureAwait(false);
                            // Remembered before Kong is asked (a kill right after the DELETE must not make the healer
                            // forget what it took out); undone if the removal fails. A target still present next pass
                            // clears the mark, so a kill before the DELETE leaves nothing behind.
                            s.RemovedBySelfHealing = true; s.RemovedAt = now; s.Successes = 0; s.RemovedWith = _ctx.RemovalMethod.ToString();
                            Save(statePath, state);
                            TargetChange change;
                            try { change = await _rb.RemoveResolvedAsync(upstream, t, _ctx.RemovalMethod, false, o.Actor, incident, ct).ConfigureAwait(false); }
                            catch (OpsException) { s.RemovedBySelfHealing = false; s.RemovedAt = null; s.RemovedWith = null; Save(statePath, state); throw; }
                            removedThisPass++;
                            var a = A(HealingAction.Remove, StepOutcome.Done, "Unhealthy", $"{change.Action} after {s.Failures} failed checks ({h.Status}: {h.Detail})");
                            a.IncidentId = incident;
                            await NoteAsync(a, incident, $"removed by self-healing: target {key} of upstream {upstream} failed {s.Failures} consecutive health checks ({h.Status}).", ct).ConfigureAwait(false);
                            Out(a);
                            continue;
                        }
                        // Not in the upstream, removed by us.
                        if (h.Healthy)
                        {
                            if (s.Successes < o.PassesToAdd)
                            {
                                Out(A(HealingAction.Add, StepOutcome.Skipped, "Hysteresis", $"healthy {s.Successes} of {o.PassesToAdd} passes before it is added back"));
                                continue;
                            }
                            if (!await confirm(key, $"Add back to upstream '{upstream}' (self-healing: healthy {s.Successes} passes)").ConfigureAwait(false) || o.WhatIf)
                            {
                                Out(A(HealingAction.Add, StepOutcome.WouldDo, "Recovered", "would add back"));
                                continue;
                            }
                            var incident = await IncidentAsync(s.Address, ct).ConfigureAwait(false);
                            var with = Enum.TryParse<RemovalMethod>(s.RemovedWith, out var m) ? m : RemovalMethod.Delete;
                            var change = await _rb.AddAsync(upstream, key, s.Weight > 0 ? s.Weight : 100, s.Tags, false, o.Actor, incident, ct, with).ConfigureAwait(false);
                            s.RemovedBySelfHealing = false; s.RemovedAt = null; s.RemovedWith = null;
                            Save(statePath, state);
                            var a = A(HealingAction.Add, StepOutcome.Done, "Recovered", $"{change.Action} after {s.Successes} healthy passes");
                            a.IncidentId = incident;
                            await NoteAsync(a, incident, $"added back by self-healing: target {key} of upstream {upstream} passed {s.Successes} consecutive health checks.", ct).ConfigureAwait(false);
                            Out(a);
                            continue;
                        }
                        if (!o.Restart || _restarter == null) continue;
                        await MaybeRestartAsync(o, state, s, now, confirm, A, Out, ct, () => Save(statePath, state)).ConfigureAwait(false);
                    }
                    catch (OpsException e) when (!e.IsCancellation)
                    {
                        Out(A(t != null ? HealingAction.Remove : HealingAction.Add, StepOutcome.Failed, "Error", $"{e.ErrorId}: {e.Message}"));
                    }
                }
                if (!o.WhatIf) Save(statePath, state);
            }
            return results;
        }

        /// <summary>Escalates the open incidents of these addresses (a note, and the escalation level), best effort.</summary>
        private async Task EscalateAsync(SelfHealingAction a, IEnumerable<string> addresses, SelfHealingOptions o, string why, CancellationToken ct)
        {
            if (_pd == null) { a.Detail += "; no PagerDuty configured: escalate by hand"; return; }
            var done = new HashSet<string>();
            foreach (var address in addresses)
            {
                var incident = await IncidentAsync(address, ct).ConfigureAwait(false);
                if (incident == null || !done.Add(incident)) continue;
                try
                {
                    await _pd.EscalateToAsync(incident, o.EscalationLevel, ct).ConfigureAwait(false);
                    await _pd.AddNoteAsync(incident, RunbookRunner.NotePrefix + "self-healing escalated: " + why, ct).ConfigureAwait(false);
                    a.IncidentId ??= incident;
                }
                catch (OpsException e) when (!e.IsCancellation) { a.Detail += $"; escalating {incident} failed ({e.ErrorId})"; }
            }
            if (done.Count == 0) a.Detail += "; no open incident found to escalate";
        }

        private async Task MaybeRestartAsync(SelfHealingOptions o, HealingState state, HealingTargetState s, DateTimeOffset now, Func<string, string, Task<bool>> confirm,
            Func<HealingAction, StepOutcome, string, string, SelfHealingAction> A, Action<SelfHealingAction> Out, CancellationToken ct, Action save)
        {
            if (s.GraceUntil != null && now < s.GraceUntil) { Out(A(HealingAction.Restart, StepOutcome.Skipped, "StartupGrace", $"restarted recently; waiting until {s.GraceUntil:HH:mm:ss}")); return; }
            var lastRestart = s.Restarts.Count > 0 ? s.Restarts.Max() : (DateTimeOffset?)null;
            s.Restarts = s.Restarts.Where(r => now - r < TimeSpan.FromHours(1)).ToList();
            var (used, nextAt) = HealingLimits.Budget(s.Restarts, now, o.MaxRestartsPerHour);
            if (nextAt != null)
            {
                Out(A(HealingAction.Restart, StepOutcome.Skipped, "RestartBudget", $"{used} restarts in the last hour (limit {o.MaxRestartsPerHour}); next possible at {nextAt:HH:mm:ss}"));
                return;
            }
            var until = HealingLimits.BackoffUntil(lastRestart, s.BackoffLevel, o.RestartBackoff, o.RestartBackoffMax);
            if (until != null && now < until) { Out(A(HealingAction.Restart, StepOutcome.Skipped, "RestartBackoff", $"back-off level {s.BackoffLevel}: next restart not before {until:HH:mm:ss}")); return; }
            if (HealingLimits.RemediationFailing(state.RestartLog, now, o.FailingRemediationShare, o.FailingRemediationMinimum, out var judged, out var failed))
            {
                var detail = $"{failed} of the last hour's {judged} restarts did not recover (over {SelfHealingStatus.Pct(o.FailingRemediationShare)}): restarts stopped";
                if (state.RemediationStoppedSince == null)
                {
                    state.RemediationStoppedSince = now;
                    _log.Warning($"Self-healing: {detail}; escalating.");
                    var esc = A(HealingAction.Escalate, o.WhatIf ? StepOutcome.WouldDo : StepOutcome.Done, "FailingRemediation", detail + "; escalating");
                    if (!o.WhatIf) await EscalateAsync(esc, new[] { s.Address }, o, esc.Detail, ct).ConfigureAwait(false);
                    Out(esc);
                }
                Out(A(HealingAction.Restart, StepOutcome.Skipped, "FailingRemediation", detail));
                return;
            }
            state.RemediationStoppedSince = null;
            SshTarget ssh;
            try { ssh = SshTarget.For(_ctx, s.Address); }
            catch (OpsException e) { Out(A(HealingAction.Restart, StepOutcome.Failed, "Error", e.Message)); return; }
            if (!await confirm($"{ssh.Container} on {s.Address}", "docker restart (self-healing)").ConfigureAwait(false) || o.WhatIf)
            {
                Out(A(HealingAction.Restart, StepOutcome.WouldDo, "Unhealthy", "would restart the container"));
                return;
            }
            try
            {
                var incident = await IncidentAsync(s.Address, ct).ConfigureAwait(false);
                await _restarter.RestartAsync(ssh, new RestartOptions { Wait = false, IncidentId = incident, Actor = o.Actor, HealthPort = s.Port, LockDirectory = _ctx.LockDirectory, LockTimeout = _ctx.LockTimeout }, null, ct).ConfigureAwait(false);
                s.Restarts.Add(now);
                s.BackoffLevel++;
                state.RestartLog.Add(new RestartRecord { At = now, Target = s.Target });
                s.GraceUntil = now + o.StartupGrace;
                save();
                var a = A(HealingAction.Restart, StepOutcome.Done, "Unhealthy", $"restart {s.Restarts.Count} of at most {o.MaxRestartsPerHour} this hour; start-up grace {o.StartupGrace.TotalSeconds:0} s");
                a.IncidentId = incident;
                await NoteAsync(a, incident, $"self-healing restarted {ssh.Container} on {s.Address} (restart {s.Restarts.Count} this hour).", ct).ConfigureAwait(false);
                Out(a);
            }
            catch (OpsException e) when (e.ErrorId == "DependencyFaultNoRestart")
            {
                Out(A(HealingAction.Restart, StepOutcome.Skipped, "DependencyFault", e.Message));
            }
        }

        private async Task<string> IncidentAsync(string address, CancellationToken ct)
            => _pd == null ? null : await _pd.TryFindIncidentIdAsync(address, _log, ct).ConfigureAwait(false);

        private async Task NoteAsync(SelfHealingAction a, string incident, string text, CancellationToken ct)
        {
            if (incident == null || _pd == null) return;
            try { await _pd.AddNoteAsync(incident, RunbookRunner.NotePrefix + text, ct).ConfigureAwait(false); }
            catch (OpsException e) when (!e.IsCancellation) { a.Detail += $"; the incident note failed ({e.ErrorId})"; }
        }

        // ---- state file ----

        private static async Task<FileStream> LockAsync(string statePath, TimeSpan timeout, CancellationToken ct)
        {
            var dir = Path.GetDirectoryName(Path.GetFullPath(statePath));
            if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
            var deadline = DateTime.UtcNow + timeout;
            while (true)
            {
                try { return new FileStream(statePath + ".lock", FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None); }
                catch (IOException) when (DateTime.UtcNow < deadline) { await Task.Delay(50, ct).ConfigureAwait(false); }
                catch (IOException) { return null; }
            }
        }

        private static OpsException StateInvalid(string path, string why, Exception inner = null)
            => new OpsException("SelfHealingStateInvalid", OpsErrorCategory.InvalidData, $"The self-healing state file '{path}' {why}. Nothing was changed.", path,
                recommendedAction: "Point -StatePath at a file, or delete the damaged one: the counters start again from zero (targets removed by self-healing will then not be added back automatically).", inner: inner);

        public static HealingState Load(string path)
        {
            if (Directory.Exists(path)) throw StateInvalid(path, "is a folder, not a file");
            if (!File.Exists(path)) return new HealingState();
            try
            {
                var s = JsonConvert.DeserializeObject<HealingState>(File.ReadAllText(path)) ?? new HealingState();
                s.Targets = new Dictionary<string, HealingTargetState>(s.Targets ?? new Dictionary<string, HealingTargetState>(), StringComparer.OrdinalIgnoreCase);
                foreach (var kv in s.Targets)
                    if (kv.Value == null || string.IsNullOrEmpty(kv.Value.Target ?? kv.Key)) throw StateInvalid(path, $"has an empty entry for '{kv.Key}'");
                foreach (var kv in s.Targets) { kv.Value.Target = kv.Value.Target ?? kv.Key; kv.Value.Restarts = kv.Value.Restarts ?? new List<DateTimeOffset>(); kv.Value.Tags = kv.Value.Tags ?? new string[0]; }
                s.RestartLog = s.RestartLog ?? new List<RestartRecord>();
                return s;
            }
            catch (JsonException e) { throw StateInvalid(path, $"is not valid JSON ({e.Message})", e); }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException) { throw StateInvalid(path, $"cannot be read ({e.Message})", e); }
        }

        private static void Save(string path, HealingState s)
        {
            var tmp = path + ".tmp";
            try
            {
                File.WriteAllText(tmp, JsonConvert.SerializeObject(s, Formatting.Indented));
                if (File.Exists(path)) File.Replace(tmp, path, null); else File.Move(tmp, path);
            }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
            {
                throw new OpsException("SelfHealingStateUnwritable", OpsErrorCategory.PermissionDenied, $"Cannot save the self-healing state to '{path}': {e.Message}", path,
                    recommendedAction: "Point -StatePath at a writable file (the folder must be writable too: the state is replaced atomically).", inner: e);
            }
        }
    }
}
