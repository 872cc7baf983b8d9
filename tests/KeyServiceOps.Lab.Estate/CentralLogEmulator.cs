using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using System.Threading.Tasks;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace KeyServiceOps.Lab.Estate
{
    internal static class JsonObjectExt
    {
        public static JsonObject Also(this JsonObject o, Action<JsonObject> f) { f(o); return o; }
    }

    /// <summary>Which cluster the emulator answers as (shared/contracts/central-log-search.md).</summary>
    public enum CentralLogFlavor { Elasticsearch, OpenSearch }

    /// <summary>How a generated document is written, as the pipelines of the contract write them.</summary>
    public enum CentralLogDocStyle
    {
        /// <summary>Flat keys: host, level; @timestamp an ISO string with milliseconds.</summary>
        Flat,
        /// <summary>ECS: {"host":{"name":…}}, {"log":{"level":…}} as real objects.</summary>
        Ecs,
        /// <summary>@timestamp a number of epoch milliseconds.</summary>
        EpochMillis,
        /// <summary>@timestamp epoch milliseconds as a numeric string.</summary>
        EpochMillisText,
        /// <summary>@timestamp an ISO string with nanoseconds.</summary>
        Nanoseconds,
    }

    /// <summary>
    /// The central log service's `_search` subset as Elasticsearch 7/8 and OpenSearch 1/2 answer it
    /// (shared/contracts/central-log-search.md): GET / (version and distribution), query_string of field:value terms
    /// with AND, OR and parentheses (values bare or quoted, Lucene escapes honoured, dotted names reach nested
    /// objects, a term never matches an object), a range on the timestamp, sort on the timestamp with a tie-breaker
    /// (_id refused by Elasticsearch 8; _shard_doc; any unique field), search_after, points in time in each flavour's
    /// API (from Elasticsearch 7.10 / OpenSearch 2.4; Elasticsearch adds an implicit _shard_doc tie-breaker,
    /// OpenSearch does not here), the 10,000 result window, the error bodies (OpenSearch's empty 401), 429.
    /// Documents come from the lab instances' container logs, so both log paths see the same lines, plus generated ones.
    /// </summary>
    public sealed class CentralLogEmulator : IAsyncDisposable
    {
        public const string IndexPattern = "logstash-*";
        private readonly Func<IEnumerable<SimInstance>> _instances;
        private WebApplication _app;
        private readonly ConcurrentQueue<JsonObject> _requests = new ConcurrentQueue<JsonObject>();
        private readonly ConcurrentQueue<string> _calls = new ConcurrentQueue<string>();
        private readonly ConcurrentDictionary<string, List<Doc>> _pits = new ConcurrentDictionary<string, List<Doc>>();
        private readonly ConcurrentDictionary<string, bool> _noShardPits = new ConcurrentDictionary<string, bool>();
        private long _docSeq;

        private CentralLogEmulator(Func<IEnumerable<SimInstance>> instances) { _instances = instances; }

        public Uri BaseUri { get; private set; }
        /// <summary>The accepted API key (the Authorization value is "ApiKey " + base64 of this).</summary>
        public string ApiKey { get; set; } = "lab-key-id:lab-key-secret";
        /// <summary>A key that authenticates but may not search (403).</summary>
        public string ForbiddenApiKey { get; set; } = "lab-ro-id:lab-ro-secret";
        public string BasicUser { get; set; } = "ops";
        public string BasicPassword { get; set; } = "lab-basic-password";
        public int MaxResultWindow { get; set; } = 10_000;
        /// <summary>Elasticsearch (default, 8.x) or OpenSearch.</summary>
        public CentralLogFlavor Flavor { get; set; } = CentralLogFlavor.Elasticsearch;
        /// <summary>The version GET / reports and the behaviour follows (points in time, the _id refusal).</summary>
        public string Version { get; set; } = "8.11.3";
        /// <summary>GET / answers 403 (a key with index privileges only: no cluster monitor privilege).</summary>
        public bool RootForbidden;
        /// <summary>Opening a point in time answers 403 (a role without that privilege).</summary>
        public bool PitForbidden;
        /// <summary>Answer the next N searches with 429.</summary>
        public int RateLimitNext;
        /// <summary>Pretend one of three shards failed (partial results).</summary>
        public bool PartialShards;
        /// <summary>Every search body received, in order.</summary>
        public IReadOnlyList<JsonObject> Requests => _requests.ToArray();
        /// <summary>"METHOD path" of every request, in order.</summary>
        public IReadOnlyList<string> Calls => _calls.ToArray();
        /// <summary>Points in time opened and not closed.</summary>
        public int OpenPits => _pits.Count;
        public int PitsOpened;
        /// <summary>Extra documents beyond the instances' logs (for deep paging, ECS and epoch documents).</summary>
        private readonly List<Doc> _extra = new List<Doc>();

        private (int status, string contentType, string body, int times)? _canned;
        /// <summary>The next <paramref name="times"/> requests (any path) get this answer, whatever they ask.</summary>
        public void Answer(int status, string contentType, string body, int times = 1) => _canned = (status, contentType, body, times);

        public bool HasPointInTime
        {
            get
            {
                var v = System.Version.Parse(Version.Split('-')[0]);
                return Flavor == CentralLogFlavor.Elasticsearch ? v >= new System.Version(7, 10) : v >= new System.Version(2, 4);
            }
        }

        private System.Version V => System.Version.Parse(Version.Split('-')[0]);
        /// <summary>Elasticsearch 7.12+: _shard_doc exists, and a point in time adds it implicitly.</summary>
        public bool HasShardDoc => Flavor == CentralLogFlavor.Elasticsearch && V >= new System.Version(7, 12);
        /// <summary>Every open point in time is closed after this many more searches in it (a keep-alive that ran out under a slow consumer).</summary>
        public int ExpirePitsAfterSearches = -1;
        /// <summary>After this many more searches, every request answers 401 (a key revoked mid-search); -1: never.</summary>
        public int UnauthorizedAfterSearches = -1;

        public bool RefusesIdSort => Flavor == CentralLogFlavor.Elasticsearch && System.Version.Parse(Version.Split('-')[0]).Major >= 8;

        public static async Task<CentralLogEmulator> StartAsync(Func<IEnumerable<SimInstance>> instances)
        {
            var e = new CentralLogEmulator(instances);
            (e._app, e.BaseUri) = await LabHost.StartAsync(e.HandleAsync);
            return e;
        }

        private sealed class Doc
        {
            public string Id;
            public long Ms;
            public long Seq;
            public JsonObject Source;
        }

        /// <summary>
        /// Adds N generated request-log documents for a host ending now: <paramref name="perMillisecond"/> share each
        /// millisecond (a burst, so only a tie-breaker keeps paging exact), written in <paramref name="style"/>.
        /// The message ends "seq=i"; every document has a unique "log_id".
        /// </summary>
        public void AddGenerated(string host, int n, CentralLogDocStyle style = CentralLogDocStyle.Flat, int perMillisecond = 1, string tag = null)
        {
            var ms0 = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - (n / Math.Max(1, perMillisecond)) - 1;
            tag = tag ?? style.ToString().ToLowerInvariant();
            lock (_extra)
                for (int i = 0; i < n; i++)
                {
                    var ms = ms0 + i / Math.Max(1, perMillisecond);
                    var id = $"gen-{host}-{tag}-{i:D7}";
                    _extra.Add(new Doc { Id = id, Ms = ms, Seq = 1_000_000_000 + System.Threading.Interlocked.Increment(ref _docSeq), Source = Source(id, ms, host, "INFO", $"GET /api/v1/apikeys/k{i} 200 seq={i}", style, i) });
                }
        }

        private static string IsoMs(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

        private static JsonObject Source(string id, long ms, string host, string level, string message, CentralLogDocStyle style, int i = 0)
        {
            var o = new JsonObject();
            switch (style)
            {
                case CentralLogDocStyle.EpochMillis: o["@timestamp"] = ms; break;
                case CentralLogDocStyle.EpochMillisText: o["@timestamp"] = ms.ToString(CultureInfo.InvariantCulture); break;
                case CentralLogDocStyle.Nanoseconds: o["@timestamp"] = IsoMs(ms).TrimEnd('Z') + (i % 1000000).ToString("D6") + "Z"; break;
                default: o["@timestamp"] = IsoMs(ms); break;
            }
            o["instance_id"] = "KeyServiceApi";
            o["log_id"] = id;
            o["message"] = message;
            if (style == CentralLogDocStyle.Ecs)
            {
                o["host"] = new JsonObject { ["name"] = host, ["hostname"] = "vm-" + host.Replace('.', '-') };
                if (level != null) o["log"] = new JsonObject { ["level"] = level.ToLowerInvariant(), ["logger"] = "logrus" };
                o["ecs"] = new JsonObject { ["version"] = "8.11.0" };
            }
            else
            {
                o["host"] = host;
                if (level != null) o["level"] = level;
            }
            return o;
        }

        private static readonly Regex LevelRx = new Regex(@"level=(\w+)");

        private List<Doc> Documents()
        {
            var docs = new List<Doc>();
            foreach (var inst in _instances())
            {
                List<LogLine> lines;
                lock (inst.Log) lines = inst.Log.ToList();
                for (int i = 0; i < lines.Count; i++)
                {
                    var l = lines[i];
                    var m = LevelRx.Match(l.Text);
                    // The ingest pipeline takes the level from logrus' level=…, or FATAL for Go's own crash lines; otherwise none.
                    var level = m.Success ? m.Groups[1].Value.ToUpperInvariant() : l.Text.StartsWith("panic:") || l.Text.StartsWith("fatal error:") ? "FATAL" : null;
                    var id = $"{inst.Address}-{i:D7}";
                    var ms = l.Time.ToUnixTimeMilliseconds();
                    docs.Add(new Doc { Id = id, Ms = ms, Source = Source(id, ms, inst.Address, level, l.Text, CentralLogDocStyle.Flat) });
                }
            }
            for (int i = 0; i < docs.Count; i++) docs[i].Seq = i; // the shard-local doc number (_shard_doc): stable, the logs only grow
            lock (_extra) docs.AddRange(_extra);             // theirs is 1e9 + the order they were added in
            return docs;
        }

        private static JsonObject Error(string type, string reason, int status, JsonArray rootCause = null)
            => new JsonObject { ["error"] = new JsonObject { ["root_cause"] = rootCause ?? new JsonArray(new JsonObject { ["type"] = type, ["reason"] = reason }), ["type"] = type, ["reason"] = reason }, ["status"] = status };

        private static Task BadRequest(HttpContext ctx, string type, string reason) => LabHost.Json(ctx, 400, Error(type, reason, 400));

        private async Task HandleAsync(HttpContext ctx)
        {
            var path = ctx.Request.Path.Value ?? "";
            var method = ctx.Request.Method;
            _calls.Enqueue($"{method} {path}{ctx.Request.QueryString}");
            if (_canned is var (cs, cct, cbody, ctimes) && ctimes > 0)
            {
                _canned = ctimes > 1 ? (cs, cct, cbody, ctimes - 1) : null;
                ctx.Response.StatusCode = cs;
                if (cct != null) ctx.Response.ContentType = cct;
                await ctx.Response.WriteAsync(cbody ?? "");
                return;
            }
            var auth = ctx.Request.Headers.Authorization.ToString();
            string B64(string s) => Convert.ToBase64String(Encoding.UTF8.GetBytes(s));
            var ok = auth == "ApiKey " + B64(ApiKey) || auth == "Basic " + B64(BasicUser + ":" + BasicPassword);
            var forbidden = auth == "ApiKey " + B64(ForbiddenApiKey);
            if (!ok && !forbidden)
            {
                if (Flavor == CentralLogFlavor.OpenSearch)
                {
                    // OpenSearch security: 401 with an empty body; judge by the status.
                    ctx.Response.StatusCode = 401;
                    ctx.Response.Headers["WWW-Authenticate"] = "Basic realm=\"OpenSearch Security\"";
                    return;
                }
                ctx.Response.Headers["WWW-Authenticate"] = "ApiKey, Basic realm=\"security\" charset=\"UTF-8\"";
                var reason = auth.Length == 0 ? $"missing authentication credentials for REST request [{path}]" : "unable to authenticate with provided credentials and anonymous access is not allowed for this request";
                await LabHost.Json(ctx, 401, Error("security_exception", reason, 401));
                return;
            }
            var os = Flavor == CentralLogFlavor.OpenSearch;
            if (path == "/" && method == "GET")
            {
                if (RootForbidden || forbidden)
                {
                    await LabHost.Json(ctx, 403, Error("security_exception", "action [cluster:monitor/main] is unauthorized for API key id [lab-key-id] of user [ops]", 403));
                    return;
                }
                var version = new JsonObject { ["number"] = Version, ["build_type"] = "tar", ["lucene_version"] = "9.8.0" };
                if (os) version["distribution"] = "opensearch"; else version["build_flavor"] = "default";
                await LabHost.Json(ctx, 200, new JsonObject
                {
                    ["name"] = "lab-node-1", ["cluster_name"] = "lab-logs", ["cluster_uuid"] = "x1y2z3", ["version"] = version,
                    ["tagline"] = os ? "The OpenSearch Project: https://opensearch.org/" : "You Know, for Search",
                });
                return;
            }
            // Points in time: Elasticsearch 7.10+ POST /{index}/_pit, OpenSearch 2.4+ POST /{index}/_search/point_in_time.
            var esPit = Regex.Match(path, @"^/([^/]+)/_pit$");
            var osPit = Regex.Match(path, @"^/([^/]+)/_search/point_in_time$");
            if (method == "POST" && (esPit.Success || osPit.Success))
            {
                if (!HasPointInTime || (esPit.Success && os) || (osPit.Success && !os))
                {
                    await BadRequest(ctx, "illegal_argument_exception", $"no handler found for uri [{path}{ctx.Request.QueryString}] and method [POST]");
                    return;
                }
                if (PitForbidden || forbidden)
                {
                    await LabHost.Json(ctx, 403, Error("security_exception", "action [indices:data/read/open_point_in_time] is unauthorized for user [ops]", 403));
                    return;
                }
                if (string.IsNullOrEmpty(ctx.Request.Query["keep_alive"])) { await BadRequest(ctx, "action_request_validation_exception", "Validation Failed: 1: [keep_alive] is not specified;"); return; }
                var index = Uri.UnescapeDataString((esPit.Success ? esPit : osPit).Groups[1].Value);
                var matchesNothing = !index.StartsWith("logstash-") && index.Contains('*'); // a wildcard with no index: a point in time over no shards
                if (!index.StartsWith("logstash-") && !matchesNothing) { await LabHost.Json(ctx, 404, Error("index_not_found_exception", $"no such index [{index}]", 404)); return; }
                var id = Convert.ToBase64String(Guid.NewGuid().ToByteArray()).TrimEnd('=') + "==pit";
                _pits[id] = matchesNothing ? new List<Doc>() : Documents();
                if (matchesNothing) _noShardPits[id] = true;
                System.Threading.Interlocked.Increment(ref PitsOpened);
                await LabHost.Json(ctx, 200, os
                    ? new JsonObject { ["pit_id"] = id, ["_shards"] = new JsonObject { ["total"] = 1, ["successful"] = 1, ["skipped"] = 0, ["failed"] = 0 }, ["creation_time"] = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() }
                    : new JsonObject { ["id"] = id });
                return;
            }
            if (method == "DELETE" && (path == "/_pit" || path == "/_search/point_in_time"))
            {
                var b = await ReadBody(ctx);
                if (path == "/_pit" && !os)
                {
                    var id = b?["id"]?.ToString();
                    var freed = id != null && _pits.TryRemove(id, out _);
                    await LabHost.Json(ctx, freed ? 200 : 404, new JsonObject { ["succeeded"] = freed, ["num_freed"] = freed ? 1 : 0 });
                }
                else if (path == "/_search/point_in_time" && os && b?["pit_id"] is JsonArray ids)
                {
                    var arr = new JsonArray();
                    foreach (var i in ids) arr.Add(new JsonObject { ["pit_id"] = i?.ToString(), ["successful"] = i != null && _pits.TryRemove(i.ToString(), out _) });
                    await LabHost.Json(ctx, 200, new JsonObject { ["pits"] = arr });
                }
                else await BadRequest(ctx, "illegal_argument_exception", $"no handler found for uri [{path}] and method [DELETE]");
                return;
            }
            var m = Regex.Match(path, @"^(?:/([^/]+))?/_search$");
            if (!m.Success || method != "POST") { ctx.Response.StatusCode = 404; await ctx.Response.WriteAsync("<html><body>404 Not Found</body></html>"); return; }
            if (forbidden)
            {
                await LabHost.Json(ctx, 403, Error("security_exception", $"action [indices:data/read/search] is unauthorized for user [lab-ro] with roles [viewer] on indices [{m.Groups[1].Value}]", 403));
                return;
            }
            if (UnauthorizedAfterSearches == 0)
            {
                await LabHost.Json(ctx, 401, Error("security_exception", "unable to authenticate with provided credentials and anonymous access is not allowed for this request", 401));
                return;
            }
            if (UnauthorizedAfterSearches > 0) UnauthorizedAfterSearches--;
            if (RateLimitNext > 0)
            {
                RateLimitNext--;
                await LabHost.Json(ctx, 429, Error(os ? "rejected_execution_exception" : "es_rejected_execution_exception", "rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, coordinating_operation_bytes=4096, max_coordinating_and_primary_bytes=0]", 429));
                return;
            }
            var body = await ReadBody(ctx);
            if (body == null) { await BadRequest(ctx, "parse_exception", "request body is required"); return; }
            _requests.Enqueue(body);

            List<Doc> docs;
            string pitId = null;
            if (body["pit"] is JsonObject pit)
            {
                pitId = pit["id"]?.ToString();
                if (m.Groups[1].Success) { await BadRequest(ctx, "action_request_validation_exception", "Validation Failed: 1: [indices] cannot be used with point in time. Do not specify any index with point in time.;"); return; }
                if (ExpirePitsAfterSearches == 0) { _pits.Clear(); ExpirePitsAfterSearches = -1; }
                else if (ExpirePitsAfterSearches > 0) ExpirePitsAfterSearches--;
                if (pitId == null || !_pits.TryGetValue(pitId, out var snap))
                {
                    await LabHost.Json(ctx, 404, Error("search_context_missing_exception", $"No search context found for id [{pitId}]", 404));
                    return;
                }
                docs = snap.ToList();
            }
            else
            {
                var index = m.Groups[1].Success ? Uri.UnescapeDataString(m.Groups[1].Value) : "_all";
                if (index != IndexPattern && !index.StartsWith("logstash-") && index != "_all")
                {
                    if (index.Contains('*'))
                    {
                        // A wildcard that matches no index: 200, no shards searched, no hits (as the clusters answer).
                        await LabHost.Json(ctx, 200, new JsonObject
                        {
                            ["took"] = 0, ["timed_out"] = false, ["_shards"] = new JsonObject { ["total"] = 0, ["successful"] = 0, ["skipped"] = 0, ["failed"] = 0 },
                            ["hits"] = new JsonObject { ["total"] = new JsonObject { ["value"] = 0, ["relation"] = "eq" }, ["max_score"] = null, ["hits"] = new JsonArray() },
                        });
                        return;
                    }
                    await LabHost.Json(ctx, 404, Error("index_not_found_exception", $"no such index [{index}]", 404));
                    return;
                }
                docs = Documents();
            }

            var size = (int?)body["size"] ?? 10;
            var from = (int?)body["from"] ?? 0;
            if (from + size > MaxResultWindow)
            {
                await BadRequest(ctx, "illegal_argument_exception", $"Result window is too large, from + size must be less than or equal to: [{MaxResultWindow}] but was [{from + size}]. See the scroll api for a more efficient way to request large data sets.");
                return;
            }
            var filters = body["query"]?["bool"]?["filter"] as JsonArray ?? new JsonArray();
            foreach (var f in filters)
            {
                if (f?["query_string"]?["query"] is JsonNode q)
                {
                    var text = q.ToString();
                    QueryNode node;
                    try { node = Parse(text); }
                    catch (FormatException e)
                    {
                        var rc = new JsonArray { new JsonObject { ["type"] = "query_shard_exception", ["reason"] = $"Failed to parse query [{text}]: {e.Message}" } };
                        await LabHost.Json(ctx, 400, Error("search_phase_execution_exception", "all shards failed", 400, rc));
                        return;
                    }
                    docs = docs.Where(d => node.Matches(d.Source)).ToList();
                }
                else if (f?["range"] is JsonObject rangeOuter && rangeOuter.FirstOrDefault() is var kv && kv.Value is JsonObject range)
                {
                    var now = DateTimeOffset.UtcNow;
                    long? gte = range["gte"] != null ? ParseTime(range["gte"].ToString(), now) : null;
                    long? lte = range["lte"] != null ? ParseTime(range["lte"].ToString(), now) : null;
                    docs = docs.Where(d => (gte == null || d.Ms >= gte) && (lte == null || d.Ms <= lte)).ToList();
                }
            }

            // The sort: the timestamp first, then the tie-breakers named (and Elasticsearch's implicit _shard_doc under a point in time).
            var sortKeys = new List<(string field, bool desc)>();
            foreach (var s in body["sort"] as JsonArray ?? new JsonArray())
            {
                if (s is JsonValue sv) sortKeys.Add((sv.ToString(), false));
                else if (s is JsonObject so && so.FirstOrDefault() is var e)
                {
                    var order = e.Value is JsonObject eo ? eo["order"]?.ToString() : e.Value?.ToString();
                    sortKeys.Add((e.Key, order == "desc"));
                }
            }
            if (sortKeys.Count == 0) sortKeys.Add(("_score", false));
            if (sortKeys.Any(k => k.field == "_id") && RefusesIdSort)
            {
                var rc = new JsonArray { new JsonObject { ["type"] = "illegal_argument_exception", ["reason"] = "Fielddata access on the _id field is disallowed, you can re-enable it by updating the dynamic cluster setting: indices.id_field_data.enabled" } };
                await LabHost.Json(ctx, 400, Error("search_phase_execution_exception", "all shards failed", 400, rc));
                return;
            }
            if (sortKeys.Any(k => k.field == "_shard_doc") && !HasShardDoc)
            {
                var rc = new JsonArray { new JsonObject { ["type"] = "query_shard_exception", ["reason"] = "No mapping found for [_shard_doc] in order to sort on" } };
                await LabHost.Json(ctx, 400, Error("search_phase_execution_exception", "all shards failed", 400, rc));
                return;
            }
            if (sortKeys.Any(k => k.field == "_shard_doc") && pitId == null)
            {
                await BadRequest(ctx, "illegal_argument_exception", "[_shard_doc] sort field cannot be used without [point in time]");
                return;
            }
            if (pitId != null && HasShardDoc && !sortKeys.Any(k => k.field == "_shard_doc")) sortKeys.Add(("_shard_doc", false)); // 7.12+ only
            IComparable Key(Doc d, string field) => field switch
            {
                "_id" => d.Id, "_shard_doc" => (IComparable)d.Seq, "_score" => 0L,
                _ when sortKeys[0].field == field => d.Ms,
                _ => Resolve(d.Source, field) is JsonValue v ? v.ToString() : "\uffff", // missing: _last
            };
            JsonNode KeyJson(Doc d, string field) => Key(d, field) switch { long l => JsonValue.Create(l), var o => JsonValue.Create(o.ToString()) };
            int Compare(Doc a, Doc b)
            {
                foreach (var (field, desc) in sortKeys)
                {
                    var c = CompareKeys(Key(a, field), Key(b, field));
                    if (c != 0) return desc ? -c : c;
                }
                return 0;
            }
            var ordered = docs.ToList();
            ordered.Sort((a, b) => { var c = Compare(a, b); return c != 0 ? c : a.Seq.CompareTo(b.Seq); });
            if (body["search_after"] is JsonArray after)
            {
                if (after.Count != sortKeys.Count)
                {
                    await BadRequest(ctx, "illegal_argument_exception", $"search_after has {after.Count} value(s) but sort has {sortKeys.Count}.");
                    return;
                }
                ordered = ordered.Where(d =>
                {
                    for (int i = 0; i < sortKeys.Count; i++)
                    {
                        var mine = Key(d, sortKeys[i].field);
                        IComparable theirs = mine is long ? (IComparable)(long.TryParse(after[i]?.ToString(), out var l) ? l : 0L) : after[i]?.ToString();
                        var c = CompareKeys(mine, theirs);
                        if (sortKeys[i].desc) c = -c;
                        if (c != 0) return c > 0;
                    }
                    return false; // equal on every sort value: search_after skips it
                }).ToList();
            }
            var total = docs.Count;
            var page = ordered.Skip(from).Take(size).ToList();
            var hits = new JsonArray();
            foreach (var d in page)
            {
                hits.Add(new JsonObject
                {
                    ["_index"] = "logstash-" + DateTimeOffset.FromUnixTimeMilliseconds(d.Ms).UtcDateTime.ToString("yyyy.MM.dd"), ["_id"] = d.Id, ["_score"] = null,
                    ["_source"] = d.Source.DeepClone(), ["sort"] = new JsonArray(sortKeys.Select(k => KeyJson(d, k.field)).ToArray()),
                });
            }
            var answer = new JsonObject
            {
                ["took"] = 3, ["timed_out"] = false,
                ["_shards"] = pitId != null && _noShardPits.ContainsKey(pitId)
                    ? new JsonObject { ["total"] = 0, ["successful"] = 0, ["skipped"] = 0, ["failed"] = 0 }
                    : new JsonObject { ["total"] = 3, ["successful"] = PartialShards ? 2 : 3, ["skipped"] = 0, ["failed"] = PartialShards ? 1 : 0 },
                ["hits"] = new JsonObject
                {
                    ["total"] = new JsonObject { ["value"] = Math.Min(total, MaxResultWindow), ["relation"] = total > MaxResultWindow ? "gte" : "eq" },
                    ["max_score"] = null, ["hits"] = hits,
                },
            };
            if (pitId != null) answer["pit_id"] = pitId;
            await LabHost.Json(ctx, 200, answer);
        }

        private static int CompareKeys(IComparable a, IComparable b)
            => a is string sa && b is string sb ? string.CompareOrdinal(sa, sb) : a.CompareTo(b);

        private static async Task<JsonObject> ReadBody(HttpContext ctx)
        {
            try { return JsonNode.Parse(await new System.IO.StreamReader(ctx.Request.Body).ReadToEndAsync()) as JsonObject; }
            catch (System.Text.Json.JsonException) { return null; }
        }

        /// <summary>A field of _source by its name: a dotted key as written, or the path through nested objects.</summary>
        public static JsonNode Resolve(JsonObject src, string path)
        {
            if (src == null) return null;
            if (src.TryGetPropertyValue(path, out var direct)) return direct;
            for (int i = path.IndexOf('.'); i > 0; i = path.IndexOf('.', i + 1))
                if (src[path.Substring(0, i)] is JsonObject inner && Resolve(inner, path.Substring(i + 1)) is JsonNode n) return n;
            return null;
        }

        private static long ParseTime(string s, DateTimeOffset now)
        {
            if (s == "now") return now.ToUnixTimeMilliseconds();
            var dm = Regex.Match(s, @"^now-(\d+)([smhd])$");
            if (dm.Success)
            {
                var n = int.Parse(dm.Groups[1].Value);
                var span = dm.Groups[2].Value switch { "s" => TimeSpan.FromSeconds(n), "m" => TimeSpan.FromMinutes(n), "h" => TimeSpan.FromHours(n), _ => TimeSpan.FromDays(n) };
                return (now - span).ToUnixTimeMilliseconds();
            }
            if (long.TryParse(s, out var ms)) return ms;
            return DateTimeOffset.Parse(Regex.Replace(s, @"(\.\d{7})\d+", "$1"), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal).ToUnixTimeMilliseconds();
        }

        /// <summary>A parsed query_string: terms, AND, OR and parentheses.</summary>
        public abstract class QueryNode
        {
            public abstract bool Matches(JsonObject source);
            public abstract IEnumerable<(string field, string value)> Terms();
        }

        private sealed class TermNode : QueryNode
        {
            public string Field, Value;
            public override bool Matches(JsonObject src)
            {
                // A term matches a value, never an object (ECS: host:"x" does not match {"host":{"name":"x"}}).
                if (!(Resolve(src, Field) is JsonValue v)) return false;
                var s = v.ToString();
                // Phrase semantics for the message, equality for keyword fields.
                return Field == "message" || Field.EndsWith(".message") ? s.Contains(Value, StringComparison.OrdinalIgnoreCase) : string.Equals(s, Value, StringComparison.OrdinalIgnoreCase);
            }
            public override IEnumerable<(string, string)> Terms() { yield return (Field, Value); }
        }

        private sealed class BoolNode : QueryNode
        {
            public bool Or;
            public List<QueryNode> Parts = new List<QueryNode>();
            public override bool Matches(JsonObject src) => Or ? Parts.Any(p => p.Matches(src)) : Parts.All(p => p.Matches(src));
            public override IEnumerable<(string, string)> Terms() => Parts.SelectMany(p => p.Terms());
        }

        /// <summary>Every field:value term of a query, in order (AND/OR/parentheses flattened).</summary>
        public static List<(string field, string value)> ParseQuery(string q) => Parse(q).Terms().ToList();

        /// <summary>field:value, field:"quoted \"value\"", AND, OR, ( … ); a backslash escapes the next character anywhere.</summary>
        public static QueryNode Parse(string q)
        {
            int i = 0;
            void Ws() { while (i < q.Length && q[i] == ' ') i++; }
            bool Word(string w)
            {
                Ws();
                if (q.Length - i >= w.Length + 1 && string.CompareOrdinal(q, i, w + " ", 0, w.Length + 1) == 0) { i += w.Length + 1; return true; }
                return false;
            }
            QueryNode Unary()
            {
                Ws();
                if (i < q.Length && q[i] == '(')
                {
                    i++;
                    var inner = Or();
                    Ws();
                    if (i >= q.Length || q[i] != ')') throw new FormatException($"expected ')' at position {i}");
                    i++;
                    return inner;
                }
                var fs = i;
                while (i < q.Length && (char.IsLetterOrDigit(q[i]) || q[i] == '_' || q[i] == '.' || q[i] == '@')) i++;
                if (i == fs || i >= q.Length || q[i] != ':') throw new FormatException($"expected field:value at position {fs}");
                var field = q.Substring(fs, i - fs);
                i++;
                var sb = new StringBuilder();
                if (i < q.Length && q[i] == '"')
                {
                    i++;
                    while (true)
                    {
                        if (i >= q.Length) throw new FormatException("unterminated quote");
                        if (q[i] == '\\') { if (i + 1 >= q.Length) throw new FormatException("dangling escape"); sb.Append(q[i + 1]); i += 2; continue; }
                        if (q[i] == '"') { i++; break; }
                        sb.Append(q[i++]);
                    }
                }
                else
                {
                    while (i < q.Length && q[i] != ' ' && q[i] != ')')
                    {
                        if (q[i] == '\\' && i + 1 < q.Length) { sb.Append(q[i + 1]); i += 2; continue; }
                        if ("(\":*?".IndexOf(q[i]) >= 0) throw new FormatException($"unexpected '{q[i]}' at position {i}");
                        sb.Append(q[i++]);
                    }
                }
                return new TermNode { Field = field, Value = sb.ToString() };
            }
            QueryNode And()
            {
                var n = new BoolNode();
                n.Parts.Add(Unary());
                while (Word("AND")) n.Parts.Add(Unary());
                return n.Parts.Count == 1 ? n.Parts[0] : n;
            }
            QueryNode Or()
            {
                var n = new BoolNode { Or = true };
                n.Parts.Add(And());
                while (Word("OR")) n.Parts.Add(And());
                return n.Parts.Count == 1 ? n.Parts[0] : n;
            }
            var root = Or();
            Ws();
            if (i < q.Length) throw new FormatException($"only AND, OR and parentheses are supported, at position {i}");
            return root;
        }

        public async ValueTask DisposeAsync() => await LabHost.StopAsync(_app);
    }
}
