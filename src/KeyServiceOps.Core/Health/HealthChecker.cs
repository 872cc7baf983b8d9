using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Net.Http;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace KeyServiceOps.Core.Health
{
    /// <summary>
    /// The runbook's check, `curl http://IP:8888/api/auth/healthz`, done from here: a fresh connection per
    /// probe, a hard deadline, and at most MaxBodyBytes of the body read (a 50 MB answer is not slurped).
    /// </summary>
    public sealed class HealthChecker
    {
        public const int DefaultMaxBodyBytes = 64 * 1024;
        private readonly HttpClient _http;
        private readonly IOpsLog _log;

        public HealthChecker(HttpMessageHandler handler, string path, string expectedText, TimeSpan timeout,
            IOpsLog log = null, int maxBodyBytes = DefaultMaxBodyBytes)
        {
            _http = new HttpClient(handler, disposeHandler: false) { Timeout = System.Threading.Timeout.InfiniteTimeSpan };
            Path = string.IsNullOrEmpty(path) ? OpsContext.DefaultHealthPath : (path.StartsWith("/") ? path : "/" + path);
            ExpectedText = string.IsNullOrEmpty(expectedText) ? OpsContext.DefaultExpectedText : expectedText;
            Timeout = timeout <= TimeSpan.Zero ? TimeSpan.FromSeconds(5) : timeout;
            MaxBodyBytes = maxBodyBytes;
            _log = log ?? NullOpsLog.Instance;
        }

        public static HealthChecker FromContext(OpsContext ctx, IOpsLog log, TimeSpan? timeout = null)
            => new HealthChecker(HttpHandlers.Get(false, null), ctx.Health.Path, ctx.Health.ExpectedText,
                timeout ?? ctx.Health.Timeout, log);

        public string Path { get; }
        public string ExpectedText { get; }
        public TimeSpan Timeout { get; }
        public int MaxBodyBytes { get; }

        public string UrlFor(Endpoint ep)
        {
            var host = Endpoint.Host(ep.Address);
            return $"http://{host}:{ep.Port}{Path}";
        }

        public async Task<HealthResult> CheckAsync(Endpoint ep, CancellationToken ct)
        {
            var url = UrlFor(ep);
            var result = new HealthResult { Address = ep.Address, Port = ep.Port, Url = url, CheckedAt = DateTimeOffset.UtcNow };
            var sw = Stopwatch.StartNew();
            using (var cts = CancellationTokenSource.CreateLinkedTokenSource(ct))
            {
                cts.CancelAfter(Timeout);
                try
                {
                    using (var req = new HttpRequestMessage(HttpMethod.Get, url))
                    {
                        req.Headers.ConnectionClose = true;
                        using (var resp = await _http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, cts.Token).ConfigureAwait(false))
                        {
                            result.HttpStatus = (int)resp.StatusCode;
                            var (found, read, truncated) = await ReadForTextAsync(resp, cts.Token).ConfigureAwait(false);
                            if (!resp.IsSuccessStatusCode)
                            {
                                result.StatusValue = HealthStatus.Unhealthy;
                                result.Detail = $"HTTP {(int)resp.StatusCode} {resp.ReasonPhrase}";
                            }
                            else if (found)
                            {
                                result.StatusValue = HealthStatus.Up;
                                result.Healthy = true;
                                result.Detail = "The API is available and operational";
                            }
                            else
                            {
                                result.StatusValue = HealthStatus.Degraded;
                                result.Detail = truncated
                                    ? $"HTTP {(int)resp.StatusCode} but the expected text was not in the first {read} bytes (body not read further)"
                                    : $"HTTP {(int)resp.StatusCode} but the body lacks '{ExpectedText}'";
                            }
                        }
                    }
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    throw;
                }
                catch (OperationCanceledException)
                {
                    result.StatusValue = HealthStatus.Timeout;
                    result.Detail = $"no answer within {Timeout.TotalSeconds:0.##} s";
                }
                catch (Exception e) when (e is HttpRequestException || e is IOException || e is SocketException)
                {
                    var refused = IsRefused(e);
                    result.StatusValue = refused ? HealthStatus.Down : HealthStatus.Error;
                    result.Detail = refused ? "connection refused" : RestClient.Describe(e);
                }
            }
            result.Latency = sw.Elapsed;
            _log.Verbose($"Health {url}: {result.Status} in {(int)result.Latency.TotalMilliseconds} ms ({result.Detail})");
            return result;
        }

        private async Task<(bool found, int read, bool truncated)> ReadForTextAsync(HttpResponseMessage resp, CancellationToken ct)
        {
            using (var stream = await resp.Content.ReadAsStreamAsync().ConfigureAwait(false))
            {
                var buffer = new byte[8192];
                var all = new MemoryStream();
                int total = 0;
                while (total < MaxBodyBytes)
                {
                    var n = await stream.ReadAsync(buffer, 0, Math.Min(buffer.Length, MaxBodyBytes - total), ct).ConfigureAwait(false);
                    if (n == 0) return (Contains(all), total, false);
                    all.Write(buffer, 0, n);
                    total += n;
                    if (Contains(all)) return (true, total, false);
                }
                return (Contains(all), total, true);
            }
        }

        private bool Contains(MemoryStream ms)
            => Encoding.UTF8.GetString(ms.GetBuffer(), 0, (int)ms.Length).IndexOf(ExpectedText, StringComparison.Ordinal) >= 0;

        private static bool IsRefused(Exception e)
        {
            for (var x = e; x != null; x = x.InnerException)
                if (x is SocketException se && se.SocketErrorCode == SocketError.ConnectionRefused) return true;
            return false;
        }

        /// <summary>Checks many endpoints concurrently, at most <paramref name="throttle"/> at once, results in input order.</summary>
        public async Task<IReadOnlyList<HealthResult>> CheckManyAsync(IReadOnlyList<Endpoint> endpoints, int throttle, CancellationToken ct)
        {
            using (var gate = new SemaphoreSlim(Math.Max(1, throttle)))
            {
                var tasks = new Task<HealthResult>[endpoints.Count];
                for (int i = 0; i < endpoints.Count; i++)
                {
                    var ep = endpoints[i];
                    tasks[i] = Gated(gate, () => CheckAsync(ep, ct), ct);
                }
                return await Task.WhenAll(tasks).ConfigureAwait(false);
            }
        }

        public static async Task<T> Gated<T>(SemaphoreSlim gate, Func<Task<T>> work, CancellationToken ct)
        {
            await gate.WaitAsync(ct).ConfigureAwait(false);
            try { return await work().ConfigureAwait(false); }
            finally { gate.Release(); }
        }
    }
}
