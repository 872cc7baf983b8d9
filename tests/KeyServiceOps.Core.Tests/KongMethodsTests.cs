using System;
using System.Collections.Generic;
using System.Linq;
using System.Net.Http;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using KeyServiceOps.Core.Audit;
using KeyServiceOps.Core.RingBalancer;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using Newtonsoft.Json.Linq;
using Xunit;

namespace KeyServiceOps.Core.Tests
{
    /// <summary>
    /// The Kong emulator against the contract (raw HTTP, not our client): `GET /`, health marks per era, DB-less and
    /// control-plane refusals, the 2.x weight-0 rule.
    /// </summary>
    public class KongEmulatorContractTests
    {
        private static readonly HttpClient Http = new HttpClient();

        private static async Task<(int status, JObject body, string deprecation)> Send(KongEmulator k, string method, string path, string json = null)
        {
            var req = new HttpRequestMessage(new HttpMethod(method), new Uri(k.BaseUri, path));
            if (json != null) req.Content = new StringContent(json, Encoding.UTF8, "application/json");
            var r = await Http.SendAsync(req);
            var text = await r.Content.ReadAsStringAsync();
            return ((int)r.StatusCode, text.Length > 0 && text.TrimStart().StartsWith("{") ? JObject.Parse(text) : null,
                r.Headers.TryGetValues("Deprecation", out var d) ? d.First() : null);
        }

        [Theory]
        [InlineData(KongEra.V3, "3.", "PUT", "POST")]
        [InlineData(KongEra.V2, "2.", "POST", "PUT")]
        public async Task Root_says_version_and_mode_and_health_marks_take_the_era_s_verb(KongEra era, string version, string verb, string wrong)
        {
            await using var k = await KongEmulator.StartAsync(era);
            var probe = "UNHEALTHY"; // what Kong's active checks would see of the instance
            k.HealthOf = _ => probe;
            k.AddUpstream("u");
            k.AddTarget("u", "10.0.0.5:8888");
            var (s, root, _) = await Send(k, "GET", "/");
            Assert.Equal(200, s);
            Assert.StartsWith(version, (string)root["version"]);
            Assert.Equal("postgres", (string)root["configuration"]["database"]);
            Assert.Equal("traditional", (string)root["configuration"]["role"]);
            Assert.Equal(405, (await Send(k, wrong, "/upstreams/u/targets/10.0.0.5:8888/unhealthy")).status);
            Assert.Equal(204, (await Send(k, verb, "/upstreams/u/targets/10.0.0.5:8888/unhealthy")).status);
            var health = (await Send(k, "GET", "/upstreams/u/health")).body;
            Assert.Equal("UNHEALTHY", (string)health["data"][0]["health"]);
            Assert.Equal(100, (int)health["data"][0]["weight"]); // no database change: still listed with its weight
            Assert.Equal(204, (await Send(k, verb, "/upstreams/u/targets/10.0.0.5:8888/healthy")).status);
            Assert.False(k.Marks.ContainsKey("10.0.0.5:8888"));
            // Marked unhealthy again: Kong's own active checks re-enable it once the probe passes.
            Assert.Equal(204, (await Send(k, verb, "/upstreams/u/targets/10.0.0.5:8888/unhealthy")).status);
            probe = "HEALTHY";
            Assert.Equal("HEALTHY", (string)(await Send(k, "GET", "/upstreams/u/health")).body["data"][0]["health"]);
            Assert.False(k.Marks.ContainsKey("10.0.0.5:8888"));
        }

        [Fact]
        public async Task Without_a_health_checker_a_mark_is_400_and_DB_less_refuses_writes_and_marks()
        {
            await using var k = await KongEmulator.StartAsync(KongEra.V3);
            k.AddUpstream("u", healthchecks: false);
            k.AddTarget("u", "10.0.0.5:8888");
            var (s, b, _) = await Send(k, "PUT", "/upstreams/u/targets/10.0.0.5:8888/unhealthy");
            Assert.Equal(400, s);
            Assert.Equal("no healthchecker found for u", (string)b["message"]);
            k.Database = "off";
            var del = await Send(k, "DELETE", "/upstreams/u/targets/10.0.0.5:8888");
            Assert.Equal(405, del.status);
            Assert.Equal(12, (int)del.body["code"]);
            Assert.Equal(405, (await Send(k, "POST", "/upstreams/u/targets", "{\"target\":\"10.0.0.6:8888\"}")).status);
            Assert.Equal(500, (await Send(k, "PUT", "/upstreams/u/targets/10.0.0.5:8888/unhealthy")).status);
            Assert.Single(k.Targets("u"));
        }

