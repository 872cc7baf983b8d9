using System;
using System.IO;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using KeyServiceOps.Core.Diagnosis;
using KeyServiceOps.Core.Health;
using KeyServiceOps.Core.PagerDuty;
using KeyServiceOps.Core.Remote;
using KeyServiceOps.Core.RingBalancer;
using KeyServiceOps.Core.Audit;

namespace KeyServiceOps.Core.Runbook
{
    public enum StepOutcome { Done, Skipped, AlreadyDone, Failed, WouldDo, Unknown }

    /// <summary>How the runbook ended for one instance. PowerShell sees the name (<see cref="RunbookSummary.FinalState"/>).</summary>
    public enum RunbookEnd
    {
        /// <summary>Nothing to fix.</summary>
        Healthy,
        Recovered,
        AssignedToOwner,
        /// <summary>A dependency fault and no incident to hand it over on.</summary>
        DependencyFault,
        Escalated,
        Maintenance,
        Failed,
        /// <summary>-WhatIf: decided, nothing changed.</summary>
        WhatIf,
        /// <summary>The operator answered No at -Confirm.</summary>
        Declined,
    }

    /// <summary>One runbook step as it ran.</summary>
    public sealed class RunbookStepResult
    {
        public string Address { get; set; }
        public int Step { get; set; }
        public string Name { get; set; }
        /// <summary>The typed value for code; PowerShell sees <see cref="Outcome"/> (its name), so JSON and CSV read the same as the views.</summary>
        internal StepOutcome OutcomeValue { get; set; }
        public string Outcome => OutcomeValue.ToString();
        public string Detail { get; set; }
        public DateTimeOffset Started { get; set; }
        internal TimeSpan Duration { get; set; }
        public double Seconds => Math.Round(Duration.TotalSeconds, 3);
        public string IncidentId { get; set; }
        public override string ToString() => $"{Step}. {Name}: {Outcome} {Detail}";
    }

    /// <summary>What the runbook is doing now: the current step, and for a wait how long is left (no silent wait).</summary>
    public sealed class RunbookProgress
    {
        public int Step { get; set; }
        public string Name { get; set; }
        public string Status { get; set; }
        /// <summary>Seconds left of the current wait, or -1.</summary>
        public int SecondsRemaining { get; set; } = -1;
    }

    /// <summary>How the runbook ended for one instance.</summary>
    public sealed class RunbookSummary
    {
        public string Address { get; set; }
        public string Target { get; set; }
        public string Upstream { get; set; }
        public string IncidentId { get; set; }
        /// <summary>The typed value for code; PowerShell sees <see cref="FinalState"/> (its name): Healthy, Recovered, AssignedToOwner, DependencyFault, Escalated, Maintenance, Failed, WhatIf, Declined.</summary>
        internal RunbookEnd End { get; set; }
        public string FinalState => End.ToString();
        public TextList Faults { get; set; } = new TextList();
        public TextList Actions { get; set; } = new TextList();
        internal TimeSpan Duration { get; set; }
        public double Seconds => Math.Round(Duration.TotalSeconds, 3);
        /// <summary>Notes PagerDuty did not take (after its retries); the runbook went on without them.</summary>
        public TextList PendingNotes { get; set; } = new TextList();
        /// <summary>What the runbook went on without (PagerDuty down, no lease on the VM): the operator's to follow up.</summary>
        public TextList Warnings { get; set; } = new TextList();
        public override string ToString() => $"{Target} {FinalState}";
    }

    public sealed class RunbookOptions
    {
        public string Upstream { get; set; }
        public string IncidentId { get; set; }
        public HealthVia Via { get; set; } = HealthVia.Http;
        public TimeSpan RestartTimeout { get; set; } = TimeSpan.FromMinutes(5);
        public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(5);
        /// <summary>
        /// When the incident's creation time is not known (no incident, or PagerDuty did not answer), a restart by anyone
        /// this recently counts as the one for this outage: the runbook does not restart again.
        /// </summary>
        public TimeSpan RecentRestartWindow { get; set; } = TimeSpan.FromMinutes(10);
        /// <summary>How far PagerDuty's clock and the VM's may differ: a restart this long before the incident opened still counts.</summary>
        public TimeSpan IncidentClockSlack { get; set; } = TimeSpan.FromMinutes(1);
        public int DiagnoseTail { get; set; } = 500;
        public int EscalationLogLines { get; set; } = 50;
        public int EscalationLevel { get; set; } = 2;
        public string Actor { get; set; } = "runbook";
        /// <summary>-WhatIf: decide everything, change nothing (notes included).</summary>
        public bool WhatIf { get; set; }
        /// <summary>How long to wait for another actor on the same instance before InstanceBusy (null: the context's).</summary>
        public TimeSpan? LockTimeout { get; set; }
        /// <summary>The current step and every wait's countdown (the cmdlet's progress bar).</summary>
        public Action<RunbookProgress> Progress { get; set; }
    }

