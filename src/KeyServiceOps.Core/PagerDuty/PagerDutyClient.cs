using System;
using System.Collections.Generic;
using System.Linq;
using System.Net.Http;
using System.Threading;
using System.Threading.Tasks;
using Newtonsoft.Json.Linq;
using Polly;
using KeyServiceOps.Core.Audit;

namespace KeyServiceOps.Core.PagerDuty
{
    /// <summary>
    /// PagerDuty REST API v2: the contract's headers, `From` for writes, pagination by more/offset,
    /// retries (429 with or without ratelimit-reset, 408, 5xx) with bounded exponential back-off and
    /// jitter through Polly, and one typed error per contract code.
    /// </summary>
    public sealed class PagerDutyClient
    {
        public const int MaxPages = 100;
        private readonly RestClient _rest;
        private readonly PagerDutySettings _ctx;
        private readonly IOpsLog _log;
        private readonly ResiliencePipeline<RestResponse> _retry, _retryOnce;
        private readonly AuditLog _audit;

        public PagerDutyClient(PagerDutySettings ctx, IOpsLog log, AuditLog audit = null, TimeSpan? baseDelay = null)
        {
            _ctx = ctx;
            _log = log ?? NullOpsLog.Instance;
            _audit = audit;
            var token = ctx.Token ?? throw new OpsException("PagerDutyTokenMissing", OpsErrorCategory.InvalidArgument,
                "No PagerDuty API token is set.", null,
                recommendedAction: "Set-KeyServiceOpsContext -PagerDutyToken (Read-Host -AsSecureString), or -PagerDutyTokenVariable NAME (or KEYSERVICEOPS_PAGERDUTY_TOKEN).");
            var secret = token.RevealForHeader("PagerDuty API token");
            // PagerDuty's own TLS settings: -SkipCertificateCheck meant for a lab Kong never reaches PagerDuty.
            _rest = new RestClient("PagerDuty", ctx.Uri, HttpHandlers.Get(ctx.SkipCertificateCheck, ctx.CaCertificatePath), ctx.Http.Timeout, _log,
                req =>
                {
                    req.Headers.TryAddWithoutValidation("Authorization", "Token token=" + token.RevealForHeader("PagerDuty API token"));
                    req.Headers.TryAddWithoutValidation("Accept", "application/vnd.pagerduty+json;version=2");
                },
                Redactor.Of(new[] { secret }).Scrub);
            _rest.MaxResponseBytes = ctx.Http.MaxResponseBytes;
            _retry = HttpRetry.Build("PagerDuty", ctx.MaxRetries, baseDelay ?? TimeSpan.FromMilliseconds(500), ctx.MaxBackoff, _log);
            _retryOnce = HttpRetry.Build("PagerDuty", ctx.MaxRetries, baseDelay ?? TimeSpan.FromMilliseconds(500), ctx.MaxBackoff, _log, retryAmbiguous: false);
        }

        public int RequestCount => _rest.RequestCount;

        private async Task<JToken> SendAsync(HttpMethod method, string path, JObject body, object target, CancellationToken ct, bool idempotent = true)
        {
            var write = method != HttpMethod.Get;
            if (write && string.IsNullOrWhiteSpace(_ctx.From))
                throw FromMissing(target, null);
            var r = await (idempotent ? _retry : _retryOnce).ExecuteAsync(async token =>
                await _rest.SendAsync(method, path, body, token, req => { if (write) req.Headers.TryAddWithoutValidation("From", _ctx.From); }).ConfigureAwait(false), ct).ConfigureAwait(false);
            return Expect(r, method + " " + path, target);
        }

