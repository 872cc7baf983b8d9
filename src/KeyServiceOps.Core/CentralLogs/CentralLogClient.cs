using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Net.Http;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using KeyServiceOps.Core.Diagnosis;
using Newtonsoft.Json.Linq;
using Polly;

namespace KeyServiceOps.Core.CentralLogs
{
    public sealed class CentralLogSearch
    {
        /// <summary>The instance's address, ANDed to the query as host:"…" (escaped); null for every host.</summary>
        public string Host { get; set; }
        /// <summary>Replaces the context's base query (Lucene, taken as written).</summary>
        public string Query { get; set; }
        /// <summary>Text the message must contain; escaped, so it is matched literally.</summary>
        public string Match { get; set; }
        public DateTimeOffset? Since { get; set; }
        public DateTimeOffset? Until { get; set; }
        public bool NewestFirst { get; set; }
        /// <summary>Only the newest N entries (still returned oldest first unless NewestFirst).</summary>
        public int? Tail { get; set; }
    }

    /// <summary>Lucene query_string escaping (shared/contracts/central-log-search.md).</summary>
    public static class Lucene
    {
        private const string Special = "+-=&|><!(){}[]^\"~*?:\\/";

        /// <summary>Backslash-escapes every special character so the text is matched as written.</summary>
        public static string Escape(string text)
        {
            if (text == null) return null;
            var sb = new StringBuilder(text.Length + 8);
            foreach (var c in text)
            {
                if (Special.IndexOf(c) >= 0) sb.Append('\\');
                sb.Append(c);
            }
            return sb.ToString();
        }

        /// <summary>field:"escaped text".</summary>
        public static string Term(string field, string text) => $"{field}:\"{Escape(text)}\"";
    }

    /// <summary>
    /// Searches the central log service (Elasticsearch/OpenSearch `_search`) with the runbook's query, pages with
    /// search_after past the 10,000-hit window, and streams each hit as a <see cref="LogEntry"/> (Source "Central"),
    /// so Get-KeyServiceFault reads either source. 429/5xx are retried; every other failure has its own error id.
    /// </summary>
    public sealed class CentralLogClient
    {
        private readonly CentralLogSettings _ctx;
        private readonly RestClient _rest;
        private readonly ResiliencePipeline<RestResponse> _retry;
        private readonly IOpsLog _log;

        /// <summary>Errors after which the runbook falls back to docker logs over SSH ("if you have no access to logmet").</summary>
        public static readonly string[] FallbackErrorIds = { "CentralLogUnauthorized", "CentralLogForbidden", "CentralLogUnreachable", "CentralLogTimeout", "CentralLogNotConfigured" };

        public CentralLogClient(CentralLogSettings ctx, IOpsLog log, TimeSpan? retryBaseDelay = null)
        {
            _ctx = ctx;
            _log = log ?? NullOpsLog.Instance;
            if (ctx.Uri == null)
                throw new OpsException("CentralLogNotConfigured", OpsErrorCategory.InvalidArgument, "No central log service is configured.", null,
                    recommendedAction: "Set-KeyServiceOpsContext -CentralLogUri https://logs.example.com:9200 -CentralLogApiKey (Read-Host -AsSecureString), or read the VM's logs with -Source Docker.");
            var auth = Authorization(ctx);
            var secrets = new[] { ctx.ApiKey?.Reveal(), ctx.Password?.Reveal(), auth?.Split(' ').Last() }.Where(x => !string.IsNullOrEmpty(x)).ToArray();
            _rest = new RestClient("CentralLog", ctx.Uri,
                HttpHandlers.Get(ctx.SkipCertificateCheck, ctx.CaCertificatePath), ctx.HttpTimeout, _log,
                req => { if (auth != null) req.Headers.TryAddWithoutValidation("Authorization", Authorization(ctx)); },
                s => secrets.Aggregate(s, (acc, x) => acc.Replace(x, "***")));
            _rest.MaxResponseBytes = ctx.MaxResponseBytes;
            _retry = HttpRetry.Build("The central log service", ctx.MaxRetries, retryBaseDelay ?? TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(20), _log);
        }

        public int RequestCount => _rest.RequestCount;

        private static string Authorization(CentralLogSettings c)
        {
            if (c.ApiKey != null)
            {
                var k = c.ApiKey.RevealForHeader("central-log API key");
                return "ApiKey " + (k.Contains(":") ? Convert.ToBase64String(Encoding.UTF8.GetBytes(k)) : k);
            }
            if (!string.IsNullOrEmpty(c.User) && c.Password != null)
                return "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(c.User + ":" + c.Password.Reveal()));
            return null;
        }

