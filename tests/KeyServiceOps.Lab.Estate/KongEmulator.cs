using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace KeyServiceOps.Lab.Estate
{
    /// <summary>2.2-2.8 or 3.x behaviour, per ../shared/contracts/kong-admin-api.md "Eras".</summary>
    public enum KongEra { V3, V2 }

    public sealed class KongTarget
    {
        public string Id { get; set; } = Guid.NewGuid().ToString();
        public string Target { get; set; }
        public int Weight { get; set; } = 100;
        public List<string> Tags { get; set; }
        public double CreatedAt { get; set; }
        public double UpdatedAt { get; set; }
    }

    public sealed class KongUpstream
    {
        public string Id { get; set; } = Guid.NewGuid().ToString();
        public string Name { get; set; }
        public double Threshold { get; set; }
        public bool HealthchecksOn { get; set; } = true;
        public List<string> Tags { get; set; }
        public List<KongTarget> Targets { get; } = new List<KongTarget>();
        public double CreatedAt { get; set; } = Math.Floor(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0);
    }

    /// <summary>
    /// An emulator of the Kong Admin API subset in the contract — written from the contract, not from our
    /// client: pagination with offset/next, eras, RBAC, workspace prefix, error bodies, canned failures.
    /// </summary>
    public sealed class KongEmulator : IAsyncDisposable
    {
        private readonly object _gate = new object();
        private readonly Dictionary<string, KongUpstream> _upstreams = new Dictionary<string, KongUpstream>(StringComparer.Ordinal);
        private readonly ConcurrentQueue<(int status, string body, string contentType)> _canned = new ConcurrentQueue<(int, string, string)>();
        private readonly ConcurrentQueue<string> _requests = new ConcurrentQueue<string>();
        private WebApplication _app;
        private double _clock = Math.Floor(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0);

        public KongEra Era { get; set; } = KongEra.V3;
        /// <summary>configuration.database at `GET /`: "postgres", or "off" for DB-less (writes 405, health marks 500).</summary>
        public string Database { get; set; } = "postgres";
        /// <summary>configuration.role: traditional, control_plane (health marks not served) or data_plane.</summary>
        public string Role { get; set; } = "traditional";
        public string Version => Era == KongEra.V3 ? "3.9.1" : "2.8.4";
        /// <summary>Health marks set through …/healthy|unhealthy (per target string): Kong's in-memory state, no database row.</summary>
        public ConcurrentDictionary<string, string> Marks { get; } = new ConcurrentDictionary<string, string>();
        public string RbacToken { get; set; }
        public string RbacHeader { get; set; } = "Kong-Admin-Token";
        public string Workspace { get; set; }
        public Uri BaseUri { get; private set; }
        /// <summary>Kong's view of a target's health when health checks are on (the lab wires it to the instances).</summary>
        public Func<string, string> HealthOf { get; set; } = _ => "HEALTHY";
        /// <summary>Lab switch: false = only passive health checks (Kong never probes, so nothing but a "healthy" mark clears an "unhealthy" one).</summary>
        public bool ActiveHealthchecks { get; set; } = true;
        /// <summary>Fails write requests (POST/PATCH/DELETE) with 500 while &gt; 0 (chaos).</summary>
        public int FailWrites;
        /// <summary>The next N DELETEs of a target take effect, then the answer never comes (a proxy or Kong stalling after the commit).</summary>
        public int DeleteLandsThenHangs;
        public int FailAll;
        /// <summary>The next N requests are accepted and never answered (a Kong that hangs).</summary>
        public int StallNext;
        /// <summary>The next N writes (POST/PUT/PATCH/DELETE) take effect in Kong, then a gateway in front answers 504 with its HTML page.</summary>
        public int WritesLandThenGateway504;
        /// <summary>With <see cref="WritesLandThenGateway504"/>: the next N requests after that 504 answer 503 too (the gateway stays down: the read-back cannot tell).</summary>
        public int FailAfterGateway504;

        public IReadOnlyList<string> Requests => _requests.ToArray();
        public int RequestCount => _requests.Count;
        public void ClearRequests() { while (_requests.TryDequeue(out _)) { } }

        public static async Task<KongEmulator> StartAsync(KongEra era = KongEra.V3)
        {
            var k = new KongEmulator { Era = era };
            (k._app, k.BaseUri) = await LabHost.StartAsync(k.HandleAsync);
            return k;
        }

        // ---------- state helpers for tests ----------

        public KongUpstream AddUpstream(string name, double threshold = 0, bool healthchecks = true)
        {
            lock (_gate) { var u = new KongUpstream { Name = name, Threshold = threshold, HealthchecksOn = healthchecks }; _upstreams[name] = u; return u; }
        }

        public KongTarget AddTarget(string upstream, string target, int weight = 100, params string[] tags)
        {
            lock (_gate)
            {
                var t = new KongTarget { Target = target, Weight = weight, Tags = tags.Length == 0 ? null : tags.ToList(), CreatedAt = Tick() };
                t.UpdatedAt = t.CreatedAt;
                _upstreams[upstream].Targets.Add(t);
                return t;
            }
        }

        public KongUpstream UpstreamFor(string name) { lock (_gate) return _upstreams[name]; }

        public void SetWeight(string upstream, string target, int weight)
        {
            lock (_gate) _upstreams[upstream].Targets.First(t => t.Target == target).Weight = weight;
        }

        public List<KongTarget> Targets(string upstream)
        {
            lock (_gate) return _upstreams[upstream].Targets.Select(t => new KongTarget { Id = t.Id, Target = t.Target, Weight = t.Weight, Tags = t.Tags?.ToList(), CreatedAt = t.CreatedAt }).ToList();
        }

        /// <summary>The next <paramref name="count"/> writes (not GETs) get this canned answer before Kong sees them (a gateway refusing).</summary>
        public void FailNextWrites(int count, int status, string body, string contentType = "text/html")
        {
            for (int i = 0; i < count; i++) _cannedWrites.Enqueue((status, body, contentType));
        }

        private readonly ConcurrentQueue<(int status, string body, string contentType)> _cannedWrites = new ConcurrentQueue<(int status, string body, string contentType)>();

        public void ClearCanned() { while (_canned.TryDequeue(out _)) { } while (_cannedWrites.TryDequeue(out _)) { } }

        /// <summary>The next <paramref name="count"/> requests get this canned answer (e.g. an HTML 502 from a proxy).</summary>
        public void FailNext(int count, int status, string body, string contentType = "text/html")
        {
            for (int i = 0; i < count; i++) _canned.Enqueue((status, body, contentType));
        }

        // Kong's created_at: the wall clock in seconds with milliseconds (3.x), kept strictly increasing so two targets made
        // in one millisecond still list in creation order.
        private double Tick() { lock (_gate) { _clock = Math.Max(_clock + 0.001, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0); return Math.Round(_clock, 3); } }

        // ---------- HTTP ----------

        private async Task HandleAsync(HttpContext ctx)
        {
            if (ctx.Request.Method != "GET" && WritesLandThenGateway504 > 0 && Interlocked.Decrement(ref WritesLandThenGateway504) >= 0)
            {
                // Kong applies the write; the gateway's upstream timeout fires before the answer reaches the client.
                var real = ctx.Response.Body;
                ctx.Response.Body = new System.IO.MemoryStream();
                await HandleKongAsync(ctx);
                ctx.Response.Body = real;
                ctx.Response.StatusCode = 504;
                ctx.Response.ContentType = "text/html";
                ctx.Response.Headers.ContentLength = null;
                await ctx.Response.WriteAsync("<html><head><title>504 Gateway Time-out</title></head><body><center><h1>504 Gateway Time-out</h1></center><hr><center>nginx</center></body></html>");
                for (int i = 0; i < FailAfterGateway504; i++) _canned.Enqueue((503, "<html><body><h1>503 Service Unavailable</h1></body></html>", "text/html"));
                FailAfterGateway504 = 0;
                return;
            }
            await HandleKongAsync(ctx);
        }

        private async Task HandleKongAsync(HttpContext ctx)
        {
            var path = ctx.Request.Path.Value ?? "/";
            _requests.Enqueue(ctx.Request.Method + " " + path + ctx.Request.QueryString);
            if ((ctx.Request.Method != "GET" && _cannedWrites.TryDequeue(out var canned)) || _canned.TryDequeue(out canned))
            {
                ctx.Response.StatusCode = canned.status;
                ctx.Response.ContentType = canned.contentType;
                await ctx.Response.WriteAsync(canned.body);
                return;
            }
            if (StallNext > 0 && Interlocked.Decrement(ref StallNext) >= 0)
            {
                try { await Task.Delay(Timeout.Infinite, ctx.RequestAborted); } catch (OperationCanceledException) { }
                return;
            }
            if (FailAll > 0 && Interlocked.Decrement(ref FailAll) >= 0) { await Json(ctx, 500, new JsonObject { ["message"] = "An unexpected error occurred" }); return; }
            if (RbacToken != null && ctx.Request.Headers[RbacHeader].ToString() != RbacToken)
            {
                await Json(ctx, 401, new JsonObject { ["message"] = "Invalid RBAC credentials" });
                return;
            }
            var segs = path.Split('/', StringSplitOptions.RemoveEmptyEntries).Select(Uri.UnescapeDataString).ToList();
            if (segs.Count == 0 && ctx.Request.Method == "GET")
            {
                await Json(ctx, 200, new JsonObject
                {
                    ["version"] = Version, ["tagline"] = "Welcome to kong", ["node_id"] = "a3b1c2d4-0000-4000-8000-000000000001",
                    ["configuration"] = new JsonObject { ["database"] = Database, ["role"] = Role },
                });
                return;
            }
            if (Workspace != null)
            {
                if (segs.Count == 0 || segs[0] != Workspace) { await NotFound(ctx); return; }
                segs.RemoveAt(0);
            }
            if (segs.Count == 0 || segs[0] != "upstreams") { await NotFound(ctx); return; }
            var m = ctx.Request.Method;
            if (m != "GET" && FailWrites > 0 && Interlocked.Decrement(ref FailWrites) >= 0)
            {
                await Json(ctx, 500, new JsonObject { ["message"] = "An unexpected error occurred" });
                return;
            }
            if (segs.Count == 1 && m == "GET") { await ListUpstreams(ctx); return; }
            KongUpstream u;
            lock (_gate) u = _upstreams.Values.FirstOrDefault(x => x.Name == segs[1] || x.Id == segs[1]);
            if (u == null) { await NotFound(ctx); return; }
            if (segs.Count == 2 && m == "GET") { await Json(ctx, 200, UpstreamJson(u)); return; }
            var isMark = segs.Count == 5 && segs[2] == "targets" && (segs[4] == "healthy" || segs[4] == "unhealthy");
            if (Database == "off" && m != "GET" && !isMark)
            {
                await Json(ctx, 405, new JsonObject { ["code"] = 12, ["name"] = "operation unsupported", ["message"] = "cannot create 'targets' entities when not using a database" });
                return;
            }
            if (segs.Count == 3 && segs[2] == "targets")
            {
                if (m == "GET") { await ListTargets(ctx, u, "targets", path, false); return; }
                if (m == "POST") { await PostTarget(ctx, u); return; }
            }
            if (segs.Count == 3 && segs[2] == "health" && m == "GET") { await ListTargets(ctx, u, "health", path, true); return; }
            if (segs.Count >= 4 && segs[2] == "targets")
            {
                KongTarget t;
                lock (_gate) t = Find(u, segs[3]);
                if (segs.Count == 5 && (segs[4] == "healthy" || segs[4] == "unhealthy"))
                {
                    // The era's verb (contract: 2.x POST, 3.x PUT; the wrong one is 405).
                    var okMethod = Era == KongEra.V3 ? m == "PUT" : m == "POST";
                    if (!okMethod) { await Json(ctx, 405, new JsonObject { ["message"] = "Method not allowed" }); return; }
                    if (Role == "control_plane") { await NotFound(ctx); return; }       // not served on a hybrid-mode control plane
                    if (Database == "off") { await Json(ctx, 500, new JsonObject { ["message"] = "An unexpected error occurred" }); return; } // Kong/kong#15001
                    if (t == null || (Era == KongEra.V2 && t.Weight == 0)) { await NotFound(ctx); return; }
                    if (!u.HealthchecksOn) { await Json(ctx, 400, new JsonObject { ["message"] = $"no healthchecker found for {u.Name}" }); return; }
                    if (segs[4] == "unhealthy") Marks[t.Target] = "UNHEALTHY"; else Marks.TryRemove(t.Target, out _);
                    ctx.Response.StatusCode = 204;
                    return;
                }
                if (segs.Count != 4) { await NotFound(ctx); return; }
                // 2.x: select_target_cb returns a target only when weight ~= 0, so GET/PATCH/DELETE of a drained one are 404.
                if (t == null || (Era == KongEra.V2 && t.Weight == 0)) { await NotFound(ctx); return; }
                switch (m)
                {
                    case "GET": await Json(ctx, 200, TargetJson(u, t)); return;
                    case "DELETE":
                        lock (_gate) u.Targets.Remove(t);
                        if (DeleteLandsThenHangs > 0 && Interlocked.Decrement(ref DeleteLandsThenHangs) >= 0)
                        {
                            try { await Task.Delay(Timeout.Infinite, ctx.RequestAborted); } catch (OperationCanceledException) { }
                            return;
                        }
                        ctx.Response.StatusCode = 204;
                        return;
                    case "PATCH":
                    case "PUT":
                        var body = await ReadBody(ctx);
                        if (body == null) { await Json(ctx, 400, new JsonObject { ["message"] = "Cannot parse JSON body" }); return; }
                        if (body.TryGetPropertyValue("weight", out var w) && w != null)
                        {
                            if (!TryWeight(w, out var wv)) { await SchemaError(ctx, "weight", "value should be between 0 and 65535"); return; }
                            lock (_gate) t.Weight = wv;
                        }
                        if (body.TryGetPropertyValue("tags", out var tg)) lock (_gate) t.Tags = tg is JsonArray ta ? ta.Select(x => x!.GetValue<string>()).ToList() : null;
                        lock (_gate) t.UpdatedAt = Tick();
                        await Json(ctx, 200, TargetJson(u, t));
                        return;
                }
            }
            await Json(ctx, 405, new JsonObject { ["message"] = "Method not allowed" });
        }

        private static KongTarget Find(KongUpstream u, string idOrTarget)
            => u.Targets.FirstOrDefault(t => t.Id == idOrTarget) ?? u.Targets.FirstOrDefault(t => t.Target == idOrTarget);

        private async Task ListUpstreams(HttpContext ctx)
        {
            JsonArray data;
            lock (_gate) data = new JsonArray(_upstreams.Values.Select(u => (JsonNode)UpstreamJson(u)).ToArray());
            await Json(ctx, 200, new JsonObject { ["data"] = data, ["next"] = null });
        }

        private async Task ListTargets(HttpContext ctx, KongUpstream u, string what, string path, bool health)
        {
            int size = 100;
            var sizeText = ctx.Request.Query["size"].ToString();
            if (sizeText.Length > 0 && !int.TryParse(sizeText, NumberStyles.None, CultureInfo.InvariantCulture, out size))
            {
                await Json(ctx, 400, new JsonObject { ["code"] = 9, ["name"] = "invalid size", ["message"] = "size must be a number" });
                return;
            }
            size = Math.Max(1, Math.Min(1000, size));
            int offset = 0;
            var offText = ctx.Request.Query["offset"].ToString();
            if (offText.Length > 0 && !int.TryParse(offText, out offset)) { await Json(ctx, 400, new JsonObject { ["message"] = "invalid offset" }); return; }
            List<KongTarget> all;
            lock (_gate)
                all = u.Targets.OrderByDescending(t => t.CreatedAt).ToList(); // weight-0 targets listed: 3.x, and 2.x from 2.4.1
            var page = all.Skip(offset).Take(size).ToList();
            var data = new JsonArray();
            foreach (var t in page)
            {
                var j = TargetJson(u, t);
                if (health)
                {
                    var h = !u.HealthchecksOn ? "HEALTHCHECKS_OFF" : ActiveHealthchecks ? HealthOf(t.Target) : "UNHEALTHY_UNLESS_MARKED";
                    if (h == "UNHEALTHY_UNLESS_MARKED") h = Marks.TryGetValue(t.Target, out var passiveMark) ? passiveMark : "HEALTHY";
                    // A mark holds until marked healthy, or until Kong's active checks see the target pass.
                    if (u.HealthchecksOn && Marks.TryGetValue(t.Target, out var mark))
                    {
                        if (h == "HEALTHY") Marks.TryRemove(t.Target, out _); else h = mark;
                    }
                    j["health"] = h;
                    var hp = t.Target.Split(':');
                    j["data"] = new JsonObject
                    {
                        ["host"] = hp[0], ["port"] = int.Parse(hp[^1]), ["dns"] = "A", ["nodeWeight"] = t.Weight,
                        ["weight"] = new JsonObject { ["total"] = t.Weight, ["available"] = h == "HEALTHY" ? t.Weight : 0, ["unavailable"] = h == "HEALTHY" ? 0 : t.Weight },
                        ["addresses"] = new JsonArray(new JsonObject { ["ip"] = hp[0], ["port"] = int.Parse(hp[^1]), ["weight"] = t.Weight, ["health"] = h }),
                    };
                }
                data.Add(j);
            }
            var result = new JsonObject { ["data"] = data };
            // As the contract says: `next` is the path as written (without any workspace prefix), `offset` absent on the last page.
            var asWritten = Workspace != null ? path.Substring(Workspace.Length + 1) : path;
            if (offset + size < all.Count)
            {
                result["offset"] = (offset + size).ToString(CultureInfo.InvariantCulture);
                result["next"] = $"{asWritten}?offset={offset + size}";
            }
            else result["next"] = null;
            if (health) result["node_id"] = "a3b1c2d4-0000-4000-8000-000000000001";
            await Json(ctx, 200, result);
        }

        private async Task PostTarget(HttpContext ctx, KongUpstream u)
        {
            var body = await ReadBody(ctx);
            if (body == null) { await Json(ctx, 400, new JsonObject { ["message"] = "Cannot parse JSON body" }); return; }
            if (!body.TryGetPropertyValue("target", out var tn) || tn == null)
            {
                await Json(ctx, 400, new JsonObject { ["code"] = 2, ["name"] = "schema violation", ["message"] = "schema violation (target: required field missing)", ["fields"] = new JsonObject { ["target"] = "required field missing" } });
                return;
            }
            var normalized = NormalizeTarget(tn.ToString());
            if (normalized == null) { await SchemaError(ctx, "target", "Invalid target; not a valid hostname or ip address"); return; }
            int weight = 100;
            if (body.TryGetPropertyValue("weight", out var w) && w != null && !TryWeight(w, out weight)) { await SchemaError(ctx, "weight", "value should be between 0 and 65535"); return; }
            List<string> tags = body.TryGetPropertyValue("tags", out var tg) && tg is JsonArray ta ? ta.Select(x => x!.ToString()).ToList() : null;
            KongTarget existing, created = null;
            lock (_gate)
            {
                existing = u.Targets.FirstOrDefault(t => t.Target == normalized);
                if (existing == null)
                {
                    created = new KongTarget { Target = normalized, Weight = weight, Tags = tags, CreatedAt = Tick() };
                    created.UpdatedAt = created.CreatedAt;
                    u.Targets.Add(created);
                }
                else if (Era == KongEra.V2)
                {
                    existing.Weight = weight; existing.Tags = tags ?? existing.Tags;
                }
            }
            if (created != null) { await Json(ctx, 201, TargetJson(u, created)); return; }
            if (Era == KongEra.V2)
            {
                ctx.Response.Headers["Deprecation"] = "true";
                await Json(ctx, 200, TargetJson(u, existing));
                return;
            }
            await Json(ctx, 409, new JsonObject
            {
                ["code"] = 5, ["name"] = "unique constraint violation",
                ["message"] = $"UNIQUE violation detected on '{{target=\"{normalized}\",upstream={{id=\"{u.Id}\"}}}}'",
                ["fields"] = new JsonObject { ["target"] = normalized, ["upstream"] = new JsonObject { ["id"] = u.Id } },
            });
        }

        /// <summary>IPv4 without leading zeros, IPv6 expanded lower-case in brackets, hostnames as written; no port → :8000.</summary>
        internal static string NormalizeTarget(string raw)
        {
            string host = raw, port = "8000";
            if (raw.StartsWith("["))
            {
                var close = raw.IndexOf(']');
                if (close < 0) return null;
                host = raw.Substring(1, close - 1);
                if (raw.Length > close + 1) { if (raw[close + 1] != ':') return null; port = raw.Substring(close + 2); }
            }
            else if (raw.Count(c => c == ':') == 1) { host = raw.Split(':')[0]; port = raw.Split(':')[1]; }
            else if (raw.Contains(':')) { /* bare IPv6 */ }
            if (!int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out var p) || p < 1 || p > 65535) return null;
            if (IPAddress.TryParse(host, out var ip) && (host.Contains(':') || host.Count(c => c == '.') == 3))
            {
                if (ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6)
                {
                    var b = ip.GetAddressBytes();
                    return "[" + string.Join(":", Enumerable.Range(0, 8).Select(k => ((b[2 * k] << 8) | b[2 * k + 1]).ToString("x4"))) + "]:" + p;
                }
                return ip + ":" + p;
            }
            if (!System.Text.RegularExpressions.Regex.IsMatch(host, @"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$") || host.All(c => char.IsDigit(c) || c == '.'))
                return null;
            return host + ":" + p;
        }

        private static bool TryWeight(JsonNode w, out int weight)
        {
            weight = 0;
            try
            {
                var d = w.GetValueKind() == JsonValueKind.String ? double.Parse(w.GetValue<string>(), CultureInfo.InvariantCulture) : w.GetValue<double>();
                if (d < 0 || d > 65535 || d != Math.Floor(d)) return false;
                weight = (int)d;
                return true;
            }
            catch (Exception) { return false; }
        }

        private static async Task<JsonObject> ReadBody(HttpContext ctx)
        {
            var ct = ctx.Request.ContentType ?? "";
            if (ct.StartsWith("application/x-www-form-urlencoded") || ct.StartsWith("multipart/form-data"))
            {
                var form = await ctx.Request.ReadFormAsync();
                var o = new JsonObject();
                foreach (var kv in form)
                {
                    if (kv.Key == "tags" || kv.Key == "tags[]") o["tags"] = new JsonArray(kv.Value.Select(v => (JsonNode)JsonValue.Create(v)).ToArray());
                    else o[kv.Key] = kv.Value.ToString();
                }
                return o;
            }
            var text = await new StreamReader(ctx.Request.Body).ReadToEndAsync();
            if (string.IsNullOrWhiteSpace(text)) return new JsonObject();
            try { return JsonNode.Parse(text) as JsonObject; } catch (JsonException) { return null; }
        }

        private JsonObject UpstreamJson(KongUpstream u) => new JsonObject
        {
            ["id"] = u.Id, ["name"] = u.Name, ["algorithm"] = "round-robin", ["slots"] = 10000, ["created_at"] = (long)u.CreatedAt,
            ["tags"] = u.Tags == null ? null : new JsonArray(u.Tags.Select(x => (JsonNode)JsonValue.Create(x)).ToArray()),
            ["healthchecks"] = new JsonObject
            {
                ["threshold"] = u.Threshold,
                ["active"] = new JsonObject
                {
                    ["type"] = "http", ["http_path"] = "/api/auth/healthz",
                    ["healthy"] = new JsonObject { ["interval"] = u.HealthchecksOn ? 5 : 0, ["successes"] = 2 },
                    ["unhealthy"] = new JsonObject { ["interval"] = u.HealthchecksOn ? 5 : 0, ["http_failures"] = 3, ["timeouts"] = 3 },
                },
            },
        };

        private JsonObject TargetJson(KongUpstream u, KongTarget t)
        {
            var j = new JsonObject
            {
                ["id"] = t.Id, ["created_at"] = t.CreatedAt, ["upstream"] = new JsonObject { ["id"] = u.Id },
                ["target"] = t.Target, ["weight"] = t.Weight,
                ["tags"] = t.Tags == null ? null : new JsonArray(t.Tags.Select(x => (JsonNode)JsonValue.Create(x)).ToArray()),
            };
            if (Era == KongEra.V3) j["updated_at"] = t.UpdatedAt;
            return j;
        }

        private static Task NotFound(HttpContext ctx) => Json(ctx, 404, new JsonObject { ["message"] = "Not found" });

        private static Task SchemaError(HttpContext ctx, string field, string message)
            => Json(ctx, 400, new JsonObject { ["code"] = 2, ["name"] = "schema violation", ["message"] = $"schema violation ({field}: {message})", ["fields"] = new JsonObject { [field] = message } });

        private static Task Json(HttpContext ctx, int status, JsonNode body) => LabHost.Json(ctx, status, body);

        public ValueTask DisposeAsync() => LabHost.StopAsync(_app);
    }
}
