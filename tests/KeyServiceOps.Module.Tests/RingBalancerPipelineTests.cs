using System;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using Xunit;

namespace KeyServiceOps.Module.Tests
{
    public class RingBalancerPipelineTests
    {
        [Theory]
        [InlineData(KongEra.V3, null, 0)]
        [InlineData(KongEra.V2, null, 0)]
        [InlineData(KongEra.V3, "team-a", 1200)]
        [InlineData(KongEra.V2, null, 1200)]
        public async Task Pipeline_removes_exactly_the_down_instances_and_passthru_restores_them(KongEra era, string workspace, int extra)
        {
            await using var lab2 = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 5, Era = era, Workspace = workspace, ExtraTargets = extra });
            var down = new[] { lab2[1], lab2[3] };
            foreach (var d in down) await d.SetModeAsync(InstanceMode.Down);
            // Re-tag one of them in the emulator: weight 42, tags blue,canary.
            RetagInEmulator(lab2, lab2[3].Target, 42, "blue", "canary");
            using var sh = Shell.For(lab2, out var audit);
            // The extra (fake) targets have no instances: restrict the pipeline to the lab's own block.
            var filter = extra > 0 ? $" -Target '{lab2.Block}.1*'" : "";
            var r = sh.Run($"$removed = Get-RingBalancerTarget{filter} | Test-KeyServiceHealth | Where-Object {{ -not $_.Healthy }} | Remove-RingBalancerTarget -Confirm:$false -PassThru; $removed");
            Assert.True(r.Errors.Count == 0, Shell.Ids(r) + " " + string.Join("\n", r.Errors.Select(e => e.ToString())));
            var removed = r.Output;
            Assert.Equal(down.Select(d => d.Target).OrderBy(x => x), removed.Select(x => x.S("Target")).OrderBy(x => x));
            var left = lab2.Kong.Targets(lab2.Upstream).Select(t => t.Target).ToList();
            Assert.Equal(5 + extra - 2, left.Count);
            Assert.DoesNotContain(lab2[1].Target, left);
            Assert.DoesNotContain(lab2[3].Target, left);

