using System;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace KeyServiceOps.Core
{
    public sealed class RestResponse
    {
        public int Status { get; internal set; }
        /// <summary>The request's method: a write whose answer is unreadable may have been applied; a read changed nothing.</summary>
        public HttpMethod Method { get; internal set; }
        public bool IsWrite => Method != null && Method != HttpMethod.Get && Method != HttpMethod.Head;
        public string Body { get; internal set; }
        public HttpResponseHeaders Headers { get; internal set; }
        public string ContentType { get; internal set; }
        public TimeSpan Elapsed { get; internal set; }
        public bool IsSuccess => Status >= 200 && Status < 300;

        /// <summary>The body as JSON, or null when it is empty or not JSON (an HTML error page, say).</summary>
        public JToken TryJson() => TryJson(false);

        /// <summary>The body as JSON, or null; <paramref name="datesAsText"/> keeps date-like strings as written (nanoseconds, offsets).</summary>
        public JToken TryJson(bool datesAsText)
        {
            if (string.IsNullOrWhiteSpace(Body)) return null;
            var t = Body.TrimStart();
            if (!(t.StartsWith("{") || t.StartsWith("["))) return null;
            try
            {
                if (!datesAsText) return JToken.Parse(Body);
                using (var reader = new JsonTextReader(new System.IO.StringReader(Body)) { DateParseHandling = DateParseHandling.None })
                {
                    var token = JToken.ReadFrom(reader);
                    while (reader.Read()) if (reader.TokenType != JsonToken.Comment) return null; // trailing content: not one JSON document
                    return token;
                }
            }
            catch (JsonException) { return null; }
        }

        public string Header(string name)
            => Headers != null && Headers.TryGetValues(name, out var v) ? v.FirstOrDefault() : null;

        /// <summary>A short, single-line excerpt of the body for error details.</summary>
        /// <summary>The client's redactor: applied to the whole body before an excerpt is cut from it.</summary>
        internal Func<string, string> Redact { get; set; }

        public string Excerpt(int max = 300)
        {
            if (string.IsNullOrEmpty(Body)) return "(empty body)";
            var s = (Redact == null ? Body : Redact(Body)).Replace("\r", " ").Replace("\n", " ");
            return SafeText.Neutralize(s.Length <= max ? s : s.Substring(0, max) + "…");
        }
    }

    /// <summary>Shared HTTP handlers keyed by their TLS/proxy settings so connections are reused across cmdlets.</summary>
    public static class HttpHandlers
    {
        private static readonly ConcurrentDictionary<string, HttpMessageHandler> Cache = new ConcurrentDictionary<string, HttpMessageHandler>();

        /// <summary>One handler per TLS setting. No proxy: the Admin API, PagerDuty and the instances are reached directly (a proxy setting was never wired to anything and is gone).</summary>
        public static HttpMessageHandler Get(bool skipCertificateCheck, string caCertificatePath)
        {
            var key = $"{skipCertificateCheck}|{caCertificatePath}";
            return Cache.GetOrAdd(key, _ =>
            {
                var h = new HttpClientHandler
                {
                    UseProxy = false,
                    AllowAutoRedirect = false,
                    AutomaticDecompression = DecompressionMethods.GZip | DecompressionMethods.Deflate,
                    MaxConnectionsPerServer = 256,
                };
                if (skipCertificateCheck)
                    h.ServerCertificateCustomValidationCallback = (m, c, ch, e) => true;
                else if (!string.IsNullOrEmpty(caCertificatePath))
                {
                    var ca = new X509Certificate2(caCertificatePath);
                    h.ServerCertificateCustomValidationCallback = (m, cert, chain, errors) =>
                    {
                        if (errors == System.Net.Security.SslPolicyErrors.None) return true;
                        if ((errors & ~System.Net.Security.SslPolicyErrors.RemoteCertificateChainErrors) != 0) return false;
                        using (var c = new X509Chain())
                        {
                            c.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                            c.ChainPolicy.VerificationFlags = X509VerificationFlags.AllowUnknownCertificateAuthority;
                            c.ChainPolicy.ExtraStore.Add(ca);
                            if (!c.Build(new X509Certificate2(cert))) return false;
                            return c.ChainElements[c.ChainElements.Count - 1].Certificate.Thumbprint == ca.Thumbprint;
                        }
                    };
                }
                return h;
            });
        }
    }

    /// <summary>
    /// JSON-over-HTTP plumbing shared by the Kong, PagerDuty and central-log clients: timeouts,
    /// cancellation, transport errors as typed OpsExceptions, and a verbose line per call with no secrets.
    /// </summary>
    public sealed class RestClient
    {
        private readonly HttpClient _http;
        private readonly Uri _base;
        private readonly TimeSpan _timeout;
        private readonly IOpsLog _log;
        private readonly string _service;
        private readonly Action<HttpRequestMessage> _authorize;
        private readonly Func<string, string> _redact;
        private int _requestCount;

        /// <summary>The most of an answer that is read; a larger one is ...ResponseTooLarge (a broken or hostile server).</summary>
        public long MaxResponseBytes { get; set; } = HttpSettings.DefaultMaxResponseBytes;

        public RestClient(string service, Uri baseUri, HttpMessageHandler handler, TimeSpan timeout, IOpsLog log,
            Action<HttpRequestMessage> authorize, Func<string, string> redact = null)
        {
            _service = service;
            _base = baseUri.AbsoluteUri.EndsWith("/") ? baseUri : new Uri(baseUri.AbsoluteUri + "/");
            _http = new HttpClient(handler, disposeHandler: false) { Timeout = System.Threading.Timeout.InfiniteTimeSpan };
            _timeout = timeout;
            _log = log ?? NullOpsLog.Instance;
            _authorize = authorize;
            _redact = redact ?? (s => s);
        }

        public int RequestCount => _requestCount;
        public Uri BaseUri => _base;

        public Uri Resolve(string relative) => new Uri(_base, relative.TrimStart('/'));

        public async Task<RestResponse> SendAsync(HttpMethod method, string relative, JToken body, CancellationToken ct,
            Action<HttpRequestMessage> customize = null)
        {
            var uri = Resolve(relative);
            using (var req = new HttpRequestMessage(method, uri))
            {
                if (body != null)
                    req.Content = new StringContent(body.ToString(Formatting.None), Encoding.UTF8, "application/json");
                _authorize?.Invoke(req);
                customize?.Invoke(req);
                _log.Debug(_redact($"{_service} request: {method} {uri} headers: {string.Join("; ", req.Headers.Select(h => h.Key + "=" + string.Join(",", h.Value)))}"));
                using (var cts = CancellationTokenSource.CreateLinkedTokenSource(ct))
                {
                    cts.CancelAfter(_timeout);
                    var sw = Stopwatch.StartNew();
                    Interlocked.Increment(ref _requestCount);
                    try
                    {
                        using (var resp = await _http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, cts.Token).ConfigureAwait(false))
                        {
                            var text = await ReadBoundedAsync(resp, method, uri, cts.Token).ConfigureAwait(false);
                            sw.Stop();
                            // An error answer may echo what we sent (a proxy, a debug build): the whole body is scrubbed of
                            // this client's secrets before anything reads, cuts or quotes it.
                            var status = (int)resp.StatusCode;
                            var r = new RestResponse
                            {
                                Status = status, Method = method, Body = status >= 200 && status < 300 ? text : _redact(text), Headers = resp.Headers,
                                ContentType = resp.Content?.Headers?.ContentType?.MediaType, Elapsed = sw.Elapsed, Redact = _redact,
                            };
                            _log.Verbose($"{_service}: {method} {uri.AbsolutePath}{uri.Query} -> {r.Status} ({sw.ElapsedMilliseconds} ms)");
                            if (body != null) _log.Debug(_redact($"{_service} request body: {body.ToString(Formatting.None)}"));
                            _log.Debug(_redact($"{_service} response body: {r.Excerpt(2000)}"));
                            return r;
                        }
                    }
                    catch (OperationCanceledException) when (ct.IsCancellationRequested)
                    {
                        throw Unknown(method, new OpsException(_service + "Cancelled", OpsErrorCategory.OperationStopped,
                            $"{_service} call {method} {uri} was cancelled.", uri.ToString()));
                    }
                    catch (OperationCanceledException)
                    {
                        throw Unknown(method, new OpsException(_service + "Timeout", OpsErrorCategory.OperationTimeout,
                            $"{_service} did not answer {method} {uri} within {_timeout.TotalSeconds:0.#} s.", uri.ToString(),
                            recommendedAction: $"Check that {_base} is the right address and reachable, or raise the timeout ({TimeoutSetting})."));
                    }
                    catch (HttpRequestException e)
                    {
                        var refused = IsRefused(e);
                        var x = new OpsException(_service + "Unreachable", OpsErrorCategory.ConnectionError,
                            $"Cannot reach {_service} at {_base}: {Describe(e)}", uri.ToString(),
                            recommendedAction: $"Check the {_service} address in Set-KeyServiceOpsContext and that the service is running.", inner: e);
                        // A refused connection never carried the request; a reset or a closed stream may have, after the change.
                        throw refused ? x : Unknown(method, x);
                    }
                }
            }
        }

        /// <summary>Reads at most <see cref="MaxResponseBytes"/> of the answer; an endless or huge body is refused, not buffered.</summary>
        private async Task<string> ReadBoundedAsync(HttpResponseMessage resp, HttpMethod method, Uri uri, CancellationToken ct)
        {
            if (resp.Content == null) return "";
            var max = MaxResponseBytes;
            var declared = resp.Content.Headers.ContentLength;
            if (declared > max) throw TooLarge(method, uri, $"it declares {declared:N0} bytes");
            using (var stream = await resp.Content.ReadAsStreamAsync().ConfigureAwait(false))
            using (var buffer = new System.IO.MemoryStream(declared > 0 ? (int)declared.Value : 16 * 1024))
            {
                var chunk = new byte[64 * 1024];
                int n;
                while ((n = await stream.ReadAsync(chunk, 0, chunk.Length, ct).ConfigureAwait(false)) > 0)
                {
                    if (buffer.Length + n > max) throw TooLarge(method, uri, $"it went on past {max:N0} bytes");
                    buffer.Write(chunk, 0, n);
                }
                var charset = resp.Content.Headers.ContentType?.CharSet;
                Encoding enc;
                try { enc = string.IsNullOrEmpty(charset) ? Encoding.UTF8 : Encoding.GetEncoding(charset.Trim('"')); }
                catch (ArgumentException) { enc = Encoding.UTF8; }
                return enc.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
            }
        }

        private OpsException TooLarge(HttpMethod method, Uri uri, string what)
            => new OpsException(_service + "ResponseTooLarge", OpsErrorCategory.InvalidResult,
                $"{_service} answered {method} {uri.AbsolutePath} with more than {MaxResponseBytes / (1024 * 1024)} MiB ({what}); stopped reading. A real {_service} answer is far smaller: a broken proxy or the wrong address.",
                uri.ToString(), recommendedAction: $"Check the {_service} address (Set-KeyServiceOpsContext); if the answer is genuinely that large, raise maxResponseMegabytes in the config file.");

        /// <summary>The setting that sets this client's timeout, named in the advice (issue #27: "raise the timeout" named nothing).</summary>
        public string TimeoutSetting { get; set; } = "-HttpTimeoutSec on Set-KeyServiceOpsContext";

        /// <summary>A write whose answer was lost may have been applied: marked so the caller reconciles instead of assuming "nothing changed".</summary>
        private static OpsException Unknown(HttpMethod method, OpsException e)
            => method == HttpMethod.Get || method == HttpMethod.Head ? e : e.MaybeApplied();

        private static bool IsRefused(Exception e)
        {
            for (var x = e; x != null; x = x.InnerException)
                if (x is SocketException se && (se.SocketErrorCode == SocketError.ConnectionRefused || se.SocketErrorCode == SocketError.HostNotFound)) return true;
            return false;
        }

        internal static string Describe(Exception e)
        {
            for (var x = e; x != null; x = x.InnerException)
                if (x is SocketException se) return se.SocketErrorCode == SocketError.ConnectionRefused ? "connection refused" : se.Message;
            return e.InnerException?.Message ?? e.Message;
        }
    }
}
