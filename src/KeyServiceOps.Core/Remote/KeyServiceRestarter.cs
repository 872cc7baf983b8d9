using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using KeyServiceOps.Core.Diagnosis;
using KeyServiceOps.Core.Health;
using KeyServiceOps.Core.Audit;

namespace KeyServiceOps.Core.Remote
{

    public sealed class RestartOptions
    {
        public bool Wait { get; set; }
        public TimeSpan Timeout { get; set; } = TimeSpan.FromMinutes(5);
        public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(5);
        public int? GraceSeconds { get; set; }
        /// <summary>Restart even when the latest fault is a dependency fault.</summary>
        public bool Force { get; set; }
        /// <summary>Faults already known (piped in); when null the restarter reads the last <see cref="DiagnoseTail"/> lines itself.</summary>
        public IReadOnlyList<Fault> KnownFaults { get; set; }
        public int DiagnoseTail { get; set; } = 500;
        public HealthVia Via { get; set; } = HealthVia.Http;
        public int HealthPort { get; set; } = OpsContext.DefaultServicePort;
        public string IncidentId { get; set; }
        public string Actor { get; set; }
        /// <summary>The instance lock (one actor per instance): its folder (null: the default) and how long to wait.</summary>
        public string LockDirectory { get; set; }
        public TimeSpan LockTimeout { get; set; } = TimeSpan.FromSeconds(30);
        /// <summary>The lease on the VM every actor passes (null: this machine's lock only).</summary>
        public IInstanceLeases Leases { get; set; }
        /// <summary>
        /// A restart by anyone at or after this time counts as done for this run, whatever incident it was for (the
        /// incident's creation time; self-healing: the start of its start-up grace). Null: only <see cref="IncidentId"/>.
        /// </summary>
        public DateTimeOffset? PriorSince { get; set; }
        /// <summary><see cref="PriorSince"/> is a recent window, not the incident's opening (see FindPriorRestartAsync).</summary>
        public bool PriorSinceIsWindow { get; set; }
        /// <summary>
        /// This actor's own earlier restarts (same actor, same user and machine) do not count: self-healing governs its
        /// own with its budget, back-off and grace; only another responder's restart holds it back.
        /// </summary>
        public bool IgnoreOwnRestarts { get; set; }
    }

    /// <summary>A restart already done for one incident (by anyone), and the container's state now.</summary>
    public sealed class PriorRestart
    {
        /// <summary>Who and when, and where it was read ("the VM's restart journal", or this machine's audit log).</summary>
        public string Description { get; set; }
        /// <summary>When it was made (the journal's or the audit log's time).</summary>
        public DateTimeOffset Time { get; set; }
        public Diagnosis.ContainerState State { get; set; }
    }

    public sealed class RestartProgress
    {
        public string Address { get; set; }
        public string Phase { get; set; }
        public TimeSpan Elapsed { get; set; }
        public TimeSpan Remaining { get; set; }
        public HealthResult LastHealth { get; set; }
        public int Attempts { get; set; }
    }

    /// <summary>What a restart did: whether the container was restarted, and with -Wait whether the service came back and when.</summary>
    public sealed class RestartResult
    {
        public string Address { get; set; }
        public string Container { get; set; }
        public bool Restarted { get; set; }
        public bool Waited { get; set; }
        /// <summary>True when health answered operational within the timeout; null when not waited for.</summary>
        public bool? Recovered { get; set; }
        /// <summary>From the restart command to the first operational answer (or to giving up).</summary>
        internal TimeSpan Elapsed { get; set; }
        /// <summary>From the restart command to the first operational answer (or to giving up), in seconds.</summary>
        public double Seconds => Math.Round(Elapsed.TotalSeconds, 3);
        public int HealthChecks { get; set; }
        public HealthResult Health { get; set; }
        public string FaultCategory { get; set; }
        public DateTimeOffset RestartedAt { get; set; }
        public string IncidentId { get; set; }
        /// <summary>When the answer to `docker restart` was lost: what docker inspect showed instead (null when it answered).</summary>
        public string ReadBack { get; set; }
        public string Status => !Restarted ? "NotRestarted" : Recovered == true ? "Recovered" : Recovered == false ? "NotRecovered" : "Restarted";
        public override string ToString() => $"{Address} {Status} {Elapsed.TotalSeconds:0.#}s";
    }

