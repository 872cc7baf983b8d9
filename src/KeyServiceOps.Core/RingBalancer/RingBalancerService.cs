using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using KeyServiceOps.Core.Health;
using Newtonsoft.Json.Linq;
using KeyServiceOps.Core.Audit;

namespace KeyServiceOps.Core.RingBalancer
{
    /// <summary>
    /// Taking targets out of and back into the ring-balancer, with the safety rules enforced here, not in
    /// the cmdlets: never the last healthy target, never more than a share at once, respect Kong's threshold,
    /// absent/present are no-ops that say so, every change audited before returning.
    /// </summary>
    public sealed class RingBalancerService
    {
        private readonly KongClient _kong;
        private readonly HealthChecker _health;
        private readonly AuditLog _audit;
        private readonly IOpsLog _log;
        private readonly IRingBalancerSettings _ctx;

        public RingBalancerService(IRingBalancerSettings ctx, KongClient kong, HealthChecker health, AuditLog audit, IOpsLog log)
        {
            _ctx = ctx; _kong = kong; _health = health; _audit = audit; _log = log ?? NullOpsLog.Instance;
        }

        public KongClient Kong => _kong;

        /// <summary>Normalises user input to Kong's stored target form; a UUID passes through as an id.</summary>
        public static string NormalizeTarget(string input, int defaultPort)
        {
            if (input != null && Guid.TryParse(input.Trim(), out var g)) return g.ToString();
            return Endpoint.Parse(input, defaultPort).Target;
        }

        public Task<RingBalancerTarget> ResolveAsync(string upstream, string target, CancellationToken ct)
            => _kong.FindTargetAsync(upstream, target, ct);

        public bool IsMaintenance(RingBalancerTarget t)
            => (t.Tags ?? new string[0]).Any(x => string.Equals(x, _ctx.Removal.MaintenanceTag, StringComparison.OrdinalIgnoreCase))
               || _ctx.Removal.MaintenanceTargets.Any(m => string.Equals(m, t.Target, StringComparison.OrdinalIgnoreCase) || string.Equals(m, t.Address, StringComparison.OrdinalIgnoreCase))
               || (_ctx.FindInventory(t.Address)?.Maintenance ?? false);

