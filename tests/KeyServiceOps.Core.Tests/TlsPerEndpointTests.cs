using System;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Threading;
using System.Threading.Tasks;
using KeyServiceOps.Core.PagerDuty;
using KeyServiceOps.Core.RingBalancer;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Xunit;

namespace KeyServiceOps.Core.Tests
{
    /// <summary>An HTTPS server on loopback with a self-signed certificate that no one trusts.</summary>
    internal sealed class SelfSignedServer : IAsyncDisposable
    {
        private readonly WebApplication _app;
        public Uri Uri { get; }

        private SelfSignedServer(WebApplication app, Uri uri) { _app = app; Uri = uri; }

        public static async Task<SelfSignedServer> StartAsync()
        {
            using var key = RSA.Create(2048);
            var req = new CertificateRequest("CN=127.0.0.1", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
            var san = new SubjectAlternativeNameBuilder(); san.AddIpAddress(IPAddress.Loopback); req.CertificateExtensions.Add(san.Build());
            using var made = req.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
            var cert = X509CertificateLoader.LoadPkcs12(made.Export(X509ContentType.Pfx), null);
            var b = WebApplication.CreateSlimBuilder();
            b.Logging.ClearProviders();
            b.WebHost.UseKestrel(o => o.Listen(IPAddress.Loopback, 0, l => l.UseHttps(cert)));
            var app = b.Build();
            app.Run(async ctx =>
            {
                ctx.Response.ContentType = "application/json";
                var path = ctx.Request.Path.Value ?? "";
                await ctx.Response.WriteAsync(path.Contains("/incidents/") ? "{\"incident\":{\"id\":\"P1ABC\",\"incident_number\":1,\"title\":\"t\",\"status\":\"triggered\"}}"
                    : "{\"data\":[],\"next\":null}");
            });
            await app.StartAsync();
            var http = new Uri(System.Linq.Enumerable.First(app.Urls));
            return new SelfSignedServer(app, new Uri($"https://127.0.0.1:{http.Port}/"));
        }

        public async ValueTask DisposeAsync() { await _app.StopAsync(); await _app.DisposeAsync(); }
    }

    public class TlsPerEndpointTests
    {
        [Fact]
        public async Task Skipping_Kongs_certificate_check_never_skips_PagerDutys()
        {
            await using var server = await SelfSignedServer.StartAsync();
            // a lab Kong with a self-signed certificate
            var ctx = new OpsContext { Kong = { AdminUri = server.Uri, SkipCertificateCheck = true }, PagerDuty = { Uri = server.Uri, Token = Secret.FromPlainText("tok"), MaxRetries = 0 } };
            Assert.Empty(await new KongClient(ctx.ForKong(), null).GetTargetsAsync("u", CancellationToken.None)); // Kong: accepted
            var e = await Assert.ThrowsAsync<OpsException>(() => new PagerDutyClient(ctx.ForPagerDuty(), null).GetIncidentAsync("P1ABC", CancellationToken.None));
            Assert.Equal("PagerDutyUnreachable", e.ErrorId);                   // PagerDuty: the same certificate is refused
            ctx.PagerDuty.SkipCertificateCheck = true;                           // only its own setting lets it through
            Assert.Equal("P1ABC", (await new PagerDutyClient(ctx.ForPagerDuty(), null).GetIncidentAsync("P1ABC", CancellationToken.None)).Id);
        }
    }
}