    /// <summary>
    /// Runbook step 3: check the logs for a dependency fault (no restart then), `docker restart`, and with Wait
    /// poll health until the API is operational or the timeout passes. Every restart is audited.
    /// </summary>
    public sealed class KeyServiceRestarter
    {
        private readonly DockerClient _docker;
        private readonly HealthChecker _health;
        private readonly AuditLog _audit;
        private readonly FaultRuleSet _rules;
        private readonly IDictionary<string, string> _owners;
        private readonly IOpsLog _log;

        public KeyServiceRestarter(DockerClient docker, HealthChecker health, AuditLog audit, FaultRuleSet rules, IDictionary<string, string> owners, IOpsLog log)
        {
            _docker = docker; _health = health; _audit = audit; _rules = rules ?? FaultRuleSet.Default; _owners = owners; _log = log ?? NullOpsLog.Instance;
        }

        /// <summary>Refuses (typed error) when the latest fault is a dependency fault and Force is not set.</summary>
        public async Task<Fault> CheckGateAsync(SshTarget t, RestartOptions o, CancellationToken ct)
        {
            var faults = o.KnownFaults ?? await _docker.DiagnoseAsync(t, o.DiagnoseTail, _rules, _owners, ct).ConfigureAwait(false);
            var blocking = FaultAnalyzer.BlockingFault(faults.Where(f => f.Address == null || f.Address == t.Host));
            if (blocking == null) return faults.LastOrDefault();
            if (o.Force)
            {
                _log.Warning($"{t.Host}: restarting despite a {blocking.Category} fault (-Force).");
                return blocking;
            }
            throw new OpsException("DependencyFaultNoRestart", OpsErrorCategory.InvalidOperation,
                $"{t.Host} is down because of a {blocking.Category} fault ({blocking.Count} log lines, last at {blocking.LastSeen:u}): {blocking.Evidence.LastOrDefault()}. " +
                "The runbook says not to restart on a dependency fault; nothing was restarted.", t.Host,
                recommendedAction: (blocking.Owner != null ? $"Assign the incident to {blocking.Owner} (Set-PagerDutyIncident -AssignTo {blocking.Owner}). " : "Assign the incident to the dependency's owner (Set-PagerDutyIncident -AssignTo). ") +
                                   "Use -Force to restart anyway.");
        }

        public async Task<RestartResult> RestartAsync(SshTarget t, RestartOptions o, Action<RestartProgress> progress, CancellationToken ct)
        {
            var result = new RestartResult { Address = t.Host, Container = t.Container, IncidentId = o.IncidentId };
            // One actor per instance: a second operator (or the healer) waits here, then gets InstanceBusy.
            using (await InstanceLock.AcquireAsync(o.LockDirectory, t.Host, $"restart {t.Container}{(o.IncidentId != null ? " for incident " + o.IncidentId : "")}", o.LockTimeout, ct, o.Leases, _log).ConfigureAwait(false))
                return await RestartLockedAsync(t, o, progress, result, ct).ConfigureAwait(false);
        }