        /// <summary>
        /// Decides whether removing <paramref name="target"/> is safe, on state read fresh from Kong right now
        /// (a guard acting on stale state is how the last target gets removed) and probed by us (Kong's health
        /// is one node's view, and HEALTHCHECKS_OFF means it does not know).
        /// </summary>
        public async Task<GuardDecision> EvaluateRemovalAsync(string upstream, RingBalancerTarget target, int removedInThisBatch, CancellationToken ct, RemovalBatch batch = null)
        {
            // Kong is read for the guard once per batch (#32; every time without one): the batch's first removal reads it
            // right before acting, and each later removal of the batch is judged on that read with the batch's own
            // removals counted in, until the batch's bounds (removals, age) ask for a fresh read.
            if (batch == null || !batch.Valid(upstream, DateTimeOffset.UtcNow))
            {
                var read = new RemovalBatch.GuardRead { Upstream = upstream, At = DateTimeOffset.UtcNow };
                read.Info = await _kong.GetUpstreamAsync(upstream, ct).ConfigureAwait(false);
                read.Targets = await _kong.GetTargetsAsync(upstream, ct).ConfigureAwait(false);
                try { read.KongHealth = await _kong.GetHealthAsync(upstream, ct).ConfigureAwait(false); }
                catch (OpsException e) when (e.ErrorId != "KongUnauthorized") { read.KongHealth = new Dictionary<string, string>(); }
                read.RemovedAndNotBack = RemovedAndNotBack(upstream);
                if (batch != null) batch.Take(read); else batch = new RemovalBatch().Take(read);
            }
            var info = batch.Read.Info;
            var kongHealth = batch.Read.KongHealth;
            var targets = batch.Read.Targets.Where(t => !batch.RemovedSinceRead.Contains(t.Target)).ToList();

            var live = targets.Where(t => t.Weight > 0).ToList();
            var others = live.Where(t => !string.Equals(t.Id, target.Id, StringComparison.OrdinalIgnoreCase)
                                         && !string.Equals(t.Target, target.Target, StringComparison.OrdinalIgnoreCase)).ToList();
            var decision = new GuardDecision { TotalTargets = live.Count + removedInThisBatch };
            if (others.Count == 0)
                return Refuse(decision, "LastTarget", $"{target.Target} is the last target of upstream '{upstream}'; removing it makes Kong answer 503 for every request.");

            string H(RingBalancerTarget t) => kongHealth.TryGetValue(t.Target, out var h) ? h : "HEALTHCHECKS_OFF";
            // Probe the others ourselves, Kong-healthy ones first, 16 at a time, until one answers healthy (or none is
            // left): Kong's view can be stale or absent (HEALTHCHECKS_OFF), and the first 16 in its order may all be
            // down (found at fleet scale: the newest targets listed first were the dead ones).
            var ordered = others.OrderBy(t => H(t) == "HEALTHY" ? 0 : H(t) == "HEALTHCHECKS_OFF" ? 1 : 2).ToList();
            var probed = batch.Read.Probed; // probes already made on this read count (a healthy answer is not asked again)
            bool AnyHealthy() => others.Any(t => probed.TryGetValue(t.Target, out var ok) && ok);
            var unprobed = ordered.Where(t => !probed.ContainsKey(t.Target)).ToList();
            for (int from = 0; from < unprobed.Count && !AnyHealthy(); from += 16)
            {
                var group = unprobed.Skip(from).Take(16).ToList();
                var probes = await _health.CheckManyAsync(group.Select(c => new Endpoint(c.Address, c.Port)).ToList(), 16, ct).ConfigureAwait(false);
                foreach (var (t, p) in group.Zip(probes, (t, p) => (t, p))) probed[t.Target] = p.Healthy;
            }
            bool Available(RingBalancerTarget t) => probed.TryGetValue(t.Target, out var ok) ? ok : H(t) != "UNHEALTHY" && H(t) != "DNS_ERROR";

            decision.HealthyRemaining = others.Count(t => probed.TryGetValue(t.Target, out var ok) && ok);
            if (decision.HealthyRemaining == 0)
                return Refuse(decision, "LastHealthyTarget", $"No other target of upstream '{upstream}' answers its health check; {target.Target} is the last one that might serve traffic.");

            // The share counts what is out of rotation now, whoever took it out and in whichever command (#27 row 2):
            // drained (weight 0) targets Kong lists (every machine sees them), and deleted or marked-unhealthy ones this
            // machine's audit log knows as this upstream's, not put back, within OutOfRotationWindow; not only what this
            // pipeline removed. A deletion made from another machine is invisible here: teams with several responders
            // should remove by Drain or MarkUnhealthy (RemovalMethod), which Kong shows to all of them. Targets that merely fail their health
            // checks are not "taken out": removing a dead one costs no capacity (the other guards judge the rest).
            var listed = new HashSet<string>(targets.Select(t => t.Target), StringComparer.OrdinalIgnoreCase);
            var outNow = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            foreach (var t in targets.Where(t => t.Weight == 0)) outNow.Add(t.Target);
            foreach (var kv in batch.Read.RemovedAndNotBack)
                if (!listed.Contains(kv.Key) || kv.Value == "MarkTargetUnhealthy") outNow.Add(kv.Key); // a mark keeps it listed, out of rotation
            foreach (var removed in batch.RemovedSinceRead) outNow.Add(removed); // this batch's own, made since the read
            outNow.Remove(target.Target);
            var outCount = Math.Max(outNow.Count, removedInThisBatch);
            decision.TotalTargets = live.Count + outNow.Count(x => !live.Any(l => string.Equals(l.Target, x, StringComparison.OrdinalIgnoreCase)));
            if (decision.TotalTargets < live.Count + removedInThisBatch) decision.TotalTargets = live.Count + removedInThisBatch;
            decision.OutOfRotation = outCount;
            var share = (outCount + 1) / (double)Math.Max(1, decision.TotalTargets);
            if (share > _ctx.Removal.MaxRemoveShare)
                return Refuse(decision, "RemoveShareExceeded", $"Removing {target.Target} would leave {outCount + 1} of {decision.TotalTargets} targets out of rotation ({share:P0}; {outCount} already out{(outNow.Count > 0 ? ": " + string.Join(", ", outNow.Take(5)) + (outNow.Count > 5 ? ", …" : "") : "")}), over the limit of {_ctx.Removal.MaxRemoveShare:P0}.");

            var total = others.Sum(t => (double)t.Weight);
            var available = others.Where(Available).Sum(t => (double)t.Weight);
            if (info.Threshold > 0 && total > 0 && available / total * 100.0 <= info.Threshold)
                return Refuse(decision, "ThresholdReached", $"After removing {target.Target}, available weight would be {available / total * 100.0:0.#}% of the upstream, at or below its threshold of {info.Threshold}% (Kong would answer 503).");

            decision.Allowed = true;
            decision.Reason = $"{decision.HealthyRemaining} other healthy target(s) remain";
            return decision;
        }

        private static GuardDecision Refuse(GuardDecision d, string id, string reason)
        {
            d.Allowed = false; d.ErrorId = id; d.Reason = reason;
            return d;
        }