        private JToken Expect(RestResponse r, string what, object target)
        {
            var json = r.TryJson();
            if (r.IsSuccess && (json is JObject || r.Status == 204)) return json ?? new JObject();
            // A 2xx that is not PagerDuty's JSON (a sign-in page, a proxy's page, an empty body): typed, never a null
            // dereference later; a write answered so may have been applied (issue #26, #25).
            if (r.IsSuccess) throw InvalidResponse(target, $"answered {what} with HTTP {r.Status} and {(string.IsNullOrWhiteSpace(r.Body) ? "an empty body" : "a body that is not a JSON object")}", r.Excerpt()).MaybeAppliedIf(r.IsWrite);
            var msg = (string)json?["error"]?["message"] ?? "";
            var code = (int?)json?["error"]?["code"];
            OpsException E(string id, OpsErrorCategory cat, string text, string action)
                => new OpsException(id, cat, text, target, r.Excerpt(), action);
            if (r.Status == 429) throw E("PagerDutyRateLimited", OpsErrorCategory.LimitsExceeded,
                $"PagerDuty kept answering 429 (rate limited) to {what} after {_ctx.MaxRetries} retries.", "Wait a minute and run it again; PagerDuty advises serial requests per token.");
            if (r.Status >= 500 || r.Status == 408) throw E("PagerDutyServerError", OpsErrorCategory.ResourceUnavailable,
                $"PagerDuty failed {what} with HTTP {r.Status}{(r.IsWrite ? "" : $" after {_ctx.MaxRetries} retries")}.", "Retry later; check status.pagerduty.com.").MaybeAppliedIf(r.IsWrite);
            if (json == null) throw InvalidResponse(target, $"answered {what} with HTTP {r.Status} and a body that is not JSON", r.Excerpt());
            if (r.Status == 401) throw E("PagerDutyUnauthorized", OpsErrorCategory.AuthenticationError,
                "PagerDuty rejected the API token (401).", "Set a valid REST API key: Set-KeyServiceOpsContext -PagerDutyToken (Read-Host -AsSecureString).");
            if (r.Status == 403) throw E("PagerDutyForbidden", OpsErrorCategory.PermissionDenied,
                $"PagerDuty refused {what} (403): the key may be read-only.", "Use a full-access REST API key for changes.");
            if (r.Status == 400 && msg.IndexOf("\"From\" header", StringComparison.OrdinalIgnoreCase) >= 0) throw FromMissing(target, r.Excerpt());
            switch (code)
            {
                case 1028: throw E("PagerDutyFromInvalid", OpsErrorCategory.InvalidArgument, $"The From header '{_ctx.From}' is not a valid email address.", "Set-KeyServiceOpsContext -PagerDutyFrom you@example.com.");
                case 1008: throw E("PagerDutyRequesterNotFound", OpsErrorCategory.InvalidArgument, $"No PagerDuty user has the From email '{_ctx.From}'.", "Use the email of your PagerDuty login in -PagerDutyFrom.");
                case 1001: throw E("PagerDutyAlreadyResolved", OpsErrorCategory.InvalidOperation, "The incident is already resolved.", "Nothing to do: see its state with Get-PagerDutyIncident; open a new incident if the instance fails again.");
                case 1002: throw E("PagerDutyAlreadyAcknowledged", OpsErrorCategory.InvalidOperation, "The incident is already acknowledged.", "Nothing to do: see who holds it with Get-PagerDutyIncident.");
                case 1006: throw E("PagerDutyCannotEscalate", OpsErrorCategory.InvalidOperation, $"PagerDuty cannot escalate the incident: {msg}. The level may not exist in its escalation policy.", "Check the policy's levels, or assign a user with -AssignTo.");
                case 1007: throw AssigneeNotFound(target, "the user to assign", r.Excerpt());
                case 1014: throw E("PagerDutyPolicyNotFound", OpsErrorCategory.ObjectNotFound, "The escalation policy does not exist.", "Check the incident's escalation policy in PagerDuty, or assign a person with -AssignTo.");
                case 1015: throw E("PagerDutyNoOneOnCall", OpsErrorCategory.ResourceUnavailable, "The escalation policy has no user on call.", "Assign a person directly with -AssignTo.");
                case 2100: throw NotFound(target, "incident", r.Excerpt());
            }
            // PagerDuty's own 404 names its error ({"error": {...}}); one without it is another service at that address (a
            // mistyped -PagerDutyUri, Kong's admin API): never "no such incident", which would send the operator after the id.
            if (r.Status == 404 && !(json?["error"] is JObject))
                throw InvalidResponse(target, $"answered {what} with HTTP 404 in a shape that is not PagerDuty's (no \"error\" object): the address may not be PagerDuty's REST API", r.Excerpt());
            if (r.Status == 404) throw NotFound(target, "object", r.Excerpt());
            throw E("PagerDutyInvalidRequest", OpsErrorCategory.InvalidArgument, $"PagerDuty rejected {what}: {msg} (code {code}).", "Read PagerDuty's answer above; check the incident id and the values given.");
        }

