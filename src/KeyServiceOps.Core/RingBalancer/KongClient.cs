using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Net.Http;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;
using Newtonsoft.Json.Linq;

namespace KeyServiceOps.Core.RingBalancer
{
    /// <summary>
    /// Kong Admin API client for upstream targets, working across the eras in the contract:
    /// 2.2-2.8 (duplicate POST = 200 + Deprecation) and 3.x (409), pagination by offset, RBAC token, workspace.
    /// </summary>
    public sealed class KongClient
    {
        /// <summary>The one TargetNotFound: Kong has no such target in the upstream (its 404, or not in its listing).</summary>
        public static OpsException TargetNotFound(string upstream, string target, string what, string details = null)
            => new OpsException("TargetNotFound", OpsErrorCategory.ObjectNotFound,
                $"Kong has no target {target} in upstream '{upstream}' to {what}.", target, details,
                "List the targets (Get-RingBalancerTarget): a target marked unhealthy stays in the upstream; one that was deleted must be added back instead (-Method Delete, the default).");

        private static readonly HttpMethod Patch = new HttpMethod("PATCH");
        private readonly RestClient _rest;
        private readonly string _prefix;
        private readonly int _pageSize;
        private readonly IOpsLog _log;
        /// <summary>What each Admin API said at `GET /`, once per session (the context's cache: the version and mode do not change under a session).</summary>
        private readonly System.Collections.Concurrent.ConcurrentDictionary<string, object> _session;

        public KongClient(KongSettings ctx, IOpsLog log)
        {
            if (ctx.AdminUri == null)
                throw new OpsException("KongNotConfigured", OpsErrorCategory.InvalidArgument,
                    "No Kong Admin API address is set.", null,
                    recommendedAction: "Run Set-KeyServiceOpsContext -KongAdminUri http://kong-admin:8001 (or pass -KongAdminUri).");
            var token = ctx.Token;
            var header = string.IsNullOrEmpty(ctx.TokenHeader) ? "Kong-Admin-Token" : ctx.TokenHeader;
            string secret = token?.RevealForHeader("Kong Admin token");
            _rest = new RestClient("Kong", ctx.AdminUri, HttpHandlers.Get(ctx.SkipCertificateCheck, ctx.CaCertificatePath),
                ctx.Http.Timeout, log,
                req => { if (token != null) req.Headers.TryAddWithoutValidation(header, token.RevealForHeader("Kong Admin token")); },
                Redactor.Of(new[] { secret }).Scrub);
            _rest.MaxResponseBytes = ctx.Http.MaxResponseBytes;
            _prefix = string.IsNullOrEmpty(ctx.Workspace) ? "" : Uri.EscapeDataString(ctx.Workspace) + "/";
            _pageSize = Math.Max(1, Math.Min(1000, ctx.PageSize));
            _log = log ?? NullOpsLog.Instance;
            _session = ctx.SessionCache;
        }

