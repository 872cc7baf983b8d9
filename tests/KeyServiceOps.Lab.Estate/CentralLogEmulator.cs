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

namespace KeyServiceOps.Lab
{
    /// <summary>
    /// The central log service's `_search` subset (shared/contracts/central-log-search.md): query_string of
    /// field:value terms joined by AND (values bare or quoted, Lucene escapes honoured), a range on
    /// @timestamp, sort by @timestamp then _id, search_after, the 10,000 result window, the error bodies, 429.
    /// Documents come from the lab instances' container logs, so both log paths see the same lines.
    /// </summary>
    internal static class JsonObjectExt
    {
        public static JsonObject Also(this JsonObject o, Action<JsonObject> f) { f(o); return o; }
    }

    public sealed class CentralLogEmulator : IAsyncDisposable
    {
        public const string IndexPattern = "logstash-*";
        private readonly Func<IEnumerable<SimInstance>> _instances;
        private WebApplication _app;
        private readonly ConcurrentQueue<JsonObject> _requests = new ConcurrentQueue<JsonObject>();

        private CentralLogEmulator(Func<IEnumerable<SimInstance>> instances) { _instances = instances; }

        public Uri BaseUri { get; private set; }
        /// <summary>The accepted API key (the Authorization value is "ApiKey " + base64 of this).</summary>
        public string ApiKey { get; set; } = "lab-key-id:lab-key-secret";
        /// <summary>A key that authenticates but may not search (403).</summary>
        public string ForbiddenApiKey { get; set; } = "lab-ro-id:lab-ro-secret";
        public string BasicUser { get; set; } = "ops";
        public string BasicPassword { get; set; } = "lab-basic-password";
        public int MaxResultWindow { get; set; } = 10_000;
        /// <summary>Answer the next N searches with 429.</summary>
        public int RateLimitNext;
        /// <summary>Pretend one of three shards failed (partial results).</summary>
        public bool PartialShards;
        /// <summary>Every request body received, in order.</summary>
        public IReadOnlyList<JsonObject> Requests => _requests.ToArray();
        /// <summary>Extra documents beyond the instances' logs (for deep paging).</summary>
        public List<JsonObject> ExtraDocuments { get; } = new List<JsonObject>();

        public static async Task<CentralLogEmulator> StartAsync(Func<IEnumerable<SimInstance>> instances)
        {
            var e = new CentralLogEmulator(instances);
            (e._app, e.BaseUri) = await LabHost.StartAsync(e.HandleAsync);
            return e;
        }

        /// <summary>Adds N generated request-log documents for a host, one per millisecond ending now.</summary>
        public void AddGenerated(string host, int n)
        {
            var t0 = DateTimeOffset.UtcNow.AddMilliseconds(-n);
            lock (ExtraDocuments)
                for (int i = 0; i < n; i++)
                    ExtraDocuments.Add(Doc($"gen-{host}-{i:D7}", t0.AddMilliseconds(i), host, "INFO", $"GET /api/v1/apikeys/k{i} 200 seq={i}"));
        }

        private static JsonObject Doc(string id, DateTimeOffset t, string host, string level, string message) => new JsonObject
        {
            ["_id"] = id, ["@timestamp"] = t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture),
            ["ms"] = t.ToUnixTimeMilliseconds(), ["instance_id"] = "KeyServiceApi", ["host"] = host, ["message"] = message,
        }.Also(o => { if (level != null) o["level"] = level; });

        private static readonly Regex LevelRx = new Regex(@"level=(\w+)");