        /// <summary>An incident id (or number) as PagerDuty makes them: letters and digits. Checked before anything is sent.</summary>
        public static string ValidIncidentId(string id)
        {
            if (string.IsNullOrWhiteSpace(id) || id.Length > 64 || !System.Text.RegularExpressions.Regex.IsMatch(id, "^[A-Za-z0-9]+$"))
            {
                var shown = id == null ? "" : id.Length > 60 ? id.Substring(0, 60) + "…" : id;
                throw new OpsException("InvalidIncidentId", OpsErrorCategory.InvalidArgument,
                    $"'{shown}' is not a PagerDuty incident id (letters and digits, e.g. Q1X2AB3 or an incident number). Nothing was sent.", shown,
                    recommendedAction: "Copy the id from the alert, or find it: Get-PagerDutyIncident -Address <IP>.");
            }
            return id;
        }

        public async Task<PagerDutyIncident> GetIncidentAsync(string idOrNumber, CancellationToken ct)
        {
            ValidIncidentId(idOrNumber);
            var j = await SendAsync(HttpMethod.Get, "incidents/" + Uri.EscapeDataString(idOrNumber), null, idOrNumber, ct).ConfigureAwait(false);
            return ToIncident(Part<JObject>(j, "incident", idOrNumber, "the incident"));
        }

        /// <summary>Incidents with the given statuses/services, every page (bounded), in API order.</summary>
        public async Task<List<PagerDutyIncident>> ListIncidentsAsync(IEnumerable<string> statuses, IEnumerable<string> serviceIds, CancellationToken ct)
        {
            var list = new List<PagerDutyIncident>();
            var filter = string.Concat((statuses ?? new string[0]).Select(s => "&statuses[]=" + Uri.EscapeDataString(s.ToLowerInvariant())))
                       + string.Concat((serviceIds ?? new string[0]).Select(s => "&service_ids[]=" + Uri.EscapeDataString(s)));
            const int limit = 100;
            for (int page = 0, offset = 0; page < MaxPages && offset + limit <= 10000; page++, offset += limit)
            {
                var j = await SendAsync(HttpMethod.Get, $"incidents?limit={limit}&offset={offset}{filter}", null, "incidents", ct).ConfigureAwait(false);
                foreach (var i in Part<JArray>(j, "incidents", null, "the incident list") ?? new JArray()) list.Add(ToIncident(i));
                if (!((bool?)j["more"] ?? false)) break;
            }
            return list;
        }

        /// <summary>Open incidents whose alert text names this address (the runbook's "remember the IP").</summary>
        public async Task<List<PagerDutyIncident>> FindForAddressAsync(string address, CancellationToken ct)
        {
            var ep = Endpoint.Parse(address, _ctx.InstancePort);
            var open = await ListIncidentsAsync(new[] { "triggered", "acknowledged" }, null, ct).ConfigureAwait(false);
            return open.Where(i => string.Equals(i.Address, ep.Address, StringComparison.OrdinalIgnoreCase)).ToList();
        }

        /// <summary>
        /// The newest open incident for an address, for the runbook and self-healing to write to; null when there is
        /// none or PagerDuty cannot be asked (that is a warning: the caller goes on without notes).
        /// </summary>
        public async Task<string> TryFindIncidentIdAsync(string address, IOpsLog log, CancellationToken ct)
        {
            log = log ?? NullOpsLog.Instance;
            try
            {
                var inc = (await FindForAddressAsync(address, ct).ConfigureAwait(false)).OrderByDescending(i => i.CreatedAt).FirstOrDefault();
                if (inc != null) log.Verbose($"{address}: open incident {inc.IncidentId} ({inc.Title}).");
                return inc?.IncidentId;
            }
            catch (OpsException e) when (!e.IsCancellation)
            {
                log.Warning($"Could not look up the incident for {address} ({e.ErrorId}): no note is written for it.");
                return null;
            }
        }