    /// <summary>
    /// Runbook "Key service instance is down", steps 1-5, for one instance. Every change goes through
    /// <c>confirm</c> (the cmdlet's ShouldProcess: false under -WhatIf), is audited by the service that makes
    /// it, and is written to the incident as a note. Each step recognises work already done, so a re-run after
    /// an interruption continues where it stopped.
    /// </summary>
    public sealed class RunbookRunner
    {
        public const string NotePrefix = "[KeyServiceOps] ";
        private readonly OpsContext _ctx;
        private readonly RingBalancerService _rb;
        private readonly DockerClient _docker;
        private readonly HealthProbe _probe;
        private readonly KeyServiceRestarter _restarter;
        private readonly HealthChecker _health;
        private readonly PagerDutyClient _pd;
        private readonly AuditLog _audit;
        private readonly FaultRuleSet _rules;
        private readonly IOpsLog _log;

        public RunbookRunner(OpsContext ctx, RingBalancerService rb, DockerClient docker, KeyServiceRestarter restarter, HealthChecker health,
            PagerDutyClient pagerDuty, AuditLog audit, FaultRuleSet rules, IOpsLog log)
        {
            _ctx = ctx; _rb = rb; _docker = docker; _restarter = restarter; _health = health; _pd = pagerDuty; _audit = audit;
            _probe = new HealthProbe(health, docker);
            _rules = rules ?? FaultRuleSet.Default; _log = log ?? NullOpsLog.Instance;
        }

        private sealed class Run
        {
            public Endpoint Ep;
            public string Upstream;
            public string Incident;
            public RunbookOptions O;
            public Func<string, string, Task<bool>> Confirm;
            public Action<RunbookStepResult> Emit;
            public readonly List<string> Actions = new List<string>();
            public bool WhatIf;
            public bool HandedOver;
            /// <summary>Step 2 marked the target unhealthy (it stays listed): step 4 marks it healthy.</summary>
            public bool MarkedUnhealthy;
            // What the steps learned, for the steps after them and the summary.
            public HealthResult Health;
            public IReadOnlyList<Fault> Faults = new List<Fault>();
            public bool StopAfterDiagnosis;
            public bool Recovered;
            public SshTarget Ssh;
            public readonly List<string> PendingNotes = new List<string>();
            public readonly List<string> Warnings = new List<string>();
            /// <summary>Step 5 could not escalate (PagerDuty did not answer): the run ends Failed, not Escalated.</summary>
            public bool EscalationFailed;
            public DateTimeOffset? IncidentCreated;
            /// <summary>The step running now (progress).</summary>
            public int Step;
        }

        public async Task<RunbookSummary> RunAsync(Endpoint ep, RunbookOptions o, Func<string, string, Task<bool>> confirm, Action<RunbookStepResult> emit, CancellationToken ct)
        {
            var total = Stopwatch.StartNew();
            var r = new Run { Ep = ep, Upstream = o.Upstream ?? _ctx.Kong.Upstream, O = o, Confirm = confirm, Emit = emit, WhatIf = o.WhatIf };
            var summary = new RunbookSummary { Address = ep.Address, Target = ep.Target, Upstream = r.Upstream };
            r.Incident = await FindIncidentAsync(r, ep, o.IncidentId, ct).ConfigureAwait(false);
            summary.IncidentId = r.Incident;
            if (!o.WhatIf && _pd != null)
            {
                // Notes an earlier run could not write go first, so the incident's story stays in order.
                try { await (NoteOutbox.For(_ctx)?.FlushAsync(_pd, _log, ct) ?? Task.FromResult((0, 0))).ConfigureAwait(false); }
                catch (Exception x) when (x is IOException || x is UnauthorizedAccessException) { _log.Warning($"Could not read the pending-notes outbox: {x.Message}"); }
            }
            if (o.WhatIf) return await RunLockedAsync(r, summary, total, ct).ConfigureAwait(false); // decides only: no lock
            // One actor per instance for the whole run: a second runbook (another operator) waits, then sees the result.
            using (await InstanceLock.AcquireAsync(_ctx.Safety.LockDirectory, ep.Address, $"Invoke-KeyServiceRunbook {ep.Target}{(r.Incident != null ? " for incident " + r.Incident : "")}", o.LockTimeout ?? _ctx.Safety.LockTimeout, ct, _ctx.Leases, _log).ConfigureAwait(false))
                return await RunLockedAsync(r, summary, total, ct).ConfigureAwait(false);
        }

