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
        /// <summary>Done, Skipped, WouldDo (-WhatIf), Failed, or Unknown (an answer lost: the change may have happened). The typed value for code; PowerShell sees <see cref="Outcome"/> (its name), so JSON and CSV read the same as the views.</summary>
        internal StepOutcome OutcomeValue { get; set; }
        public string Outcome => OutcomeValue.ToString();
        /// <summary>The typed value for code; PowerShell sees <see cref="Reason"/> (its name): Unhealthy, Recovered, CapacityGuard, MaxEjection, PanicFloor, Hysteresis, RestartBudget, RestartBackoff, FailingRemediation, Maintenance, StartupGrace, DependencyFault, LockHeld, Error, AlreadyRestarted.</summary>
        internal HealingReason ReasonValue { get; set; }
        public string Reason => ReasonValue.ToString();
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
        [JsonConverter(typeof(Newtonsoft.Json.Converters.StringEnumConverter))]
        public RemovalMethod? RemovedWith { get; set; }
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
            var upstream = o.Upstream ?? _ctx.Kong.Upstream;
            var statePath = o.StatePath ?? SelfHealingOptions.DefaultStatePath();
            var results = new List<SelfHealingAction>();
            var sum = new SelfHealingPassSummary { Upstream = upstream, Time = o.Clock(), WhatIf = o.WhatIf };
            var clock = System.Diagnostics.Stopwatch.StartNew();
            void Report(SelfHealingAction a) { a.Upstream = upstream; a.Time = o.Clock(); results.Add(a); emit?.Invoke(a); }
            try { await PassCoreAsync(o, upstream, statePath, confirm, Report, sum, ct).ConfigureAwait(false); return results; }
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

        /// <summary>The I/O around the policy: the lock and the state file, Kong's listing, the probes; then the policy's steps carried out in order.</summary>
        private async Task PassCoreAsync(SelfHealingOptions o, string upstream, string statePath, Func<string, string, Task<bool>> confirm,
            Action<SelfHealingAction> Report, SelfHealingPassSummary sum, CancellationToken ct)
        {
            using (var lockFile = await LockAsync(statePath, o.LockTimeout, ct).ConfigureAwait(false))
            {
                if (lockFile == null)
                {
                    Report(new SelfHealingAction { ActionValue = HealingAction.None, OutcomeValue = StepOutcome.Skipped, ReasonValue = HealingReason.LockHeld, Detail = $"another self-healing pass holds {statePath}.lock; nothing done" });
                    return;
                }
                var state = Load(statePath);
                var pass = ++state.Pass;
                sum.Pass = pass;
                List<RingBalancerTarget> targets;
                try { targets = await _rb.Kong.GetTargetsAsync(upstream, ct).ConfigureAwait(false); }
                catch (OpsException e) when (!e.IsCancellation)
                {
                    Report(new SelfHealingAction { Pass = pass, ActionValue = HealingAction.None, OutcomeValue = StepOutcome.Failed, ReasonValue = HealingReason.Error, Detail = $"cannot read the upstream's targets ({e.ErrorId}): nothing changed this pass" });
                    if (!o.WhatIf) Save(statePath, state);
                    return;
                }
                // What a lost answer left Unknown in the audit log is settled from this listing (not under -WhatIf).
                if (!o.WhatIf) _rb.SettleUnknown(upstream, targets);
                var watch = HealingPolicy.Watch(state, upstream, targets, out var present);
                var endpoints = watch.Select(w => Endpoint.Parse(w, _ctx.Health.Port)).ToList();
                var probes = await _health.CheckManyAsync(endpoints, _ctx.Health.HttpThrottle, ct).ConfigureAwait(false);
                // A probe cut short by Ctrl+C says nothing about the instance: never act on a cancelled pass's checks.
                ct.ThrowIfCancellationRequested();
                var seen = watch.Select((w, i) =>
                {
                    present.TryGetValue(w, out var t);
                    state.Targets.TryGetValue(w, out var known);
                    return new HealingObservation
                    {
                        Target = w, Address = endpoints[i].Address, Port = endpoints[i].Port, Listed = t,
                        Healthy = probes[i].Healthy, Status = probes[i].Status.ToString(), Detail = probes[i].Detail,
                        Maintenance = _rb.IsMaintenance(t ?? new RingBalancerTarget { Target = w, Address = known?.Address ?? endpoints[i].Address, Port = known?.Port ?? endpoints[i].Port, Tags = known?.Tags }),
                    };
                }).ToList();
                var now = o.Clock();
                foreach (var w in HealingPolicy.SanitizeTimes(state, now, o)) _log.Warning($"Self-healing state '{statePath}': {w}");
                var plan = HealingPolicy.Decide(state, upstream, seen, o, now, o.Restart && _restarter != null);
                sum.TargetsChecked = plan.Checked;
                sum.Unhealthy = plan.Unhealthy;
                var removedThisPass = 0;
                var batch = new RemovalBatch(); // the guard reads Kong once per batch of this pass's removals (#32)
                var byTarget = seen.ToDictionary(x => x.Target, StringComparer.OrdinalIgnoreCase);
                foreach (var step in plan.Steps)
                {
                    ct.ThrowIfCancellationRequested();
                    SelfHealingAction ActionFor(StepOutcome oc, HealingReason reason, string detail, HealingAction? action = null)
                        => new SelfHealingAction { Pass = pass, Target = step.Target, ActionValue = action ?? step.Action, OutcomeValue = oc, ReasonValue = reason, Detail = detail, Failures = step.Failures, Successes = step.Successes };
                    if (!step.Act) { Report(ActionFor(StepOutcome.Skipped, step.Reason, step.Detail)); continue; }
                    try
                    {
                        switch (step.Action)
                        {
                            case HealingAction.Escalate:
                                var esc = ActionFor(o.WhatIf ? StepOutcome.WouldDo : StepOutcome.Done, step.Reason, step.Detail);
                                _log.Warning(step.Reason == HealingReason.PanicFloor
                                    ? $"Self-healing: upstream '{upstream}' is under its panic floor ({plan.HealthyInRotation} of {plan.InRotation} healthy): nothing is taken out; escalate."
                                    : $"Self-healing: {step.Detail}.");
                                var addresses = step.Target != null ? new[] { state.Targets[step.Target].Address } : step.EscalateAddresses;
                                if (!o.WhatIf) await EscalateAsync(esc, addresses, o, esc.Detail, ct).ConfigureAwait(false);
                                Report(esc);
                                break;
                            case HealingAction.Remove:
                                if (await RemoveAsync(o, upstream, statePath, state, step, present[step.Target], byTarget[step.Target], removedThisPass, batch, now, confirm, ActionFor, Report, ct).ConfigureAwait(false))
                                    removedThisPass++;
                                break;
                            case HealingAction.Add:
                                await AddBackAsync(o, upstream, statePath, state, step, confirm, ActionFor, Report, ct).ConfigureAwait(false);
                                break;
                            case HealingAction.Restart:
                                await RestartAsync(o, statePath, state, state.Targets[step.Target], now, confirm, ActionFor, Report, ct).ConfigureAwait(false);
                                break;
                        }
                    }
                    catch (OpsException e) when (!e.IsCancellation)
                    {
                        // An answer lost and not read back: the change may have happened (the mark is kept): Unknown, never Failed.
                        Report(ActionFor(e.OutcomeUnknown ? StepOutcome.Unknown : StepOutcome.Failed, HealingReason.Error, $"{e.ErrorId}: {e.Message}"));
                    }
                }
                if (!o.WhatIf) Save(statePath, state);
            }
        }

        /// <summary>Carries out a planned removal; true when Kong confirmed it.</summary>
        private async Task<bool> RemoveAsync(SelfHealingOptions o, string upstream, string statePath, HealingState state, HealingStep step, RingBalancerTarget t, HealingObservation seen,
            int removedThisPass, RemovalBatch batch, DateTimeOffset now, Func<string, string, Task<bool>> confirm, Func<StepOutcome, HealingReason, string, HealingAction?, SelfHealingAction> ActionFor,
            Action<SelfHealingAction> Report, CancellationToken ct)
        {
            var key = step.Target;
            var s = state.Targets[key];
            var incident = o.WhatIf ? null : await IncidentAsync(s.Address, ct).ConfigureAwait(false);
            var marked = false;
            RemovalResult removal;
            // The one removal path: the lease, the operator's answer (asked even under -WhatIf, so PowerShell prints its
            // "What if:" line), then the guard on a fresh read of the upstream (never the state read at the start of the
            // pass), then the change.
            try
            {
                removal = await _rb.RemoveSafelyAsync(new RemovalRequest
                {
                    Upstream = upstream, Target = t, Method = _ctx.Removal.Method, RemovedInBatch = removedThisPass, WhatIf = o.WhatIf, Batch = batch,
                    Actor = o.Actor, Incident = incident, ConfirmTarget = key, Action = $"Remove from upstream '{upstream}' (self-healing: {s.Failures} failed checks)",
                    // Remembered before Kong is asked. Undone only when Kong answered (or was read back showing) that nothing
                    // changed: a removal that may have landed and was forgotten would never be added back.
                    BeforeChange = () => { HealingPolicy.MarkRemoved(s, now, _ctx.Removal.Method); Save(statePath, state); marked = true; },
                    // Another responder may have fixed it while this pass waited for the lease: health is asked again.
                    StillWanted = async c =>
                    {
                        var h = await _health.CheckAsync(Endpoint.Parse(s.Address, s.Port > 0 ? s.Port : _ctx.Health.Port), c).ConfigureAwait(false);
                        return h.Healthy ? $"healthy again when its turn came ({h.Detail}): not removed" : null;
                    },
                }, confirm, ct).ConfigureAwait(false);
            }
            catch (OpsException e) when (!OutcomeUnknown(e)) { if (marked) { HealingPolicy.ClearRemoved(s); Save(statePath, state); } throw; }
            if (removal.NoLongerWanted != null) { Report(ActionFor(StepOutcome.Skipped, HealingReason.Recovered, removal.NoLongerWanted, null)); return false; }
            if (!removal.Guard.Allowed) { Report(ActionFor(StepOutcome.Skipped, HealingReason.CapacityGuard, $"{removal.Guard.ErrorId}: {removal.Guard.Reason}", null)); return false; }
            if (removal.Change == null)
            {
                Report(ActionFor(StepOutcome.WouldDo, HealingReason.Unhealthy, $"{seen.Status} {s.Failures} times: would remove", null));
                return false;
            }
            var change = removal.Change;
            var a = ActionFor(StepOutcome.Done, HealingReason.Unhealthy, $"{change.Action} after {s.Failures} failed checks ({seen.Status}: {seen.Detail})", null);
            a.IncidentId = incident;
            await NoteAsync(a, incident, $"removed by self-healing: target {key} of upstream {upstream} failed {s.Failures} consecutive health checks ({seen.Status}).", ct).ConfigureAwait(false);
            Report(a);
            return true;
        }

        private async Task AddBackAsync(SelfHealingOptions o, string upstream, string statePath, HealingState state, HealingStep step, Func<string, string, Task<bool>> confirm,
            Func<StepOutcome, HealingReason, string, HealingAction?, SelfHealingAction> ActionFor, Action<SelfHealingAction> Report, CancellationToken ct)
        {
            var key = step.Target;
            var s = state.Targets[key];
            if (!await confirm(key, $"Add back to upstream '{upstream}' (self-healing: healthy {s.Successes} passes)").ConfigureAwait(false) || o.WhatIf)
            {
                Report(ActionFor(StepOutcome.WouldDo, HealingReason.Recovered, "would add back", null));
                return;
            }
            var incident = await IncidentAsync(s.Address, ct).ConfigureAwait(false);
            var change = await _rb.AddAsync(new AddRequest { Upstream = upstream, Target = key, Weight = s.Weight > 0 ? s.Weight : 100, Tags = s.Tags, Actor = o.Actor, Incident = incident, Method = HealingPolicy.RemovedWith(s) }, ct).ConfigureAwait(false);
            HealingPolicy.ClearRemoved(s);
            Save(statePath, state);
            var a = ActionFor(StepOutcome.Done, HealingReason.Recovered, $"{change.Action} after {s.Successes} healthy passes", null);
            a.IncidentId = incident;
            await NoteAsync(a, incident, $"added back by self-healing: target {key} of upstream {upstream} passed {s.Successes} consecutive health checks.", ct).ConfigureAwait(false);
            Report(a);
        }

        /// <summary>
        /// The request may have reached Kong and changed it: only its answer is missing, and reading Kong back could not
        /// tell (the service reconciles first: a removal Kong shows as landed is Done; one it shows as not landed is an
        /// ordinary failure, OutcomeUnknown cleared). Ctrl+C is unknown too.
        /// </summary>
        private static bool OutcomeUnknown(OpsException e) => e.IsCancellation || e.OutcomeUnknown;

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

        private async Task RestartAsync(SelfHealingOptions o, string statePath, HealingState state, HealingTargetState s, DateTimeOffset now, Func<string, string, Task<bool>> confirm,
            Func<StepOutcome, HealingReason, string, HealingAction?, SelfHealingAction> ActionFor, Action<SelfHealingAction> Report, CancellationToken ct)
        {
            SshTarget ssh;
            try { ssh = SshTarget.For(_ctx, s.Address); }
            catch (OpsException e) { Report(ActionFor(StepOutcome.Failed, HealingReason.Error, e.Message, null)); return; }
            if (!await confirm($"{ssh.Container} on {s.Address}", "docker restart (self-healing)").ConfigureAwait(false) || o.WhatIf)
            {
                Report(ActionFor(StepOutcome.WouldDo, HealingReason.Unhealthy, "would restart the container", null));
                return;
            }
            try
            {
                var incident = await IncidentAsync(s.Address, ct).ConfigureAwait(false);
                await _restarter.RestartAsync(ssh, new RestartOptions { Wait = false, IncidentId = incident, PriorSince = (s.RemovedAt ?? now) - o.StartupGrace, IgnoreOwnRestarts = true, Actor = o.Actor, HealthPort = s.Port, LockDirectory = _ctx.Safety.LockDirectory, LockTimeout = _ctx.Safety.LockTimeout, Leases = _ctx.Leases }, null, ct).ConfigureAwait(false);
                HealingPolicy.Restarted(state, s, now, o);
                Save(statePath, state);
                var a = ActionFor(StepOutcome.Done, HealingReason.Unhealthy, $"restart {s.Restarts.Count} of at most {o.MaxRestartsPerHour} this hour; start-up grace {o.StartupGrace.TotalSeconds:0} s", null);
                a.IncidentId = incident;
                await NoteAsync(a, incident, $"self-healing restarted {ssh.Container} on {s.Address} (restart {s.Restarts.Count} this hour).", ct).ConfigureAwait(false);
                Report(a);
            }
            catch (OpsException e) when (e.ErrorId == "DependencyFaultNoRestart")
            {
                Report(ActionFor(StepOutcome.Skipped, HealingReason.DependencyFault, e.Message, null));
            }
            catch (OpsException e) when (e.OutcomeUnknown && !e.IsCancellation)
            {
                // Sent, its answer lost, and docker could not confirm it: charged as a restart (budget, back-off, grace),
                // so the next pass does not send another into a container that may still be starting.
                HealingPolicy.Restarted(state, s, now, o);
                Save(statePath, state);
                Report(ActionFor(StepOutcome.Unknown, HealingReason.Unhealthy, $"docker restart sent, its answer lost ({e.ErrorId}); counted as a restart, start-up grace {o.StartupGrace.TotalSeconds:0} s", null));
            }
            catch (AlreadyRestartedException e)
            {
                // Another responder (or an earlier pass) restarted it for this incident: never a second restart for it.
                Report(ActionFor(StepOutcome.Skipped, HealingReason.AlreadyRestarted, e.Message, null));
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
            try { return await SafeFile.OpenExclusiveAsync(statePath + ".lock", timeout, ct).ConfigureAwait(false); }
            catch (UnsafeFileException e) { throw StateUnwritable(statePath + ".lock", e); }
            catch (IOException) { return null; }
        }

        private static OpsException StateInvalid(string path, string why, Exception inner = null)
            => new OpsException("SelfHealingStateInvalid", OpsErrorCategory.InvalidData, $"The self-healing state file '{path}' {why}. Nothing was changed.", path,
                recommendedAction: "Point -StatePath at a file, or move the damaged one aside: the counters start again from zero, and targets self-healing removed are then not added back automatically (Get-KeyServiceAuditLog -Action RemoveTarget lists them; add them back with Add-RingBalancerTarget once healthy).", inner: inner);

        public static HealingState Load(string path)
        {
            if (Directory.Exists(path)) throw StateInvalid(path, "is a folder, not a file");
            // Another user of a shared folder could plant the state (what to add back, what to leave out) through a link.
            if (SafeFile.IsLink(path)) throw StateInvalid(path, "is a symbolic link; the state is read only from a file of its own (another user of the folder may have planted the link)");
            var problem = SafeFile.FolderProblem(path);
            if (problem != null) throw StateInvalid(path, $"is not read: {problem}");
            if (!File.Exists(path)) return new HealingState();
            try
            {
                var text = File.ReadAllText(path);
                // An empty or torn file is never read as "nothing happened": what self-healing removed would be forgotten.
                if (string.IsNullOrWhiteSpace(text)) throw StateInvalid(path, "is empty (a crash while it was written, or someone truncated it)");
                if (!text.TrimStart().StartsWith("{")) throw StateInvalid(path, "does not hold a JSON object");
                // Every state this module writes has its Targets object (empty or not): one without it lost what
                // self-healing took out, and is never read as "nothing is out" (a hostile review wrote {"Pass": 8}).
                var shape = Newtonsoft.Json.Linq.JObject.Parse(text);
                if (!(shape["Targets"] is Newtonsoft.Json.Linq.JObject)) throw StateInvalid(path, "has no Targets object (what self-healing took out would be forgotten)");
                var s = JsonConvert.DeserializeObject<HealingState>(text) ?? new HealingState();
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
            try
            {
                // A temporary file created new (never through a planted symlink), flushed, renamed over the state: a
                // crash leaves the old state or the new one, never an empty or torn file (issue #25).
                if (SafeFile.IsLink(path)) throw new UnsafeFileException("it is a symbolic link; the state is never written through one");
                SafeFile.WriteAllText(path, JsonConvert.SerializeObject(s, Formatting.Indented));
            }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException) { throw StateUnwritable(path, e); }
        }

        private static OpsException StateUnwritable(string path, Exception e)
            => new OpsException("SelfHealingStateUnwritable", OpsErrorCategory.PermissionDenied, $"Cannot save the self-healing state to '{path}': {e.Message}. Nothing was changed.", path,
                recommendedAction: "Point -StatePath at a writable file in a folder of your own (the folder must be writable too: the state is replaced atomically; a folder every user can write to needs the sticky bit, as /tmp has).", inner: e);
    }
}