        [Fact]
        public async Task A_control_plane_does_not_serve_health_marks()
        {
            await using var k = await KongEmulator.StartAsync(KongEra.V3);
            k.Role = "control_plane";
            k.AddUpstream("u");
            k.AddTarget("u", "10.0.0.5:8888");
            Assert.Equal(404, (await Send(k, "PUT", "/upstreams/u/targets/10.0.0.5:8888/unhealthy")).status);
            Assert.Equal(200, (await Send(k, "PATCH", "/upstreams/u/targets/10.0.0.5:8888", "{\"weight\":0}")).status);
        }

        [Fact]
        public async Task In_2x_a_weight_0_target_looks_absent_to_a_single_GET_and_a_POST_upserts_it()
        {
            await using var k = await KongEmulator.StartAsync(KongEra.V2);
            k.AddUpstream("u");
            k.AddTarget("u", "10.0.0.5:8888", 40);
            Assert.Equal(200, (await Send(k, "PATCH", "/upstreams/u/targets/10.0.0.5:8888", "{\"weight\":0}")).status);
            Assert.Equal(404, (await Send(k, "GET", "/upstreams/u/targets/10.0.0.5:8888")).status);
            var list = (await Send(k, "GET", "/upstreams/u/targets")).body;
            Assert.Equal(0, (int)list["data"][0]["weight"]); // listed (2.4.1+)
            var (s, b, dep) = await Send(k, "POST", "/upstreams/u/targets", "{\"target\":\"10.0.0.5:8888\",\"weight\":40}");
            Assert.Equal(200, s);
            Assert.Equal("true", dep);
            Assert.Equal(40, (int)b["weight"]);
            Assert.Equal(200, (await Send(k, "GET", "/upstreams/u/targets/10.0.0.5:8888")).status);
        }
    }

    /// <summary>Remove-/Add- by Delete, Drain and MarkUnhealthy, in both eras, and the refusals where Kong cannot.</summary>
    public class KongMethodsTests
    {
        private static readonly CancellationToken None = CancellationToken.None;

        private static (RingBalancerService svc, OpsContext ctx, ListLog log) Service(Lab.Estate.Lab lab)
        {
            var ctx = TestCtx.For(lab);
            var log = new ListLog();
            return (TestCtx.Service(ctx, log), ctx, log);
        }

        private static int Writes(Lab.Estate.Lab lab) => lab.Kong.Requests.Count(r => !r.StartsWith("GET"));

