using System;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using KeyServiceOps.Core.PagerDuty;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using Newtonsoft.Json.Linq;
using Xunit;

namespace KeyServiceOps.Core.Tests
{
    public class PagerDutyClientTests
    {
        private static readonly CancellationToken None = CancellationToken.None;

        private static OpsContext Ctx(Lab.Estate.Lab lab, string token = null, string from = "oncall@example.com")
        {
            var c = TestCtx.For(lab);
            c.PagerDuty.Uri = lab.PagerDuty.BaseUri;
            c.PagerDuty.Token = Secret.FromPlainText(token ?? lab.PagerDuty.Token);
            c.PagerDuty.From = from;
            c.PagerDuty.MaxRetries = 4;
            c.PagerDuty.MaxBackoff = TimeSpan.FromSeconds(2);
            return c;
        }

        private static PagerDutyClient Client(OpsContext c, IOpsLog log = null) => new PagerDutyClient(c.ForPagerDuty(), log, null, TimeSpan.FromMilliseconds(20));

        [Fact]
        public async Task Finds_the_open_incident_for_an_address_across_pages()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 2, PagerDuty = true });
            for (int i = 0; i < 130; i++) lab.PagerDuty.AddIncident($"Disk {i} full on 10.9.9.{i % 200}");
            var alert = lab.PagerDuty.AddAlert(lab[1].Address, "prod-eu-1");
            lab.PagerDuty.AddAlert(lab[1].Address, "prod-eu-1", status: "resolved");
            var hits = await Client(Ctx(lab)).FindForAddressAsync(lab[1].Address, None);
            var hit = Assert.Single(hits);
            Assert.Equal(alert.Id, hit.IncidentId);
            Assert.Equal(8888, hit.Port);
            Assert.Equal("prod-eu-1", hit.Environment);
            Assert.Equal(lab[1].HealthUrl, hit.HealthUrl);
            Assert.Equal(2, lab.PagerDuty.Requests.Count(r => r.StartsWith("GET /incidents?")));
        }

        [Theory]
        [InlineData("Service: apiplatform_key_service in env: is down, url is http://10.0.0.5:8888/api/auth/healthz", "10.0.0.5", null)]
        [InlineData("[#1234] Service: apiplatform_key_service in env: prod-us is down, url is http://10.1.2.3:8888/api/auth/healthz", "10.1.2.3", "prod-us")]
        public void Parses_the_runbook_alert_text(string text, string address, string env)
        {
            Assert.True(AlertText.TryParse(text, out var a, out var p, out var e, out var url));
            Assert.Equal(address, a);
            Assert.Equal(8888, p);
            Assert.Equal(env, e);
            Assert.EndsWith("/api/auth/healthz", url);
        }

        [Theory]
        [InlineData("Disk full on 10.0.0.5")]
        [InlineData("Service: apiplatform_key_service in env: x is down, url is http://10.0.0.999:8888/api/auth/healthz")]
        [InlineData("")]
        public void Non_matching_text_leaves_the_address_empty(string text)
            => Assert.False(AlertText.TryParse(text, out _, out _, out _, out _));

        [Fact]
        public async Task Writes_a_note_escalates_and_assigns_by_email_with_audit()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 1, PagerDuty = true });
            var inc = lab.PagerDuty.AddAlert(lab[0].Address);
            var ctx = Ctx(lab);
            var pd = new PagerDutyClient(ctx.ForPagerDuty(), null, new Audit.AuditLog(ctx.Safety.AuditLogPath), TimeSpan.FromMilliseconds(20));
            await pd.AddNoteAsync(inc.Id, "manually removed target", None);
            Assert.Equal("manually removed target", Assert.Single(lab.PagerDuty.Incident(inc.Id).Notes).Content);
            var esc = await pd.UpdateIncidentAsync(inc.Id, new JObject { ["escalation_level"] = 2 }, null, None);
            Assert.Equal(2, esc.EscalationLevel);
            Assert.Equal(new[] { "PUSER02" }, lab.PagerDuty.Incident(inc.Id).Assignees);
            var uid = await pd.ResolveUserIdAsync("cipher-owner@example.com", None);
            await pd.UpdateIncidentAsync(inc.Id, new JObject { ["assignments"] = new JArray(new JObject { ["assignee"] = new JObject { ["id"] = uid, ["type"] = "user_reference" } }) }, null, None);
            Assert.Equal(new[] { "PCIPHER" }, lab.PagerDuty.Incident(inc.Id).Assignees);
            Assert.All(lab.PagerDuty.Requests.Where(r => !r.StartsWith("GET")), r => Assert.Contains("From=oncall@example.com", r));
            Assert.Equal(3, new Audit.AuditLog(ctx.Safety.AuditLogPath).Read().Count());
        }

        [Fact]
        public async Task Missing_From_is_refused_before_sending_and_the_server_check_maps_too()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 1, PagerDuty = true });
            var inc = lab.PagerDuty.AddAlert(lab[0].Address);
            var e = await Assert.ThrowsAsync<OpsException>(() => Client(Ctx(lab, from: null)).AddNoteAsync(inc.Id, "x", None));
            Assert.Equal("PagerDutyFromMissing", e.ErrorId);
            Assert.Contains("-PagerDutyFrom", e.RecommendedAction);
            Assert.Empty(lab.PagerDuty.Requests);
            var unknown = await Assert.ThrowsAsync<OpsException>(() => Client(Ctx(lab, from: "nobody@example.com")).AddNoteAsync(inc.Id, "x", None));
            Assert.Equal("PagerDutyRequesterNotFound", unknown.ErrorId);
            var malformed = await Assert.ThrowsAsync<OpsException>(() => Client(Ctx(lab, from: "not-an-email")).AddNoteAsync(inc.Id, "x", None));
            Assert.Equal("PagerDutyFromInvalid", malformed.ErrorId);
            Assert.Empty(lab.PagerDuty.Incident(inc.Id).Notes);
        }

        [Theory]
        [InlineData("bad-token", "PagerDutyUnauthorized")]
        [InlineData("pd-readonly-token", "PagerDutyForbidden")]
        public async Task Token_problems_are_typed(string token, string id)
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 1, PagerDuty = true });
            var inc = lab.PagerDuty.AddAlert(lab[0].Address);
            var e = await Assert.ThrowsAsync<OpsException>(() => Client(Ctx(lab, token: token)).AddNoteAsync(inc.Id, "x", None));
            Assert.Equal(id, e.ErrorId);
        }

        [Fact]
        public async Task Contract_codes_become_distinct_errors()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 1, PagerDuty = true });
            var inc = lab.PagerDuty.AddAlert(lab[0].Address);
            var pd = Client(Ctx(lab));
            async Task<string> Id(Func<Task> f) => (await Assert.ThrowsAsync<OpsException>(f)).ErrorId;
            Assert.Equal("PagerDutyCannotEscalate", await Id(() => pd.UpdateIncidentAsync(inc.Id, new JObject { ["escalation_level"] = 5 }, null, None)));
            Assert.Equal("PagerDutyAssigneeNotFound", await Id(() => pd.UpdateIncidentAsync(inc.Id, new JObject { ["assignments"] = new JArray(new JObject { ["assignee"] = new JObject { ["id"] = "PNOPE", ["type"] = "user_reference" } }) }, null, None)));
            Assert.Equal("PagerDutyPolicyNotFound", await Id(() => pd.UpdateIncidentAsync(inc.Id, new JObject { ["escalation_policy"] = new JObject { ["id"] = "PNOPE", ["type"] = "escalation_policy_reference" } }, null, None)));
            Assert.Equal("PagerDutyNoOneOnCall", await Id(() => pd.UpdateIncidentAsync(inc.Id, new JObject { ["escalation_policy"] = new JObject { ["id"] = "PEMPTY1", ["type"] = "escalation_policy_reference" } }, null, None)));
            Assert.Equal("PagerDutyNotFound", await Id(() => pd.GetIncidentAsync("QNOPE", None)));
            await pd.UpdateIncidentAsync(inc.Id, new JObject { ["status"] = "acknowledged" }, null, None);
            Assert.Equal("PagerDutyAlreadyAcknowledged", await Id(() => pd.UpdateIncidentAsync(inc.Id, new JObject { ["status"] = "acknowledged" }, null, None)));
            await pd.UpdateIncidentAsync(inc.Id, new JObject { ["status"] = "resolved" }, null, None);
            Assert.Equal("PagerDutyAlreadyResolved", await Id(() => pd.UpdateIncidentAsync(inc.Id, new JObject { ["status"] = "resolved" }, null, None)));
        }

        [Theory]
        [InlineData(true)]
        [InlineData(false)]
        public async Task Rate_limited_three_times_succeeds_after_backoff(bool headers)
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 1, PagerDuty = true });
            var inc = lab.PagerDuty.AddAlert(lab[0].Address);
            lab.PagerDuty.RateLimitWithHeaders = headers;
            lab.PagerDuty.RateLimitNext = 3;
            var log = new ListLog();
            var sw = Stopwatch.StartNew();
            await Client(Ctx(lab), log).AddNoteAsync(inc.Id, "after back-off", None);
            Assert.Single(lab.PagerDuty.Incident(inc.Id).Notes);
            Assert.Equal(4, lab.PagerDuty.RequestCount);
            Assert.Equal(3, log.Lines.Count(l => l.Contains("answered 429; retry")));
            if (headers) Assert.True(sw.Elapsed.TotalSeconds >= 2.5, $"ratelimit-reset: 1 s was not honoured ({sw.Elapsed})");
        }

        [Fact]
        public async Task Rate_limited_past_the_bound_gives_up_with_a_typed_error()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 1, PagerDuty = true });
            var inc = lab.PagerDuty.AddAlert(lab[0].Address);
            lab.PagerDuty.RateLimitWithHeaders = false;
            lab.PagerDuty.RateLimitNext = 100;
            var e = await Assert.ThrowsAsync<OpsException>(() => Client(Ctx(lab)).AddNoteAsync(inc.Id, "never", None));
            Assert.Equal("PagerDutyRateLimited", e.ErrorId);
            Assert.Equal(5, lab.PagerDuty.RequestCount); // 1 + 4 retries
            Assert.Empty(lab.PagerDuty.Incident(inc.Id).Notes);
        }

        [Fact]
        public async Task Server_errors_are_retried_and_400_is_not()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 1, PagerDuty = true });
            var inc = lab.PagerDuty.AddAlert(lab[0].Address);
            lab.PagerDuty.ServerErrorNext = 2;
            await Client(Ctx(lab)).AddNoteAsync(inc.Id, "ok", None);
            // A note is sent again only after the incident's notes show it did not land: POST 500, GET notes 500 (a read,
            // retried), GET notes (not there), POST ok.
            Assert.Equal(new[] { "POST", "GET", "GET", "POST" }, lab.PagerDuty.Requests.Select(r => r.Split(' ')[0]));
            Assert.Single(lab.PagerDuty.Incident(inc.Id).Notes);
            var before = lab.PagerDuty.RequestCount;
            await Assert.ThrowsAsync<OpsException>(() => Client(Ctx(lab)).UpdateIncidentAsync(inc.Id, new JObject { ["escalation_level"] = 9 }, null, None));
            Assert.Equal(before + 1, lab.PagerDuty.RequestCount);
        }

        [Fact]
        public async Task Cancellation_stops_the_backoff()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 1, PagerDuty = true });
            var inc = lab.PagerDuty.AddAlert(lab[0].Address);
            lab.PagerDuty.RateLimitNext = 100;
            var ctx = Ctx(lab);
            ctx.PagerDuty.MaxRetries = 50;
            ctx.PagerDuty.MaxBackoff = TimeSpan.FromSeconds(30);
            using var cts = new CancellationTokenSource(1500);
            var sw = Stopwatch.StartNew();
            // Cancelled, not rate-limited out: 50 retries with 1 s+ back-offs end as PagerDutyRateLimited otherwise.
            var e = await Assert.ThrowsAnyAsync<Exception>(() => new PagerDutyClient(ctx.ForPagerDuty(), null, null, TimeSpan.FromSeconds(1)).AddNoteAsync(inc.Id, "x", cts.Token));
            Assert.True(e is OperationCanceledException || (e is OpsException o && o.ErrorId == "PagerDutyCancelled"), e.ToString());
        }

        [Fact]
        public async Task The_token_never_reaches_the_log()
        {
            const string canary = "CANARY-pd-5b1e";
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 1, PagerDuty = true });
            lab.PagerDuty.Token = canary;
            var inc = lab.PagerDuty.AddAlert(lab[0].Address);
            var log = new ListLog();
            await Client(Ctx(lab, token: canary), log).AddNoteAsync(inc.Id, "n", None);
            Assert.Contains(log.Lines, l => l.Contains("Authorization=Token token=***"));
            Assert.DoesNotContain(canary, log.All);
        }
    }
}