        /// <summary>
        /// Refuses, before anything is written, a method this Kong node cannot do: every write on a DB-less node, and
        /// health marks on a hybrid-mode control plane (not served there). Says why and what to use instead.
        /// </summary>
        public async Task<KongNodeInfo> CheckMethodAsync(RemovalMethod method, string target, CancellationToken ct)
        {
            var node = await _kong.GetNodeInfoAsync(ct).ConfigureAwait(false);
            if (node.DbLess)
                throw new OpsException("KongDbLess", OpsErrorCategory.InvalidOperation,
                    method == RemovalMethod.MarkUnhealthy
                        ? $"{node} runs DB-less, where marking a target healthy or unhealthy fails (Kong/kong#15001)."
                        : $"{node} runs DB-less: the Admin API cannot {(method == RemovalMethod.Drain ? "change a target's weight" : "delete or add targets")} (Kong answers 405).", target,
                    recommendedAction: method == RemovalMethod.MarkUnhealthy
                        ? "Change the declarative configuration (set the target's weight to 0) and apply it, or rely on Kong's own active health checks."
                        : "Change the declarative configuration (kong.yml / decK state file) and apply it; the Admin API of a DB-less node is read-only for targets.");
            if (method == RemovalMethod.MarkUnhealthy && node.ControlPlane)
                throw new OpsException("KongControlPlaneNoHealthMarks", OpsErrorCategory.InvalidOperation,
                    $"{node}: a hybrid-mode control plane does not serve the healthy/unhealthy endpoints (health lives on each data plane).", target,
                    recommendedAction: "Use -Method Drain (weight 0) or Delete, which the control plane writes and pushes to every data plane.");
            return node;
        }

        /// <summary>Warns when a declarative tool owns the upstream or the target: its next sync reverts what we change.</summary>
        private async Task WarnDeclarativeAsync(string upstream, IEnumerable<string> targetTags, RemovalMethod method, bool adding, CancellationToken ct)
        {
            if (_ctx.Removal.DeclarativeTags == null || _ctx.Removal.DeclarativeTags.Count == 0) return;
            var upstreamTags = (await _kong.GetUpstreamAsync(upstream, ct).ConfigureAwait(false)).Tags ?? new TextList();
            var hit = _ctx.Removal.DeclarativeTags.FirstOrDefault(d => upstreamTags.Concat(targetTags ?? Enumerable.Empty<string>()).Any(t => string.Equals(t, d, StringComparison.OrdinalIgnoreCase)));
            if (hit == null || method == RemovalMethod.MarkUnhealthy) return;
            _log.Warning(adding
                ? $"Upstream '{upstream}' is managed declaratively (tag '{hit}'): a target added by hand is deleted again at the next sync (deck gateway sync) unless it is in the state file."
                : $"Upstream '{upstream}' is managed declaratively (tag '{hit}'): the next sync (deck gateway sync) puts this target back, possibly still broken. " +
                  "Use -Method MarkUnhealthy (no database write, nothing for the sync to revert), or change the state file.");
        }

        /// <summary>
        /// The one removal path (issue #25), used by Remove-RingBalancerTarget, the runbook and self-healing:
        /// lease → confirm → guard (a fresh read of Kong, inside the lease, after the answer: a slow "Yes" never acts on a
        /// stale reading) → intent → change → read-back → outcome. Under -WhatIf: the guard, then the confirmation
        /// (which prints PowerShell's "What if:" line), and nothing else.
        /// </summary>
        public async Task<RemovalResult> RemoveSafelyAsync(RemovalRequest q, Func<string, string, Task<bool>> confirm, CancellationToken ct)
        {
            var t = q.Target;
            var verb = q.Method == RemovalMethod.Drain ? "Drain (set weight 0)" : q.Method == RemovalMethod.MarkUnhealthy ? "Mark unhealthy in Kong" : "Remove";
            var action = q.Action ?? $"{verb} from ring-balancer upstream '{q.Upstream}'" + (q.Force ? " (-Force: also past the safety guard)" : "");
            if (q.WhatIf)
            {
                var preview = await EvaluateRemovalAsync(q.Upstream, t, q.RemovedInBatch, ct, q.Batch).ConfigureAwait(false);
                if (preview.Allowed || q.Force) await confirm(q.ConfirmTarget ?? t.Target, action).ConfigureAwait(false);
                return new RemovalResult { Guard = preview, Forced = !preview.Allowed && q.Force };
            }
            using (await InstanceLock.AcquireAsync(_ctx.Safety.LockDirectory, t.Address ?? t.Target, $"{Verb(q.Method)} {t.Target} from {q.Upstream}", _ctx.Safety.LockTimeout, ct, _ctx.Leases, _log).ConfigureAwait(false))
            {
                if (!await confirm(q.ConfirmTarget ?? t.Target, action).ConfigureAwait(false))
                    return new RemovalResult { Declined = true, Guard = await EvaluateRemovalAsync(q.Upstream, t, q.RemovedInBatch, ct, q.Batch).ConfigureAwait(false) };
                if (q.StillWanted != null && await q.StillWanted(ct).ConfigureAwait(false) is string why)
                    return new RemovalResult { Guard = new GuardDecision { Allowed = true, Reason = why }, NoLongerWanted = why };
                // The target as Kong lists it now: another responder may have removed it and added it back (a new id)
                // while this one waited; a removal by the old id would miss it (404, "already absent") and leave it in.
                var fresh = await FindIncludingDrainedAsync(q.Upstream, t.Target, ct).ConfigureAwait(false);
                // Gone already: another actor removed it while this one waited. Nothing to change, and nothing to claim
                // (self-healing must not adopt someone else's removal as its own).
                if (fresh == null && t.Id != null)
                    return new RemovalResult { Guard = new GuardDecision { Allowed = true, Reason = "already absent" }, NoLongerWanted = $"{t.Target} is no longer in upstream '{q.Upstream}' (removed by another actor while this one waited): nothing changed" };
                if (fresh != null) t = fresh;
                var guard = await EvaluateRemovalAsync(q.Upstream, t, q.RemovedInBatch, ct, q.Batch).ConfigureAwait(false);
                var result = new RemovalResult { Guard = guard, Forced = !guard.Allowed && q.Force };
                if (!guard.Allowed && !q.Force) return result;
                if (result.Forced) _log.Warning($"FORCED: {guard.Reason} Proceeding because -Force was given; this is recorded in the audit log.");
                q.BeforeChange?.Invoke();
                try { result.Change = await RemoveResolvedLockedAsync(q.Upstream, t, q.Method, result.Forced, q.Actor, q.Incident, ct).ConfigureAwait(false); }
                catch (OpsException) { q.Batch?.Invalidate(); throw; } // an answer lost or refused: the next removal reads Kong again
                q.Batch?.Removed(t.Target); // counted out from now on (also when Kong's answer left it unknown)
                return result;
            }
        }