        /// <summary>
        /// A restart already done for this incident, by anyone: a line for it in this machine's audit log (any outcome
        /// but Failed), or in the VM's restart journal (written by every responder's restart, on the VM's clock). Either
        /// counts only when docker says the container started after it: an intent whose process was killed before
        /// `docker restart` was sent leaves the start time older, so the restart is done now; one killed after it is not
        /// repeated. Null when there is none (or no incident).
        /// </summary>
        /// <param name="sinceIsWindow">True when <paramref name="since"/> is only a recent window (the incident's opening is not known,
        /// PagerDuty did not say): a restart recorded for ANOTHER incident in that window does not count then — it was
        /// that incident's, and nothing says it came after this one opened.</param>
        public async Task<PriorRestart> FindPriorRestartAsync(SshTarget t, string incident, CancellationToken ct, DateTimeOffset? since = null, string ignoreActor = null, bool sinceIsWindow = false)
        {
            if ((incident == null && since == null) || t == null) return null;
            var from = since;
            bool Counts(string inc, DateTimeOffset at, string actor)
                => (ignoreActor == null || !string.Equals(actor, ignoreActor, StringComparison.Ordinal))
                   && ((incident != null && string.Equals(inc, incident, StringComparison.OrdinalIgnoreCase))
                       || (from != null && at >= from.Value && !(sinceIsWindow && incident != null && inc != null)));
            var local = _audit?.Read(null, t.Host, "RestartContainer")
                .LastOrDefault(e => Counts(e.Incident, e.Time, e.Actor) && e.Outcome != AuditLog.Failed);
            IReadOnlyList<DockerClient.JournalEntry> journal;
            try { journal = await _docker.ReadRestartJournalAsync(t, ct).ConfigureAwait(false); }
            catch (OpsException e) when (!e.IsCancellation) { journal = new List<DockerClient.JournalEntry>(); _log.Verbose($"{t.Host}: the VM's restart journal could not be read ({e.ErrorId})."); }
            var shared = journal.Where(j => Counts(j.Incident, j.LocalTime, j.Actor)).ToList();
            if (local == null && shared.Count == 0) return null;
            var state = await _docker.InspectAsync(t, ct).ConfigureAwait(false);
            if (state.StartedAt == null) return null;
            // Every matching line counts, not only the last (a later line whose `docker restart` failed must not hide an
            // earlier restart that happened); lines for a container re-created since (another id) do not.
            var first = shared.Where(j => j.ContainerId == null || state.Id == null || j.ContainerId == state.Id)
                              .Where(j => state.StartedAt.Value >= j.Time.AddSeconds(-1)).OrderBy(j => j.Time).FirstOrDefault();
            DateTimeOffset? before = null;
            if (local?.BeforeData?["startedAt"] is Newtonsoft.Json.Linq.JToken b && b.Type != Newtonsoft.Json.Linq.JTokenType.Null
                && DateTimeOffset.TryParse(b.Type == Newtonsoft.Json.Linq.JTokenType.Date ? ((DateTime)b).ToString("o") : (string)b, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var parsed))
                before = parsed;
            // A container re-created under the same name since (a new id) is not the one restarted then.
            if (local?.BeforeData?["containerId"] is Newtonsoft.Json.Linq.JToken lid && lid.Type == Newtonsoft.Json.Linq.JTokenType.String && state.Id != null && (string)lid != state.Id) local = null;
            if (first != null)
                return new PriorRestart { Description = $"at {first.Time:u} by {first.Actor ?? "another responder"} (the VM's restart journal)", Time = first.Time, State = state };
            if (local != null && (before != null ? state.StartedAt.Value > before.Value : state.StartedAt.Value >= local.Time.AddSeconds(-1)))
                return new PriorRestart { Description = $"at {local.Time:u} by {local.Actor ?? "this machine"} ({local.Outcome})", Time = local.Time, State = state };
            return null;
        }

