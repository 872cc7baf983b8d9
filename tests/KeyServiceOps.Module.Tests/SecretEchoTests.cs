using System;
using System.Linq;
using System.Net;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using Xunit;
using KeyServiceOps.TestHost;

namespace KeyServiceOps.Module.Tests
{
    /// <summary>Servers that echo request headers into their error bodies (some proxies and gateways do).</summary>
    public class SecretEchoTests
    {
        /// <summary>Answers every request with STATUS and a body that repeats every request header, then counts requests.</summary>
        private sealed class EchoServer : IDisposable
        {
            private readonly HttpListener _l = new HttpListener();
            public int Requests;
            public string LastHeaders = "";
            public Uri Uri { get; }
            public EchoServer(int status, int pad = 0)
            {
                Uri = KeyServiceOps.Lab.Estate.Loopback.FreeHttpPrefix();
                _l.Prefixes.Add(Uri.ToString());
                _l.Start();
                _ = Task.Run(async () =>
                {
                    while (_l.IsListening)
                    {
                        HttpListenerContext c;
                        try { c = await _l.GetContextAsync(); } catch { return; }
                        Interlocked.Increment(ref Requests);
                        var headers = string.Join("\n", c.Request.Headers.AllKeys.Select(k => $"{k}: {c.Request.Headers[k]}"));
                        LastHeaders = headers;
                        var body = Encoding.UTF8.GetBytes("{\"message\":\"" + new string('A', pad) + "bad request, you sent: " + headers.Replace("\"", "'").Replace("\n", " | ") + "\"}");
                        c.Response.StatusCode = status;
                        c.Response.ContentType = "application/json";
                        c.Response.OutputStream.Write(body, 0, body.Length);
                        c.Response.Close();
                    }
                });
            }
            public void Dispose() { try { _l.Stop(); _l.Close(); } catch { } }
        }

        // The hosted runspace has the core cmdlets only (no ConvertTo-SecureString).
        private const string Secure = "function Sec([string] $t) { $s = [System.Security.SecureString]::new(); foreach ($ch in $t.ToCharArray()) { $s.AppendChar($ch) }; $s }\n";

        private static string Everything(ShellResult r)
            => r.AllStreamsText() + "\n" + string.Join("\n", r.Errors.Select(e => e.Exception.ToString() + "\n" + e.ErrorDetails?.Message + "\n" + e.TargetObject))
               + "\n" + r.Terminating;