        private async Task<RunbookSummary> RunLockedAsync(Run r, RunbookSummary summary, Stopwatch total, CancellationToken ct)
        {
            var ep = r.Ep;
            try { r.Ssh = SshTarget.For(_ctx, ep.Address); }
            catch (OpsException e) { _log.Warning($"{ep.Address}: {e.Message}"); }

            await StepAsync(r, 1, "Verify health", () => VerifyAsync(r, ct)).ConfigureAwait(false);
            var target = await _rb.ResolveAsync(r.Upstream, ep.Target, ct).ConfigureAwait(false);
            var inUpstream = target != null && target.Weight > 0;
            // Listed with its weight but marked unhealthy (an earlier run stopped before step 4, or a responder's mark):
            // out of rotation all the same, and put back by marking it healthy, never reported "nothing to fix".
            if (inUpstream && r.Health.Healthy && await _rb.MarkedUnhealthyInKongAsync(r.Upstream, target.Target, ct).ConfigureAwait(false))
            {
                inUpstream = false;
                r.MarkedUnhealthy = true;
            }
            if (r.Health.Healthy && inUpstream)
            {
                for (int s = 2; s <= 5; s++) Skip(r, s, "the instance is healthy and in the ring-balancer: nothing to fix");
                return Finish(summary, r, RunbookEnd.Healthy, null, total);
            }
            if (target != null && _rb.IsMaintenance(target))
            {
                for (int s = 2; s <= 5; s++) Skip(r, s, "the target is marked for maintenance: the runbook does not touch it");
                return Finish(summary, r, RunbookEnd.Maintenance, null, total);
            }

            if (!r.Health.Healthy)
            {
                await StepAsync(r, 2, "Remove from ring-balancer", () => RemoveAsync(r, target, inUpstream, ct)).ConfigureAwait(false);
                await StepAsync(r, 3, "Diagnose and restart", () => DiagnoseAndRestartAsync(r, ct)).ConfigureAwait(false);
                if (r.StopAfterDiagnosis)
                {
                    Skip(r, 4, "not restarted: the dependency's owner has the incident");
                    Skip(r, 5, "handed over in step 3");
                    return Finish(summary, r, r.WhatIf ? Undecided(r) : r.HandedOver ? RunbookEnd.AssignedToOwner : FaultAnalyzer.BlockingFault(r.Faults) != null ? RunbookEnd.DependencyFault : RunbookEnd.Failed, r.Faults, total);
                }
                if (r.WhatIf)
                {
                    Emit(r, 4, "Add back to ring-balancer", StepOutcome.WouldDo, $"if the restart recovers it: check health again and add {ep.Target} back", DateTimeOffset.UtcNow, TimeSpan.Zero);
                    Emit(r, 5, "Escalate", StepOutcome.WouldDo, $"if it does not: collect the last {r.O.EscalationLogLines} log lines and escalate to level {r.O.EscalationLevel}", DateTimeOffset.UtcNow, TimeSpan.Zero);
                    return Finish(summary, r, Undecided(r), r.Faults, total);
                }
            }
            else
            {
                Skip(r, 2, r.MarkedUnhealthy ? "healthy again but marked unhealthy in Kong: continuing with step 4" : "healthy again but not in the upstream: continuing with step 4");
                Skip(r, 3, "healthy: nothing to diagnose or restart");
            }

            await StepAsync(r, 4, "Add back to ring-balancer", () => AddBackAsync(r, ct)).ConfigureAwait(false);
            if (r.Recovered)
            {
                Skip(r, 5, "recovered: nothing to escalate");
                return Finish(summary, r, RunbookEnd.Recovered, r.Faults, total);
            }
            await StepAsync(r, 5, "Escalate", () => EscalateAsync(r, ct)).ConfigureAwait(false);
            return Finish(summary, r, r.EscalationFailed ? RunbookEnd.Failed : RunbookEnd.Escalated, r.Faults, total);
        }

        /// <summary>Step 1: the runbook's health check.</summary>
        private async Task<(StepOutcome, string)> VerifyAsync(Run r, CancellationToken ct)
        {
            var h = await CheckAsync(r, ct).ConfigureAwait(false);
            r.Health = h;
            return (StepOutcome.Done, $"{h.Status}: {h.Detail}");
        }

        /// <summary>Step 2: take it out of the ring-balancer (the capacity guard first), and note "manually removed target".</summary>
        private async Task<(StepOutcome, string)> RemoveAsync(Run r, RingBalancerTarget target, bool inUpstream, CancellationToken ct)
        {
            var ep = r.Ep;
            if (!inUpstream)
            {
                // Another responder's note on the incident says who removed it (shared by every machine; this machine's
                // audit log knows only its own): then no second note.
                var noted = await RemovalNoteAsync(r, ep.Target, ct).ConfigureAwait(false);
                if (noted != null) return (StepOutcome.AlreadyDone, $"not in upstream '{r.Upstream}': {noted}");
                var who = WhoRemoved(ep.Target);
                await NoteAsync(r, $"target {ep.Target} is not in upstream {r.Upstream}: {who}", ct).ConfigureAwait(false);
                return (StepOutcome.AlreadyDone, $"not in upstream '{r.Upstream}': {who}");
            }
            // The one removal path: confirm, then the guard on a fresh read inside the lease, then the change.
            var removal = await _rb.RemoveSafelyAsync(new RemovalRequest
            {
                Upstream = r.Upstream, Target = target, Method = _ctx.Removal.Method, WhatIf = r.O.WhatIf, Actor = r.O.Actor, Incident = r.Incident,
                ConfirmTarget = ep.Target, Action = $"Remove from upstream '{r.Upstream}' (runbook step 2)",
            }, r.Confirm, ct).ConfigureAwait(false);
            var guard = removal.Guard;
            if (!guard.Allowed) return (StepOutcome.Failed, $"kept in the upstream by the capacity guard ({guard.ErrorId}): {guard.Reason}");
            if (removal.Change == null)
                return (StepOutcome.WouldDo, $"would remove {ep.Target} from '{r.Upstream}' ({guard.Reason}) and note 'manually removed target'");
            var change = removal.Change;
            r.MarkedUnhealthy = change.ActionValue == TargetChangeAction.MarkedUnhealthy;
            r.Actions.Add($"{change.Action} {ep.Target}");
            await NoteAsync(r, $"manually removed target {ep.Target} from upstream {r.Upstream} (runbook step 2: the instance failed its health check)", ct).ConfigureAwait(false);
            return (StepOutcome.Done, $"{change.Action}: {change.Detail}");
        }