        private async Task<RestartResult> RestartLockedAsync(SshTarget t, RestartOptions o, Action<RestartProgress> progress, RestartResult result, CancellationToken ct)
        {
            // Never twice for one incident, whoever asks (the cmdlet, the runbook, self-healing, on any machine): checked
            // here, inside the lease, so two responders that both looked before either restarted cannot both go on.
            var prior = await FindPriorRestartAsync(t, o.IncidentId, ct, o.PriorSince, o.IgnoreOwnRestarts ? JournalActor(o) : null, o.PriorSinceIsWindow).ConfigureAwait(false);
            if (prior != null)
                throw new AlreadyRestartedException(t, o.IncidentId, prior);
            var fault = await CheckGateAsync(t, o, ct).ConfigureAwait(false);
            result.FaultCategory = fault?.Category;
            // The container's start time before the restart, on docker's own clock: what a lost answer is read back against.
            DateTimeOffset? startedBefore = null; string idBefore = null;
            try { var st = await _docker.InspectAsync(t, ct).ConfigureAwait(false); startedBefore = st.StartedAt; idBefore = st.Id; }
            catch (OpsException e) when (!e.IsCancellation) { _log.Verbose($"{t.Host}: docker inspect before the restart failed ({e.ErrorId}); a lost answer will be judged by the clock."); }
            var sw = Stopwatch.StartNew();
            result.RestartedAt = DateTimeOffset.UtcNow;
            var intent = Entry(t, o, null, "docker restart requested", fault, result);
            if (startedBefore != null) intent.BeforeData["startedAt"] = startedBefore.Value.UtcDateTime.ToString("o", System.Globalization.CultureInfo.InvariantCulture);
            if (idBefore != null) intent.BeforeData["containerId"] = idBefore;
            // Write-ahead: the intent is on disk before `docker restart` is sent (refused if it cannot be written).
            return await AuditLog.Record(_audit, intent, async () =>
            {
                progress?.Invoke(new RestartProgress { Address = t.Host, Phase = "docker restart", Remaining = o.Timeout });
                try { await _docker.RestartAsync(t, o.GraceSeconds, ct, $"{o.IncidentId ?? "-"} {JournalActor(o)}").ConfigureAwait(false); }
                catch (OpsException e) when (e.OutcomeUnknown && !e.IsCancellation)
                {
                    // The answer was lost after `docker restart` was sent: docker itself says whether it restarted. A
                    // container still inside its stop grace looks untouched (running, same start time), so "not
                    // restarted" is never concluded: docker inspect is asked until the grace (and a margin) has passed,
                    // and a start time that never moved stays Unknown — the restart may still land.
                    if (startedBefore == null) throw;
                    var until = sw.Elapsed + TimeSpan.FromSeconds((o.GraceSeconds ?? 10) + 5);
                    Diagnosis.ContainerState now;
                    while (true)
                    {
                        now = await ReadBackAsync(t, ct).ConfigureAwait(false);
                        if (now?.StartedAt != null && now.StartedAt > startedBefore && (idBefore == null || now.Id == null || now.Id == idBefore)) break;
                        if (sw.Elapsed >= until) throw;
                        await Task.Delay(TimeSpan.FromSeconds(1), ct).ConfigureAwait(false);
                    }
                    result.ReadBack = $"the answer to docker restart was lost ({e.ErrorId}); docker inspect shows it started again at {now.StartedAt:u}";
                    _log.Warning($"{t.Host}: {result.ReadBack}: going on as restarted.");
                }
                result.Restarted = true;
                _log.Verbose($"{t.Host}: `docker restart {t.Container}` done in {sw.Elapsed.TotalSeconds:0.0} s");
                if (!o.Wait) { result.Elapsed = sw.Elapsed; return result; }
                result.Waited = true;
                var ep = Endpoint.Parse(t.Host, o.HealthPort);
                var deadline = sw.Elapsed + o.Timeout;
                var probe = new HealthProbe(_health, _docker);
                while (true)
                {
                    ct.ThrowIfCancellationRequested();
                    var h = await probe.CheckAsync(ep, t, o.Via, ct).ConfigureAwait(false);
                    result.HealthChecks++;
                    result.Health = h;
                    if (h.Healthy) { result.Recovered = true; break; }
                    var remaining = deadline - sw.Elapsed;
                    progress?.Invoke(new RestartProgress { Address = t.Host, Phase = $"waiting for health ({h.Status})", Elapsed = sw.Elapsed, Remaining = remaining < TimeSpan.Zero ? TimeSpan.Zero : remaining, LastHealth = h, Attempts = result.HealthChecks });
                    if (remaining <= TimeSpan.Zero) { result.Recovered = false; break; }
                    var pause = o.PollInterval < remaining ? o.PollInterval : remaining;
                    await Task.Delay(pause, ct).ConfigureAwait(false);
                }
                result.Elapsed = sw.Elapsed;
                return result;
            },
            r => !r.Waited ? Entry(t, o, "Restarted", "not waited for health", fault, r)
                : Entry(t, o, r.Recovered == true ? "Recovered" : "NotRecovered",
                    r.Recovered == true ? $"operational after {r.Elapsed.TotalSeconds:0.#} s" : $"not operational after {o.Timeout.TotalSeconds:0.#} s: {r.Health?.Status} {r.Health?.Detail}", fault, r),
            () => result.Restarted ? $"the container was restarted; the wait for health stopped after {result.HealthChecks} checks" : "docker restart was not confirmed").ConfigureAwait(false);
        }

