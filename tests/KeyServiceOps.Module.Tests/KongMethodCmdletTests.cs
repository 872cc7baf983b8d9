using System.Linq;
using System.Threading.Tasks;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using Xunit;

namespace KeyServiceOps.Module.Tests
{
    /// <summary>-Method on Remove-/Add-RingBalancerTarget and the context's RemovalMethod, as an operator types them.</summary>
    public class KongMethodCmdletTests
    {
        [Theory]
        [InlineData(KongEra.V2)]
        [InlineData(KongEra.V3)]
        public async Task Drain_PassThru_piped_to_Add_puts_the_old_weight_back(KongEra era)
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Era = era });
            lab.Kong.SetWeight(lab.Upstream, lab[0].Target, 42);
            using var sh = Shell.For(lab, out _);
            var r = sh.Run($"$c = Remove-RingBalancerTarget {lab[0].Target} -Method Drain -PassThru -Confirm:$false -Verbose; $c");
            Assert.True(r.Errors.Count == 0, Shell.Ids(r));
            var c = Assert.Single(r.Output);
            Assert.Equal(("Drained", "Drain", 42), (c.S("Action"), c.S("Method"), (int)c.P("Weight")));
            Assert.Contains(r.Verbose, v => v.Contains("Found Kong " + (era == KongEra.V2 ? "2." : "3.")));
            Assert.Equal(0, lab.Kong.Targets(lab.Upstream).Single(t => t.Target == lab[0].Target).Weight);
            var again = sh.Run($"Remove-RingBalancerTarget {lab[0].Target} -Drain -Confirm:$false");
            Assert.Empty(again.Errors);
            Assert.Contains(again.Warnings, w => w.Contains("already drained"));
            var back = sh.Run("$c | Add-RingBalancerTarget -PassThru -Confirm:$false");
            Assert.True(back.Errors.Count == 0, Shell.Ids(back));
            Assert.Equal("Restored", Assert.Single(back.Output).S("Action"));
            Assert.Equal(42, lab.Kong.Targets(lab.Upstream).Single(t => t.Target == lab[0].Target).Weight);
        }

        [Fact]
        public async Task MarkUnhealthy_on_a_DB_less_node_is_a_typed_error_that_changes_nothing()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3 });
            lab.Kong.Database = "off";
            using var sh = Shell.For(lab, out _);
            var r = sh.Run($"Remove-RingBalancerTarget {lab[0].Target} -Method MarkUnhealthy -Confirm:$false");
            var e = Assert.Single(r.Errors);
            Assert.StartsWith("KongDbLess,", e.FullyQualifiedErrorId);
            Assert.Equal("InvalidOperation", e.CategoryInfo.Category.ToString());
            Assert.Contains("declarative", e.ErrorDetails.RecommendedAction);
            Assert.DoesNotContain(lab.Kong.Requests, x => !x.StartsWith("GET"));
            var conflict = sh.Run($"Remove-RingBalancerTarget {lab[0].Target} -Method Delete -Drain -Confirm:$false");
            Assert.StartsWith("ConflictingRemovalMethod,", Assert.Single(conflict.Errors).FullyQualifiedErrorId);
        }

        [Fact]
        public async Task The_context_s_RemovalMethod_is_what_Remove_uses_and_what_the_context_shows()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3 });
            using var sh = Shell.For(lab, out _);
            Assert.Empty(sh.Run("Set-KeyServiceOpsContext -RemovalMethod Drain -DeclarativeTag managed-by-deck").Errors);
            var ctx = Assert.Single(sh.Run("Get-KeyServiceOpsContext").Output);
            Assert.Equal("Drain", ctx.S("RemovalMethod"));
            Assert.Equal("managed-by-deck", ctx.S("DeclarativeTags"));
            var r = sh.Run($"Remove-RingBalancerTarget {lab[1].Target} -PassThru -Confirm:$false");
            Assert.Equal("Drained", Assert.Single(r.Output).S("Action"));
            var bad = sh.Run("Set-KeyServiceOpsContext -RemovalMethod Sideways");
            Assert.Single(bad.Errors);
            Assert.Equal("Drain", sh.Run("(Get-KeyServiceOpsContext).RemovalMethod").Output.Single().ToString());
        }
    }
}

namespace KeyServiceOps.Module.Tests
{
    public class SelfHealingStatusCmdletTests
    {
        [Fact]
        public async Task Status_after_a_pass_shows_the_target_out_and_the_limits_in_force()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 4 });
            await lab[2].SetModeAsync(InstanceMode.Down);
            var state = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"kso-status-{System.Guid.NewGuid():N}.json");
            using var sh = Shell.For(lab, out _);
            var pass = sh.Run($"Invoke-KeyServiceSelfHealing -StatePath '{state}' -FailuresToRemove 1 -Confirm:$false");
            Assert.True(pass.Errors.Count == 0, Shell.Ids(pass));
            var r = sh.Run($"Get-KeyServiceSelfHealingStatus -StatePath '{state}' -MaxEjectionShare 0.25");
            Assert.True(r.Errors.Count == 0, Shell.Ids(r));
            var st = Assert.Single(r.Output);
            Assert.Equal(lab[2].Target, st.S("TargetsOut"));
            Assert.Contains("max ejection 25%", st.S("Limits"));
            var outNow = sh.Run($"(Get-KeyServiceSelfHealingStatus -StatePath '{state}').Targets | Where-Object Out");
            Assert.Equal(lab[2].Target, Assert.Single(outNow.Output).S("Target"));
            // The help's example: the targets it has out, probed again.
            var probe = sh.Run($"(Get-KeyServiceSelfHealingStatus -StatePath '{state}').Targets | Where-Object Out | Test-KeyServiceHealth");
            Assert.True(probe.Errors.Count == 0, Shell.Ids(probe));
            Assert.Equal((lab[2].Address, "Down"), (Assert.Single(probe.Output).S("Address"), probe.Output[0].S("Status")));
            var missing = sh.Run($"Get-KeyServiceSelfHealingStatus -StatePath '{state}.none' -Verbose");
            Assert.Empty(missing.Errors);
            Assert.Contains(missing.Verbose, v => v.Contains("No self-healing pass"));
        }
    }
}