            foreach (var d in down) await d.SetModeAsync(InstanceMode.Up);
            var r2 = sh.Run("$removed | Add-RingBalancerTarget -Confirm:$false -PassThru");
            Assert.Empty(r2.Errors);
            Assert.Equal(2, r2.Output.Count);
            Assert.All(r2.Output, c => Assert.Equal("Added", c.S("Action")));
            var restored = lab2.Kong.Targets(lab2.Upstream).Single(t => t.Target == lab2[3].Target);
            Assert.Equal(42, restored.Weight);
            Assert.Equal(new[] { "blue", "canary" }, restored.Tags);
            Assert.Equal(5 + extra, lab2.Kong.Targets(lab2.Upstream).Count);
            // Write-ahead: each of the 4 changes has its intent line and its outcome line.
            var lines = File.ReadAllLines(audit);
            Assert.Equal(4, lines.Count(l => l.Contains("\"outcome\":\"Started\"")));
            Assert.Equal(4, lines.Count(l => !l.Contains("\"outcome\":\"Started\"")));
        }

        internal static void RetagInEmulator(Lab.Estate.Lab lab, string target, int weight, params string[] tags)
        {
            // Through the Admin API, as an operator would have set it up.
            using var http = new System.Net.Http.HttpClient();
            var prefix = lab.Options.Workspace == null ? "" : lab.Options.Workspace + "/";
            var body = new System.Net.Http.StringContent($"{{\"weight\":{weight},\"tags\":[{string.Join(",", tags.Select(t => "\"" + t + "\""))}]}}", System.Text.Encoding.UTF8, "application/json");
            var resp = http.PatchAsync(new Uri(lab.KongUri, $"{prefix}upstreams/{lab.Upstream}/targets/{target}"), body).GetAwaiter().GetResult();
            Assert.Equal(200, (int)resp.StatusCode);
        }

        [Fact]
        public async Task WhatIf_changes_nothing_and_names_the_real_target()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3 });
            await lab[0].SetModeAsync(InstanceMode.Down);
            using var sh = Shell.For(lab, out var audit);
            var before = lab.Kong.Targets(lab.Upstream).Select(t => t.Id).ToList();
            var id = lab.Kong.Targets(lab.Upstream).Single(t => t.Target == lab[0].Target).Id;
            var r = sh.Run($"Test-KeyServiceHealth '{lab[0].Address}' | Remove-RingBalancerTarget -WhatIf");
            Assert.Empty(r.Errors);
            Assert.Contains($"What if: Performing the operation \"Remove from ring-balancer upstream 'api_key_service'\" on target \"{lab[0].Target} (id {id}, weight 100)\"", r.HostText);
            Assert.Equal(before, lab.Kong.Targets(lab.Upstream).Select(t => t.Id).ToList());
            Assert.Equal(0, lab.Kong.Requests.Count(q => q.StartsWith("DELETE") || q.StartsWith("POST") || q.StartsWith("PATCH")));
            var r2 = sh.Run($"Add-RingBalancerTarget '127.0.0.250:8888' -WhatIf");
            Assert.Contains("What if: Performing the operation \"Add to ring-balancer upstream 'api_key_service' after a health check\" on target \"127.0.0.250:8888 (weight 100)\"", r2.HostText);
            Assert.Equal(3, lab.Kong.Targets(lab.Upstream).Count);
            Assert.False(File.Exists(audit));
        }

        [Fact]
        public async Task Guard_refuses_the_last_healthy_target_and_Force_does_it_loudly()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 2 });
            await lab[1].SetModeAsync(InstanceMode.Down);
            using var sh = Shell.For(lab, out var audit);
            var r = sh.Run($"Remove-RingBalancerTarget -Target '{lab[0].Target}' -Confirm:$false");
            Assert.Equal("LastHealthyTarget,KeyServiceOps.Commands.RemoveRingBalancerTargetCommand", Assert.Single(r.Errors).FullyQualifiedErrorId);
            Assert.Equal(2, lab.Kong.Targets(lab.Upstream).Count);
            var f = sh.Run($"Remove-RingBalancerTarget -Target '{lab[0].Target}' -Force -Confirm:$false");
            Assert.Empty(f.Errors);
            Assert.Contains(f.Warnings, w => w.StartsWith("FORCED:"));
            Assert.Single(lab.Kong.Targets(lab.Upstream));
            Assert.Contains("\"forced\":true", File.ReadAllText(audit));
        }

        [Fact]
        public async Task A_target_never_there_is_an_error_and_one_removed_before_is_already_absent()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3 });
            using var sh = Shell.For(lab, out _);
            // A typo (#27 row 9): not in the upstream and no record of it ever being there: an error scripts see ($? false).
            var typo = sh.Run("Remove-RingBalancerTarget -Target 127.0.0.251 -Confirm:$false -PassThru; $?");
            var e = Assert.Single(typo.Errors);
            Assert.StartsWith("TargetNotInUpstream,", e.FullyQualifiedErrorId);
            Assert.Contains("no record of it ever being there", e.Exception.Message);
            Assert.Equal(System.Management.Automation.ErrorCategory.ObjectNotFound, e.CategoryInfo.Category);
            Assert.False((bool)typo.Output.Last().BaseObject);
            Assert.DoesNotContain(typo.Warnings, w => w.Contains("already absent"));
            // Taken out before (the audit log knows by whom): a warning, and -PassThru carries it on.
            Assert.Empty(sh.Run($"Remove-RingBalancerTarget -Target '{lab[1].Target}' -Confirm:$false -Force").Errors);
            var r = sh.Run($"Remove-RingBalancerTarget -Target '{lab[1].Target}' -Confirm:$false -PassThru");
            Assert.Empty(r.Errors);
            Assert.Contains(r.Warnings, w => w.Contains("already absent") && w.Contains("took it out at"));
            Assert.Equal("AlreadyAbsent", Assert.Single(r.Output).S("Action"));
            var a = sh.Run($"Add-RingBalancerTarget -Target '{lab[0].Target}' -Confirm:$false -PassThru");
            Assert.Empty(a.Errors);
            Assert.Contains(a.Warnings, w => w.Contains("already in upstream") && !w.Contains("nothing changed); nothing changed"));
            Assert.Equal(2, lab.Kong.Targets(lab.Upstream).Count);
        }

        [Theory]
        [InlineData("10.0.0.5:99999")]
        [InlineData("not an ip")]
        [InlineData("")]
        public async Task Malformed_target_is_a_typed_error_and_changes_nothing(string target)
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 2 });
            using var sh = Shell.For(lab, out _);
            lab.Kong.ClearRequests();
            var r = sh.Run($"Remove-RingBalancerTarget -Target '{target}' -Confirm:$false; Add-RingBalancerTarget -Target '{target}' -Confirm:$false");
            Assert.Equal(2, r.Errors.Count);
            Assert.All(r.Errors, e => Assert.StartsWith(target == "" ? "TargetMissing," : "InvalidTarget,", e.FullyQualifiedErrorId));
            Assert.Empty(lab.Kong.Requests);
            var h = sh.Run($"Test-KeyServiceHealth -Address '{target}'");
            Assert.Equal("InvalidAddress,KeyServiceOps.Commands.TestKeyServiceHealthCommand", Assert.Single(h.Errors).FullyQualifiedErrorId);
        }

        [Fact]
        public async Task Kong_failures_are_typed_errors()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 2, RbacToken = "right-token" });
            using var sh = Shell.For(lab, out _);
            var unauth = sh.Run("Get-RingBalancerTarget");
            Assert.Equal("KongUnauthorized,KeyServiceOps.Commands.GetRingBalancerTargetCommand", Assert.Single(unauth.Errors).FullyQualifiedErrorId);
            Assert.Contains("KongTokenVariable", unauth.Errors[0].ErrorDetails.RecommendedAction);

            Environment.SetEnvironmentVariable("KSOPS_TEST_KONG_TOKEN", "right-token");
            Assert.Empty(sh.Run("Set-KeyServiceOpsContext -KongTokenVariable KSOPS_TEST_KONG_TOKEN").Errors);
            Assert.Equal(2, sh.Run("Get-RingBalancerTarget").Output.Count);

            var notFound = sh.Run("Get-RingBalancerTarget -Upstream nope");
            Assert.Equal("KongUpstreamNotFound,KeyServiceOps.Commands.GetRingBalancerTargetCommand", Assert.Single(notFound.Errors).FullyQualifiedErrorId);

            lab.Kong.FailNext(1, 502, "<html><body><h1>502 Bad Gateway</h1></body></html>");
            var html = sh.Run($"Remove-RingBalancerTarget '{lab[0].Target}' -Confirm:$false");
            Assert.Equal("KongInvalidResponse,KeyServiceOps.Commands.RemoveRingBalancerTargetCommand", Assert.Single(html.Errors).FullyQualifiedErrorId);
            Assert.Equal(2, lab.Kong.Targets(lab.Upstream).Count);

            var unreachable = sh.Run("Get-RingBalancerTarget -KongAdminUri http://127.0.0.1:1/");
            Assert.Equal("KongUnreachable,KeyServiceOps.Commands.GetRingBalancerTargetCommand", Assert.Single(unreachable.Errors).FullyQualifiedErrorId);
        }
    }
}
