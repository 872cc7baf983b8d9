using System;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using KeyServiceOps.Core.CentralLogs;
using KeyServiceOps.Core.Health;
using KeyServiceOps.Core.PagerDuty;
using KeyServiceOps.Core.RingBalancer;
using Xunit;

namespace KeyServiceOps.Core.Tests
{
    /// <summary>Each remote client is given only its own settings, never the whole context.</summary>
    public class SubsystemSettingsTests
    {
        [Theory]
        [InlineData(typeof(KongClient), typeof(KongSettings))]
        [InlineData(typeof(PagerDutyClient), typeof(PagerDutySettings))]
        [InlineData(typeof(CentralLogClient), typeof(CentralLogSettings))]
        [InlineData(typeof(HealthChecker), null)]
        public void A_client_cannot_be_given_the_whole_context(Type client, Type own)
        {
            var ctors = client.GetConstructors();
            Assert.NotEmpty(ctors);
            Assert.All(ctors, c => Assert.DoesNotContain(c.GetParameters(), p => p.ParameterType == typeof(OpsContext)));
            Assert.All(client.GetFields(System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic), f => Assert.NotEqual(typeof(OpsContext), f.FieldType));
            if (own != null) Assert.Contains(ctors, c => c.GetParameters().First().ParameterType == own);
        }

        [Fact]
        public void Each_service_gets_its_own_tls_token_and_retries_from_the_context()
        {
            var c = new OpsContext
            { Kong = { AdminUri = new Uri("https://kong.example:8444"), SkipCertificateCheck = true, CaCertificatePath = "/kong-ca.pem", PageSize = 77 }, PagerDuty = { Uri = new Uri("https://pd.example"), CaCertificatePath = "/pd-ca.pem", MaxRetries = 9, From = "me@example.com" }, Health = { Port = 9999 }, CentralLogs = { Uri = new Uri("https://logs.example:9200"), SkipCertificateCheck = true, Index = "svc-*", MaxRetries = 2 } };
            var (k, p, l) = (c.ForKong(), c.ForPagerDuty(), c.ForCentralLogs());
            Assert.Equal((true, "/kong-ca.pem", 77), (k.SkipCertificateCheck, k.CaCertificatePath, k.PageSize));
            Assert.Equal((false, "/pd-ca.pem", 9, "me@example.com", 9999), (p.SkipCertificateCheck, p.CaCertificatePath, p.MaxRetries, p.From, p.InstancePort));
            Assert.Equal((true, (string)null, "svc-*", 2), (l.SkipCertificateCheck, l.CaCertificatePath, l.Index, l.MaxRetries));
            Assert.Same(c.SessionCache, k.SessionCache);
        }

        [Fact]
        public async Task A_client_is_made_from_its_settings_alone_without_a_context()
        {
            // No OpsContext anywhere: a script or a test can make a client from the few values it needs.
            var e = Assert.Throws<OpsException>(() => new KongClient(new KongSettings(), null));
            Assert.Equal("KongNotConfigured", e.ErrorId);
            var pd = new PagerDutyClient(new PagerDutySettings { Uri = new Uri("http://127.0.0.1:9"), Token = Secret.FromPlainText("t0k3n-value"), MaxRetries = 0 }, null);
            var down = await Assert.ThrowsAsync<OpsException>(() => pd.GetIncidentAsync("P1ABC", CancellationToken.None));
            Assert.Equal("PagerDutyUnreachable", down.ErrorId);
            Assert.DoesNotContain("t0k3n-value", down.ToString());
        }

        [Fact]
        public void The_ring_balancer_service_reads_a_narrow_live_view_of_the_context()
        {
            Assert.All(typeof(RingBalancerService).GetConstructors(), c => Assert.DoesNotContain(c.GetParameters(), p => p.ParameterType == typeof(OpsContext)));
            var ctx = new OpsContext { Kong = { AdminUri = new Uri("http://127.0.0.1:9") }, Removal = { MaintenanceTag = "maintenance" } };
            var rb = new RingBalancerService(ctx, new KongClient(ctx.ForKong(), null), HealthChecker.FromContext(ctx, null), null, null);
            var t = new RingBalancerTarget { Target = "10.0.0.1:8888", Address = "10.0.0.1", Port = 8888, Tags = new TextList(new[] { "drain-me" }) };
            Assert.False(rb.IsMaintenance(t));
            ctx.Removal.MaintenanceTag = "drain-me";          // Set-KeyServiceOpsContext later in the session: the service follows it
            Assert.True(rb.IsMaintenance(t));
        }
    }
}