        /// <summary>
        /// Kong's version and mode from `GET /` (version, configuration.database, configuration.role), read once per
        /// process and Admin API address; -Verbose says what was found. A node that does not answer it is taken as 3.x,
        /// traditional, with a database (the defaults the client was written for).
        /// </summary>
        public async Task<KongNodeInfo> GetNodeInfoAsync(CancellationToken ct)
        {
            var key = "kong-node " + _rest.BaseUri;
            if (_session.TryGetValue(key, out var known)) return (KongNodeInfo)known;
            var r = await _rest.SendAsync(HttpMethod.Get, "", null, ct).ConfigureAwait(false);
            // A proxy's error page or a server error is an error here as anywhere; only a JSON 404 (an Admin API that
            // does not serve `/`) falls back to the defaults.
            if (!r.IsSuccess && !(r.Status == 404 && r.TryJson() != null)) Expect(r, "GET / (version and mode)", null, null);
            // A 2xx that is not JSON (a sign-in page in front of the Admin API) is not Kong: typed, not "assume 3.x".
            if (r.IsSuccess && r.TryJson() == null) Expect(r, "GET / (version and mode)", null, null);
            var j = r.IsSuccess ? r.TryJson() : null;
            var info = new KongNodeInfo
            {
                Version = (string)j?["version"], Database = (string)j?["configuration"]?["database"], Role = (string)j?["configuration"]?["role"] ?? "traditional",
            };
            var m = Regex.Match(info.Version ?? "", @"^(\d+)\.(\d+)");
            if (m.Success) { info.Major = int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture); info.Minor = int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture); }
            else info.Major = 3;
            _log.Verbose(j == null ? $"Kong at {_rest.BaseUri} did not describe itself at GET / (HTTP {r.Status}); assuming 3.x, traditional, with a database." : $"Found {info} at {_rest.BaseUri}.");
            return (KongNodeInfo)_session.GetOrAdd(key, info);
        }

        /// <summary>
        /// Sets Kong's health mark on a target (`…/targets/{t}/healthy|unhealthy`): PUT in 3.x, POST in 2.x. Changes no
        /// database row. Refused by Kong with 400 when the upstream has no health checker.
        /// </summary>
        public async Task MarkHealthAsync(string upstream, string idOrTarget, bool healthy, CancellationToken ct)
        {
            var node = await GetNodeInfoAsync(ct).ConfigureAwait(false);
            var path = UpstreamPath(upstream) + "/targets/" + TargetPath(idOrTarget) + (healthy ? "/healthy" : "/unhealthy");
            var what = $"mark {idOrTarget} {(healthy ? "healthy" : "unhealthy")}";
            var r = await _rest.SendAsync(node.Era2 ? HttpMethod.Post : HttpMethod.Put, path, null, ct).ConfigureAwait(false);
            if (r.IsSuccess) return;
            var message = (string)r.TryJson()?["message"] ?? "";
            if (r.Status == 400 && message.IndexOf("no healthchecker", StringComparison.OrdinalIgnoreCase) >= 0)
                throw new OpsException("KongNoHealthchecker", OpsErrorCategory.InvalidOperation,
                    $"Kong cannot {what}: upstream '{upstream}' has no health checker ({message}).", idOrTarget, r.Excerpt(),
                    "Use -Method Drain (weight 0) or Delete, or configure active or passive health checks on the upstream.");
            if (r.Status == 404 && r.TryJson() != null)
            {
                await GetUpstreamAsync(upstream, ct).ConfigureAwait(false); // KongUpstreamNotFound when it is the upstream
                throw TargetNotFound(upstream, idOrTarget, what, r.Excerpt());
            }
            Expect(r, what, idOrTarget, upstream);
        }

        public int RequestCount => _rest.RequestCount;
        public Uri BaseUri => _rest.BaseUri;

        private string UpstreamPath(string upstream) => _prefix + "upstreams/" + Uri.EscapeDataString(upstream);
        private static string TargetPath(string target) => Uri.EscapeDataString(target);

        public async Task<UpstreamInfo> GetUpstreamAsync(string upstream, CancellationToken ct)
        {
            var r = await _rest.SendAsync(HttpMethod.Get, UpstreamPath(upstream), null, ct).ConfigureAwait(false);
            var j = Expect(r, "GET upstream", upstream, upstream);
            var active = j["healthchecks"]?["active"];
            double Interval(string k) => active?[k]?["interval"]?.Type == JTokenType.Integer || active?[k]?["interval"]?.Type == JTokenType.Float ? (double)active[k]["interval"] : 0;
            return new UpstreamInfo
            {
                Id = (string)j["id"], Name = (string)j["name"],
                Threshold = j["healthchecks"]?["threshold"]?.Type is JTokenType.Integer or JTokenType.Float ? (double)j["healthchecks"]["threshold"] : 0,
                ActiveHealthchecks = Interval("healthy") > 0 || Interval("unhealthy") > 0,
                Tags = ReadTags(j["tags"]),
            };
        }

        /// <summary>Names of all upstreams (for completion).</summary>
        public async Task<List<string>> ListUpstreamsAsync(CancellationToken ct)
        {
            var names = new List<string>();
            await PagesAsync(_prefix + "upstreams", "GET upstreams", null, u => names.Add((string)u["name"]), ct).ConfigureAwait(false);
            return names;
        }

        /// <summary>All targets of the upstream, following every page.</summary>
        public async Task<List<RingBalancerTarget>> GetTargetsAsync(string upstream, CancellationToken ct, IProgress<int> progress = null)
        {
            var all = new List<RingBalancerTarget>();
            await PagesAsync(UpstreamPath(upstream) + "/targets", "GET targets", upstream, t => all.Add(ToTarget(t, upstream)), ct, () => progress?.Report(all.Count)).ConfigureAwait(false);
            return all;
        }

        /// <summary>Kong's per-target health (one node's view). Key: stored target string.</summary>
        public async Task<Dictionary<string, string>> GetHealthAsync(string upstream, CancellationToken ct)
        {
            var map = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            await PagesAsync(UpstreamPath(upstream) + "/health", "GET health", upstream, t =>
            {
                if (!(t is JObject o) || o["target"]?.Type != JTokenType.String)
                    throw NotAdminApi($"Kong answered GET health with an entry that is not an object with a 'target' string ({JsonShape.Quote(t)}): not the Admin API's JSON.", upstream, null, "Check -KongAdminUri points at Kong's Admin API (default port 8001), not another service.");
                map[(string)o["target"]] = o["health"]?.Type == JTokenType.String ? SafeText.Neutralize((string)o["health"]) : null;
            }, ct).ConfigureAwait(false);
            return map;
        }

        /// <summary>
        /// The one paging loop: `size` per page, our own next-page URL from `offset`, every item to <paramref name="onItem"/>,
        /// until `next` is null. Pages that never end are KongPaginationRunaway, wherever they come from.
        /// </summary>
        private async Task PagesAsync(string path, string what, string upstream, Action<JToken> onItem, CancellationToken ct, Action afterPage = null)
        {
            string offset = null;
            for (int page = 0; page < 100000; page++)
            {
                var q = $"?size={_pageSize}" + (offset != null ? "&offset=" + Uri.EscapeDataString(offset) : "");
                var r = await _rest.SendAsync(HttpMethod.Get, path + q, null, ct).ConfigureAwait(false);
                var j = Expect(r, what, upstream, upstream);
                var data = j["data"];
                if (data != null && data.Type != JTokenType.Null && !(data is JArray))
                    throw NotAdminApi($"Kong answered {what} with 'data' as {data.Type}, not a list: not the Admin API's JSON.", upstream, r.Excerpt(), "Check -KongAdminUri points at Kong's Admin API (default port 8001), not another service.");
                foreach (var item in (data as JArray) ?? new JArray()) onItem(item);
                afterPage?.Invoke();
                offset = NextOffset(j);
                if (offset == null) return;
            }
            throw new OpsException("KongPaginationRunaway", OpsErrorCategory.InvalidResult, $"Kong kept returning pages for {what} past any sane bound (100,000 pages).", upstream,
                recommendedAction: "Check the Admin API (or a proxy in front of it) for a `next` link that never ends.");
        }

        /// <summary>
        /// The offset for the next page. We build the URL ourselves (with our workspace prefix) rather than
        /// following `next` verbatim, which in some releases omits the workspace.
        /// </summary>
        private static string NextOffset(JToken j)
        {
            var next = j["next"];
            if (next == null || next.Type == JTokenType.Null) return null;
            var off = j["offset"];
            if (off != null && off.Type != JTokenType.Null) return (string)off;
            var m = Regex.Match((string)next, @"[?&]offset=([^&]+)");
            return m.Success ? Uri.UnescapeDataString(m.Groups[1].Value) : null;
        }

        public async Task<RingBalancerTarget> FindTargetAsync(string upstream, string target, CancellationToken ct)
        {
            var r = await _rest.SendAsync(HttpMethod.Get, UpstreamPath(upstream) + "/targets/" + TargetPath(target), null, ct).ConfigureAwait(false);
            if (r.Status == 404 && r.TryJson() != null)
            {
                // Is it the target or the upstream that is missing? Ask for the upstream (throws KongUpstreamNotFound).
                await GetUpstreamAsync(upstream, ct).ConfigureAwait(false);
                return null;
            }
            return ToTarget(Expect(r, "GET target", target, upstream), upstream);
        }

        /// <summary>POST a target. Returns the stored target and whether it was created (false: it already existed).</summary>
        public async Task<(RingBalancerTarget target, bool created, string note)> AddTargetAsync(string upstream, string target, int weight, string[] tags, CancellationToken ct)
        {
            var body = new JObject { ["target"] = target, ["weight"] = weight };
            if (tags != null && tags.Length > 0) body["tags"] = new JArray(tags);
            var r = await _rest.SendAsync(HttpMethod.Post, UpstreamPath(upstream) + "/targets", body, ct).ConfigureAwait(false);
            if (r.Status == 409 && r.TryJson() != null)
                return (await FindTargetAsync(upstream, target, ct).ConfigureAwait(false), false, "Kong 3.x answered 409: the target is already present");
            if (r.Status == 200 && string.Equals(r.Header("Deprecation"), "true", StringComparison.OrdinalIgnoreCase))
                return (ToTarget(Expect(r, "POST target", target, upstream), upstream), false, "Kong 2.x answered 200 with Deprecation: the target was already present (updated in place)");
            var j = Expect(r, "POST target", target, upstream);
            return (ToTarget(j, upstream), true, null);
        }

        /// <summary>DELETE a target; false when Kong says it is already gone (404).</summary>
        public async Task<bool> DeleteTargetAsync(string upstream, string idOrTarget, CancellationToken ct)
        {
            var r = await _rest.SendAsync(HttpMethod.Delete, UpstreamPath(upstream) + "/targets/" + TargetPath(idOrTarget), null, ct).ConfigureAwait(false);
            if (r.Status == 204 || (r.Status == 200 && r.TryJson() != null)) return true; // a 200 HTML page is a proxy's, not Kong's
            if (r.Status == 404 && r.TryJson() != null) return false;
            Expect(r, "DELETE target", idOrTarget, upstream);
            return true;
        }

        public async Task<RingBalancerTarget> SetWeightAsync(string upstream, string idOrTarget, int weight, CancellationToken ct, string targetText = null)
        {
            var r = await _rest.SendAsync(Patch, UpstreamPath(upstream) + "/targets/" + TargetPath(idOrTarget), new JObject { ["weight"] = weight }, ct).ConfigureAwait(false);
            // Kong 2.0-2.1 has no PATCH for a target: PUT the whole target instead (not in DB-less mode, code 12, where no write works).
            if (r.Status == 405 && (int?)r.TryJson()?["code"] != 12)
            {
                _log.Verbose($"Kong refused PATCH for {idOrTarget} (HTTP 405); setting weight {weight} with PUT.");
                r = await _rest.SendAsync(HttpMethod.Put, UpstreamPath(upstream) + "/targets/" + TargetPath(idOrTarget), new JObject { ["target"] = targetText ?? idOrTarget, ["weight"] = weight }, ct).ConfigureAwait(false);
            }
            return ToTarget(Expect(r, weight == 0 ? "drain target" : "set target weight", idOrTarget, upstream), upstream);
        }

        internal static RingBalancerTarget ToTarget(JToken t, string upstream)
        {
            // A target is an object with its target text (and an id): anything else is not Kong's answer (issue #26).
            if (!(t is JObject) || t["target"]?.Type != JTokenType.String)
                throw NotAdminApi($"Kong answered with a target that is not an object with a 'target' string ({JsonShape.Quote(t)}): not the Admin API's JSON.", upstream, null, "Check -KongAdminUri points at Kong's Admin API (default port 8001), not another service.");
            try { return ToTargetCore(t, upstream); }
            catch (Exception e) when (JsonShape.IsWrongShape(e))
            {
                throw NotAdminApi($"Kong answered with a target whose fields have the wrong JSON types ({e.Message}).", upstream, JsonShape.Quote(t), "Check -KongAdminUri points at Kong's Admin API (default port 8001), not another service.");
            }
        }

        private static RingBalancerTarget ToTargetCore(JToken t, string upstream)
        {
            var s = (string)t["target"];
            Endpoint.TryParse(s, 8000, out var ep, out _);
            DateTimeOffset? created = null;
            if (t["created_at"] != null && t["created_at"].Type != JTokenType.Null)
                created = DateTimeOffset.FromUnixTimeMilliseconds((long)Math.Round((double)t["created_at"] * 1000));
            return new RingBalancerTarget
            {
                Upstream = upstream, Id = (string)t["id"], Target = s, Address = ep.Address, Port = ep.Port,
                Weight = t["weight"]?.Type == JTokenType.Integer ? (int)t["weight"] : 100,
                Tags = ReadTags(t["tags"]), CreatedAt = created, KongHealth = SafeText.Neutralize((string)t["health"]),
            };
        }

        private static string[] ReadTags(JToken t) => t is JArray a ? a.Select(x => SafeText.Neutralize(x.Type == JTokenType.String ? (string)x : x.ToString(Newtonsoft.Json.Formatting.None))).ToArray() : new string[0];

        /// <summary>KongInvalidResponse: what answered is not Kong's Admin API (a proxy's page, another service).</summary>
        /// <summary>A Kong answer read with the wrong JSON types somewhere the parsing did not expect (see <see cref="ClientAnswers"/>).</summary>
        internal static OpsException Malformed(Exception e)
            => NotAdminApi($"Kong answered with JSON of a shape the Admin API does not send ({e.Message}).", null, null, "Check -KongAdminUri points at Kong's Admin API (default port 8001), not another service.");

        private static OpsException NotAdminApi(string message, object target, string details, string advice)
            => new OpsException("KongInvalidResponse", OpsErrorCategory.InvalidResult, message, target, details, advice);

        /// <summary>Turns every non-success answer into its own typed error; returns the JSON body on success.</summary>
        private JToken Expect(RestResponse r, string what, object target, string upstream)
        {
            var json = r.TryJson();
            if (r.IsSuccess && json is JObject) return json;
            if (r.IsSuccess && json != null)
                throw NotAdminApi($"Kong answered {what} with HTTP {r.Status} and JSON that is not an object ({json.Type}): not the Admin API.", target, r.Excerpt(), "Check -KongAdminUri points at Kong's Admin API (default port 8001), not another service.").MaybeAppliedIf(r.IsWrite);
            if (r.IsSuccess && json == null && r.Status == 204) return new JObject();
            string message = (string)json?["message"];
            // A gateway's page (502/504 HTML) or a 5xx: the request may have reached Kong and been applied (OutcomeUnknown).
            if (json == null)
                throw NotAdminApi($"Kong answered {what} with HTTP {r.Status} and a body that is not JSON ({r.ContentType ?? "no content type"}): a proxy or load balancer error page, not the Admin API.",
                    target, r.Excerpt(), "Check -KongAdminUri points at the Admin API (not the proxy port) and that Kong is up behind any load balancer.").MaybeAppliedIf(r.IsWrite);
            // Kong's Admin API names every refusal in a top-level "message"; a 4xx without one is another service at that
            // address (PagerDuty's API, a mistyped port): never "bad credentials" or "no such upstream".
            if (r.Status >= 400 && r.Status < 500 && !(json is JObject jo && jo["message"]?.Type == JTokenType.String))
                throw NotAdminApi($"Kong answered {what} with HTTP {r.Status} in a shape that is not the Admin API's (no \"message\"): the address may not be Kong's Admin API.",
                    target, r.Excerpt(), "Check -KongAdminUri points at Kong's Admin API (default port 8001), not another service.");
            switch (r.Status)
            {
                case 401:
                    throw new OpsException("KongUnauthorized", OpsErrorCategory.AuthenticationError,
                        $"Kong rejected the credentials for {what}: {message}", target, r.Excerpt(),
                        "Set a valid RBAC token: Set-KeyServiceOpsContext -KongToken (Read-Host -AsSecureString), or -KongTokenVariable NAME; check -KongTokenHeader matches Kong's rbac_auth_header.");
                case 403:
                    throw new OpsException("KongForbidden", OpsErrorCategory.PermissionDenied,
                        $"Kong refused {what}: {message}", target, r.Excerpt(), "Ask a Kong admin for write permission on upstream targets in this workspace.");
                case 404:
                    throw new OpsException("KongUpstreamNotFound", OpsErrorCategory.ObjectNotFound,
                        $"Kong has no upstream '{upstream}'{(_prefix.Length > 0 ? " in workspace " + _prefix.TrimEnd('/') : "")}.", upstream, r.Excerpt(),
                        "Check -Upstream (Get-RingBalancerTarget -Upstream NAME) and -Workspace.");
                case 405:
                    throw new OpsException("KongOperationUnsupported", OpsErrorCategory.InvalidOperation,
                        $"Kong cannot do {what}: {message}", target, r.Excerpt(), "Kong runs DB-less or the method is wrong for this release: change the declarative config instead.");
                case 409:
                    throw new OpsException("KongConflict", OpsErrorCategory.ResourceExists, $"Kong reports a conflict for {what}: {message}", target, r.Excerpt(),
                        "List the upstream's targets (Get-RingBalancerTarget): another change may have landed first; run it again against what is there now.");
                case 400:
                    throw new OpsException("KongInvalidRequest", OpsErrorCategory.InvalidArgument,
                        $"Kong rejected {what}: {message}", target, r.Excerpt(), "Read Kong's answer above: check the target (host:port), the weight and the tags given.");
                default:
                    var server = new OpsException("KongServerError", OpsErrorCategory.ResourceUnavailable,
                        $"Kong failed {what} with HTTP {r.Status}: {message}", target, r.Excerpt(), "Retry; if it persists check the Kong node's error log.");
                    throw server.MaybeAppliedIf(r.IsWrite && r.Status >= 500);
            }
        }
    }
}