        /// <summary>Takes a resolved target out by <paramref name="method"/> and audits it. The guard must have been consulted.</summary>
        internal async Task<TargetChange> RemoveResolvedAsync(string upstream, RingBalancerTarget target, RemovalMethod method, bool forced, string actor, string incident, CancellationToken ct)
        {
            // One actor per instance (a runbook holding it already passes straight through).
            using (await InstanceLock.AcquireAsync(_ctx.Safety.LockDirectory, target.Address ?? target.Target, $"{Verb(method)} {target.Target} from {upstream}", _ctx.Safety.LockTimeout, ct, _ctx.Leases, _log).ConfigureAwait(false))
                return await RemoveResolvedLockedAsync(upstream, target, method, forced, actor, incident, ct).ConfigureAwait(false);
        }

        private static string Verb(RemovalMethod m) => m == RemovalMethod.Drain ? "drain" : m == RemovalMethod.MarkUnhealthy ? "mark unhealthy" : "remove";

        private async Task<TargetChange> RemoveResolvedLockedAsync(string upstream, RingBalancerTarget target, RemovalMethod method, bool forced, string actor, string incident, CancellationToken ct)
        {
            await CheckMethodAsync(method, target.Target, ct).ConfigureAwait(false);
            await WarnDeclarativeAsync(upstream, target.Tags, method, false, ct).ConfigureAwait(false);
            var change = new TargetChange
            {
                Upstream = upstream, Target = target.Target, Address = target.Address, Port = target.Port, Weight = target.Weight,
                Tags = target.Tags, Id = target.Id, Forced = forced, Actor = actor ?? "manual", IncidentId = incident, MethodValue = method,
            };
            var who = actor == null ? null : actor + "/" + AuditLog.DefaultActor();
            var before = JObject.FromObject(new { id = target.Id, target = target.Target, weight = target.Weight, tags = target.Tags });
            var action = method == RemovalMethod.Drain ? "DrainTarget" : method == RemovalMethod.MarkUnhealthy ? "MarkTargetUnhealthy" : "RemoveTarget";
            // Write-ahead: the intent is on disk before Kong is asked (refused if it cannot be written).
            await AuditLog.Record(_audit, new AuditEntry { Actor = who, Action = action, Target = target.Target, Upstream = upstream, BeforeData = before, Forced = forced, Incident = incident },
                async () =>
                {
                    switch (method)
                    {
                        case RemovalMethod.Drain:
                            await _kong.SetWeightAsync(upstream, target.Id ?? target.Target, 0, ct, target.Target).ConfigureAwait(false);
                            change.ActionValue = TargetChangeAction.Drained;
                            change.Detail = $"weight {target.Weight} -> 0";
                            break;
                        case RemovalMethod.MarkUnhealthy:
                            await _kong.MarkHealthAsync(upstream, target.Id ?? target.Target, false, ct).ConfigureAwait(false);
                            change.ActionValue = TargetChangeAction.MarkedUnhealthy;
                            change.Detail = "marked unhealthy in Kong (no database change; Kong's active checks re-enable it once its probe passes)";
                            break;
                        default:
                            var deleted = await _kong.DeleteTargetAsync(upstream, target.Id ?? target.Target, ct).ConfigureAwait(false);
                            change.ActionValue = deleted ? TargetChangeAction.Removed : TargetChangeAction.AlreadyAbsent;
                            change.Detail = deleted ? "deleted from the upstream" : "Kong reports it already gone";
                            break;
                    }
                    return change;
                },
                c => new AuditEntry
                {
                    BeforeData = before, AfterData = method == RemovalMethod.Drain ? JObject.FromObject(new { weight = 0 }) : method == RemovalMethod.MarkUnhealthy ? JObject.FromObject(new { health = "UNHEALTHY" }) : null,
                    Outcome = c.Action.ToString(), Forced = forced, Detail = c.Detail,
                },
                reconcile: async e =>
                {
                    // The answer was lost (a gateway 504, a reset, a timeout): Kong itself says whether it happened.
                    if (method == RemovalMethod.MarkUnhealthy)
                    {
                        var health = await ReadBackAsync(() => _kong.GetHealthAsync(upstream, ct), ct).ConfigureAwait(false);
                        health.TryGetValue(target.Target, out var h);
                        if (h == "HEALTHY") return Reconciliation<TargetChange>.NotApplied($"Kong's health listing shows {target.Target} HEALTHY");
                        if (h != "UNHEALTHY") return Reconciliation<TargetChange>.CannotTell($"Kong's health listing shows {target.Target} as {h ?? "absent"}");
                        change.ActionValue = TargetChangeAction.MarkedUnhealthy; change.Detail = "marked unhealthy in Kong (read back from its health listing)";
                        return Reconciliation<TargetChange>.WasApplied(change, "Kong's health listing shows it UNHEALTHY");
                    }
                    var now = await ReadBackAsync(() => FindIncludingDrainedAsync(upstream, target.Target, ct), ct).ConfigureAwait(false);
                    if (now != null && now.Weight > 0) return Reconciliation<TargetChange>.NotApplied($"Kong still lists {target.Target} with weight {now.Weight}");
                    // A delete is applied only when the target is gone (a weight-0 one was drained before, not deleted now).
                    if (now != null && method == RemovalMethod.Delete) return Reconciliation<TargetChange>.NotApplied($"Kong still lists {target.Target} (weight 0)");
                    change.ActionValue = method == RemovalMethod.Drain && now != null ? TargetChangeAction.Drained : TargetChangeAction.Removed;
                    change.Detail = now == null ? "deleted from the upstream (read back: Kong's listing no longer has it)" : $"weight {target.Weight} -> 0 (read back from Kong's listing)";
                    return Reconciliation<TargetChange>.WasApplied(change, now == null ? "Kong's listing no longer has it" : "Kong lists it with weight 0");
                }).ConfigureAwait(false);
            _log.Verbose($"{change.Action} {target.Target} from upstream '{upstream}'{(forced ? " (FORCED past the safety guard)" : "")}.");
            return change;
        }