        private List<JsonObject> Documents()
        {
            var docs = new List<JsonObject>();
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
                    docs.Add(Doc($"{inst.Address}-{i:D7}", l.Time, inst.Address, level, l.Text));
                }
            }
            lock (ExtraDocuments) docs.AddRange(ExtraDocuments);
            return docs;
        }

        private static JsonObject Error(string type, string reason, int status, JsonArray rootCause = null)
            => new JsonObject { ["error"] = new JsonObject { ["root_cause"] = rootCause ?? new JsonArray(), ["type"] = type, ["reason"] = reason }, ["status"] = status };

        private async Task HandleAsync(HttpContext ctx)
        {
            var path = ctx.Request.Path.Value ?? "";
            var m = Regex.Match(path, @"^/([^/]+)/_search$");
            if (!m.Success || ctx.Request.Method != "POST") { ctx.Response.StatusCode = 404; await ctx.Response.WriteAsync("<html><body>404 Not Found</body></html>"); return; }
            var auth = ctx.Request.Headers.Authorization.ToString();
            string B64(string s) => Convert.ToBase64String(Encoding.UTF8.GetBytes(s));
            var ok = auth == "ApiKey " + B64(ApiKey) || auth == "Basic " + B64(BasicUser + ":" + BasicPassword);
            if (auth == "ApiKey " + B64(ForbiddenApiKey))
            {
                await LabHost.Json(ctx, 403, Error("security_exception", $"action [indices:data/read/search] is unauthorized for user [lab-ro] with roles [viewer] on indices [{m.Groups[1].Value}]", 403));
                return;
            }
            if (!ok)
            {
                ctx.Response.Headers["WWW-Authenticate"] = "ApiKey, Basic realm=\"security\" charset=\"UTF-8\"";
                var reason = auth.Length == 0 ? $"missing authentication credentials for REST request [{path}]" : $"unable to authenticate with provided credentials and anonymous access is not allowed for this request";
                await LabHost.Json(ctx, 401, Error("security_exception", reason, 401));
                return;
            }
            var index = Uri.UnescapeDataString(m.Groups[1].Value);
            if (index != IndexPattern && !index.StartsWith("logstash-"))
            {
                await LabHost.Json(ctx, 404, Error("index_not_found_exception", $"no such index [{index}]", 404));
                return;
            }
            if (RateLimitNext > 0)
            {
                RateLimitNext--;
                await LabHost.Json(ctx, 429, Error("es_rejected_execution_exception", "rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, coordinating_operation_bytes=4096, max_coordinating_and_primary_bytes=0]", 429));
                return;
            }
            JsonObject body;
            try { body = JsonNode.Parse(await new System.IO.StreamReader(ctx.Request.Body).ReadToEndAsync()) as JsonObject; }
            catch (System.Text.Json.JsonException) { body = null; }
            if (body == null) { await LabHost.Json(ctx, 400, Error("parse_exception", "request body is required", 400)); return; }
            _requests.Enqueue(body);

            var size = (int?)body["size"] ?? 10;
            var from = (int?)body["from"] ?? 0;
            if (from + size > MaxResultWindow)
            {
                await LabHost.Json(ctx, 400, Error("illegal_argument_exception", $"Result window is too large, from + size must be less than or equal to: [{MaxResultWindow}] but was [{from + size}]. See the scroll api for a more efficient way to request large data sets.", 400));
                return;
            }
            var filters = body["query"]?["bool"]?["filter"] as JsonArray ?? new JsonArray();
            var docs = Documents();
            foreach (var f in filters)
            {
                if (f?["query_string"]?["query"] is JsonNode q)
                {
                    var text = q.ToString();
                    List<(string field, string value)> terms;
                    try { terms = ParseQuery(text); }
                    catch (FormatException e)
                    {
                        var rc = new JsonArray { new JsonObject { ["type"] = "query_shard_exception", ["reason"] = $"Failed to parse query [{text}]: {e.Message}" } };
                        await LabHost.Json(ctx, 400, Error("search_phase_execution_exception", "all shards failed", 400, rc));
                        return;
                    }
                    docs = docs.Where(d => terms.All(t => Matches(d, t.field, t.value))).ToList();
                }
                else if (f?["range"]?["@timestamp"] is JsonObject range)
                {
                    var now = DateTimeOffset.UtcNow;
                    long? gte = range["gte"] != null ? ParseTime(range["gte"].ToString(), now) : null;
                    long? lte = range["lte"] != null ? ParseTime(range["lte"].ToString(), now) : null;
                    docs = docs.Where(d => (gte == null || (long)d["ms"] >= gte) && (lte == null || (long)d["ms"] <= lte)).ToList();
                }
            }
            var desc = body["sort"]?[0]?["@timestamp"]?["order"]?.ToString() == "desc";
            var ordered = (desc ? docs.OrderByDescending(d => (long)d["ms"]) : docs.OrderBy(d => (long)d["ms"])).ThenBy(d => d["_id"].ToString(), StringComparer.Ordinal).ToList();
            if (body["search_after"] is JsonArray after && after.Count == 2)
            {
                var ams = (long)after[0]; var aid = after[1].ToString();
                ordered = ordered.Where(d =>
                {
                    var ms = (long)d["ms"]; var id = d["_id"].ToString();
                    var c = desc ? ams.CompareTo(ms) : ms.CompareTo(ams);
                    return c > 0 || (c == 0 && string.CompareOrdinal(id, aid) > 0);
                }).ToList();
            }
            var total = docs.Count;
            var page = ordered.Skip(from).Take(size).ToList();
            var hits = new JsonArray();
            foreach (var d in page)
            {
                var src = new JsonObject();
                foreach (var kv in d) if (kv.Key != "_id" && kv.Key != "ms") src[kv.Key] = kv.Value?.DeepClone();
                hits.Add(new JsonObject
                {
                    ["_index"] = "logstash-" + DateTimeOffset.FromUnixTimeMilliseconds((long)d["ms"]).UtcDateTime.ToString("yyyy.MM.dd"), ["_id"] = d["_id"].ToString(), ["_score"] = null,
                    ["_source"] = src, ["sort"] = new JsonArray((long)d["ms"], d["_id"].ToString()),
                });
            }
            await LabHost.Json(ctx, 200, new JsonObject
            {
                ["took"] = 3, ["timed_out"] = false,
                ["_shards"] = new JsonObject { ["total"] = 3, ["successful"] = PartialShards ? 2 : 3, ["skipped"] = 0, ["failed"] = PartialShards ? 1 : 0 },
                ["hits"] = new JsonObject
                {
                    ["total"] = new JsonObject { ["value"] = Math.Min(total, MaxResultWindow), ["relation"] = total > MaxResultWindow ? "gte" : "eq" },
                    ["max_score"] = null, ["hits"] = hits,
                },
            });
        }

        private static bool Matches(JsonObject d, string field, string value)
        {
            var v = d[field]?.ToString();
            if (v == null) return false;
            // Phrase semantics for the message, equality for keyword fields.
            return field == "message" ? v.Contains(value, StringComparison.OrdinalIgnoreCase) : string.Equals(v, value, StringComparison.OrdinalIgnoreCase);
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

        /// <summary>field:value AND field:"quoted \"value\"" ...; a backslash escapes the next character anywhere.</summary>
        public static List<(string field, string value)> ParseQuery(string q)
        {
            var terms = new List<(string, string)>();
            int i = 0;
            void Ws() { while (i < q.Length && q[i] == ' ') i++; }
            while (true)
            {
                Ws();
                if (i >= q.Length) break;
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
                    while (i < q.Length && q[i] != ' ')
                    {
                        if (q[i] == '\\' && i + 1 < q.Length) { sb.Append(q[i + 1]); i += 2; continue; }
                        if ("()\":*?".IndexOf(q[i]) >= 0) throw new FormatException($"unexpected '{q[i]}' at position {i}");
                        sb.Append(q[i++]);
                    }
                }
                terms.Add((field, sb.ToString()));
                Ws();
                if (i >= q.Length) break;
                if (q.Length - i >= 4 && q.Substring(i, 4) == "AND ") { i += 4; continue; }
                throw new FormatException($"only AND is supported, at position {i}");
            }
            return terms;
        }

        public async ValueTask DisposeAsync() => await LabHost.StopAsync(_app);
    }
}