        [Theory]
        [InlineData(KongEra.V3)]
        [InlineData(KongEra.V2)]
        public async Task Drain_keeps_the_target_at_weight_0_and_Add_restores_its_old_weight(KongEra era)
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Era = era });
            var (svc, ctx, _) = Service(lab);
            var t = await svc.ResolveAsync(lab.Upstream, lab[0].Target, None);
            lab.Kong.SetWeight(lab.Upstream, lab[0].Target, 40);
            t = await svc.ResolveAsync(lab.Upstream, lab[0].Target, None);
            var drained = await svc.RemoveResolvedAsync(lab.Upstream, t, RemovalMethod.Drain, false, null, null, None);
            Assert.Equal(TargetChangeAction.Drained, drained.ActionValue);
            Assert.Equal("Drain", drained.Method);
            Assert.Equal(40, drained.Weight);
            var row = Assert.Single(lab.Kong.Targets(lab.Upstream), x => x.Target == lab[0].Target);
            Assert.Equal(0, row.Weight);
            // What a single-target GET says depends on the era; the module finds the drained target either way.
            Assert.Equal(era == KongEra.V2, await svc.ResolveAsync(lab.Upstream, lab[0].Target, None) == null);
            Assert.NotNull(await svc.FindIncludingDrainedAsync(lab.Upstream, lab[0].Target, None));

            var restored = await svc.AddAsync(new AddRequest { Upstream = lab.Upstream, Target = lab[0].Target, Weight = drained.Weight, Method = RemovalMethod.Drain }, None);
            Assert.Equal(TargetChangeAction.Restored, restored.ActionValue);
            row = Assert.Single(lab.Kong.Targets(lab.Upstream), x => x.Target == lab[0].Target);
            Assert.Equal(40, row.Weight);
            Assert.Equal(t.Id, row.Id); // the same row: id and tags kept
            var audit = new AuditLog(ctx.Safety.AuditLogPath).Read().Select(a => (a.Action, a.Outcome)).ToList();
            Assert.Contains(("DrainTarget", "Drained"), audit);
            Assert.Contains(("AddTarget", "Restored"), audit);
        }

        [Theory]
        [InlineData(KongEra.V3, "PUT")]
        [InlineData(KongEra.V2, "POST")]
        public async Task MarkUnhealthy_uses_the_era_s_verb_writes_no_row_and_Add_marks_it_healthy(KongEra era, string verb)
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Era = era });
            var (svc, ctx, _) = Service(lab);
            var t = await svc.ResolveAsync(lab.Upstream, lab[1].Target, None);
            await lab[1].SetModeAsync(InstanceMode.Down);
            var c = await svc.RemoveResolvedAsync(lab.Upstream, t, RemovalMethod.MarkUnhealthy, false, null, null, None);
            Assert.Equal(TargetChangeAction.MarkedUnhealthy, c.ActionValue);
            Assert.Contains($"{verb} /upstreams/{lab.Upstream}/targets/{t.Id}/unhealthy", lab.Kong.Requests);
            Assert.Equal("UNHEALTHY", lab.Kong.Marks[lab[1].Target]);
            Assert.Equal(100, Assert.Single(lab.Kong.Targets(lab.Upstream), x => x.Target == lab[1].Target).Weight);

            // Add refuses while the instance is down (our own check), and marks it healthy once it is up.
            var e = await Assert.ThrowsAsync<OpsException>(() => svc.AddAsync(new AddRequest { Upstream = lab.Upstream, Target = lab[1].Target, Weight = 100, Method = RemovalMethod.MarkUnhealthy }, None));
            Assert.Equal("TargetUnhealthy", e.ErrorId);
            await lab[1].SetModeAsync(InstanceMode.Up);
            var back = await svc.AddAsync(new AddRequest { Upstream = lab.Upstream, Target = lab[1].Target, Weight = 100, Method = RemovalMethod.MarkUnhealthy }, None);
            Assert.Equal(TargetChangeAction.MarkedHealthy, back.ActionValue);
            Assert.False(lab.Kong.Marks.ContainsKey(lab[1].Target));
            Assert.Equal(new[] { "MarkTargetUnhealthy", "MarkTargetHealthy" }, new AuditLog(ctx.Safety.AuditLogPath).Read().Select(a => a.Action).Distinct());
        }

        [Fact]
        public async Task MarkUnhealthy_without_a_health_checker_is_KongNoHealthchecker_naming_Drain()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, KongHealthchecks = false });
            var (svc, _, _) = Service(lab);
            var t = await svc.ResolveAsync(lab.Upstream, lab[0].Target, None);
            var e = await Assert.ThrowsAsync<OpsException>(() => svc.RemoveResolvedAsync(lab.Upstream, t, RemovalMethod.MarkUnhealthy, false, null, null, None));
            Assert.Equal("KongNoHealthchecker", e.ErrorId);
            Assert.Contains("Drain", e.RecommendedAction);
            Assert.Empty(lab.Kong.Marks);
        }

        [Theory]
        [InlineData(RemovalMethod.Delete)]
        [InlineData(RemovalMethod.Drain)]
        [InlineData(RemovalMethod.MarkUnhealthy)]
        public async Task A_DB_less_node_is_refused_before_any_write(RemovalMethod method)
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3 });
            lab.Kong.Database = "off";
            var (svc, _, log) = Service(lab);
            var t = await svc.ResolveAsync(lab.Upstream, lab[0].Target, None);
            var e = await Assert.ThrowsAsync<OpsException>(() => svc.RemoveResolvedAsync(lab.Upstream, t, method, false, null, null, None));
            Assert.Equal("KongDbLess", e.ErrorId);
            Assert.Contains("declarative", e.RecommendedAction);
            Assert.Equal(0, Writes(lab));
            Assert.Equal(3, lab.Kong.Targets(lab.Upstream).Count(x => x.Weight > 0));
            Assert.Contains(log.Lines, l => l.Contains("database off"));
        }

        [Fact]
        public async Task A_control_plane_refuses_MarkUnhealthy_and_allows_Drain()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3 });
            lab.Kong.Role = "control_plane";
            var (svc, _, _) = Service(lab);
            var t = await svc.ResolveAsync(lab.Upstream, lab[0].Target, None);
            var e = await Assert.ThrowsAsync<OpsException>(() => svc.RemoveResolvedAsync(lab.Upstream, t, RemovalMethod.MarkUnhealthy, false, null, null, None));
            Assert.Equal("KongControlPlaneNoHealthMarks", e.ErrorId);
            Assert.Equal(0, Writes(lab));
            var c = await svc.RemoveResolvedAsync(lab.Upstream, t, RemovalMethod.Drain, false, null, null, None);
            Assert.Equal(TargetChangeAction.Drained, c.ActionValue);
        }

        [Fact]
        public async Task Kong_s_version_and_mode_are_read_once_per_session()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 4 });
            var (svc, ctx, log) = Service(lab);
            foreach (var i in new[] { 0, 1 })
            {
                var t = await svc.ResolveAsync(lab.Upstream, lab[i].Target, None);
                await svc.RemoveResolvedAsync(lab.Upstream, t, RemovalMethod.Drain, false, null, null, None);
            }
            // A second service on the same context (as a second cmdlet call is) asks no more.
            var again = TestCtx.Service(ctx, log);
            await again.CheckMethodAsync(RemovalMethod.Delete, lab[2].Target, None);
            Assert.Equal(1, lab.Kong.Requests.Count(r => r == "GET /"));
            Assert.Single(log.Lines, l => l.Contains("Found Kong 3.9.1"));
            // A new session asks again.
            await TestCtx.Service(TestCtx.For(lab), log).CheckMethodAsync(RemovalMethod.Delete, lab[2].Target, None);
            Assert.Equal(2, lab.Kong.Requests.Count(r => r == "GET /"));
        }

        [Fact]
        public async Task A_declaratively_managed_upstream_warns_that_the_next_sync_reverts_a_removal()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 4 });
            lab.Kong.UpstreamFor(lab.Upstream).Tags = new List<string> { "managed-by-deck" };
            var (svc, ctx, log) = Service(lab);
            ctx.Removal.DeclarativeTags = new List<string> { "managed-by-deck" };
            var t = await svc.ResolveAsync(lab.Upstream, lab[0].Target, None);
            await svc.RemoveResolvedAsync(lab.Upstream, t, RemovalMethod.Delete, false, null, null, None);
            var w = Assert.Single(log.Lines, l => l.StartsWith("W ") && l.Contains("next sync"));
            Assert.Contains("MarkUnhealthy", w);
            var t2 = await svc.ResolveAsync(lab.Upstream, lab[1].Target, None);
            await lab[1].SetModeAsync(InstanceMode.Down);
            await svc.RemoveResolvedAsync(lab.Upstream, t2, RemovalMethod.MarkUnhealthy, false, null, null, None);
            Assert.Single(log.Lines, l => l.StartsWith("W ") && l.Contains("next sync")); // a mark is nothing for a sync to revert
        }
            [Theory]
        [InlineData(KongEra.V2, RemovalMethod.Drain, "Drained", "Restored")]
        [InlineData(KongEra.V3, RemovalMethod.MarkUnhealthy, "MarkedUnhealthy", "MarkedHealthy")]
        [InlineData(KongEra.V2, RemovalMethod.MarkUnhealthy, "MarkedUnhealthy", "MarkedHealthy")]
        public async Task The_runbook_takes_out_and_puts_back_by_the_context_s_method(KongEra era, RemovalMethod method, string outAction, string backAction)
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Era = era, Ssh = true, PagerDuty = true });
            await lab[0].ApplyScenarioAsync(FaultScenario.CleanCrash);
            var inc = lab.PagerDuty.AddAlert(lab[0].Address);
            using var rig = new OpsRig(lab);
            rig.Ctx.Removal.Method = method;
            var steps = new List<KeyServiceOps.Core.Runbook.RunbookStepResult>();
            var s = await rig.Runner().RunAsync(Endpoint.Parse(lab[0].Address, 8888),
                new KeyServiceOps.Core.Runbook.RunbookOptions { IncidentId = inc.Id, RestartTimeout = TimeSpan.FromSeconds(8), PollInterval = TimeSpan.FromMilliseconds(100), EscalationLogLines = 20 },
                (t, a) => Task.FromResult(true), steps.Add, None);
            Assert.True(s.FinalState == "Recovered", string.Join("\n", steps));
            Assert.Equal(new[] { $"{outAction} {lab[0].Target}", $"{backAction} {lab[0].Target}" }, s.Actions.Where(a => !a.StartsWith("restarted")).ToList());
            var row = Assert.Single(lab.Kong.Targets(lab.Upstream), t => t.Target == lab[0].Target);
            Assert.Equal(100, row.Weight);
            Assert.False(lab.Kong.Marks.ContainsKey(lab[0].Target));
            Assert.Equal(1, lab[0].Restarts);
        }
    
        [Fact]
        public async Task The_guard_keeps_probing_past_sixteen_dead_targets_to_find_a_healthy_one()
        {
            // Found at fleet scale: Kong lists the newest targets first, and here the 17 newest are dead; the guard used
            // to probe only the first 16 and refused every removal as LastHealthyTarget.
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 20 });
            foreach (var i in lab.Instances.Skip(3)) await i.SetModeAsync(InstanceMode.Down);
            var (svc, _, _) = Service(lab);
            var t = await svc.ResolveAsync(lab.Upstream, lab[19].Target, None);
            var d = await svc.EvaluateRemovalAsync(lab.Upstream, t, 0, None);
            Assert.True(d.Allowed, d.Reason);
            Assert.Equal(3, d.HealthyRemaining);
        }
}
}