        [Theory]
        [InlineData(400)]
        [InlineData(500)]
        public void Kong_and_PagerDuty_tokens_echoed_by_the_server_never_reach_a_stream_or_an_error(int status)
        {
            using var kong = new EchoServer(status);
            using var pd = new EchoServer(status);
            using var sh = new HostedShell();
            var r = sh.Run(Secure + $@"$DebugPreference = 'Continue'; $VerbosePreference = 'Continue'
Get-RingBalancerTarget -Upstream u -KongAdminUri '{kong.Uri}' -KongToken (Sec 'kong-canary-7f3a9') -Verbose -Debug
Get-PagerDutyIncident -IncidentId PX1 -PagerDutyUri '{pd.Uri}' -PagerDutyToken (Sec 'pd-canary-91c2e') -Verbose -Debug");
            Assert.True(kong.Requests > 0 && pd.Requests > 0, "the servers were not asked");
            Assert.Contains("kong-canary-7f3a9", kong.LastHeaders); // the echo is real: the secret was in the answer
            Assert.Contains("pd-canary-91c2e", pd.LastHeaders);
            Assert.True(r.Errors.Count >= 2, Shell.Ids(r));
            var text = Everything(r);
            Assert.DoesNotContain("kong-canary-7f3a9", text);
            Assert.DoesNotContain("pd-canary-91c2e", text);
            Assert.Contains("***", text);
        }

        [Theory]
        [InlineData(200)]
        [InlineData(230)]
        [InlineData(245)]
        [InlineData(260)]
        public void An_echoed_secret_the_error_excerpt_would_cut_in_half_is_scrubbed_before_the_cut(int pad)
        {
            // Found by a hostile review: the excerpt of the answer was cut at 300 characters before it was scrubbed, so a
            // secret straddling the cut showed its first part (a key id and all but 2 characters of the key).
            using var kong = new EchoServer(500, pad);
            using var pd = new EchoServer(500, pad);
            using var logs = new EchoServer(500, pad);
            using var sh = new HostedShell();
            var r = sh.Run(Secure + $@"$DebugPreference = 'SilentlyContinue'
Get-RingBalancerTarget -Upstream u -KongAdminUri '{kong.Uri}' -KongToken (Sec 'KongTopSecretValue1234567890')
Set-KeyServiceOpsContext -PagerDutyMaxRetries 0 -CentralLogUri '{logs.Uri}' -CentralLogApiKey (Sec 'logid:LogTopSecretValue1234567') -Confirm:$false
Get-PagerDutyIncident -IncidentId PX1 -PagerDutyUri '{pd.Uri}' -PagerDutyToken (Sec 'PdTopSecretValue1234567890')
Get-KeyServiceLog 127.0.0.1 -Source Central -Since 1h");
            Assert.True(kong.Requests > 0 && pd.Requests > 0 && logs.Requests > 0, "the servers were not asked");
            var text = Everything(r);
            foreach (var prefix in new[] { "KongTopSecretValue12", "PdTopSecretValue12", "LogTopSecretValue12", "bG9naWQ6TG9nVG9wU2VjcmV0VmFsdWUx" })
                Assert.DoesNotContain(prefix, text);
        }

        [Fact]
        public void A_central_log_API_key_echoed_by_the_server_never_reaches_a_stream_or_an_error()
        {
            using var logs = new EchoServer(400);
            using var sh = new HostedShell();
            var r = sh.Run(Secure + $@"$DebugPreference = 'Continue'; $VerbosePreference = 'Continue'
Set-KeyServiceOpsContext -CentralLogUri '{logs.Uri}' -CentralLogApiKey (Sec 'cl-canary-3e8b1') -Confirm:$false
Get-KeyServiceLog 127.0.0.1 -Source Central -Since 1h -Verbose -Debug");
            Assert.True(logs.Requests > 0, "the server was not asked");
            Assert.Contains("cl-canary-3e8b1", logs.LastHeaders);
            Assert.True(r.Errors.Count >= 1 || r.Terminating != null, Shell.Ids(r));
            Assert.DoesNotContain("cl-canary-3e8b1", Everything(r));
        }

        [Theory]
        [InlineData("tok\r\nX-Evil: 1", "a line break")]
        [InlineData("tök", "a non-ASCII character")]
        [InlineData("to\tk", "a control character")]
        public void A_token_that_would_break_a_header_is_refused_naming_the_setting_and_nothing_is_sent(string token, string why)
        {
            using var kong = new EchoServer(200);
            using var pd = new EchoServer(200);
            using var sh = new HostedShell();
            var r = sh.Run(Secure + "Get-RingBalancerTarget -Upstream u -KongAdminUri $uri -KongToken (Sec $tok)",
                new System.Collections.Generic.Dictionary<string, object> { ["uri"] = kong.Uri.ToString(), ["tok"] = token });
            var p = sh.Run(Secure + "Get-PagerDutyIncident -IncidentId PX1 -PagerDutyUri $uri -PagerDutyToken (Sec $tok)",
                new System.Collections.Generic.Dictionary<string, object> { ["uri"] = pd.Uri.ToString(), ["tok"] = token });
            foreach (var (res, setting) in new[] { (r, "Kong Admin token"), (p, "PagerDuty API token") })
            {
                var e = res.Errors.Concat(res.Terminating is System.Management.Automation.RuntimeException rt && rt.ErrorRecord != null ? new[] { rt.ErrorRecord } : new System.Management.Automation.ErrorRecord[0]).FirstOrDefault();
                Assert.True(e != null, "no error");
                Assert.StartsWith("SecretInvalid,", e.FullyQualifiedErrorId);
                Assert.Contains(setting, e.Exception.Message);
                Assert.Contains(why, e.Exception.Message);
                Assert.DoesNotContain(token, e.Exception.ToString());
                Assert.False(string.IsNullOrEmpty(e.ErrorDetails?.RecommendedAction));
            }
            Assert.Equal(0, kong.Requests);
            Assert.Equal(0, pd.Requests);
        }
    }
}