        public async Task<List<PagerDutyNote>> GetNotesAsync(string incidentId, CancellationToken ct)
        {
            var j = await SendAsync(HttpMethod.Get, $"incidents/{Uri.EscapeDataString(incidentId)}/notes", null, incidentId, ct).ConfigureAwait(false);
            return (Part<JArray>(j, "notes", incidentId, "the notes") ?? new JArray()).Select(n => ToNote(incidentId, n)).ToList();
        }

        /// <summary>The incident's log entries (triggered, acknowledged, escalated, assigned, annotated, resolved), oldest first.</summary>
        public async Task<List<PagerDutyLogEntry>> GetLogEntriesAsync(string incidentId, CancellationToken ct)
        {
            ValidIncidentId(incidentId);
            var list = new List<PagerDutyLogEntry>();
            for (int offset = 0, page = 0; page < 50; page++)
            {
                var j = await SendAsync(HttpMethod.Get, $"incidents/{Uri.EscapeDataString(incidentId)}/log_entries?limit=100&offset={offset}&is_overview=false", null, incidentId, ct).ConfigureAwait(false);
                var items = Part<JArray>(j, "log_entries", incidentId, "the log entries") ?? new JArray();
                foreach (var e in items.OfType<JObject>())
                    list.Add(new PagerDutyLogEntry
                    {
                        IncidentId = incidentId, Type = (string)e["type"], Summary = SafeText.Neutralize((string)e["summary"]), Agent = SafeText.Neutralize((string)e["agent"]?["summary"]),
                        CreatedAt = e["created_at"]?.Type == JTokenType.Date ? new DateTimeOffset(((DateTime)e["created_at"]).ToUniversalTime()) : (DateTimeOffset?)null,
                    });
                if ((bool?)j["more"] != true || items.Count == 0) break;
                offset += items.Count;
            }
            return list.OrderBy(e => e.CreatedAt).ToList();
        }

