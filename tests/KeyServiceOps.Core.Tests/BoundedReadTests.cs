using System;
using System.Diagnostics;
using System.Linq;
using System.Net;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using KeyServiceOps.Core.PagerDuty;
using KeyServiceOps.Core.RingBalancer;
using Xunit;

namespace KeyServiceOps.Core.Tests
{
    /// <summary>A server that answers 200 with a body that never ends (or a huge declared one).</summary>
    internal sealed class EndlessServer : IDisposable
    {
        private readonly HttpListener _l = new HttpListener();
        private readonly CancellationTokenSource _stop = new CancellationTokenSource();
        public long BytesSent;
        public Uri Uri { get; }

        public EndlessServer()
        {
            Uri = KeyServiceOps.Lab.Estate.Loopback.FreeHttpPrefix();
            _l.Prefixes.Add(Uri.ToString());
            _l.Start();
            _ = Task.Run(async () =>
            {
                while (!_stop.IsCancellationRequested)
                {
                    HttpListenerContext c;
                    try { c = await _l.GetContextAsync(); } catch { return; }
                    _ = Task.Run(async () =>
                    {
                        c.Response.StatusCode = 200;
                        c.Response.ContentType = "application/json";
                        c.Response.SendChunked = true;
                        var chunk = Encoding.ASCII.GetBytes("{\"data\":[" + string.Concat(Enumerable.Repeat("\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\",", 800)));
                        try
                        {
                            // Bounded by count and time, as every load in the lab is: at most 4 GiB or 60 s.
                            var until = DateTime.UtcNow.AddSeconds(60);
                            while (!_stop.IsCancellationRequested && BytesSent < 4L << 30 && DateTime.UtcNow < until)
                            {
                                await c.Response.OutputStream.WriteAsync(chunk, 0, chunk.Length, _stop.Token);
                                Interlocked.Add(ref BytesSent, chunk.Length);
                            }
                        }
                        catch (Exception) { /* the client stopped reading */ }
                        try { c.Response.Abort(); } catch (Exception) { }
                    });
                }
            });
        }

        public void Dispose() { _stop.Cancel(); try { _l.Stop(); _l.Close(); } catch (Exception) { } }
    }

    /// <summary>Tests that measure the whole process's memory run alone: other tests' allocations would count as theirs.</summary>
    [CollectionDefinition("Process memory", DisableParallelization = true)]
    public sealed class ProcessMemoryCollection { }

    [Collection("Process memory")]
    public class BoundedReadTests
    {
        private readonly Xunit.Abstractions.ITestOutputHelper _out;
        public BoundedReadTests(Xunit.Abstractions.ITestOutputHelper output) { _out = output; }

        /// <summary>The working set, sampled every 20 ms while <paramref name="work"/> runs: its highest value over the start.</summary>
        private static async Task<long> GrowthDuring(Func<Task> work)
        {
            GC.Collect(); GC.WaitForPendingFinalizers(); GC.Collect();
            var p = Process.GetCurrentProcess();
            p.Refresh();
            var start = p.WorkingSet64;
            long peak = start;
            using var done = new CancellationTokenSource();
            var sampler = Task.Run(async () =>
            {
                while (!done.IsCancellationRequested)
                {
                    p.Refresh();
                    peak = Math.Max(peak, p.WorkingSet64);
                    try { await Task.Delay(20, done.Token); } catch (OperationCanceledException) { }
                }
            });
            try { await work(); }
            finally { done.Cancel(); await sampler; }
            return peak - start;
        }

        [Fact]
        public async Task An_endless_Kong_answer_is_KongResponseTooLarge_and_the_process_grows_by_at_most_64_MB()
        {
            using var server = new EndlessServer();
            var ctx = new OpsContext { Kong = { AdminUri = server.Uri }, Http = { Timeout = TimeSpan.FromSeconds(60) } };
            OpsException e = null;
            var growth = await GrowthDuring(async () => e = await Assert.ThrowsAsync<OpsException>(() => new KongClient(ctx.ForKong(), null).GetTargetsAsync("u", CancellationToken.None)));
            _out.WriteLine($"endless Kong answer: the server sent {server.BytesSent / (1024 * 1024)} MB, the process grew by {growth / (1024 * 1024)} MB at most");
            Assert.Equal("KongResponseTooLarge", e.ErrorId);
            Assert.Equal(OpsErrorCategory.InvalidResult, e.Category);
            Assert.Contains("16 MiB", e.Message);
            Assert.True(growth <= 64L * 1024 * 1024, $"the process grew by {growth / (1024 * 1024)} MB reading an endless answer");
            Assert.True(server.BytesSent > 16L * 1024 * 1024, $"the server sent only {server.BytesSent} bytes"); // it really was past the cap
        }

        [Fact]
        public async Task An_endless_PagerDuty_answer_is_PagerDutyResponseTooLarge_under_a_smaller_cap()
        {
            using var server = new EndlessServer();
            var ctx = new OpsContext { PagerDuty = { Uri = server.Uri, Token = Secret.FromPlainText("tok"), MaxRetries = 0 }, Http = { MaxResponseBytes = 1024 * 1024 } };
            var e = await Assert.ThrowsAsync<OpsException>(() => new PagerDutyClient(ctx.ForPagerDuty(), null).GetIncidentAsync("P1", CancellationToken.None));
            Assert.Equal("PagerDutyResponseTooLarge", e.ErrorId);
        }
    }
}

namespace KeyServiceOps.Core.Tests
{
    public class PagerDutyUnconfirmedTests
    {
        [Fact]
        public async System.Threading.Tasks.Task A_note_answered_with_an_HTML_page_is_PagerDutyInvalidResponse_and_never_audited_as_Added()
        {
            using var l = new System.Net.HttpListener();
            var uri = KeyServiceOps.Lab.Estate.Loopback.FreeHttpPrefix();
            l.Prefixes.Add(uri.ToString());
            l.Start();
            var posts = 0;
            _ = System.Threading.Tasks.Task.Run(async () =>
            {
                while (l.IsListening)
                {
                    System.Net.HttpListenerContext c;
                    try { c = await l.GetContextAsync(); } catch { return; }
                    if (c.Request.HttpMethod == "POST") Interlocked.Increment(ref posts);
                    var body = Encoding.UTF8.GetBytes("<html><body>Welcome to the captive portal</body></html>");
                    c.Response.StatusCode = 200; c.Response.ContentType = "text/html";
                    c.Response.OutputStream.Write(body, 0, body.Length);
                    c.Response.Close();
                }
            });
            var audit = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"kso-pd-html-{Guid.NewGuid():N}.jsonl");
            var ctx = new OpsContext { PagerDuty = { Uri = uri, Token = Secret.FromPlainText("tok"), From = "a@example.com", MaxRetries = 0 } };
            var log = new KeyServiceOps.Core.Audit.AuditLog(audit);
            var e = await Assert.ThrowsAsync<OpsException>(() => new PagerDutyClient(ctx.ForPagerDuty(), null, log).AddNoteAsync("P1ABC", "manually removed target", CancellationToken.None));
            Assert.Equal("PagerDutyInvalidResponse", e.ErrorId);
            Assert.Equal(1, posts);
            var entry = Assert.Single(log.Read(action: "AddIncidentNote"));
            // Issue #25: a write answered by a page that is not PagerDuty's may have been applied: Unknown, never Failed nor Added.
            Assert.Equal("Unknown", entry.Outcome);
            Assert.DoesNotContain("\"outcome\":\"Added\"", System.IO.File.ReadAllText(audit));
            l.Stop();
        }
    }
}
