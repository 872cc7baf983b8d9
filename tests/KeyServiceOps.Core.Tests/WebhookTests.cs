using System;
using System.Linq;
using System.Security.Cryptography;
using System.Text;
using KeyServiceOps.Core.PagerDuty;
using Xunit;

namespace KeyServiceOps.Core.Tests
{
    /// <summary>Issue #30: a PagerDuty V3 webhook verified (HMAC-SHA256, every secret, v1 entries) and parsed.</summary>
    public class WebhookTests
    {
        private const string Body = "{\"event\":{\"id\":\"01EVT\",\"event_type\":\"incident.triggered\",\"resource_type\":\"incident\",\"occurred_at\":\"2026-12-05T08:00:00Z\",\"data\":{\"id\":\"Q1\",\"number\":7,\"status\":\"triggered\",\"created_at\":\"2026-12-05T07:59:58Z\",\"title\":\"Service: apiplatform_key_service in env: prod is down, url is http://10.0.0.5:8888/api/auth/healthz\",\"service\":{\"id\":\"PS\",\"summary\":\"key\"},\"assignees\":[{\"id\":\"PU\",\"summary\":\"Ann\"}]}}}";

        private static string Sign(string body, string secret)
        {
            using var h = new HMACSHA256(Encoding.UTF8.GetBytes(secret));
            return "v1=" + Convert.ToHexString(h.ComputeHash(Encoding.UTF8.GetBytes(body))).ToLowerInvariant();
        }

        private static Secret[] S(params string[] s) => s.Select(Secret.FromPlainText).ToArray();

        [Fact]
        public void A_signed_delivery_is_the_incident_with_the_address_of_the_alert()
        {
            var d = PagerDutyWebhook.VerifyAndParse(Encoding.UTF8.GetBytes(Body), Sign(Body, "s3cret"), S("s3cret"));
            Assert.Equal(("01EVT", "incident.triggered"), (d.EventId, d.EventType));
            Assert.Equal("Q1", d.Incident.IncidentId);
            Assert.Equal("10.0.0.5", d.Incident.Address);
            Assert.Equal(8888, d.Incident.Port);
            Assert.Equal(new DateTimeOffset(2026, 12, 5, 7, 59, 58, TimeSpan.Zero), d.Incident.CreatedAt);
            Assert.Equal(new[] { "Ann" }, d.Incident.Assignees);
        }

        [Fact]
        public void Any_secret_and_any_v1_entry_may_match_while_a_secret_rotates()
        {
            var header = Sign(Body, "old") + ", v0=ignored, " + Sign(Body, "new");
            Assert.NotNull(PagerDutyWebhook.VerifyAndParse(Encoding.UTF8.GetBytes(Body), header, S("new")));
            Assert.NotNull(PagerDutyWebhook.VerifyAndParse(Encoding.UTF8.GetBytes(Body), Sign(Body, "new"), S("other", "new")));
        }

        [Theory]
        [InlineData("unsigned", "PagerDutyWebhookUnsigned")]
        [InlineData("wrong secret", "PagerDutyWebhookBadSignature")]
        [InlineData("body changed", "PagerDutyWebhookBadSignature")]
        [InlineData("not hex", "PagerDutyWebhookUnsigned")]
        [InlineData("no secret", "PagerDutyWebhookNoSecret")]
        [InlineData("not json", "PagerDutyWebhookMalformed")]
        [InlineData("no event", "PagerDutyWebhookMalformed")]
        public void Every_bad_delivery_is_a_typed_error_that_names_no_secret(string how, string errorId)
        {
            var body = how == "not json" ? "<html>hi</html>" : how == "no event" ? "{\"x\":1}" : Body;
            var signed = how == "body changed" ? Body.Replace("10.0.0.5", "10.0.0.6") : body;
            var header = how switch { "unsigned" => null, "wrong secret" => Sign(body, "nope"), "not hex" => "v1=zz", _ => Sign(body, "s3cret") };
            var secrets = how == "no secret" ? new Secret[0] : S("s3cret");
            var e = Assert.Throws<OpsException>(() => PagerDutyWebhook.VerifyAndParse(Encoding.UTF8.GetBytes(signed), header, secrets));
            Assert.Equal(errorId, e.ErrorId);
            Assert.False(string.IsNullOrEmpty(e.RecommendedAction));
            Assert.DoesNotContain("s3cret", e.Message + e.RecommendedAction + e.Details);
        }

        [Fact]
        public void A_delivery_seen_before_is_known_by_its_event_id()
        {
            var path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"kso-replay-{Guid.NewGuid():N}.txt");
            var g = new WebhookReplayGuard(path);
            Assert.True(g.FirstTime("01A"));
            Assert.True(g.FirstTime("01B"));
            Assert.False(g.FirstTime("01A"));
            Assert.False(new WebhookReplayGuard(path).FirstTime("01B")); // another process, the same file
        }
    }
}
