using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using KeyServiceOps.Core.RingBalancer;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using Xunit;
using KeyServiceOps.Core.Audit;

namespace KeyServiceOps.Core.Tests
{
    public class RingBalancerServiceTests
    {
        private static readonly CancellationToken None = CancellationToken.None;

        [Fact]
        public async Task Guard_refuses_the_last_healthy_target()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 2 });
            await lab[1].SetModeAsync(InstanceMode.Down);
            var svc = TestCtx.Service(TestCtx.For(lab));
            var healthy = await svc.ResolveAsync(lab.Upstream, lab[0].Target, None);
            var d = await svc.EvaluateRemovalAsync(lab.Upstream, healthy, 0, None);
            Assert.False(d.Allowed);
            Assert.Equal("LastHealthyTarget", d.ErrorId);
            var down = await svc.ResolveAsync(lab.Upstream, lab[1].Target, None);
            Assert.True((await svc.EvaluateRemovalAsync(lab.Upstream, down, 0, None)).Allowed);
        }

        [Fact]
        public async Task Guard_refuses_the_last_target_and_a_share_over_the_limit()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 4 });
            var ctx = TestCtx.For(lab);
            var svc = TestCtx.Service(ctx);
            // A batch (one pipeline) removes targets one by one: 1 and 2 of 4 pass, the 3rd (75 %) is refused.
            for (int i = 0; i < 2; i++)
            {
                var t = await svc.ResolveAsync(lab.Upstream, lab[i].Target, None);
                Assert.True((await svc.EvaluateRemovalAsync(lab.Upstream, t, i, None)).Allowed);
                await svc.RemoveResolvedAsync(lab.Upstream, t, RemovalMethod.Delete, false, null, null, None);
            }
            var third = await svc.ResolveAsync(lab.Upstream, lab[2].Target, None);
            var d = await svc.EvaluateRemovalAsync(lab.Upstream, third, 2, None);
            Assert.False(d.Allowed);
            Assert.Equal("RemoveShareExceeded", d.ErrorId);

            await using var solo = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 1 });
            var s2 = TestCtx.Service(TestCtx.For(solo));
            var only = await s2.ResolveAsync(solo.Upstream, solo[0].Target, None);
            Assert.Equal("LastTarget", (await s2.EvaluateRemovalAsync(solo.Upstream, only, 0, None)).ErrorId);
        }

        [Fact]
        public async Task Guard_respects_the_upstream_threshold()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 4, Threshold = 60 });
            await lab[3].SetModeAsync(InstanceMode.Down);
            var ctx = TestCtx.For(lab);
            ctx.Removal.MaxRemoveShare = 1.0;
            var svc = TestCtx.Service(ctx);
            // Removing a healthy one leaves 2 healthy of 3 = 66 % > 60 %: allowed. Then the next leaves 1 of 2 = 50 %: refused.
            var a = await svc.ResolveAsync(lab.Upstream, lab[0].Target, None);
            Assert.True((await svc.EvaluateRemovalAsync(lab.Upstream, a, 0, None)).Allowed);
            await svc.RemoveResolvedAsync(lab.Upstream, a, RemovalMethod.Delete, false, null, null, None);
            var b = await svc.ResolveAsync(lab.Upstream, lab[1].Target, None);
            var d = await svc.EvaluateRemovalAsync(lab.Upstream, b, 0, None);
            Assert.Equal("ThresholdReached", d.ErrorId);
        }

        [Fact]
        public async Task Remove_then_add_restores_weight_and_tags_and_audits_both()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 2 });
            var extra = lab.Kong.AddTarget(lab.Upstream, "127.0.0.99:8888", 37, "blue", "canary");
            var ctx = TestCtx.For(lab);
            var svc = TestCtx.Service(ctx);
            var t = await svc.ResolveAsync(lab.Upstream, "127.0.0.99:8888", None);
            var removed = await svc.RemoveResolvedAsync(lab.Upstream, t, RemovalMethod.Delete, false, null, "Q1", None);
            Assert.Equal(TargetChangeAction.Removed, removed.ActionValue);
            Assert.DoesNotContain(lab.Kong.Targets(lab.Upstream), x => x.Target == "127.0.0.99:8888");
            var added = await svc.AddAsync(new AddRequest { Upstream = lab.Upstream, Target = removed.Target, Weight = removed.Weight, Tags = removed.Tags.ToArray(), SkipHealthCheck = true }, None);
            Assert.Equal(TargetChangeAction.Added, added.ActionValue);
            var back = lab.Kong.Targets(lab.Upstream).Single(x => x.Target == "127.0.0.99:8888");
            Assert.Equal(37, back.Weight);
            Assert.Equal(new[] { "blue", "canary" }, back.Tags);
            var audit = new AuditLog(ctx.Safety.AuditLogPath).Read().ToList();
            Assert.Equal(new[] { "RemoveTarget", "AddTarget" }, audit.Select(a => a.Action));
            Assert.Equal("Q1", audit[0].Incident);
            Assert.Equal(37, (int)audit[0].BeforeData["weight"]);
            File.Delete(ctx.Safety.AuditLogPath);
        }

        [Fact]
        public async Task Add_refuses_an_unhealthy_instance_unless_forced_and_present_is_a_noop()
        {
            await using var lab2 = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 2 });
            var svc2 = TestCtx.Service(TestCtx.For(lab2));
            var t = await svc2.ResolveAsync(lab2.Upstream, lab2[1].Target, None);
            await svc2.RemoveResolvedAsync(lab2.Upstream, t, RemovalMethod.Delete, false, null, null, None);
            await lab2[1].SetModeAsync(InstanceMode.Error500);
            var e = await Assert.ThrowsAsync<OpsException>(() => svc2.AddAsync(new AddRequest { Upstream = lab2.Upstream, Target = lab2[1].Target, Weight = 100 }, None));
            Assert.Equal("TargetUnhealthy", e.ErrorId);
            Assert.Single(lab2.Kong.Targets(lab2.Upstream));
            var forced = await svc2.AddAsync(new AddRequest { Upstream = lab2.Upstream, Target = lab2[1].Target, Weight = 100, SkipHealthCheck = true }, None);
            Assert.Equal(TargetChangeAction.Added, forced.ActionValue);
            var again = await svc2.AddAsync(new AddRequest { Upstream = lab2.Upstream, Target = lab2[1].Target, Weight = 100, SkipHealthCheck = true }, None);
            Assert.Equal(TargetChangeAction.AlreadyPresent, again.ActionValue);
            Assert.Equal(2, lab2.Kong.Targets(lab2.Upstream).Count);
        }

        [Fact]
        public async Task Drain_sets_weight_zero_and_add_restores_it()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 2 });
            var svc = TestCtx.Service(TestCtx.For(lab));
            var t = await svc.ResolveAsync(lab.Upstream, lab[0].Target, None);
            var c = await svc.RemoveResolvedAsync(lab.Upstream, t, RemovalMethod.Drain, false, null, null, None);
            Assert.Equal(TargetChangeAction.Drained, c.ActionValue);
            var k = lab.Kong.Targets(lab.Upstream).Single(x => x.Target == lab[0].Target);
            Assert.Equal(0, k.Weight);
            var r = await svc.AddAsync(new AddRequest { Upstream = lab.Upstream, Target = c.Target, Weight = c.Weight, Tags = c.Tags.ToArray() }, None);
            Assert.Equal(TargetChangeAction.Restored, r.ActionValue);
            Assert.Equal(k.Id, lab.Kong.Targets(lab.Upstream).Single(x => x.Target == lab[0].Target).Id);
            Assert.Equal(100, lab.Kong.Targets(lab.Upstream).Single(x => x.Target == lab[0].Target).Weight);
        }
    }
}
