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

    /// <summary>Which cluster answers, learned once per session from GET /.</summary>
    public sealed class CentralLogCluster
    {
        /// <summary>"Elasticsearch", "OpenSearch", or "Unknown" (GET / was refused or not understood).</summary>
        public string Flavor { get; set; } = "Unknown";
        public Version Version { get; set; }
        public bool IsOpenSearch => Flavor == "OpenSearch";
        public bool IsElasticsearch => Flavor == "Elasticsearch";
        /// <summary>Elasticsearch 7.10+ (POST /{index}/_pit) or OpenSearch 2.4+ (POST /{index}/_search/point_in_time).</summary>
        public bool HasPointInTime => Version != null && (IsElasticsearch ? Version >= new Version(7, 10) : IsOpenSearch && Version >= new Version(2, 4));
        /// <summary>Stock Elasticsearch 8 refuses a sort on _id (indices.id_field_data.enabled is false).</summary>
        public bool RefusesIdSort => IsElasticsearch && Version != null && Version.Major >= 8;
        public override string ToString() => Version == null ? Flavor : $"{Flavor} {Version}";
    }

    /// <summary>
    /// Searches the central log service (Elasticsearch 7/8, OpenSearch 1/2 `_search`) with the runbook's query and streams
    /// each hit as a <see cref="LogEntry"/> (Source "Central"), so Get-KeyServiceFault reads either source.
    /// Paging is exact: lines with equal timestamps are never lost or repeated across pages. It pages in a point in time
    /// where the cluster has one (Elasticsearch 7.10+ with its implicit _shard_doc tie-breaker; OpenSearch 2.4+ with
    /// _id or the configured tie-breaker), and otherwise with search_after on the configured unique field or _id where
    /// the cluster allows it; with none of these, CentralLogNoTieBreaker names the setting that fixes it.
    /// Errors are judged by the status first (401/403/404/429 whatever the body); 429/5xx are retried.
    /// </summary>
    public sealed class CentralLogClient
    {
        private readonly CentralLogSettings _ctx;
        private readonly RestClient _rest;
        private readonly ResiliencePipeline<RestResponse> _retry;
        private readonly IOpsLog _log;
        /// <summary>How long a point in time lives between pages (each page extends it): a slow consumer (Out-Host -Paging) holds paging back.</summary>
        public const string KeepAlive = "5m";

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
                HttpHandlers.Get(ctx.SkipCertificateCheck, ctx.CaCertificatePath), ctx.Http.Timeout, _log,
                req => { if (auth != null) req.Headers.TryAddWithoutValidation("Authorization", Authorization(ctx)); },
                Redactor.Of(secrets.Concat(new[] { ctx.Password == null ? null : ctx.User + ":" + ctx.Password.Reveal() })).Scrub);
            _rest.MaxResponseBytes = ctx.Http.MaxResponseBytes;
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

        /// <summary>field:"text" for one path, (a:"text" OR b:"text") for several.</summary>
        private static string AnyOf(IList<string> fields, string text)
        {
            var terms = fields.Where(f => !string.IsNullOrWhiteSpace(f)).Distinct().Select(f => Lucene.Term(f, text)).ToList();
            return terms.Count == 1 ? terms[0] : "(" + string.Join(" OR ", terms) + ")";
        }

        /// <summary>The query_string the search sends: the base query, the host (an OR over the host paths) and the message text, ANDed.</summary>
        public string QueryText(CentralLogSearch s)
        {
            var baseQuery = string.IsNullOrWhiteSpace(s.Query) ? _ctx.Query : s.Query;
            // The base query in parentheses: 'level:ERROR OR level:FATAL' AND the host must not bind as ERROR OR (FATAL AND host).
            var parts = new List<string> { string.IsNullOrWhiteSpace(baseQuery) ? null : "(" + baseQuery + ")" };
            if (!string.IsNullOrEmpty(s.Host)) parts.Add(AnyOf(_ctx.Fields.Host, s.Host));
            if (!string.IsNullOrEmpty(s.Match)) parts.Add(AnyOf(_ctx.Fields.Message, s.Match));
            return string.Join(" AND ", parts.Where(p => !string.IsNullOrWhiteSpace(p)));
        }

        /// <summary>The cluster's flavour and version: GET / once per session and address. 401 is CentralLogUnauthorized; any other refusal leaves it Unknown.</summary>
        public async Task<CentralLogCluster> ClusterAsync(CancellationToken ct)
        {
            var key = "centrallog-cluster:" + _ctx.Uri.AbsoluteUri;
            if (_ctx.SessionCache != null && _ctx.SessionCache.TryGetValue(key, out var cached) && cached is CentralLogCluster known) return known;
            var r = await _retry.ExecuteAsync(async t => await _rest.SendAsync(HttpMethod.Get, "", null, t).ConfigureAwait(false), ct).ConfigureAwait(false);
            var c = new CentralLogCluster();
            // 401, 429 and 5xx (after the retries) end it here: nothing else would work either, and an outage is not
            // probed three more times (the point-in-time APIs, then the search).
            if (r.Status == 401 || r.Status == 429 || r.Status >= 500) Expect(r, null);
            if (r.IsSuccess && r.TryJson() is JObject root && At(root, "version") is JObject v)
            {
                var number = Text(At(v, "number"));
                var dist = Text(At(v, "distribution"));
                c.Flavor = string.Equals(dist, "opensearch", StringComparison.OrdinalIgnoreCase) ? "OpenSearch" : number != null ? "Elasticsearch" : "Unknown";
                if (number != null && System.Version.TryParse(new string(number.TakeWhile(ch => char.IsDigit(ch) || ch == '.').ToArray()).TrimEnd('.'), out var ver)) c.Version = ver;
            }
            else _log.Verbose($"The central log service did not say what it is (GET / answered {r.Status}); paging will probe for a point in time.");
            _log.Verbose($"Central log service: {c}.");
            if (r.IsSuccess || r.Status == 403) _ctx.SessionCache?.TryAdd(key, c); // a transient failure is asked again next time
            return c;
        }

        private sealed class Pit
        {
            public string Id;
            public bool OpenSearch;
        }

        /// <summary>Opens a point in time in the cluster's API, or null when it has none or may not open one (then search_after pages).</summary>
        private async Task<Pit> OpenPitAsync(CentralLogCluster c, CancellationToken ct)
        {
            var index = IndexPath();
            var tries = new List<bool>(); // true: OpenSearch's API
            if (c.IsElasticsearch && c.HasPointInTime) tries.Add(false);
            else if (c.IsOpenSearch && c.HasPointInTime) tries.Add(true);
            else if (c.Flavor == "Unknown") { tries.Add(false); tries.Add(true); }
            foreach (var os in tries)
            {
                var path = index + (os ? "/_search/point_in_time" : "/_pit") + "?keep_alive=" + KeepAlive;
                var r = await _retry.ExecuteAsync(async t => await _rest.SendAsync(HttpMethod.Post, path, null, t).ConfigureAwait(false), ct).ConfigureAwait(false);
                // The search would fail the same way: say so now (401, an overload or an outage after the retries, no index).
                if (r.Status == 401 || r.Status == 429 || r.Status >= 500 || r.Status == 404 && IsIndexNotFound(r)) Expect(r, null);
                var id = r.IsSuccess ? Text(At(r.TryJson(), os ? "pit_id" : "id")) : null;
                if (id != null) return new Pit { Id = id, OpenSearch = os };
                _log.Verbose($"No point in time from the central log service ({(os ? "OpenSearch" : "Elasticsearch")} API answered {r.Status}); paging with search_after.");
            }
            return null;
        }

        /// <summary>A search of no hits, to let the cluster answer 401/403/404 for the search itself; a 2xx returns.</summary>
        private async Task ProbeSearchAsync(string query, string host, CentralLogCluster cluster, CancellationToken ct)
        {
            var body = new JObject { ["size"] = 0, ["track_total_hits"] = false, ["query"] = new JObject { ["bool"] = new JObject { ["filter"] = new JArray(new JObject { ["query_string"] = new JObject { ["query"] = query } }) } } };
            var r = await _retry.ExecuteAsync(async t => await _rest.SendAsync(HttpMethod.Post, IndexPath() + "/_search", body, t).ConfigureAwait(false), ct).ConfigureAwait(false);
            Expect(r, host, cluster);
        }

        private async Task ClosePitAsync(Pit pit)
        {
            // Closed whatever happened to the search (also after Ctrl+C), briefly: the keep-alive frees it anyway.
            try
            {
                using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5)))
                {
                    var r = pit.OpenSearch
                        ? await _rest.SendAsync(HttpMethod.Delete, "_search/point_in_time", new JObject { ["pit_id"] = new JArray(pit.Id) }, cts.Token).ConfigureAwait(false)
                        : await _rest.SendAsync(HttpMethod.Delete, "_pit", new JObject { ["id"] = pit.Id }, cts.Token).ConfigureAwait(false);
                    if (!r.IsSuccess) _log.Verbose($"The central log service did not close the point in time ({r.Status}); it expires after {KeepAlive}.");
                }
            }
            catch (OpsException e) { _log.Verbose($"The point in time was not closed ({e.Message}); it expires after {KeepAlive}."); }
        }

        private string IndexPath() => Uri.EscapeDataString(_ctx.Index).Replace("%2A", "*").Replace("%2C", ",");

        /// <summary>Streams matching entries to <paramref name="onEntry"/>; returns how many.</summary>
        public async Task<long> SearchAsync(CentralLogSearch s, Action<LogEntry> onEntry, CancellationToken ct)
        {
            var f = _ctx.Fields;
            var tsField = f.Timestamp.FirstOrDefault() ?? "@timestamp";
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
                range["format"] = "strict_date_optional_time||epoch_millis";
                filters.Add(new JObject { ["range"] = new JObject { [tsField] = range } });
            }

            var cluster = await ClusterAsync(ct).ConfigureAwait(false);
            var pit = await OpenPitAsync(cluster, ct).ConfigureAwait(false);
            // The tie-breaker, in the timestamp's direction (so the newest N are exactly the last N of the oldest-first
            // order): in Elasticsearch's point in time _shard_doc (named from 7.12; 7.10-7.11 add it implicitly, ascending);
            // otherwise the configured unique field, or _id where the cluster allows a sort on it.
            string tieBreaker = null;
            var configured = string.IsNullOrWhiteSpace(_ctx.TieBreaker) ? null : _ctx.TieBreaker;
            if (pit != null && !pit.OpenSearch && (cluster.Version == null || cluster.Version >= new Version(7, 12)))
                tieBreaker = "_shard_doc"; // Elasticsearch 7.12+; a 400 for it (an unknown version older than that) falls back to _id below
            else if (pit != null && !pit.OpenSearch)
                tieBreaker = configured ?? "_id"; // 7.10-7.11: a point in time without _shard_doc; _id is still allowed there
            else
            {
                tieBreaker = configured;
                if (tieBreaker == null)
                {
                    if (cluster.RefusesIdSort)
                    {
                        // Before concluding "no tie-breaker", let the cluster say whether we may search at all: a key with
                        // no read access is Forbidden (so -Fallback falls back), not a paging problem.
                        await ProbeSearchAsync(query, s.Host, cluster, ct).ConfigureAwait(false);
                        throw NoTieBreaker(cluster, s.Host, null);
                    }
                    tieBreaker = "_id";
                }
            }
            _log.Verbose($"Central log search on {_ctx.Index} ({cluster}; {(pit != null ? "point in time" : "search_after")}{(tieBreaker != null ? ", tie-breaker " + tieBreaker : ", implicit _shard_doc")}): {query}");
            try
            {
                JArray after = null;
                long n = 0, seq = 0;
                var warnedShards = false;
                var warnedNoIndex = false;
                while (true)
                {
                    var size = _ctx.PageSize;
                    if (s.Tail != null) size = (int)Math.Min(size, s.Tail.Value - n);
                    if (size <= 0) break;
                    var sort = new JArray(new JObject { [tsField] = new JObject { ["order"] = desc ? "desc" : "asc" } });
                    if (tieBreaker != null) sort.Add(new JObject { [tieBreaker] = desc ? "desc" : "asc" });
                    var body = new JObject
                    {
                        ["size"] = size,
                        ["sort"] = sort,
                        ["query"] = new JObject { ["bool"] = new JObject { ["filter"] = filters } },
                        ["track_total_hits"] = false,
                    };
                    if (pit != null) body["pit"] = new JObject { ["id"] = pit.Id, ["keep_alive"] = KeepAlive }; // the same shape in both flavours
                    if (after != null) body["search_after"] = after;
                    // Under a point in time the index is in the point in time, never in the path.
                    var path = pit != null ? "_search" : IndexPath() + "/_search";
                    var r = await _retry.ExecuteAsync(async t => await _rest.SendAsync(HttpMethod.Post, path, body, t).ConfigureAwait(false), ct).ConfigureAwait(false);
                    if (tieBreaker == "_shard_doc" && after == null && r.Status == 400 && (r.Body ?? "").IndexOf("_shard_doc", StringComparison.Ordinal) >= 0)
                    {
                        // An Elasticsearch older than 7.12 (the version was not known): no _shard_doc; _id is allowed there.
                        tieBreaker = string.IsNullOrWhiteSpace(_ctx.TieBreaker) ? "_id" : _ctx.TieBreaker;
                        _log.Verbose($"The cluster has no _shard_doc sort: paging on {tieBreaker}.");
                        continue;
                    }
                    var json = Expect(r, s.Host, cluster);
                    if (!warnedNoIndex && after == null && Int(At(At(json, "_shards"), "total")) == 0)
                    {
                        warnedNoIndex = true;
                        _log.Warning($"No index of the central log service matches '{_ctx.Index}' (0 shards searched): nothing was searched. Check -CentralLogIndex.");
                    }
                    var shards = At(json, "_shards");
                    if (!warnedShards && (Int(At(shards, "failed")) ?? 0) > 0)
                    {
                        warnedShards = true;
                        _log.Warning($"The central log service answered from {Int(At(shards, "successful"))} of {Int(At(shards, "total"))} shards: some entries may be missing.");
                    }
                    if (pit != null && Text(At(json, "pit_id")) is string newId) pit.Id = newId; // the id may change from one answer to the next
                    // Every level is checked for its shape (issue #26): a 2xx of the wrong shape is typed, never a raw
                    // InvalidOperationException from indexing a string or a null.
                    var hits = At(At(json, "hits"), "hits") as JArray;
                    if (hits == null) throw Invalid(r, s.Host, "the answer has no hits.hits array");
                    foreach (var h in hits)
                    {
                        if (!(At(h, "_source") is JObject source)) throw Invalid(r, s.Host, "a hit is not an object with a _source object");
                        var e = ToEntry(source, f, s.Host, (At(h, "sort") as JArray)?.FirstOrDefault());
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
            finally
            {
                if (pit != null) await ClosePitAsync(pit).ConfigureAwait(false);
            }
        }

        /// <summary>A child of an object, or null when the token is not an object (a string, a null, an array).</summary>
        private static JToken At(JToken t, string key) => (t as JObject)?[key];
        private static int? Int(JToken t) => t is JValue v && (v.Type == JTokenType.Integer || v.Type == JTokenType.Float) ? (int?)Convert.ToInt32(v.Value, CultureInfo.InvariantCulture) : null;
        private static string Text(JToken t) => t is JValue v && v.Type != JTokenType.Null ? Convert.ToString(v.Value, CultureInfo.InvariantCulture) : null;

        private static string Iso(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

        /// <summary>A field of _source by its path: a dotted key as written, or the path through nested objects (ECS), or a mix.</summary>
        public static JToken Resolve(JObject src, string path)
        {
            if (src == null || string.IsNullOrEmpty(path)) return null;
            var direct = src.Property(path, StringComparison.Ordinal);
            if (direct != null) return direct.Value;
            for (int i = path.IndexOf('.'); i > 0; i = path.IndexOf('.', i + 1))
            {
                var head = src.Property(path.Substring(0, i), StringComparison.Ordinal)?.Value;
                if (head is JArray arr) head = arr.OfType<JObject>().FirstOrDefault(); // {"log":[{"level":…}]} as Elasticsearch flattens it
                if (head is JObject inner && Resolve(inner, path.Substring(i + 1)) is JToken found) return found;
            }
            return null;
        }

        internal static JToken Field(JObject src, IEnumerable<string> names)
        {
            foreach (var n in names)
            {
                var v = Resolve(src, n);
                // Elasticsearch treats ["x"] as x: the first primitive of an array counts; an object never does.
                if (v is JArray a) v = a.FirstOrDefault(x => x is JValue && x.Type != JTokenType.Null);
                if (v is JValue && v.Type != JTokenType.Null) return v;
            }
            return null;
        }

        /// <summary>
        /// A shipper's @timestamp: an ISO string (up to nanoseconds, Z or an offset), epoch milliseconds as a number or a
        /// numeric string; null when it is none of these.
        /// </summary>
        public static DateTimeOffset? ParseTimestamp(JToken ts)
        {
            if (!(ts is JValue v)) return null;
            try
            {
                switch (v.Type)
                {
                    case JTokenType.Integer: return FromMillis(Convert.ToDecimal(v.Value, CultureInfo.InvariantCulture));
                    case JTokenType.Float: return FromMillis(Convert.ToDecimal(v.Value, CultureInfo.InvariantCulture));
                    case JTokenType.Date:
                        return v.Value is DateTimeOffset dto ? dto.ToUniversalTime() : new DateTimeOffset(((DateTime)v.Value).ToUniversalTime(), TimeSpan.Zero);
                    case JTokenType.String:
                        var text = ((string)v.Value).Trim();
                        if (System.Text.RegularExpressions.Regex.IsMatch(text, @"^-?\d+(\.\d+)?$") && decimal.TryParse(text, NumberStyles.AllowDecimalPoint | NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var ms))
                            return FromMillis(ms);
                        if (LogEntry.TryParseTimestamp(text, out var t, out var end) && end == text.Length) return t;
                        // ISO 8601 only (an offset instead of Z, or no zone): not "1.2.3" or "12/05/2026"; at most 7 fractional digits for .NET.
                        if (!System.Text.RegularExpressions.Regex.IsMatch(text, @"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")) return null;
                        var trimmed = System.Text.RegularExpressions.Regex.Replace(text, @"(\.\d{7})\d+", "$1");
                        if (DateTimeOffset.TryParse(trimmed, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var p)) return p.ToUniversalTime();
                        return null;
                    default: return null;
                }
            }
            catch (Exception e) when (e is OverflowException || e is ArgumentOutOfRangeException || e is InvalidCastException) { return null; }
        }

        private static DateTimeOffset? FromMillis(decimal ms)
        {
            if (ms < -62135596800000m || ms > 253402300799999m) return null;
            return DateTimeOffset.FromUnixTimeMilliseconds(0).AddTicks((long)(ms * TimeSpan.TicksPerMillisecond));
        }

        private static LogEntry ToEntry(JObject src, CentralLogFields f, string host, JToken sortValue)
        {
            var e = new LogEntry { Source = "Central", StreamValue = null };
            e.SetMessage((string)Field(src, f.Message) ?? "");
            // The document's own timestamp; without one, the sort value of the timestamp (epoch milliseconds).
            e.Timestamp = ParseTimestamp(Field(src, f.Timestamp)) ?? (sortValue?.Type == JTokenType.Integer ? ParseTimestamp(sortValue) : null);
            e.Address = (string)Field(src, f.Host) ?? host;
            e.Container = (string)Field(src, f.Instance);
            var lv = LogEntry.LevelFromName((string)Field(src, f.Level));
            e.LevelValue = lv != LogLevel.Unknown ? lv : LogEntry.DetectLevel(e.GetRawMessage());
            return e;
        }

        /// <summary>A search answer read with the wrong JSON types somewhere the parsing did not expect (see <see cref="ClientAnswers"/>).</summary>
        internal static OpsException Malformed(Exception e) => Invalid(new RestResponse { Status = 200 }, null, $"JSON of a shape the search API does not send ({e.Message})");

        private static OpsException Invalid(RestResponse r, object target, string why)
            => new OpsException("CentralLogInvalidResponse", OpsErrorCategory.InvalidResult,
                $"The central log service answered HTTP {r.Status} with something that is not a search result: {why}.", target, r.Excerpt(),
                "Check -CentralLogUri points at the Elasticsearch/OpenSearch API (not Kibana's web page).");

        private OpsException NoTieBreaker(CentralLogCluster c, object target, RestResponse r)
            => new OpsException("CentralLogNoTieBreaker", OpsErrorCategory.InvalidOperation,
                $"Cannot page the central log search exactly: {c} refuses to sort on _id and gave no point in time to page in, so lines with equal timestamps could be lost.",
                target, r?.Excerpt(),
                "Name a unique keyword field of the log documents: Set-KeyServiceOpsContext -CentralLogTieBreaker <field> (e.g. event.id), or grant the role the point-in-time privilege (indices:data/read/open_point_in_time).");

        private static bool IsIndexNotFound(RestResponse r) => Text(At(At(r.TryJson(), "error"), "type")) == "index_not_found_exception";

        private JObject Expect(RestResponse r, object target, CentralLogCluster cluster = null)
        {
            var json = r.TryJson(datesAsText: true) as JObject;
            OpsException E(string id, OpsErrorCategory cat, string text, string action) => new OpsException(id, cat, text, target, r.Excerpt(), action);
            if (r.IsSuccess) return json ?? throw Invalid(r, target, "the body is not JSON");
            var error = At(json, "error");
            var type = Text(At(error, "type"));
            var reason = Text(At((At(error, "root_cause") as JArray)?.FirstOrDefault(), "reason")) ?? Text(At(error, "reason")) ?? Text(error as JValue) ?? "";
            var said = reason.Length > 0 ? ": " + reason : json == null ? " (no JSON error in the answer)" : "";
            // The status decides first, whatever the body is (JSON, HTML, or nothing: OpenSearch security's 401 is empty).
            switch (r.Status)
            {
                case 429:
                    throw E("CentralLogRateLimited", OpsErrorCategory.LimitsExceeded, $"The central log service kept rejecting the search (429) after {_ctx.MaxRetries} retries.",
                        "The cluster is overloaded: wait and run it again, narrow -Since, or read the VM's logs with -Source Docker.");
                case 401:
                    throw E("CentralLogUnauthorized", OpsErrorCategory.AuthenticationError, $"The central log service did not accept our credentials (401){said}",
                        "Set -CentralLogApiKey (or -CentralLogCredential) on Set-KeyServiceOpsContext, or read the VM's logs with -Source Docker / -Fallback.");
                case 403:
                    throw E("CentralLogForbidden", OpsErrorCategory.PermissionDenied, $"The central log service denied the search (403){said}",
                        "Ask for read access to the index, or read the VM's logs with -Source Docker / -Fallback.");
                case 404 when type == "search_context_missing_exception":
                    throw E("CentralLogPointInTimeExpired", OpsErrorCategory.OperationTimeout,
                        $"The central log service closed the point in time this search paged in{said} (the lines were read slower than its keep-alive of {KeepAlive}); the lines written so far are correct, the rest is not read.",
                        "Run the search again with a narrower -Since/-Until or -Tail, or read the output without pausing it (not Out-Host -Paging).");
                case 404:
                    throw E("CentralLogIndexNotFound", OpsErrorCategory.ObjectNotFound,
                        json != null ? $"The central log service has no index '{_ctx.Index}'{said}" : $"The central log service answered 404 for index '{_ctx.Index}' without an Elasticsearch error: the index or the address is wrong.",
                        "Check -CentralLogIndex (e.g. logstash-*) and that -CentralLogUri is the Elasticsearch/OpenSearch API, not Kibana.");
            }
            if (r.Status >= 500)
                throw E("CentralLogServerError", OpsErrorCategory.ResourceUnavailable, $"The central log service failed with HTTP {r.Status} after {_ctx.MaxRetries} retries.",
                    "Retry later, or read the VM's logs with -Source Docker.");
            if (json == null) throw Invalid(r, target, "the body is not JSON");
            if (r.Status == 400 && reason.IndexOf("Fielddata access on the _id field is disallowed", StringComparison.OrdinalIgnoreCase) >= 0)
                throw NoTieBreaker(cluster ?? new CentralLogCluster(), target, r);
            if (r.Status == 400 && reason.IndexOf("Result window is too large", StringComparison.OrdinalIgnoreCase) >= 0)
                throw E("CentralLogWindowTooLarge", OpsErrorCategory.LimitsExceeded, $"The central log service refused the page: {reason}",
                    "Lower the page size (CentralLogPageSize); deep pages use search_after.");
            if (r.Status == 400)
                throw E("CentralLogBadQuery", OpsErrorCategory.InvalidArgument, $"The central log service could not run the query ({type}): {reason}",
                    "Check -Query (Lucene syntax); text given with -Match is escaped for you.");
            throw E("CentralLogRequestFailed", OpsErrorCategory.InvalidResult, $"The central log service answered HTTP {r.Status}: {reason}", "Read the remote answer for details.");
        }
    }
}