        /// <summary>Who a restart was by, as the VM's journal records it (the same text as the audit log's actor).</summary>
        private static string JournalActor(RestartOptions o) => $"{o.Actor ?? "manual"}/{AuditLog.DefaultActor()}";

        /// <summary>docker inspect after a lost answer, a few times (the connection that dropped is re-made); null when it cannot be read.</summary>
        private async Task<Diagnosis.ContainerState> ReadBackAsync(SshTarget t, CancellationToken ct)
        {
            for (int attempt = 0; attempt < 3; attempt++)
            {
                try { return await _docker.InspectAsync(t, ct).ConfigureAwait(false); }
                catch (OpsException e) when (!e.IsCancellation) { _log.Verbose($"{t.Host}: docker inspect after a lost answer failed ({e.ErrorId}); trying again."); }
                await Task.Delay(TimeSpan.FromMilliseconds(500 << attempt), ct).ConfigureAwait(false);
            }
            return null;
        }

        private static AuditEntry Entry(SshTarget t, RestartOptions o, string outcome, string detail, Fault fault, RestartResult r)
        {
            return new AuditEntry
            {
                Action = "RestartContainer", Target = t.Host, Outcome = outcome, Incident = o.IncidentId,
                BeforeData = new Newtonsoft.Json.Linq.JObject { ["container"] = t.Container, ["lastFault"] = fault?.Category, ["dependencyFault"] = fault?.Dependency ?? false },
                AfterData = new Newtonsoft.Json.Linq.JObject
                {
                    ["restarted"] = r.Restarted, ["waited"] = r.Waited, ["recovered"] = r.Recovered,
                    ["seconds"] = Math.Round(r.Elapsed.TotalSeconds, 1), ["health"] = r.Health?.Status.ToString(),
                },
                Actor = o.Actor == null ? null : o.Actor + "/" + AuditLog.DefaultActor(),
                Forced = o.Force && fault != null && fault.Dependency,
                Detail = $"{t.Container} on {t.Display}: {detail}" + (fault != null ? $"; last fault {fault.Category}" : "") + (r.ReadBack != null ? "; " + r.ReadBack : ""),
            };
        }
    }

    /// <summary>The container was already restarted for this incident (by anyone): nothing was run.</summary>
    public sealed class AlreadyRestartedException : OpsException
    {
        public AlreadyRestartedException(SshTarget t, string incident, PriorRestart prior)
            : base("AlreadyRestartedForIncident", OpsErrorCategory.ResourceExists,
                $"{t.Container} on {t.Host} was already restarted {(incident != null ? "for incident " + incident + " " : "")}{prior.Description}: not restarted twice for one incident. Nothing was run.",
                t.Host, recommendedAction: "Check its health and logs (Test-KeyServiceHealth, Get-KeyServiceLog). If it still fails, escalate the incident; to restart it anyway, run Restart-KeyService without -IncidentId.")
        { Prior = prior; }

        public PriorRestart Prior { get; }
    }
}