        /// <summary>The query_string the search sends: the base query, the host and the message text, ANDed.</summary>
        public string QueryText(CentralLogSearch s)
        {
            var parts = new List<string> { string.IsNullOrWhiteSpace(s.Query) ? _ctx.Query : s.Query };
            if (!string.IsNullOrEmpty(s.Host)) parts.Add(Lucene.Term(_ctx.Fields.Host.First(), s.Host));
            if (!string.IsNullOrEmpty(s.Match)) parts.Add(Lucene.Term(_ctx.Fields.Message, s.Match));
            return string.Join(" AND ", parts.Where(p => !string.IsNullOrWhiteSpace(p)));
        }

        /// <summary>Streams matching entries to <paramref name="onEntry"/>; returns how many.</summary>
        public async Task<long> SearchAsync(CentralLogSearch s, Action<LogEntry> onEntry, CancellationToken ct)
        {
            var f = _ctx.Fields;
            var query = QueryText(s);
            // A tail is the newest N: read newest first, then hand them out in the order asked for.
            var desc = s.NewestFirst || s.Tail != null;
            var buffer = s.Tail != null && !s.NewestFirst ? new List<LogEntry>(Math.Min(s.Tail.Value, 100000)) : null;
            var filters = new JArray(new JObject { ["query_string"] = new JObject { ["query"] = query } });
            if (s.Since != null || s.Until != null)
            {
                var range = new JObject();
                if (s.Since != null) range["gte"] = Iso(s.Since.Value);
                range["lte"] = s.Until != null ? Iso(s.Until.Value) : "now";
                filters.Add(new JObject { ["range"] = new JObject { [f.Timestamp] = range } });
            }
            JArray after = null;
            long n = 0, seq = 0;
            var warnedShards = false;
            _log.Verbose($"Central log search on {_ctx.Index}: {query}");
            while (true)
            {
                var size = _ctx.PageSize;
                if (s.Tail != null) size = (int)Math.Min(size, s.Tail.Value - n);
                if (size <= 0) break;
                var body = new JObject
                {
                    ["size"] = size,
                    ["sort"] = new JArray(new JObject { [f.Timestamp] = new JObject { ["order"] = desc ? "desc" : "asc" } }, new JObject { ["_id"] = "asc" }),
                    ["query"] = new JObject { ["bool"] = new JObject { ["filter"] = filters } },
                };
                if (after != null) body["search_after"] = after;
                var path = Uri.EscapeDataString(_ctx.Index).Replace("%2A", "*").Replace("%2C", ",") + "/_search";
                var r = await _retry.ExecuteAsync(async t => await _rest.SendAsync(HttpMethod.Post, path, body, t).ConfigureAwait(false), ct).ConfigureAwait(false);
                var json = Expect(r, s.Host);
                var shards = At(json, "_shards");
                if (!warnedShards && (Int(At(shards, "failed")) ?? 0) > 0)
                {
                    warnedShards = true;
                    _log.Warning($"The central log service answered from {Int(At(shards, "successful"))} of {Int(At(shards, "total"))} shards: some entries may be missing.");
                }
                // Every level is checked for its shape (issue #26): a 2xx of the wrong shape is typed, never a raw
                // InvalidOperationException from indexing a string or a null.
                var hits = At(At(json, "hits"), "hits") as JArray;
                if (hits == null) throw Invalid(r, s.Host, "the answer has no hits.hits array");
                foreach (var h in hits)
                {
                    if (!(At(h, "_source") is JObject source)) throw Invalid(r, s.Host, "a hit is not an object with a _source object");
                    var e = ToEntry(source, f, s.Host);
                    e.Sequence = ++seq;
                    if (buffer != null) buffer.Add(e); else onEntry(e);
                    n++;
                }
                if (hits.Count < size) break;
                after = At(hits.Last, "sort") as JArray;
                if (after == null) throw Invalid(r, s.Host, "hits carry no sort values, so search_after cannot page");
            }
            if (buffer != null)
            {
                buffer.Reverse();
                long k = 0;
                foreach (var e in buffer) { e.Sequence = ++k; onEntry(e); }
            }
            return n;
        }

        /// <summary>A child of an object, or null when the token is not an object (a string, a null, an array).</summary>
        private static JToken At(JToken t, string key) => (t as JObject)?[key];
        private static int? Int(JToken t) => t is JValue v && (v.Type == JTokenType.Integer || v.Type == JTokenType.Float) ? (int?)Convert.ToInt32(v.Value, CultureInfo.InvariantCulture) : null;
        private static string Text(JToken t) => t is JValue v && v.Type != JTokenType.Null ? Convert.ToString(v.Value, CultureInfo.InvariantCulture) : null;