        /// <summary>
        /// Reads Kong back after a lost answer, a few times over a few seconds (the gateway that lost the answer may still
        /// be failing): the read that decides what the audit log records and whether self-healing keeps its mark.
        /// </summary>
        private static async Task<T> ReadBackAsync<T>(Func<Task<T>> read, CancellationToken ct)
        {
            for (int attempt = 0; ; attempt++)
            {
                try { return await read().ConfigureAwait(false); }
                catch (OpsException e) when (!e.IsCancellation && attempt < ReadBackAttempts - 1)
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(250 << attempt), ct).ConfigureAwait(false);
                }
            }
        }

        /// <summary>How many times Kong is read back after a lost answer (250 ms, 500 ms, 1 s ... between them).</summary>
        public static int ReadBackAttempts = 4;

        /// <summary>
        /// The weight a target had when it was last taken out (the audit log's latest removal of it), or null when the
        /// log does not say: what an "already absent" -PassThru object carries, so piping it on restores that weight.
        /// </summary>
        /// <summary>
        /// Targets of <paramref name="upstream"/> taken out and not put back, as far as this machine knows: the audit
        /// log's last word on each (a removal, a drain or an unhealthy mark not followed by an add). The caller drops
        /// what Kong still lists with a weight.
        /// </summary>
        /// <summary>How far back a removal still counts as "out of rotation now" (older ones are decommissions).</summary>
        public static readonly TimeSpan OutOfRotationWindow = TimeSpan.FromHours(2);

        public IReadOnlyDictionary<string, string> RemovedAndNotBack(string upstream)
        {
            var result = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            try
            {
                var last = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
                // The last two hours only (an outage's time scale): a target deleted longer ago and never put back was
                // decommissioned, not "out now". Deletions are known from THIS machine's audit log only (Kong no longer
                // lists them); drains and unhealthy marks are seen by every machine in Kong itself.
                foreach (var e in _audit?.Read(DateTimeOffset.UtcNow - OutOfRotationWindow) ?? Enumerable.Empty<AuditEntry>())
                {
                    if (e.Target == null || !string.Equals(e.Upstream, upstream, StringComparison.OrdinalIgnoreCase)) continue;
                    if (e.Outcome == AuditLog.Failed || e.Outcome == AuditLog.Started) continue;
                    if (e.Action == "RemoveTarget" || e.Action == "DrainTarget" || e.Action == "MarkTargetUnhealthy" || e.Action == "AddTarget" || e.Action == "MarkTargetHealthy") last[e.Target] = e.Action;
                }
                foreach (var kv in last) if (kv.Value != "AddTarget" && kv.Value != "MarkTargetHealthy") result[kv.Key] = kv.Value;
            }
            catch (OpsException) { }
            return result;
        }

        /// <summary>
        /// Settles the audit log's Unknown outcomes for this upstream's targets from Kong's listing (issue #25: the audit
        /// log's last word on every target agrees with Kong once a later pass has read it): a removal, an add or a drain
        /// whose answer was lost gets an outcome line saying what Kong shows now. Marks (health) are not settled here.
        /// Returns how many were settled; -WhatIf callers do not call it.
        /// </summary>
        public int SettleUnknown(string upstream, IReadOnlyCollection<RingBalancerTarget> listing)
        {
            if (_audit == null || listing == null) return 0;
            var last = new Dictionary<string, AuditEntry>(StringComparer.OrdinalIgnoreCase);
            try
            {
                foreach (var e in _audit.Read(DateTimeOffset.UtcNow - TimeSpan.FromDays(7)))
                    if (e.Target != null && string.Equals(e.Upstream, upstream, StringComparison.OrdinalIgnoreCase)
                        && (e.Action == "RemoveTarget" || e.Action == "AddTarget" || e.Action == "DrainTarget") && e.Outcome != AuditLog.Started)
                        last[e.Target] = e;
            }
            catch (OpsException) { return 0; }
            var settled = 0;
            foreach (var e in last.Values.Where(x => x.Outcome == AuditLog.Unknown))
            {
                var now = listing.FirstOrDefault(t => string.Equals(t.Target, e.Target, StringComparison.OrdinalIgnoreCase));
                var state = now == null ? "not in the upstream" : now.Weight == 0 ? "listed with weight 0" : $"listed with weight {now.Weight}";
                string outcome;
                switch (e.Action)
                {
                    case "RemoveTarget": outcome = now == null ? TargetChangeAction.Removed.ToString() : AuditLog.Failed; break;
                    case "DrainTarget": outcome = now == null ? TargetChangeAction.Removed.ToString() : now.Weight == 0 ? TargetChangeAction.Drained.ToString() : AuditLog.Failed; break;
                    default: outcome = now != null && now.Weight > 0 ? TargetChangeAction.Added.ToString() : AuditLog.Failed; break;
                }
                try
                {
                    _audit.Append(new AuditEntry
                    {
                        Operation = e.Operation, Action = e.Action, Target = e.Target, Upstream = e.Upstream, Incident = e.Incident, Actor = e.Actor,
                        Outcome = outcome, Detail = $"settled from Kong's listing after an answer was lost: {e.Target} is {state} now" + (outcome == AuditLog.Failed ? " (the change is not in effect)" : ""),
                    });
                    settled++;
                }
                catch (OpsException) { return settled; }
            }
            if (settled > 0) _log.Verbose($"Settled {settled} Unknown audit outcome(s) of upstream '{upstream}' from Kong's listing.");
            return settled;
        }

        public int? LastKnownWeight(string target)
        {
            try
            {
                var last = _audit?.Read().LastOrDefault(e => string.Equals(e.Target, target, StringComparison.OrdinalIgnoreCase)
                                                              && (e.Action == "RemoveTarget" || e.Action == "DrainTarget") && e.BeforeData?["weight"] != null);
                return last == null ? (int?)null : (int)last.BeforeData["weight"];
            }
            catch (Exception e) when (e is OpsException || e is FormatException || e is InvalidCastException) { return null; }
        }

        /// <summary>
        /// True when Kong lists <paramref name="target"/> with a weight but marks it UNHEALTHY (an unhealthy mark a
        /// runbook or a responder set and never undid, or Kong's own checks): out of rotation all the same. False when
        /// Kong says otherwise or cannot say (no health checker, a read that fails: the listing's word stands).
        /// </summary>
        public async Task<bool> MarkedUnhealthyInKongAsync(string upstream, string target, CancellationToken ct)
        {
            try
            {
                var health = await _kong.GetHealthAsync(upstream, ct).ConfigureAwait(false);
                return health.TryGetValue(target, out var h) && h == "UNHEALTHY";
            }
            catch (OpsException e) when (!e.IsCancellation) { _log.Verbose($"Kong's health listing of '{upstream}' could not be read ({e.ErrorId}); its target listing is taken as is."); return false; }
        }

        /// <summary>
        /// A drained (weight-0) target: from a single-target GET in 3.x, from the listing in 2.x (where that GET
        /// answers 404 for weight 0). Null when the upstream has no such target.
        /// </summary>
        public async Task<RingBalancerTarget> FindIncludingDrainedAsync(string upstream, string target, CancellationToken ct)
        {
            var found = await _kong.FindTargetAsync(upstream, target, ct).ConfigureAwait(false);
            if (found != null) return found;
            var node = await _kong.GetNodeInfoAsync(ct).ConfigureAwait(false);
            if (!node.Era2) return null;
            var all = await _kong.GetTargetsAsync(upstream, ct).ConfigureAwait(false);
            return all.FirstOrDefault(t => t.Weight == 0 && (string.Equals(t.Target, target, StringComparison.OrdinalIgnoreCase) || string.Equals(t.Id, target, StringComparison.OrdinalIgnoreCase)));
        }

        /// <summary>Adds a target (or restores a drained one). Health is checked first unless forced.</summary>
        public async Task<TargetChange> AddAsync(AddRequest request, CancellationToken ct)
        {
            string upstream = request.Upstream, target = request.Target, actor = request.Actor, incident = request.Incident;
            int weight = request.Weight; string[] tags = request.Tags; bool skipHealthCheck = request.SkipHealthCheck; var method = request.Method;
            Endpoint.TryParse(target, _ctx.Health.Port, out var lockEp, out _);
            using (await InstanceLock.AcquireAsync(_ctx.Safety.LockDirectory, lockEp.Address ?? target, $"add {target} to {upstream}", _ctx.Safety.LockTimeout, ct, _ctx.Leases, _log).ConfigureAwait(false))
                return method == RemovalMethod.MarkUnhealthy
                    ? await MarkHealthyLockedAsync(upstream, target, skipHealthCheck, actor, incident, ct).ConfigureAwait(false)
                    : await AddLockedAsync(upstream, target, weight, tags, skipHealthCheck, actor, incident, method, ct).ConfigureAwait(false);
        }

        private async Task RequireHealthyAsync(string upstream, string target, Endpoint ep, CancellationToken ct)
        {
            var h = await _health.CheckAsync(ep, ct).ConfigureAwait(false);
            if (!h.Healthy)
                throw new OpsException("TargetUnhealthy", OpsErrorCategory.InvalidOperation,
                    $"Refusing to add {target} to upstream '{upstream}': its health check says {h.Status} ({h.Detail}). A re-added target takes traffic at once.",
                    target, recommendedAction: "Recover the instance first (Restart-KeyService -Wait), or pass -Force to add it anyway.");
        }

        /// <summary>Undoes MarkUnhealthy: Kong's healthy mark (the era's verb), after our own health check.</summary>
        private async Task<TargetChange> MarkHealthyLockedAsync(string upstream, string target, bool skipHealthCheck, string actor, string incident, CancellationToken ct)
        {
            await CheckMethodAsync(RemovalMethod.MarkUnhealthy, target, ct).ConfigureAwait(false);
            Endpoint.TryParse(target, _ctx.Health.Port, out var ep, out _);
            var existing = await FindIncludingDrainedAsync(upstream, target, ct).ConfigureAwait(false)
                ?? throw KongClient.TargetNotFound(upstream, target, "mark healthy");
            if (!skipHealthCheck) await RequireHealthyAsync(upstream, target, ep, ct).ConfigureAwait(false);
            var change = new TargetChange
            {
                Upstream = upstream, Target = existing.Target, Address = ep.Address, Port = ep.Port, Weight = existing.Weight, Tags = existing.Tags, Id = existing.Id,
                Actor = actor ?? "manual", IncidentId = incident, Forced = skipHealthCheck, MethodValue = RemovalMethod.MarkUnhealthy,
            };
            await AuditLog.Record(_audit, new AuditEntry { Actor = actor == null ? null : actor + "/" + AuditLog.DefaultActor(), Action = "MarkTargetHealthy", Target = existing.Target, Upstream = upstream, Forced = skipHealthCheck, Incident = incident },
                async () =>
                {
                    await _kong.MarkHealthAsync(upstream, existing.Id ?? existing.Target, true, ct).ConfigureAwait(false);
                    change.ActionValue = TargetChangeAction.MarkedHealthy;
                    change.Detail = "marked healthy in Kong";
                    return change;
                },
                c => new AuditEntry { AfterData = JObject.FromObject(new { health = "HEALTHY" }), Outcome = c.Action.ToString(), Forced = skipHealthCheck, Detail = c.Detail },
                reconcile: async e =>
                {
                    var health = await ReadBackAsync(() => _kong.GetHealthAsync(upstream, ct), ct).ConfigureAwait(false);
                    health.TryGetValue(existing.Target, out var h);
                    if (h == "UNHEALTHY") return Reconciliation<TargetChange>.NotApplied("Kong's health listing still shows it UNHEALTHY");
                    if (h != "HEALTHY") return Reconciliation<TargetChange>.CannotTell($"Kong's health listing shows it as {h ?? "absent"}");
                    change.ActionValue = TargetChangeAction.MarkedHealthy; change.Detail = "marked healthy in Kong (read back from its health listing)";
                    return Reconciliation<TargetChange>.WasApplied(change, $"Kong's health listing shows it {h ?? "not marked"}");
                }).ConfigureAwait(false);
            return change;
        }

        private async Task<TargetChange> AddLockedAsync(string upstream, string target, int weight, string[] tags, bool skipHealthCheck, string actor, string incident, RemovalMethod method, CancellationToken ct)
        {
            Endpoint.TryParse(target, _ctx.Health.Port, out var ep, out _);
            await CheckMethodAsync(method, target, ct).ConfigureAwait(false);
            var change = new TargetChange { Upstream = upstream, Target = target, Address = ep.Address, Port = ep.Port, Weight = weight, Tags = tags ?? new string[0], Actor = actor ?? "manual", IncidentId = incident, Forced = skipHealthCheck, MethodValue = method };
            // A drained target stays in the upstream with weight 0; Kong 2.x hides it from the single-target GET.
            var existing = await FindIncludingDrainedAsync(upstream, target, ct).ConfigureAwait(false);
            if (existing != null && existing.Weight > 0)
            {
                change.ActionValue = TargetChangeAction.AlreadyPresent;
                change.Id = existing.Id; change.Weight = existing.Weight; change.Tags = existing.Tags;
                change.Detail = "already in the upstream; nothing changed";
                return change;
            }
            if (!skipHealthCheck) await RequireHealthyAsync(upstream, target, ep, ct).ConfigureAwait(false);
            await WarnDeclarativeAsync(upstream, existing?.Tags ?? (IEnumerable<string>)tags, method, existing == null, ct).ConfigureAwait(false);
            var node = await _kong.GetNodeInfoAsync(ct).ConfigureAwait(false);
            await AuditLog.Record(_audit, new AuditEntry { Actor = actor == null ? null : actor + "/" + AuditLog.DefaultActor(), Action = "AddTarget", Target = target, Upstream = upstream, Forced = skipHealthCheck, Incident = incident },
                async () =>
                {
                    if (existing != null && node.Era2)
                    {
                        // 2.x: PATCH cannot see a weight-0 target either; a POST of the same target upserts it (200 + Deprecation).
                        var (t, _, _) = await _kong.AddTargetAsync(upstream, existing.Target, weight, existing.Tags?.ToArray(), ct).ConfigureAwait(false);
                        change.ActionValue = TargetChangeAction.Restored; change.Id = t?.Id ?? existing.Id; change.Tags = t?.Tags ?? existing.Tags;
                        change.Detail = $"drained target restored to weight {weight} (Kong 2.x: POST upserts it)";
                    }
                    else if (existing != null)
                    {
                        var t = await _kong.SetWeightAsync(upstream, existing.Id ?? existing.Target, weight, ct, existing.Target).ConfigureAwait(false);
                        change.ActionValue = TargetChangeAction.Restored; change.Id = t.Id; change.Tags = t.Tags;
                        change.Detail = $"drained target restored to weight {weight}";
                    }
                    else
                    {
                        var (t, created, note) = await _kong.AddTargetAsync(upstream, target, weight, tags, ct).ConfigureAwait(false);
                        change.Id = t?.Id;
                        change.ActionValue = created ? TargetChangeAction.Added : TargetChangeAction.AlreadyPresent;
                        change.Detail = created ? "added to the upstream" : note;
                    }
                    return change;
                },
                c => new AuditEntry { AfterData = JObject.FromObject(new { id = c.Id, target, weight, tags = c.Tags }), Outcome = c.Action.ToString(), Forced = skipHealthCheck, Detail = c.Detail },
                reconcile: async e =>
                {
                    var now = await ReadBackAsync(() => FindIncludingDrainedAsync(upstream, target, ct), ct).ConfigureAwait(false);
                    if (now == null || now.Weight == 0) return Reconciliation<TargetChange>.NotApplied(now == null ? "Kong's listing does not have it" : "Kong lists it with weight 0");
                    change.Id = now.Id; change.Tags = now.Tags; change.Weight = now.Weight;
                    change.ActionValue = existing != null ? TargetChangeAction.Restored : TargetChangeAction.Added;
                    change.Detail = $"in the upstream with weight {now.Weight} (read back from Kong's listing)";
                    return Reconciliation<TargetChange>.WasApplied(change, $"Kong's listing has it with weight {now.Weight}");
                }).ConfigureAwait(false);
            _log.Verbose($"{change.Action} {target} in upstream '{upstream}' with weight {weight}.");
            return change;
        }
    }

    /// <summary>What to put back into the ring-balancer, and how (RingBalancerService.AddAsync).</summary>
    public sealed class AddRequest
    {
        public string Upstream { get; set; }
        /// <summary>IP:PORT (or host:port) as Kong stores it.</summary>
        public string Target { get; set; }
        public int Weight { get; set; } = 100;
        public string[] Tags { get; set; }
        /// <summary>Put it back without a health check first (-Force).</summary>
        public bool SkipHealthCheck { get; set; }
        /// <summary>Who asks (the audit log's actor; null: this user).</summary>
        public string Actor { get; set; }
        public string Incident { get; set; }
        /// <summary>How it was taken out: Delete (a POST), Drain (weight back) or MarkUnhealthy (the healthy mark).</summary>
        public RemovalMethod Method { get; set; } = RemovalMethod.Delete;
    }
}
