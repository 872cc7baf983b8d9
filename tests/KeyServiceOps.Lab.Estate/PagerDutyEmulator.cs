using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace KeyServiceOps.Lab.Estate
{
    public sealed class PdUser { public string Id; public string Email; public string Name; }
    public sealed class PdPolicy { public string Id; public string Name; public List<List<string>> Levels = new List<List<string>>(); }
    public sealed class PdNote { public string Id; public string UserId; public string Content; public DateTimeOffset CreatedAt; }
    /// <summary>An incident's log entry as PagerDuty keeps it (GET /incidents/{id}/log_entries).</summary>
    public sealed class PdLogEntry { public string Id; public string Type; public DateTimeOffset CreatedAt; public string Agent; public string Summary; }
    public sealed class PdIncident
    {
        public string Id; public int Number; public string Title; public string Status = "triggered"; public string ServiceId; public string ServiceName;
        public string PolicyId; public int Level = 1; public List<string> Assignees = new List<string>(); public List<PdNote> Notes = new List<PdNote>(); public List<PdLogEntry> LogEntries = new List<PdLogEntry>();
        public void Log(string type, string agent, string summary) => LogEntries.Add(new PdLogEntry { Id = "PLOG" + (LogEntries.Count + 1), Type = type, CreatedAt = DateTimeOffset.UtcNow, Agent = agent, Summary = summary });
        public DateTimeOffset CreatedAt = DateTimeOffset.UtcNow; public string IncidentKey; public string AlertBody;
    }

    /// <summary>
    /// PagerDuty REST API v2 emulator following ../shared/contracts/pagerduty-api.md, traps included:
    /// exact Authorization form, Content-Type and From checks, limit/offset/more, 429 with or without
    /// headers, 5xx bursts, the distinct error codes.
    /// </summary>
    public sealed class PagerDutyEmulator : IAsyncDisposable
    {
        private readonly object _gate = new object();
        private WebApplication _app;
        private int _nextNumber = 1000;
        private readonly ConcurrentQueue<string> _requests = new ConcurrentQueue<string>();

        public Uri BaseUri { get; private set; }
        public string Token { get; set; } = "pd-lab-token";
        public string ReadOnlyToken { get; set; } = "pd-readonly-token";
        public List<PdUser> Users { get; } = new List<PdUser>();
        public List<PdPolicy> Policies { get; } = new List<PdPolicy>();
        public List<PdIncident> Incidents { get; } = new List<PdIncident>();
        /// <summary>Answer the next N calls with 429; with headers (ratelimit-reset) or bare (no headers, no body).</summary>
        public int RateLimitNext;
        public bool RateLimitWithHeaders = true;
        public int ServerErrorNext;
        /// <summary>An outage: every request answers 500 until cleared (issue #25: the note-taker is never on the critical path).</summary>
        public volatile bool Outage;
        /// <summary>The next N notes are added, then a gateway in front answers 502 with its HTML page (applied, unanswered).</summary>
        public int NotesLandThenGateway502;
        /// <summary>The next N incident updates (PUT: escalate, assign, resolve) are applied, then a gateway answers 502 (applied, unanswered).</summary>
        public int UpdatesLandThenGateway502;
        /// <summary>Lab switch: every read of an incident's notes waits this long first (a slow PagerDuty; races between two writers show).</summary>
        public volatile int NoteReadDelayMs;
        /// <summary>Reads answer; every write answers 500 and changes nothing (a partial outage of PagerDuty's write path).</summary>
        public volatile bool WriteOutage;
        /// <summary>Every request answers 200 with an HTML sign-in page (an SSO proxy in front of the API).</summary>
        public volatile bool SignInPage;
        /// <summary>From now on every request about notes (GET or POST …/notes) answers 429: a storm that starts at the first note.</summary>
        public volatile bool RateLimitNotes;
        public IReadOnlyList<string> Requests => _requests.ToArray();
        public int RequestCount => _requests.Count;

        public static async Task<PagerDutyEmulator> StartAsync()
        {
            var pd = new PagerDutyEmulator();
            (pd._app, pd.BaseUri) = await LabHost.StartAsync(pd.HandleAsync);
            pd.Seed();
            return pd;
        }

        private void Seed()
        {
            Users.Add(new PdUser { Id = "PUSER01", Email = "oncall@example.com", Name = "On Call" });
            Users.Add(new PdUser { Id = "PUSER02", Email = "level2@example.com", Name = "Level Two" });
            Users.Add(new PdUser { Id = "PCIPHER", Email = "cipher-owner@example.com", Name = "Cipher Owner" });
            Users.Add(new PdUser { Id = "PIAMOWN", Email = "iam-owner@example.com", Name = "IAM Owner" });
            Policies.Add(new PdPolicy { Id = "PPOLICY", Name = "tip-api-platform", Levels = { new List<string> { "PUSER01" }, new List<string> { "PUSER02" } } });
            Policies.Add(new PdPolicy { Id = "PEMPTY1", Name = "nobody-on-call", Levels = { new List<string>() } });
        }

        /// <summary>The lab's alert for a down instance, with the runbook's text in the title.</summary>
        /// <summary>
        /// A V3 webhook delivery for <paramref name="inc"/> as PagerDuty sends it: the JSON body and the
        /// X-PagerDuty-Signature header ("v1=" + hex HMAC-SHA256 of the body with each secret, comma-separated).
        /// </summary>
        public (byte[] body, string signature, string eventId) Webhook(PdIncident inc, string[] secrets, string eventType = "incident.triggered", string eventId = null)
        {
            eventId ??= "01" + Guid.NewGuid().ToString("N").Substring(0, 24).ToUpperInvariant();
            var body = new System.Text.Json.Nodes.JsonObject
            {
                ["event"] = new System.Text.Json.Nodes.JsonObject
                {
                    ["id"] = eventId, ["event_type"] = eventType, ["resource_type"] = "incident",
                    ["occurred_at"] = DateTimeOffset.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'"),
                    ["agent"] = null, ["client"] = null,
                    ["data"] = new System.Text.Json.Nodes.JsonObject
                    {
                        ["id"] = inc.Id, ["type"] = "incident", ["self"] = $"{BaseUri}incidents/{inc.Id}", ["html_url"] = $"https://lab.pagerduty.com/incidents/{inc.Id}",
                        ["number"] = inc.Number, ["status"] = inc.Status, ["incident_key"] = inc.IncidentKey ?? inc.Id.ToLowerInvariant(),
                        ["created_at"] = inc.CreatedAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'"), ["title"] = inc.Title,
                        ["service"] = new System.Text.Json.Nodes.JsonObject { ["id"] = inc.ServiceId, ["summary"] = inc.ServiceName, ["type"] = "service_reference" },
                        ["assignees"] = new System.Text.Json.Nodes.JsonArray(inc.Assignees.Select(a => (System.Text.Json.Nodes.JsonNode)new System.Text.Json.Nodes.JsonObject { ["id"] = a, ["summary"] = a, ["type"] = "user_reference" }).ToArray()),
                        ["escalation_policy"] = new System.Text.Json.Nodes.JsonObject { ["id"] = inc.PolicyId, ["summary"] = "Key service", ["type"] = "escalation_policy_reference" },
                        ["teams"] = new System.Text.Json.Nodes.JsonArray(), ["priority"] = null, ["urgency"] = "high", ["conference_bridge"] = null, ["resolve_reason"] = null,
                    },
                },
            };
            var bytes = System.Text.Encoding.UTF8.GetBytes(body.ToJsonString());
            var sigs = secrets.Select(sec =>
            {
                using var h = new System.Security.Cryptography.HMACSHA256(System.Text.Encoding.UTF8.GetBytes(sec));
                return "v1=" + Convert.ToHexString(h.ComputeHash(bytes)).ToLowerInvariant();
            });
            return (bytes, string.Join(",", sigs), eventId);
        }

        public PdIncident AddAlert(string address, string env = "prod", int port = 8888, string status = "triggered")
            => AddIncident($"Service: apiplatform_key_service in env: {env} is down, url is http://{address}:{port}/api/auth/healthz", status);

        public PdIncident AddIncident(string title, string status = "triggered")
        {
            lock (_gate)
            {
                var n = ++_nextNumber;
                var i = new PdIncident { Id = "Q" + n.ToString("X") + "LAB", Number = n, Title = title, Status = status, ServiceId = "PSVCKEY", ServiceName = "apiplatform_key_service", PolicyId = "PPOLICY", Assignees = { "PUSER01" } };
                i.LogEntries.Add(new PdLogEntry { Id = "PLOG1", Type = "trigger_log_entry", CreatedAt = i.CreatedAt, Agent = "Echometer", Summary = "Triggered through the API" });
                Incidents.Add(i);
                return i;
            }
        }

        public PdIncident Incident(string id) { lock (_gate) return Incidents.First(i => i.Id == id); }

        private async Task HandleAsync(HttpContext ctx)
        {
            var path = ctx.Request.Path.Value ?? "/";
            var m = ctx.Request.Method;
            _requests.Enqueue($"{m} {path}{ctx.Request.QueryString} From={ctx.Request.Headers["From"]}");
            if ((RateLimitNext > 0 && Interlocked.Decrement(ref RateLimitNext) >= 0) || (RateLimitNotes && path.EndsWith("/notes")))
            {
                ctx.Response.StatusCode = 429;
                if (RateLimitWithHeaders)
                {
                    ctx.Response.Headers["ratelimit-limit"] = "960";
                    ctx.Response.Headers["ratelimit-remaining"] = "0";
                    ctx.Response.Headers["ratelimit-reset"] = "1";
                    await Json(ctx, 429, Err("Rate Limit Exceeded", 2020));
                }
                return;
            }
            if (SignInPage)
            {
                ctx.Response.StatusCode = 200;
                ctx.Response.ContentType = "text/html";
                await ctx.Response.WriteAsync("<!DOCTYPE html><html><head><title>Sign in</title></head><body><form>SSO sign-in</form></body></html>");
                return;
            }
            if (Outage)
            {
                await Json(ctx, 500, Err("Internal Server Error", 2000));
                return;
            }
            if (WriteOutage && m != "GET")
            {
                await Json(ctx, 500, Err("Internal Server Error", 2000));
                return;
            }
            if (ServerErrorNext > 0 && Interlocked.Decrement(ref ServerErrorNext) >= 0)
            {
                await Json(ctx, 500, Err("Internal Server Error", 2000));
                return;
            }
            var auth = ctx.Request.Headers["Authorization"].ToString();
            if (auth != "Token token=" + Token && auth != "Token token=" + ReadOnlyToken)
            {
                await Json(ctx, 401, Err("Unauthorized", 2006));
                return;
            }
            var isWrite = m != "GET";
            if (isWrite && auth == "Token token=" + ReadOnlyToken) { await Json(ctx, 403, Err("Access Denied", 2010)); return; }
            JsonObject body = null;
            if (isWrite)
            {
                var ct = ctx.Request.ContentType ?? "";
                var text = await new StreamReader(ctx.Request.Body).ReadToEndAsync();
                if (!ct.StartsWith("application/json")) { await Json(ctx, 400, Err("Invalid Input Provided", 2001, "params must be a Hash")); return; }
                try { body = JsonNode.Parse(text) as JsonObject; } catch (JsonException) { }
                if (body == null) { await Json(ctx, 400, Err("Invalid Input Provided", 2001, "params must be a Hash")); return; }
                var from = ctx.Request.Headers["From"].ToString();
                if (string.IsNullOrEmpty(from)) { await Json(ctx, 400, Err("You must specify a user's email address in the \"From\" header to perform this action", 2001)); return; }
                if (!from.Contains('@')) { await Json(ctx, 400, Err("Invalid From Header", 1028)); return; }
                if (!Users.Any(u => u.Email.Equals(from, StringComparison.OrdinalIgnoreCase))) { await Json(ctx, 400, Err("Requester User Not Found", 1008)); return; }
            }
            var segs = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
            if (segs.Length == 1 && segs[0] == "users" && m == "GET")
            {
                var q = ctx.Request.Query["query"].ToString();
                var hits = Users.Where(u => q.Length == 0 || u.Email.Contains(q, StringComparison.OrdinalIgnoreCase) || u.Name.Contains(q, StringComparison.OrdinalIgnoreCase));
                await Json(ctx, 200, new JsonObject { ["users"] = new JsonArray(hits.Select(u => (JsonNode)UserRef(u.Id, "user")).ToArray()), ["limit"] = 25, ["offset"] = 0, ["more"] = false, ["total"] = null });
                return;
            }
            if (segs.Length >= 1 && segs[0] == "incidents")
            {
                if (segs.Length == 1 && m == "GET") { await ListIncidents(ctx); return; }
                PdIncident inc;
                lock (_gate) inc = segs.Length >= 2 ? Incidents.FirstOrDefault(i => i.Id == segs[1] || i.Number.ToString() == segs[1]) : null;
                if (inc == null) { await Json(ctx, 404, Err("Not Found", 2100)); return; }
                if (segs.Length == 2 && m == "GET") { await Json(ctx, 200, new JsonObject { ["incident"] = IncidentJson(inc) }); return; }
                if (segs.Length == 2 && m == "PUT")
                {
                    if (UpdatesLandThenGateway502 > 0 && Interlocked.Decrement(ref UpdatesLandThenGateway502) >= 0)
                    {
                        var real = ctx.Response.Body;
                        ctx.Response.Body = new System.IO.MemoryStream();
                        await UpdateIncident(ctx, inc, body);
                        ctx.Response.Body = real;
                        ctx.Response.StatusCode = 502; ctx.Response.ContentType = "text/html"; ctx.Response.Headers.ContentLength = null;
                        await ctx.Response.WriteAsync("<html><body><h1>502 Bad Gateway</h1></body></html>");
                        return;
                    }
                    await UpdateIncident(ctx, inc, body);
                    return;
                }
                if (segs.Length == 3 && segs[2] == "log_entries" && m == "GET")
                {
                    lock (_gate)
                    {
                        var entries = new JsonArray(inc.LogEntries.Select(e => (JsonNode)new JsonObject
                        {
                            ["id"] = e.Id, ["type"] = e.Type, ["summary"] = e.Summary, ["created_at"] = e.CreatedAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'"),
                            ["agent"] = new JsonObject { ["type"] = "user_reference", ["summary"] = e.Agent },
                        }).ToArray());
                        _ = Json(ctx, 200, new JsonObject { ["log_entries"] = entries, ["limit"] = 100, ["offset"] = 0, ["more"] = false });
                    }
                    return;
                }
                if (segs.Length == 3 && segs[2] == "notes")
                {
                    if (m == "GET" && NoteReadDelayMs > 0) await Task.Delay(NoteReadDelayMs);
                    if (m == "GET") { lock (_gate) { var notes = new JsonArray(inc.Notes.Select(n => (JsonNode)NoteJson(n)).ToArray()); _ = Json(ctx, 200, new JsonObject { ["notes"] = notes }); } return; }
                    if (m == "POST")
                    {
                        var content = body?["note"]?["content"]?.ToString();
                        if (string.IsNullOrEmpty(content)) { await Json(ctx, 400, Err("Invalid Input Provided", 2001, "Note content is required")); return; }
                        PdNote note;
                        lock (_gate)
                        {
                            if (inc.Notes.Count >= 2000) { _ = Json(ctx, 400, Err("Note limit reached", 2001)); return; }
                            var user = Users.First(u => u.Email.Equals(ctx.Request.Headers["From"].ToString(), StringComparison.OrdinalIgnoreCase));
                            note = new PdNote { Id = "PNOTE" + (inc.Notes.Count + 1), UserId = user.Id, Content = content, CreatedAt = DateTimeOffset.UtcNow };
                            inc.Notes.Add(note);
                            inc.Log("annotate_log_entry", user.Name, "Note added");
                        }
                        if (NotesLandThenGateway502 > 0 && Interlocked.Decrement(ref NotesLandThenGateway502) >= 0)
                        {
                            ctx.Response.StatusCode = 502; ctx.Response.ContentType = "text/html";
                            await ctx.Response.WriteAsync("<html><body><h1>502 Bad Gateway</h1></body></html>");
                            return;
                        }
                        await Json(ctx, 200, new JsonObject { ["note"] = NoteJson(note) });
                        return;
                    }
                }
            }
            await Json(ctx, 404, Err("Not Found", 2100));
        }

        private async Task ListIncidents(HttpContext ctx)
        {
            var q = ctx.Request.Query;
            int limit = q.ContainsKey("limit") ? int.Parse(q["limit"]!) : 25;
            int offset = q.ContainsKey("offset") ? int.Parse(q["offset"]!) : 0;
            limit = Math.Min(100, Math.Max(1, limit));
            if (offset + limit > 10000) { await Json(ctx, 400, Err("Offset must be less than 10000", 2001)); return; }
            var statuses = q["statuses[]"].Select(s => s!).ToList();
            var services = q["service_ids[]"].Select(s => s!).ToList();
            List<PdIncident> all;
            lock (_gate)
                all = Incidents.Where(i => (statuses.Count == 0 || statuses.Contains(i.Status)) && (services.Count == 0 || services.Contains(i.ServiceId))).ToList();
            var page = all.Skip(offset).Take(limit).Select(i => (JsonNode)IncidentJson(i)).ToArray();
            await Json(ctx, 200, new JsonObject { ["incidents"] = new JsonArray(page), ["limit"] = limit, ["offset"] = offset, ["more"] = offset + limit < all.Count, ["total"] = null });
        }

        private string from(HttpContext ctx) => Users.FirstOrDefault(u => u.Email.Equals(ctx.Request.Headers["From"].ToString(), StringComparison.OrdinalIgnoreCase))?.Name ?? "API";

        private async Task UpdateIncident(HttpContext ctx, PdIncident inc, JsonObject body)
        {
            var i = body["incident"] as JsonObject;
            var type = i?["type"]?.ToString();
            if (i == null || (type != "incident" && type != "incident_reference")) { await Json(ctx, 400, Err("Invalid Input Provided", 2001, "Incident type is required")); return; }
            lock (_gate)
            {
                if (i["status"] != null)
                {
                    var s = i["status"]!.ToString();
                    if (inc.Status == "resolved") { _ = Json(ctx, 400, Err("Incident Already Resolved", 1001)); return; }
                    if (s == "acknowledged" && inc.Status == "acknowledged") { _ = Json(ctx, 400, Err("Incident Already Acknowledged", 1002)); return; }
                    inc.Status = s;
                    inc.Log(s == "resolved" ? "resolve_log_entry" : "acknowledge_log_entry", from(ctx), s == "resolved" ? "Resolved" : "Acknowledged");
                }
                if (i["escalation_policy"] != null)
                {
                    var pid = i["escalation_policy"]!["id"]?.ToString();
                    var pol = Policies.FirstOrDefault(p => p.Id == pid);
                    if (pol == null) { _ = Json(ctx, 400, Err("Escalation Policy Not Found", 1014)); return; }
                    if (pol.Levels.All(l => l.Count == 0)) { _ = Json(ctx, 400, Err("Escalation Policy Has No User On Call", 1015)); return; }
                    inc.PolicyId = pid; inc.Level = 1; inc.Assignees = pol.Levels[0].ToList();
                }
                if (i["escalation_level"] != null)
                {
                    var lvl = i["escalation_level"]!.GetValue<int>();
                    var pol = Policies.First(p => p.Id == inc.PolicyId);
                    if (inc.Status == "resolved") { _ = Json(ctx, 400, Err("Incident Already Resolved", 1001)); return; }
                    if (lvl > pol.Levels.Count) { _ = Json(ctx, 400, Err("Cannot Escalate", 1006, $"Escalation level {lvl} does not exist")); return; }
                    inc.Level = Math.Max(1, lvl); inc.Assignees = pol.Levels[inc.Level - 1].ToList();
                    inc.Log("escalate_log_entry", from(ctx), $"Escalated to level {inc.Level}");
                }
                if (i["assignments"] is JsonArray asg)
                {
                    var ids = asg.Select(a => a!["assignee"]?["id"]?.ToString()).ToList();
                    if (ids.Any(id => !Users.Any(u => u.Id == id))) { _ = Json(ctx, 400, Err("Assigned To User Not Found", 1007)); return; }
                    inc.Assignees = ids!;
                    inc.Log("assign_log_entry", from(ctx), "Assigned to " + string.Join(", ", ids.Select(id => Users.First(u => u.Id == id).Name)));
                }
            }
            await Json(ctx, 200, new JsonObject { ["incident"] = IncidentJson(inc) });
        }

        private JsonObject IncidentJson(PdIncident i)
        {
            lock (_gate)
                return new JsonObject
                {
                    ["id"] = i.Id, ["type"] = "incident", ["summary"] = $"[#{i.Number}] {i.Title}", ["self"] = $"{BaseUri}incidents/{i.Id}",
                    ["html_url"] = $"https://lab.pagerduty.invalid/incidents/{i.Id}", ["incident_number"] = i.Number, ["title"] = i.Title,
                    ["created_at"] = i.CreatedAt.ToString("yyyy-MM-ddTHH:mm:ssZ"), ["updated_at"] = DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ"),
                    ["status"] = i.Status, ["incident_key"] = i.IncidentKey, ["urgency"] = "high", ["priority"] = null, ["teams"] = new JsonArray(),
                    ["service"] = new JsonObject { ["id"] = i.ServiceId, ["type"] = "service_reference", ["summary"] = i.ServiceName },
                    ["escalation_policy"] = new JsonObject { ["id"] = i.PolicyId, ["type"] = "escalation_policy_reference", ["summary"] = Policies.First(p => p.Id == i.PolicyId).Name },
                    ["assignments"] = new JsonArray(i.Assignees.Select(a => (JsonNode)new JsonObject { ["at"] = i.CreatedAt.ToString("yyyy-MM-ddTHH:mm:ssZ"), ["assignee"] = UserRef(a, "user_reference") }).ToArray()),
                    ["escalation_level"] = i.Level,
                    ["body"] = i.AlertBody == null ? null : new JsonObject { ["details"] = i.AlertBody },
                };
        }

        private JsonObject UserRef(string id, string type)
        {
            var u = Users.FirstOrDefault(x => x.Id == id);
            var o = new JsonObject { ["id"] = id, ["type"] = type, ["summary"] = u?.Name };
            if (type == "user") o["email"] = u?.Email;
            return o;
        }

        private JsonObject NoteJson(PdNote n) => new JsonObject
        {
            ["id"] = n.Id, ["user"] = UserRef(n.UserId, "user_reference"), ["channel"] = new JsonObject { ["summary"] = "The PagerDuty website or APIs" },
            ["content"] = n.Content, ["created_at"] = n.CreatedAt.ToString("yyyy-MM-ddTHH:mm:ssZ"),
        };

        private static JsonObject Err(string message, int code, params string[] errors)
            => new JsonObject { ["error"] = new JsonObject { ["message"] = message, ["code"] = code, ["errors"] = new JsonArray(errors.Select(e => (JsonNode)JsonValue.Create(e)).ToArray()) } };

        private static Task Json(HttpContext ctx, int status, JsonNode body) => LabHost.Json(ctx, status, body);

        public ValueTask DisposeAsync() => LabHost.StopAsync(_app);
    }
}