        public async Task<PagerDutyNote> AddNoteAsync(string incidentId, string content, CancellationToken ct)
        {
            ValidIncidentId(incidentId);
            if (string.IsNullOrWhiteSpace(content))
                throw new OpsException("NoteEmpty", OpsErrorCategory.InvalidArgument, "The note is empty. Nothing was sent.", incidentId, recommendedAction: "Give the note text with -Note.");
            // What responders read in PagerDuty never holds raw control bytes from a log line or an error (issue #26).
            content = SafeText.Lines(content);
            var body = new JObject { ["note"] = new JObject { ["content"] = content } };
            // Write-ahead, and "Added" only for a note PagerDuty answered with (an id), never for what was asked.
            return await AuditLog.Record(_audit, new AuditEntry { Action = "AddIncidentNote", Target = incidentId, Incident = incidentId },
                async () =>
                {
                    // Sent once: an answer after which it may have been added (5xx, a gateway's page) is read back below,
                    // never re-sent (a retried note that had landed is a second note on the incident).
                    // Sent again only when the incident's notes show it did not land.
                    for (int attempt = 0; ; attempt++)
                    {
                        JToken j;
                        try { j = await SendAsync(HttpMethod.Post, $"incidents/{Uri.EscapeDataString(incidentId)}/notes", body, incidentId, ct, idempotent: false).ConfigureAwait(false); }
                        catch (OpsException e) when (e.OutcomeUnknown && !e.IsCancellation && attempt < _ctx.MaxRetries)
                        {
                            var landed = await FindNoteAsync(incidentId, content, ct).ConfigureAwait(false);
                            if (landed.found != null) return landed.found;
                            if (!landed.readable) throw;
                            _log.Verbose($"PagerDuty: the note on {incidentId} did not land ({e.ErrorId}); sending it again ({attempt + 1} of {_ctx.MaxRetries}).");
                            await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(_ctx.MaxBackoff.TotalMilliseconds, 200 << Math.Min(attempt, 6))), ct).ConfigureAwait(false);
                            continue;
                        }
                        if (!(j?["note"] is JObject n) || string.IsNullOrEmpty(Text(n["id"])))
                            throw Unconfirmed("note", incidentId);
                        return ToNote(incidentId, n);
                    }
                },
                n => new AuditEntry { AfterData = new JObject { ["content"] = content, ["id"] = n.NoteId }, Outcome = "Added" },
                reconcile: async e =>
                {
                    // The incident's notes say whether it landed: the same text, exactly.
                    var (found, readable) = await FindNoteAsync(incidentId, content, ct).ConfigureAwait(false);
                    if (!readable) return Reconciliation<PagerDutyNote>.CannotTell("the incident's notes could not be read");
                    return found != null
                        ? Reconciliation<PagerDutyNote>.WasApplied(found, $"the incident's notes hold it (note {found.NoteId})")
                        : Reconciliation<PagerDutyNote>.NotApplied("the incident's notes do not hold it");
                }).ConfigureAwait(false);
        }

        /// <summary>A note with exactly this text on the incident (the newest), and whether the notes could be read.</summary>
        private async Task<(PagerDutyNote found, bool readable)> FindNoteAsync(string incidentId, string content, CancellationToken ct)
        {
            try
            {
                var notes = await GetNotesAsync(incidentId, ct).ConfigureAwait(false);
                return (notes.LastOrDefault(x => string.Equals(x.Content, content, StringComparison.Ordinal)), true);
            }
            catch (OpsException x) when (!x.IsCancellation) { return (null, false); }
        }

        public Task<PagerDutyIncident> UpdateIncidentAsync(string incidentId, IncidentUpdate update, PagerDutyIncident before, CancellationToken ct)
            => UpdateIncidentAsync(incidentId, update.ToFields(), before, ct);

        /// <summary>
        /// Raises the incident to <paramref name="level"/> unless it is there already (never lowers it). Returns the
        /// incident as it was, and whether it changed. The runbook's step 5, its hand-over and self-healing share it.
        /// </summary>
        public async Task<(PagerDutyIncident before, bool changed)> EscalateToAsync(string incidentId, int level, CancellationToken ct)
        {
            var inc = await GetIncidentAsync(incidentId, ct).ConfigureAwait(false);
            if ((inc.EscalationLevel ?? 1) >= level) return (inc, false);
            await UpdateIncidentAsync(incidentId, new IncidentUpdate { EscalationLevel = level }, inc, ct).ConfigureAwait(false);
            return (inc, true);
        }

        /// <summary>PUT /incidents/{id} with the given fields (escalation_level, assignments, escalation_policy, status).</summary>
        public async Task<PagerDutyIncident> UpdateIncidentAsync(string incidentId, JObject fields, PagerDutyIncident before, CancellationToken ct)
        {
            ValidIncidentId(incidentId);
            var inc = new JObject { ["type"] = "incident_reference" };
            foreach (var p in fields.Properties()) inc[p.Name] = p.Value;
            var beforeJson = before == null ? null : new JObject { ["status"] = before.Status, ["level"] = before.EscalationLevel, ["assignees"] = new JArray(before.AssigneeIds), ["policy"] = before.EscalationPolicyId };
            return await AuditLog.Record(_audit, new AuditEntry { Action = "UpdateIncident", Target = incidentId, Incident = incidentId, BeforeData = beforeJson },
                async () =>
                {
                    var j = await SendAsync(HttpMethod.Put, $"incidents/{Uri.EscapeDataString(incidentId)}", new JObject { ["incident"] = inc }, incidentId, ct).ConfigureAwait(false);
                    if (!(j?["incident"] is JObject confirmed) || string.IsNullOrEmpty(Text(confirmed["id"])))
                        throw Unconfirmed("incident update", incidentId);
                    return ToIncident(confirmed);
                },
                // What PagerDuty answered, not what was asked.
                a => new AuditEntry { BeforeData = beforeJson, AfterData = new JObject { ["status"] = a.Status, ["level"] = a.EscalationLevel, ["assignees"] = new JArray(a.AssigneeIds ?? new string[0]), ["policy"] = a.EscalationPolicyId }, Outcome = "Updated" },
                reconcile: async e =>
                {
                    // The answer was lost (a gateway's 5xx past the retries, a timeout): the incident itself says whether
                    // the escalation, hand-over or status landed; never "escalate by hand" for an escalation PagerDuty made.
                    PagerDutyIncident now;
                    try { now = await GetIncidentAsync(incidentId, ct).ConfigureAwait(false); }
                    catch (OpsException x) when (!x.IsCancellation) { return Reconciliation<PagerDutyIncident>.CannotTell($"the incident could not be read back ({x.ErrorId})"); }
                    var why = Unmet(fields, now);
                    return why == null
                        ? Reconciliation<PagerDutyIncident>.WasApplied(now, "the incident read back shows the change")
                        : Reconciliation<PagerDutyIncident>.NotApplied($"the incident read back shows {why}");
                }).ConfigureAwait(false);
        }

        /// <summary>What of <paramref name="fields"/> the incident does not show (null when it shows all of it).</summary>
        private static string Unmet(JObject fields, PagerDutyIncident now)
        {
            if (fields["escalation_level"] != null && (now.EscalationLevel ?? 1) < (int)fields["escalation_level"]) return $"level {now.EscalationLevel ?? 1}";
            if (fields["status"] != null && !string.Equals(now.Status, (string)fields["status"], StringComparison.OrdinalIgnoreCase)) return $"status {now.Status}";
            if (fields["escalation_policy"] is JObject p && !string.Equals(now.EscalationPolicyId, (string)p["id"], StringComparison.Ordinal)) return $"policy {now.EscalationPolicyId}";
            if (fields["assignments"] is JArray a)
            {
                var want = a.Select(x => (string)x["assignee"]?["id"]).Where(x => x != null).ToList();
                var have = now.AssigneeIds?.ToList() ?? new List<string>();
                if (want.Any(w => !have.Contains(w))) return $"assignees {string.Join(", ", have)}";
            }
            return null;
        }

        private static OpsException Unconfirmed(string what, string incidentId)
            => InvalidResponse(incidentId, $"answered the {what} for incident {incidentId} without confirming it (no {what.Split(' ')[0]} id in the answer); it may not have been recorded", null);

        // One factory per id raised from more than one place: one message and one advice per id.
        /// <summary>A PagerDuty answer read with the wrong JSON types somewhere the parsing did not expect (see <see cref="ClientAnswers"/>).</summary>
        internal static OpsException Malformed(Exception e) => InvalidResponse(null, $"answered with JSON of a shape PagerDuty does not send ({e.Message})", null);

        private static OpsException InvalidResponse(object target, string why, string details)
            => new OpsException("PagerDutyInvalidResponse", OpsErrorCategory.InvalidResult, $"PagerDuty {why}.", target, details,
                "Check the incident in PagerDuty (Get-PagerDutyIncident) and that -PagerDutyUri points at the REST API; a proxy or captive page may be answering instead.");

        private static OpsException FromMissing(object target, string details)
            => new OpsException("PagerDutyFromMissing", OpsErrorCategory.InvalidArgument,
                "PagerDuty needs the email of a PagerDuty user in the From header to change an incident, and none is set.", target, details,
                "Set-KeyServiceOpsContext -PagerDutyFrom you@example.com (or KEYSERVICEOPS_PAGERDUTY_FROM).");

        private static OpsException AssigneeNotFound(object target, string who, string details)
            => new OpsException("PagerDutyAssigneeNotFound", OpsErrorCategory.ObjectNotFound, $"PagerDuty has no {who}. Nothing was changed.", target, details,
                "Give a user id (P...) or the email of an existing PagerDuty user.");

        private static OpsException NotFound(object target, string what, string details)
            => new OpsException("PagerDutyNotFound", OpsErrorCategory.ObjectNotFound, $"PagerDuty has no such {what} ({target}). Nothing was changed.", target, details,
                "Check the id (Get-PagerDutyIncident -Status Triggered lists the open incidents), or start from the alert: Get-PagerDutyIncident -Address <IP>.");

        /// <summary>A user id (P…) as is, or an email resolved to the user's id.</summary>
        public async Task<string> ResolveUserIdAsync(string idOrEmail, CancellationToken ct)
        {
            if (!idOrEmail.Contains("@")) return idOrEmail;
            var j = await SendAsync(HttpMethod.Get, "users?query=" + Uri.EscapeDataString(idOrEmail), null, idOrEmail, ct).ConfigureAwait(false);
            var u = (Part<JArray>(j, "users", idOrEmail, "the user list") ?? new JArray()).OfType<JObject>().FirstOrDefault(x => string.Equals(Text(x["email"]), idOrEmail, StringComparison.OrdinalIgnoreCase));
            if (u == null) throw AssigneeNotFound(idOrEmail, $"a user with the email '{idOrEmail}'", null);
            return (string)u["id"];
        }

        /// <summary>
        /// PROPERTY of a PagerDuty answer as the shape asked for: absent is null (the caller decides), present with another
        /// shape is PagerDutyInvalidResponse (a proxy's or a wrong service's JSON), never a cast exception (issue #26).
        /// </summary>
        private static T Part<T>(JToken j, string property, object target, string what) where T : JToken
        {
            var v = j?[property];
            if (v == null || v.Type == JTokenType.Null) return null;
            return v as T ?? throw InvalidResponse(target, $"answered with {what} ('{property}') as {v.Type}, not the JSON PagerDuty sends", JsonShape.Quote(v));
        }

        /// <summary>A JSON value as text when it is one (string, number, boolean); null for objects and arrays.</summary>
        private static string Text(JToken t) => t == null || t.Type == JTokenType.Null || t is JContainer ? null : (string)t;

        private static int? Int(JToken t) => t != null && t.Type == JTokenType.Integer ? (int?)(long)t : null;

        internal static PagerDutyIncident ToIncident(JToken j)
        {
            if (!(j is JObject) || Text(j["id"]) == null) throw InvalidResponse(null, "answered with an incident that is not an object with an id", JsonShape.Quote(j));
            try { return ToIncidentCore(j); }
            catch (Exception e) when (JsonShape.IsWrongShape(e)) { throw InvalidResponse(Text(j["id"]), $"answered with an incident whose fields have the wrong JSON types ({e.Message})", JsonShape.Quote(j)); }
        }

        private static PagerDutyIncident ToIncidentCore(JToken j)
        {
            var i = new PagerDutyIncident
            {
                IncidentId = (string)j["id"], Number = (int?)j["incident_number"] ?? 0, Title = SafeText.Neutralize((string)j["title"]), Status = SafeText.Neutralize((string)j["status"]),
                Urgency = SafeText.Neutralize((string)j["urgency"]), Service = SafeText.Neutralize((string)j["service"]?["summary"]), ServiceId = (string)j["service"]?["id"],
                EscalationPolicy = SafeText.Neutralize((string)j["escalation_policy"]?["summary"]), EscalationPolicyId = (string)j["escalation_policy"]?["id"],
                EscalationLevel = (int?)j["escalation_level"], HtmlUrl = SafeText.Neutralize((string)j["html_url"]),
                CreatedAt = j["created_at"]?.Type == JTokenType.Date ? new DateTimeOffset(((DateTime)j["created_at"]).ToUniversalTime()) : (DateTimeOffset?)null,
            };
            var asg = (j["assignments"] as JArray) ?? new JArray();
            i.Assignees = asg.Select(a => SafeText.Neutralize((string)a["assignee"]?["summary"])).ToArray();
            i.AssigneeIds = asg.Select(a => (string)a["assignee"]?["id"]).ToArray();
            foreach (var text in new[] { i.Title, (string)j["summary"], j["body"]?.ToString() })
            {
                if (AlertText.TryParse(text, out var addr, out var port, out var env, out var url))
                {
                    i.Address = addr; i.Port = port; i.Environment = env; i.HealthUrl = url;
                    break;
                }
            }
            return i;
        }

        private static PagerDutyNote ToNote(string incidentId, JToken n)
        {
            if (!(n is JObject)) throw InvalidResponse(incidentId, "answered with a note that is not an object", JsonShape.Quote(n));
            try { return ToNoteCore(incidentId, n); }
            catch (Exception e) when (JsonShape.IsWrongShape(e)) { throw InvalidResponse(incidentId, $"answered with a note whose fields have the wrong JSON types ({e.Message})", JsonShape.Quote(n)); }
        }

        private static PagerDutyNote ToNoteCore(string incidentId, JToken n) => new PagerDutyNote
        {
            // Anyone with a PagerDuty account writes notes: shown, never obeyed by the terminal (issue #26).
            IncidentId = incidentId, NoteId = (string)n["id"], User = SafeText.Neutralize((string)n["user"]?["summary"]), Content = SafeText.Lines((string)n["content"]),
            CreatedAt = n["created_at"]?.Type == JTokenType.Date ? new DateTimeOffset(((DateTime)n["created_at"]).ToUniversalTime()) : (DateTimeOffset?)null,
        };
    }
}
