using System;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using KeyServiceOps.Core.RingBalancer;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using Xunit;

namespace KeyServiceOps.Core.Tests
{
    public class KongClientTests
    {
        private static readonly CancellationToken None = CancellationToken.None;

        [Theory]
        [InlineData(KongEra.V3, null)]
        [InlineData(KongEra.V2, null)]
        [InlineData(KongEra.V3, "team-a")]
        public async Task Reads_every_page_of_targets(KongEra era, string workspace)
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 2, Era = era, Workspace = workspace, ExtraTargets = 248 });
            var ctx = TestCtx.For(lab);
            ctx.Kong.PageSize = 100;
            var kong = new KongClient(ctx.ForKong(), null);
            var targets = await kong.GetTargetsAsync(lab.Upstream, None);
            Assert.Equal(250, targets.Count);
            Assert.Equal(250, targets.Select(t => t.Id).Distinct().Count());
            Assert.Equal(3, lab.Kong.Requests.Count(r => r.Contains("/targets")));
            Assert.All(lab.Kong.Requests, r => Assert.Contains(workspace == null ? "/upstreams/" : $"/{workspace}/upstreams/", r));
        }

        [Fact]
        public async Task Duplicate_add_is_AlreadyPresent_on_both_eras()
        {
            foreach (var era in new[] { KongEra.V3, KongEra.V2 })
            {
                await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 1, Era = era });
                var kong = new KongClient(TestCtx.For(lab).ForKong(), null);
                var (t, created, note) = await kong.AddTargetAsync(lab.Upstream, lab[0].Target, 100, null, None);
                Assert.False(created);
                Assert.Equal(lab[0].Target, t.Target);
                Assert.Contains(era == KongEra.V3 ? "409" : "Deprecation", note);
                Assert.Single(lab.Kong.Targets(lab.Upstream));
            }
        }

        [Fact]
        public async Task Delete_of_an_absent_target_is_false_not_an_error()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 1 });
            var kong = new KongClient(TestCtx.For(lab).ForKong(), null);
            Assert.True(await kong.DeleteTargetAsync(lab.Upstream, lab[0].Target, None));
            Assert.False(await kong.DeleteTargetAsync(lab.Upstream, lab[0].Target, None));
        }

        [Fact]
        public async Task Html_502_from_a_proxy_is_KongInvalidResponse()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 1 });
            lab.Kong.FailNext(1, 502, "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>");
            var e = await Assert.ThrowsAsync<OpsException>(() => new KongClient(TestCtx.For(lab).ForKong(), null).GetTargetsAsync(lab.Upstream, None));
            Assert.Equal("KongInvalidResponse", e.ErrorId);
            Assert.Contains("502", e.Message);
            Assert.Contains("Bad Gateway", e.Details);
        }

        [Fact]
        public async Task Rbac_token_missing_or_wrong_is_KongUnauthorized_and_right_token_works()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 1, RbacToken = "s3cret-token" });
            var ctx = TestCtx.For(lab);
            var log = new ListLog();
            Assert.Single(await new KongClient(ctx.ForKong(), log).GetTargetsAsync(lab.Upstream, None));
            Assert.DoesNotContain("s3cret-token", log.All);
            ctx.Kong.Token = Secret.FromPlainText("wrong");
            var e = await Assert.ThrowsAsync<OpsException>(() => new KongClient(ctx.ForKong(), null).GetTargetsAsync(lab.Upstream, None));
            Assert.Equal("KongUnauthorized", e.ErrorId);
            Assert.Equal(OpsErrorCategory.AuthenticationError, e.Category);
        }

        [Fact]
        public async Task Unknown_upstream_is_KongUpstreamNotFound()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 1 });
            var kong = new KongClient(TestCtx.For(lab).ForKong(), null);
            var e = await Assert.ThrowsAsync<OpsException>(() => kong.GetTargetsAsync("no_such_upstream", None));
            Assert.Equal("KongUpstreamNotFound", e.ErrorId);
            var e2 = await Assert.ThrowsAsync<OpsException>(() => kong.FindTargetAsync("no_such_upstream", lab[0].Target, None));
            Assert.Equal("KongUpstreamNotFound", e2.ErrorId);
        }

        [Fact]
        public async Task Unreachable_kong_is_KongUnreachable()
        {
            var ctx = new OpsContext { Kong = { AdminUri = new Uri("http://127.0.0.1:1/") } };
            var e = await Assert.ThrowsAsync<OpsException>(() => new KongClient(ctx.ForKong(), null).GetTargetsAsync("api_key_service", None));
            Assert.Equal("KongUnreachable", e.ErrorId);
            Assert.Equal(OpsErrorCategory.ConnectionError, e.Category);
        }

        [Fact]
        public async Task Emulator_rejects_invalid_targets_with_the_contract_bodies()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 1 });
            var kong = new KongClient(TestCtx.For(lab).ForKong(), null);
            var e = await Assert.ThrowsAsync<OpsException>(() => kong.AddTargetAsync(lab.Upstream, "not a host", 100, null, None));
            Assert.Equal("KongInvalidRequest", e.ErrorId);
            Assert.Contains("Invalid target", e.Details);
            var w = await Assert.ThrowsAsync<OpsException>(() => kong.AddTargetAsync(lab.Upstream, "127.0.0.1:8888", 70000, null, None));
            Assert.Contains("between 0 and 65535", w.Details);
        }
    }
}