        /// <summary>Step 3: read the logs; hand a dependency fault to its owner, else restart once per incident and wait for health.</summary>
        private async Task<(StepOutcome, string)> DiagnoseAndRestartAsync(Run r, CancellationToken ct)
        {
            var ep = r.Ep;
            // Outcomes after which the runbook stops at step 3 (a dependency fault handed over, or no way to the VM).
            (StepOutcome, string) Stop(StepOutcome outcome, string detail) { r.StopAfterDiagnosis = true; return (outcome, detail); }
            if (r.Ssh == null) return Stop(StepOutcome.Failed, "no SSH route to the VM (see the warning)");
            Report(r, $"reading the logs of {r.Ssh.Container} on {ep.Address}");
            var faults = await _docker.DiagnoseAsync(r.Ssh, r.O.DiagnoseTail, _rules, _ctx.Healing.FaultOwners, ct).ConfigureAwait(false);
            r.Faults = faults;
            var blocking = FaultAnalyzer.BlockingFault(faults);
            var found = faults.Count == 0 ? "no special error in the logs" : string.Join(", ", faults.Select(f => $"{f.Category} ({f.Count} {(f.Count == 1 ? "line" : "lines")})"));
            if (blocking != null)
            {
                var evidence = string.Join("\n", blocking.Evidence);
                var owner = blocking.Owner;
                var what = owner != null ? $"assign the incident to {owner}" : $"escalate the incident to level {r.O.EscalationLevel} (no owner configured for {blocking.Category})";
                if (!await r.Confirm($"incident {r.Incident ?? "(none)"}", $"{what} (runbook step 3: {blocking.Category} fault, no restart)").ConfigureAwait(false))
                    return Stop(StepOutcome.WouldDo, $"{found}; dependency fault: would {what} with the evidence and not restart");
                if (r.Incident == null || _pd == null)
                {
                    r.HandedOver = false;
                    return Stop(StepOutcome.Failed, $"{found}; dependency fault, not restarted — but there is no open incident to hand over: {(owner != null ? $"tell {owner}" : "page the dependency's owner")} by hand");
                }
                try { await HandOverAsync(r, owner, ct).ConfigureAwait(false); }
                catch (OpsException e) when (!e.IsCancellation && e.Category != OpsErrorCategory.InvalidArgument && e.ErrorId != "PagerDutyAssigneeNotFound")
                {
                    Warn(r, $"PagerDuty did not take the hand-over of {r.Incident} ({e.ErrorId}): {what} by hand.");
                    r.HandedOver = false;
                    return Stop(StepOutcome.Failed, $"{found}; dependency fault, not restarted — PagerDuty did not take the hand-over ({e.ErrorId}): {what} by hand");
                }
                await NoteAsync(r, $"dependency fault {blocking.Category} on {ep.Address}: not restarted; {what}. {blocking.Advice}\nEvidence:\n{evidence}", ct).ConfigureAwait(false);
                r.Actions.Add(owner != null ? $"assigned to {owner}" : $"escalated to level {r.O.EscalationLevel}");
                r.HandedOver = true;
                return Stop(StepOutcome.Done, $"{found}; dependency fault: {what}; not restarted");
            }
            async Task<(StepOutcome, string)> Already(string prior, DateTimeOffset? priorAt, ContainerState state)
            {
                // Never twice for one incident, whoever restarted it (this machine's audit log, or the VM's journal that
                // every responder writes). What docker says now decides what to do instead; never a silent wait.
                var already = r.Incident != null && r.IncidentCreated != null
                    ? $"{found}; {r.Ssh.Container} was already restarted since incident {r.Incident} opened ({prior}): not restarted twice for one incident"
                    : r.Incident != null
                    ? $"{found}; {r.Ssh.Container} was already restarted for incident {r.Incident}, or in the last {r.O.RecentRestartWindow.TotalMinutes:0} min for no named incident ({prior}; PagerDuty did not say when the incident opened): not restarted twice for one outage"
                    : $"{found}; {r.Ssh.Container} was already restarted in the last {r.O.RecentRestartWindow.TotalMinutes:0} min {prior}: not restarted twice for one outage";
                // Died and brought back by docker's restart policy since that restart: running again, started later.
                if (state != null && state.Running && !state.Restarting && priorAt != null && state.StartedAt > priorAt.Value.AddSeconds(30))
                    already += $"; it stopped and docker restarted it since, at {state.StartedAt:yyyy-MM-dd HH:mm:ss}Z (restart count {state.RestartCount})";
                if (state != null && (!state.Running || state.Restarting))
                    return (StepOutcome.AlreadyDone, $"{already}; it has stopped again since ({state.Status}, exit code {state.ExitCode}{(state.OOMKilled ? ", out of memory" : "")}{(state.FinishedAt != null ? $", at {state.FinishedAt:yyyy-MM-dd HH:mm:ss}Z" : "")})");
                // The earlier restart had the restart timeout to recover; only what is left of it is waited (none when it
                // is spent: it is running and still down, so step 5 escalates).
                var left = priorAt == null ? r.O.RestartTimeout : priorAt.Value + r.O.RestartTimeout - DateTimeOffset.UtcNow;
                if (left > r.O.RestartTimeout) left = r.O.RestartTimeout;
                var h = await CheckAsync(r, ct).ConfigureAwait(false);
                if (h.Healthy) return (StepOutcome.AlreadyDone, $"{already}; operational now");
                if (left <= TimeSpan.Zero)
                    return (StepOutcome.AlreadyDone, $"{already}; it is running and still not operational ({h.Status}) {Ago(DateTimeOffset.UtcNow - priorAt.Value)} later: not waited for again");
                if (r.WhatIf || r.O.WhatIf)
                    return (StepOutcome.AlreadyDone, $"{already}; it is running, not operational yet: would wait up to {left.TotalSeconds:0} s more for health");
                _log.Verbose($"{r.Ep.Address}: {already}; waiting up to {left.TotalSeconds:0} s more for health.");
                var healthy = await WaitForHealthAsync(r, ct, left).ConfigureAwait(false);
                return (StepOutcome.AlreadyDone, $"{already}; {(healthy ? "operational now" : $"still not operational {left.TotalSeconds:0} s later")}");
            }
            // Looked up before the question (no prompt for a restart that will not be done); the restarter checks again
            // inside the lease, where another responder's restart since this look cannot slip through.
            Report(r, $"looking for an earlier restart of {r.Ssh.Container} on {ep.Address}");
            var p0 = await _restarter.FindPriorRestartAsync(r.Ssh, r.Incident, ct, PriorSince(r), null, r.IncidentCreated == null).ConfigureAwait(false);
            if (p0 != null) return await Already(p0.Description, p0.Time, p0.State).ConfigureAwait(false);
            if (!await r.Confirm($"{r.Ssh.Container} on {ep.Address}", "docker restart and wait for health (runbook step 3)").ConfigureAwait(false))
                return (StepOutcome.WouldDo, $"{found}; would restart {r.Ssh.Container} and wait up to {r.O.RestartTimeout.TotalSeconds:0} s for health");
            RestartResult restart;
            try
            {
                restart = await _restarter.RestartAsync(r.Ssh, new RestartOptions
                {
                    LockDirectory = _ctx.Safety.LockDirectory, LockTimeout = _ctx.Safety.LockTimeout, Leases = _ctx.Leases,
                    Wait = true, Timeout = r.O.RestartTimeout, PollInterval = r.O.PollInterval, KnownFaults = faults, Via = r.O.Via,
                    HealthPort = ep.Port, IncidentId = r.Incident, Actor = r.O.Actor, PriorSince = PriorSince(r), PriorSinceIsWindow = r.IncidentCreated == null,
                }, p => Report(r, $"{p.Phase}; {Math.Ceiling(p.Remaining.TotalSeconds):0} s left", (int)Math.Ceiling(p.Remaining.TotalSeconds)), ct).ConfigureAwait(false);
            }
            catch (AlreadyRestartedException e) { return await Already(e.Prior.Description, e.Prior.Time == default ? (DateTimeOffset?)null : e.Prior.Time, e.Prior.State).ConfigureAwait(false); }
            catch (OpsException e) when (e.OutcomeUnknown && !e.IsCancellation)
            {
                // `docker restart` was sent and its answer lost; docker could not confirm it either way. It may still land:
                // never a second restart, never "failed" — wait for health, then step 4 decides (issue #25).
                Warn(r, $"{ep.Address}: the answer to docker restart was lost and docker could not confirm it ({e.ErrorId}); it may still be restarting: waiting for health, not restarting again.");
                r.Actions.Add($"restart of {r.Ssh.Container} sent (outcome unknown)");
                var healthy = await WaitForHealthAsync(r, ct).ConfigureAwait(false);
                await NoteAsync(r, $"restart of {r.Ssh.Container} on {ep.Address} sent ({found}); its answer was lost ({e.ErrorId}); {(healthy ? "operational now" : $"not operational after {r.O.RestartTimeout.TotalSeconds:0} s")}", ct).ConfigureAwait(false);
                return (StepOutcome.Unknown, $"{found}; docker restart sent, its answer lost ({e.ErrorId}); {(healthy ? "operational now" : $"still not operational after {r.O.RestartTimeout.TotalSeconds:0} s")}");
            }
            r.Actions.Add($"restarted {r.Ssh.Container} ({restart.Status})");
            await NoteAsync(r, $"restarted {r.Ssh.Container} on {ep.Address} ({found}): {(restart.Recovered == true ? $"operational again after {restart.Elapsed.TotalSeconds:0} s" : $"not operational after {r.O.RestartTimeout.TotalSeconds:0} s")}", ct).ConfigureAwait(false);
            return (StepOutcome.Done, $"{found}; restart: {restart.Status} in {restart.Elapsed.TotalSeconds:0.#} s");
        }

        /// <summary>Step 4: check again, and add it back the way it was taken out.</summary>
        private async Task<(StepOutcome, string)> AddBackAsync(Run r, CancellationToken ct)
        {
            var ep = r.Ep;
            var h = await CheckAsync(r, ct).ConfigureAwait(false);
            if (!h.Healthy) return (StepOutcome.Skipped, $"still {h.Status} ({h.Detail}): not added back");
            r.Recovered = true;
            var existing = await _rb.ResolveAsync(r.Upstream, ep.Target, ct).ConfigureAwait(false);
            // A target marked unhealthy stays listed with its weight: it is back only once marked healthy.
            if (existing != null && existing.Weight > 0 && !r.MarkedUnhealthy) return (StepOutcome.AlreadyDone, $"{ep.Target} is already in '{r.Upstream}'");
            if (!await r.Confirm(ep.Target, $"Add back to upstream '{r.Upstream}' (runbook step 4)").ConfigureAwait(false))
                return (StepOutcome.WouldDo, $"would add {ep.Target} back to '{r.Upstream}'");
            var change = await _rb.AddAsync(new AddRequest { Upstream = r.Upstream, Target = ep.Target, Weight = 100, Actor = r.O.Actor, Incident = r.Incident, Method = r.MarkedUnhealthy ? RemovalMethod.MarkUnhealthy : _ctx.Removal.Method }, ct).ConfigureAwait(false);
            r.Actions.Add($"{change.Action} {ep.Target}");
            await NoteAsync(r, $"added target {ep.Target} back to upstream {r.Upstream} (runbook step 4: the API is available and operational)", ct).ConfigureAwait(false);
            return (StepOutcome.Done, $"{change.Action}: {change.Detail}");
        }

        /// <summary>Step 5: still failing: the last log lines on the incident, and the escalation level.</summary>
        private async Task<(StepOutcome, string)> EscalateAsync(Run r, CancellationToken ct)
        {
            var ep = r.Ep;
            if (r.Incident == null) return (StepOutcome.Failed, "still failing, and there is no open incident to escalate: page level 2 by hand");
            var lines = new List<string>();
            if (r.Ssh != null)
            {
                try { await _docker.LogsAsync(r.Ssh, new LogQuery { Tail = r.O.EscalationLogLines }, e => lines.Add(e.ToString()), ct).ConfigureAwait(false); }
                catch (OpsException e) { lines.Add($"(could not read the logs: {e.ErrorId}: {e.Message})"); }
            }
            if (!await r.Confirm($"incident {r.Incident}", $"Escalate to level {r.O.EscalationLevel} with the last {lines.Count} log lines (runbook step 5)").ConfigureAwait(false))
                return (StepOutcome.WouldDo, $"would escalate to level {r.O.EscalationLevel}");
            // The escalation first, then the note saying what PagerDuty confirmed (a note written first said "escalating"
            // and, kept in the outbox through an outage, told responders of an escalation that never happened).
            var evidence = $"Last {lines.Count} lines of docker logs {r.Ssh?.Container}:\n{string.Join("\n", lines)}";
            PagerDutyIncident inc; bool escalated;
            try { (inc, escalated) = await _pd.EscalateToAsync(r.Incident, r.O.EscalationLevel, ct).ConfigureAwait(false); }
            catch (OpsException e) when (!e.IsCancellation && e.Category != OpsErrorCategory.InvalidArgument)
            {
                r.EscalationFailed = true;
                Warn(r, $"PagerDuty did not take the escalation of {r.Incident} ({e.ErrorId}): escalate it to level {r.O.EscalationLevel} by hand.");
                await NoteAsync(r, $"{ep.Address} still does not work after the runbook; the escalation to level {r.O.EscalationLevel} was NOT confirmed by PagerDuty ({e.ErrorId}): escalate by hand. {evidence}", ct).ConfigureAwait(false);
                return (StepOutcome.Failed, $"escalation to level {r.O.EscalationLevel} not confirmed by PagerDuty ({e.ErrorId}): escalate by hand");
            }
            await NoteAsync(r, escalated
                ? $"{ep.Address} still does not work after the runbook; escalated to level {r.O.EscalationLevel}. {evidence}"
                : $"{ep.Address} still does not work after the runbook; the incident is already at level {inc.EscalationLevel}. {evidence}", ct).ConfigureAwait(false);
            if (!escalated)
                return (StepOutcome.AlreadyDone, $"incident already at level {inc.EscalationLevel}; logs attached");
            r.Actions.Add($"escalated to level {r.O.EscalationLevel}");
            return (StepOutcome.Done, $"escalated to level {r.O.EscalationLevel} with {lines.Count} log lines");
        }

        private Task<HealthResult> CheckAsync(Run r, CancellationToken ct) => _probe.CheckAsync(r.Ep, r.Ssh, r.O.Via, ct);

        /// <summary>
        /// Any restart since the incident was opened counts as this incident's restart, whoever made it and for whatever
        /// incident (a self-healing pass, a responder with another incident): the container's StartedAt against the
        /// incident's creation. A minute early still counts: PagerDuty's clock and the VM's differ. Without that time (no
        /// incident, or PagerDuty did not answer): any restart within <see cref="RunbookOptions.RecentRestartWindow"/>.
        /// </summary>
        private static DateTimeOffset? PriorSince(Run r) => (r.IncidentCreated - r.O.IncidentClockSlack) ?? DateTimeOffset.UtcNow - r.O.RecentRestartWindow;

        /// <summary>Polls health until operational or <paramref name="budget"/> (default: the restart timeout) is spent, reporting the countdown.</summary>
        private async Task<bool> WaitForHealthAsync(Run r, CancellationToken ct, TimeSpan? budget = null)
        {
            var limit = budget ?? r.O.RestartTimeout;
            var waited = Stopwatch.StartNew(); // monotonic: a clock step neither ends nor stretches the wait
            while (true)
            {
                var h = await CheckAsync(r, ct).ConfigureAwait(false);
                if (h.Healthy) return true;
                var left = limit - waited.Elapsed;
                if (left <= TimeSpan.Zero) return false;
                Report(r, $"waiting for {r.Ep.Address} to be operational ({h.Status}); {Math.Ceiling(left.TotalSeconds):0} s left", (int)Math.Ceiling(left.TotalSeconds));
                await Task.Delay(r.O.PollInterval < left ? r.O.PollInterval : left, ct).ConfigureAwait(false);
            }
        }

        /// <summary>
        /// PagerDuty is not on the critical path (issue #25): only a definitive answer refuses the run before a change — the
        /// incident does not exist (PagerDutyNotFound) or is resolved. An outage (5xx, timeouts, 429 past the retries, a page
        /// that is not PagerDuty's) is a warning: the runbook remediates and its notes wait in the outbox.
        /// </summary>
        private async Task<string> FindIncidentAsync(Run r, Endpoint ep, string given, CancellationToken ct)
        {
            if (!string.IsNullOrEmpty(given))
            {
                if (_pd == null) return given;
                PagerDutyIncident inc;
                try { inc = await _pd.GetIncidentAsync(given, ct).ConfigureAwait(false); }
                catch (OpsException e) when (!e.IsCancellation && e.Category != OpsErrorCategory.ObjectNotFound && e.Category != OpsErrorCategory.InvalidArgument)
                {
                    Warn(r, $"PagerDuty did not answer the look-up of incident {given} ({e.ErrorId}): remediating anyway; notes wait in the outbox.");
                    return given;
                }
                if (string.Equals(inc?.Status, "resolved", StringComparison.OrdinalIgnoreCase)) throw IncidentResolved(given);
                r.IncidentCreated = inc?.CreatedAt;
                return given;
            }
            if (_pd == null) return null;
            try
            {
                var found = (await _pd.FindForAddressAsync(ep.Address, ct).ConfigureAwait(false)).OrderByDescending(i => i.CreatedAt).FirstOrDefault();
                if (found != null) { _log.Verbose($"{ep.Address}: open incident {found.IncidentId} ({found.Title})."); r.IncidentCreated = found.CreatedAt; }
                return found?.IncidentId;
            }
            catch (OpsException e) when (!e.IsCancellation)
            {
                Warn(r, $"PagerDuty did not answer the search for {ep.Address}'s incident ({e.ErrorId}): remediating without one; no notes are written.");
                return null;
            }
        }

        private static OpsException IncidentResolved(string id)
            => new OpsException("PagerDutyIncidentResolved", OpsErrorCategory.InvalidOperation,
                $"Incident {id} is resolved: the runbook works open incidents only. Nothing was changed.", id,
                recommendedAction: "Check the id (Get-PagerDutyIncident -Status Triggered,Acknowledged), or run the runbook without -IncidentId to work the instance alone.");

        private void Warn(Run r, string text)
        {
            r.Warnings.Add(text);
            _log.Warning(text);
        }

        /// <summary>A note on the incident that records this target's removal (by any responder or self-healing), or null.</summary>
        private async Task<string> RemovalNoteAsync(Run r, string target, CancellationToken ct)
        {
            if (r.Incident == null || _pd == null) return null;
            try
            {
                var notes = await _pd.GetNotesAsync(r.Incident, ct).ConfigureAwait(false);
                var n = notes.LastOrDefault(x => x.Content != null && x.Content.StartsWith(NotePrefix, StringComparison.Ordinal) && x.Content.Contains(target)
                                                 && (x.Content.Contains("manually removed target") || x.Content.Contains("removed by self-healing") || x.Content.Contains($"target {target} is not in upstream")));
                return n == null ? null : $"the incident already records its removal (note at {n.CreatedAt:u}{(n.User != null ? " by " + n.User : "")})";
            }
            catch (OpsException e) when (!e.IsCancellation) { return null; }
        }

        private string WhoRemoved(string target)
        {
            var last = _audit?.Read(null, target, "RemoveTarget").LastOrDefault();
            if (last == null) return "no record of who removed it (not this module)";
            var bySelfHealing = last.Actor != null && last.Actor.StartsWith("self-healing", StringComparison.OrdinalIgnoreCase);
            return bySelfHealing ? $"self-healing already removed it at {last.Time:u}" : $"removed by {last.Actor} at {last.Time:u}";
        }

        private async Task HandOverAsync(Run r, string owner, CancellationToken ct)
        {
            if (r.Incident == null || _pd == null) return;
            if (owner == null) { await _pd.EscalateToAsync(r.Incident, r.O.EscalationLevel, ct).ConfigureAwait(false); return; }
            var inc = await _pd.GetIncidentAsync(r.Incident, ct).ConfigureAwait(false);
            var id = await _pd.ResolveUserIdAsync(owner, ct).ConfigureAwait(false);
            if (inc.AssigneeIds.Count == 1 && inc.AssigneeIds[0] == id) return;
            await _pd.UpdateIncidentAsync(r.Incident, new IncidentUpdate { AssigneeIds = new[] { id } }, inc, ct).ConfigureAwait(false);
        }

        /// <summary>Writes a note unless the same note is already on the incident (re-runs do not repeat themselves).</summary>
        private async Task NoteAsync(Run r, string text, CancellationToken ct)
        {
            if (r.Incident == null || _pd == null || r.WhatIf || r.O.WhatIf) return;
            var content = SafeText.Lines(NotePrefix + text); // as PagerDutyClient sends it, so a re-run recognises its own note
            try
            {
                var notes = await _pd.GetNotesAsync(r.Incident, ct).ConfigureAwait(false);
                if (notes.Any(n => n.Content == content)) { _log.Verbose($"Incident {r.Incident}: the note is already there."); return; }
                await _pd.AddNoteAsync(r.Incident, content, ct).ConfigureAwait(false);
            }
            catch (OpsException e) when (!e.IsCancellation)
            {
                // A note never stops the runbook half-way (an instance left out of rotation is worse than a missing
                // note): warn, keep it in the summary (PendingNotes) for the operator to add, and go on.
                r.PendingNotes.Add(content);
                var outbox = NoteOutbox.For(_ctx);
                try { outbox?.Add(new PendingNote { IncidentId = r.Incident, Content = content, Since = DateTimeOffset.UtcNow, LastError = e.ErrorId }); }
                catch (OpsException x) when (x.ErrorId == "NoteOutboxUnwritable") { outbox = null; }
                _log.Warning($"Could not add the note to incident {r.Incident} ({e.ErrorId}: {e.Message}); the runbook goes on. " +
                    (outbox != null ? $"It is kept in {outbox.Path} and written by the next command that talks to PagerDuty (or Add-PagerDutyIncidentNote -RetryPendingNotes)." : "It is listed in the summary's PendingNotes: add it with Add-PagerDutyIncidentNote once PagerDuty answers."));
            }
        }

        /// <summary>-WhatIf asked for a preview; an operator who answered No at -Confirm declined. Two outcomes, not one.</summary>
        private static RunbookEnd Undecided(Run r) => r.O.WhatIf ? RunbookEnd.WhatIf : RunbookEnd.Declined;

        /// <summary>The one note an unattended run leaves on the incident: what ran, what it found, how it ended.</summary>
        public static string UnattendedNote(RunbookSummary summary, IEnumerable<RunbookStepResult> steps)
            => NotePrefix + $"unattended runbook for {summary.Target}: {summary.FinalState} after {summary.Seconds:0} s" +
               (summary.Faults.Count > 0 ? $"; faults: {summary.Faults}" : "") + "\n" +
               string.Join("\n", steps.Select(x => $"{x.Step}. {x.Name}: {x.Outcome} — {x.Detail}")) +
               (summary.Warnings.Count > 0 ? "\nWarnings: " + string.Join(" | ", summary.Warnings) : "");

        private static string Ago(TimeSpan t) => t.TotalSeconds < 120 ? $"{t.TotalSeconds:0} s" : $"{t.TotalMinutes:0} min";

        private static void Report(Run r, string status, int secondsRemaining = -1)
            => r.O.Progress?.Invoke(new RunbookProgress { Step = r.Step, Name = Names[Math.Max(0, Math.Min(r.Step, Names.Length - 1))], Status = status, SecondsRemaining = secondsRemaining });

        private async Task StepAsync(Run r, int step, string name, Func<Task<(StepOutcome, string)>> body)
        {
            r.Step = step;
            Report(r, "running");
            var started = DateTimeOffset.UtcNow;
            var sw = Stopwatch.StartNew();
            try
            {
                var (outcome, detail) = await body().ConfigureAwait(false);
                if (outcome == StepOutcome.WouldDo) r.WhatIf = true;
                Emit(r, step, name, outcome, detail, started, sw.Elapsed);
            }
            catch (OpsException e) when (!e.IsCancellation)
            {
                // A change whose answer was lost and could not be read back may have happened: Unknown, never Failed.
                Emit(r, step, name, e.OutcomeUnknown ? StepOutcome.Unknown : StepOutcome.Failed, $"{e.ErrorId}: {e.Message}", started, sw.Elapsed);
                throw;
            }
        }

        private static readonly string[] Names = { "", "Verify health", "Remove from ring-balancer", "Diagnose and restart", "Add back to ring-balancer", "Escalate" };

        private void Skip(Run r, int step, string why) => Emit(r, step, Names[step], StepOutcome.Skipped, why, DateTimeOffset.UtcNow, TimeSpan.Zero);

        private static void Emit(Run r, int step, string name, StepOutcome outcome, string detail, DateTimeOffset started, TimeSpan duration)
            => r.Emit?.Invoke(new RunbookStepResult { Address = r.Ep.Address, Step = step, Name = name, OutcomeValue = outcome, Detail = detail, Started = started, Duration = duration, IncidentId = r.Incident });

        private static RunbookSummary Finish(RunbookSummary s, Run r, RunbookEnd state, IReadOnlyList<Fault> faults, Stopwatch total)
        {
            s.End = state;
            s.Faults = (faults ?? new List<Fault>()).Select(f => f.Category).ToArray();
            s.Actions = r.Actions.ToArray();
            s.PendingNotes = r.PendingNotes.ToArray();
            s.Warnings = r.Warnings.ToArray();
            s.Duration = total.Elapsed;
            return s;
        }
    }
}