        private static string Iso(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

        private static JToken Field(JObject src, IEnumerable<string> names)
        {
            foreach (var n in names)
            {
                var v = src[n] ?? src.SelectToken(n);
                if (v is JValue && v.Type != JTokenType.Null) return v; // a primitive only: an array or object is not a field's value
            }
            return null;
        }

        private static LogEntry ToEntry(JObject src, CentralLogFields f, string host)
        {
            var e = new LogEntry { Source = "Central", StreamValue = null };
            e.SetMessage((string)Field(src, new[] { f.Message }) ?? "");
            var ts = Field(src, new[] { f.Timestamp });
            if (ts != null)
            {
                var text = ts.Type == JTokenType.Date ? ((DateTime)ts).ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture) : (string)ts;
                if (LogEntry.TryParseTimestamp(text, out var t, out _)) e.Timestamp = t;
            }
            e.Address = (string)Field(src, f.Host) ?? host;
            e.Container = (string)Field(src, new[] { f.Instance });
            var lv = LogEntry.LevelFromName((string)Field(src, f.Level));
            e.LevelValue = lv != LogLevel.Unknown ? lv : LogEntry.DetectLevel(e.GetRawMessage());
            return e;
        }

        private static OpsException Invalid(RestResponse r, object target, string why)
            => new OpsException("CentralLogInvalidResponse", OpsErrorCategory.InvalidResult,
                $"The central log service answered HTTP {r.Status} with something that is not a search result: {why}.", target, r.Excerpt(),
                "Check -CentralLogUri points at the Elasticsearch/OpenSearch API (not Kibana's web page).");

        private JObject Expect(RestResponse r, object target)
        {
            var json = r.TryJson() as JObject;
            OpsException E(string id, OpsErrorCategory cat, string text, string action) => new OpsException(id, cat, text, target, r.Excerpt(), action);
            if (r.IsSuccess) return json ?? throw Invalid(r, target, "the body is not JSON");
            var error = At(json, "error");
            var type = Text(At(error, "type"));
            var reason = Text(At((At(error, "root_cause") as JArray)?.FirstOrDefault(), "reason")) ?? Text(At(error, "reason")) ?? Text(error as JValue) ?? "";
            if (r.Status == 429)
                throw E("CentralLogRateLimited", OpsErrorCategory.LimitsExceeded, $"The central log service kept rejecting the search (429) after {_ctx.MaxRetries} retries.",
                    "The cluster is overloaded: wait and run it again, narrow -Since, or read the VM's logs with -Source Docker.");
            if (r.Status >= 500)
                throw E("CentralLogServerError", OpsErrorCategory.ResourceUnavailable, $"The central log service failed with HTTP {r.Status} after {_ctx.MaxRetries} retries.",
                    "Retry later, or read the VM's logs with -Source Docker.");
            if (json == null) throw Invalid(r, target, "the body is not JSON");
            switch (r.Status)
            {
                case 400 when reason.IndexOf("Result window is too large", StringComparison.OrdinalIgnoreCase) >= 0:
                    throw E("CentralLogWindowTooLarge", OpsErrorCategory.LimitsExceeded, $"The central log service refused the page: {reason}",
                        "Lower the page size (CentralLogPageSize); deep pages use search_after.");
                case 400:
                    throw E("CentralLogBadQuery", OpsErrorCategory.InvalidArgument, $"The central log service could not run the query ({type}): {reason}",
                        "Check -Query (Lucene syntax); text given with -Match is escaped for you.");
                case 401:
                    throw E("CentralLogUnauthorized", OpsErrorCategory.AuthenticationError, $"The central log service did not accept our credentials (401): {reason}",
                        "Set -CentralLogApiKey (or -CentralLogCredential) on Set-KeyServiceOpsContext, or read the VM's logs with -Source Docker / -Fallback.");
                case 403:
                    throw E("CentralLogForbidden", OpsErrorCategory.PermissionDenied, $"The central log service denied the search (403): {reason}",
                        "Ask for read access to the index, or read the VM's logs with -Source Docker / -Fallback.");
                case 404:
                    throw E("CentralLogIndexNotFound", OpsErrorCategory.ObjectNotFound, $"The central log service has no index '{_ctx.Index}': {reason}",
                        "Check -CentralLogIndex (e.g. logstash-*).");
                default:
                    throw E("CentralLogRequestFailed", OpsErrorCategory.InvalidResult, $"The central log service answered HTTP {r.Status}: {reason}", "Read the remote answer for details.");
            }
        }
    }
}
