using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using Xunit;

namespace KeyServiceOps.Module.Tests
{
    public class HealthAndFormatTests
    {
        [Fact]
        public async Task Health_accepts_strings_ip_port_and_objects_and_reports_each_status()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 4 });
            await lab[1].SetModeAsync(InstanceMode.Down);
            await lab[2].SetModeAsync(InstanceMode.Hung);
            await lab[3].SetModeAsync(InstanceMode.WrongBody);
            using var sh = Shell.For(lab, out _);
            var sw = Stopwatch.StartNew();
            var r = sh.Run($"'{lab[0].Address}', '{lab[1].Target}' | Test-KeyServiceHealth; Get-RingBalancerTarget | Where-Object Target -in '{lab[2].Target}','{lab[3].Target}' | Test-KeyServiceHealth -TimeoutSec 1");
            sw.Stop();
            Assert.Empty(r.Errors);
            var byAddr = r.Output.ToDictionary(h => h.S("Address"));
            Assert.Equal("Up", byAddr[lab[0].Address].S("Status"));
            Assert.Equal("Down", byAddr[lab[1].Address].S("Status"));
            Assert.Equal("Timeout", byAddr[lab[2].Address].S("Status"));
            Assert.Equal("Degraded", byAddr[lab[3].Address].S("Status"));
            Assert.Equal("api_key_service", byAddr[lab[2].Address].S("Upstream"));
        }

        [Fact]
        public async Task Quiet_returns_one_bool()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 2 });
            using var sh = Shell.For(lab, out _);
            var ok = sh.Run("Get-RingBalancerTarget | Test-KeyServiceHealth -Quiet");
            Assert.Equal(true, Assert.Single(ok.Output).BaseObject);
            await lab[1].SetModeAsync(InstanceMode.Error500);
            var bad = sh.Run("Get-RingBalancerTarget | Test-KeyServiceHealth -Quiet");
            Assert.Equal(false, Assert.Single(bad.Output).BaseObject);
        }

        [Fact]
        public async Task A_50MB_health_body_is_not_read_whole_through_the_cmdlet()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 1 });
            await lab[0].SetModeAsync(InstanceMode.HugeBody);
            using var sh = Shell.For(lab, out _);
            var r = sh.Run($"Test-KeyServiceHealth {lab[0].Address} -TimeoutSec 10");
            var h = Assert.Single(r.Output);
            Assert.Equal("Degraded", h.S("Status"));
            Assert.True((double)h.P("LatencySeconds") > 0);
        }

        [Fact]
        public async Task Out_Host_renders_each_type_through_the_format_file()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 2 });
            await lab[1].SetModeAsync(InstanceMode.Down);
            using var sh = Shell.For(lab, out _);
            var health = sh.Run("Get-RingBalancerTarget | Test-KeyServiceHealth | Out-Host").HostText;
            AssertHeader(health, "Address", "Port", "Status", "HTTP", "Ms", "Checked", "Detail");
            Assert.Contains("DOWN", health);
            Assert.Matches(@"\bUp\b", health);
            var targets = sh.Run("Get-RingBalancerTarget | Out-Host").HostText;
            AssertHeader(targets, "Target", "Weight", "KongHealth", "Upstream", "Tags");
            Assert.Contains("UNHEALTHY", targets);
            var change = sh.Run($"Remove-RingBalancerTarget {lab[1].Target} -Confirm:$false -PassThru | Out-Host").HostText;
            AssertHeader(change, "Action", "Target", "Weight", "Detail"); // the time and a forced change lead and end the detail (#27 row 4: room at 80 columns)
            Assert.Contains("Removed", change);
            var inst = sh.Run("Get-KeyServiceInstance | Out-Host").HostText;
            AssertHeader(inst, "Address", "Port", "Environment", "InRing", "KongHealth", "Maint", "Source");
            var audit = sh.Run("Get-KeyServiceAuditLog | Out-Host").HostText;
            AssertHeader(audit, "Time", "Outcome", "Action", "Target", "Incident");
            var ctx = sh.Run("Get-KeyServiceOpsContext | Out-Host").HostText;
            Assert.Matches(@"KongTokenSet\s+: False", ctx);
            foreach (var text in new[] { health, targets, change, inst, audit })
                Assert.All(text.Split('\n'), l => Assert.True(l.TrimEnd().Length <= 120, $"line over 120 columns: {l}"));
        }

        internal static void AssertHeader(string text, params string[] columns)
        {
            var header = text.Split('\n').FirstOrDefault(l => l.TrimStart().StartsWith(columns[0] + " "));
            Assert.True(header != null, "no header line in:\n" + text);
            var names = header.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(columns, names);
        }

        [Fact]
        public async Task Verbose_tells_each_http_call_and_debug_never_shows_the_token()
        {
            const string canary = "CANARY-7f3e9b1c-token";
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 2, RbacToken = canary });
            Environment.SetEnvironmentVariable("KSOPS_CANARY", canary);
            using var sh = Shell.For(lab, out var audit, "-KongTokenVariable KSOPS_CANARY");
            await lab[1].SetModeAsync(InstanceMode.Down);
            var r = sh.Run($"Get-RingBalancerTarget -Verbose -Debug | Test-KeyServiceHealth -Verbose | Where-Object {{ -not $_.Healthy }} | Remove-RingBalancerTarget -Confirm:$false -PassThru -Verbose -Debug; Get-KeyServiceOpsContext", new System.Collections.Generic.Dictionary<string, object> { ["DebugPreference"] = "Continue" });
            Assert.Empty(r.Errors);
            Assert.Contains(r.Verbose, v => v.StartsWith("Kong: GET /upstreams/api_key_service/targets") && v.Contains("-> 200"));
            Assert.Contains(r.Verbose, v => v.StartsWith("Kong: DELETE"));
            Assert.Contains(r.Debug, d => d.Contains("Kong-Admin-Token=***"));
            Assert.DoesNotContain(canary, r.AllStreamsText());
            Assert.DoesNotContain(canary, File.ReadAllText(audit));
        }
    }
}
