using System;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using Xunit;
using KeyServiceOps.TestHost;

namespace KeyServiceOps.Module.Tests
{
    public class ContextAndInventoryTests
    {
        [Fact]
        public async Task Config_file_inventory_maps_addresses_to_environments_and_routes()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 2 });
            var cfg = Path.Combine(Path.GetTempPath(), $"ksops-cfg-{Guid.NewGuid():N}.json");
            File.WriteAllText(cfg, $@"{{
  ""upstream"": ""{lab.Upstream}"",
  ""sshUser"": ""opsbot"",
  ""inventory"": [
    {{ ""address"": ""{lab[0].Address}"", ""environment"": ""prod-eu-1"", ""jumpHost"": ""bastion.eu"" }},
    {{ ""address"": ""127.0.0.240"", ""environment"": ""prod-us-2"", ""sshUser"": ""doctor"", ""maintenance"": true }}
  ]
}}");
            using var sh = Shell.For(lab, out _, $"-ConfigPath '{cfg}'");
            var r = sh.Run($"Get-KeyServiceInstance -Address {lab[0].Address}, 127.0.0.240");
            Assert.Empty(r.Errors);
            Assert.Equal(2, r.Output.Count);
            var a = r.Output[0];
            Assert.Equal("prod-eu-1", a.S("Environment"));
            Assert.Equal("bastion.eu", a.S("JumpHost"));
            Assert.Equal("opsbot", a.S("SshUser"));
            Assert.Equal("RingBalancer+Inventory", a.S("Source"));
            Assert.Equal(true, a.P("InRingBalancer"));
            var b = r.Output[1];
            Assert.Equal("prod-us-2", b.S("Environment"));
            Assert.Equal("doctor", b.S("SshUser"));
            Assert.Equal(true, b.P("Maintenance"));
            Assert.Equal(false, b.P("InRingBalancer"));
            var miss = sh.Run("Get-KeyServiceInstance -Address 127.0.0.241");
            Assert.Equal("InstanceNotFound,KeyServiceOps.Commands.GetKeyServiceInstanceCommand", Assert.Single(miss.Errors).FullyQualifiedErrorId);
            var bad = sh.Run("Set-KeyServiceOpsContext -ConfigPath '/nonexistent/ops.json'");
            Assert.Equal("ConfigFileInvalid,KeyServiceOps.Commands.SetKeyServiceOpsContextCommand", Assert.Single(bad.Errors).FullyQualifiedErrorId);
            File.Delete(cfg);
        }

        [Fact]
        public void Manifest_is_valid_and_exports_every_cmdlet_explicitly()
        {
            using var sh = new HostedShell(importModule: false);
            var r = sh.Run($"Test-ModuleManifest '{HostedShell.ModuleManifest}'");
            Assert.Empty(r.Errors);
            var m = Assert.Single(r.Output);
            Assert.Matches(@"^\d+\.\d+\.\d+$", m.S("Version"));
            var text = File.ReadAllText(HostedShell.ModuleManifest);
            Assert.DoesNotContain("'*'", text);
            Assert.False(File.Exists(Path.Combine(Path.GetDirectoryName(HostedShell.ModuleManifest)!, "System.Management.Automation.dll")));
            using var sh2 = new HostedShell();
            var cmds = sh2.Run("Get-Command -Module KeyServiceOps").Output.Select(o => o.S("Name")).OrderBy(x => x).ToList();
            Assert.Contains("Test-KeyServiceHealth", cmds);
            foreach (var c in cmds) Assert.Contains($"'{c}'", text);
        }
    }
}
