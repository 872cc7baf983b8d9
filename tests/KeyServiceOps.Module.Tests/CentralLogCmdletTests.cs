using System;
using System.IO;
using System.Threading.Tasks;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using Xunit;
using KeyServiceOps.TestHost;

namespace KeyServiceOps.Module.Tests
{
    public class CentralLogCmdletTests
    {
        private static HostedShell ShellFor(Lab.Estate.Lab lab, string known, string apiKey)
        {
            Environment.SetEnvironmentVariable("KEYSERVICEOPS_RETRY_BASE_MS", "10");
            var sh = Shell.For(lab, out _, $"-SshUser '{lab.Ssh.User}' -SshPort {lab.Ssh.Port} -SshKeyPath '{lab.Ssh.KeyPath}' -KnownHostsPath '{known}' " +
                                           $"-CentralLogUri '{lab.CentralLogs.BaseUri}'");
            sh.SetVariable("key", new System.Net.NetworkCredential("", apiKey).SecurePassword);
            Assert.Empty(sh.Run("Set-KeyServiceOpsContext -CentralLogApiKey $key").Errors);
            return sh;
        }

        [Fact]
        public async Task Central_logs_pipe_into_Get_KeyServiceFault_like_docker_logs()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 2, Ssh = true, CentralLogs = true });
            await lab[0].ApplyScenarioAsync(FaultScenario.CipherDependency);
            using var sh = ShellFor(lab, lab.WriteKnownHosts(), lab.CentralLogs.ApiKey);
            var r = sh.Run($"Get-KeyServiceLog {lab[0].Address} -Source Central -Since 1h | Get-KeyServiceFault; Get-KeyServiceLog {lab[0].Address} -Tail 200 | Get-KeyServiceFault");
            Assert.Empty(r.Errors);
            Assert.Equal(2, r.Output.Count);
            Assert.All(r.Output, f => Assert.Equal("CipherDependency", f.S("Category")));
            Assert.Equal(r.Output[0].P("Count"), r.Output[1].P("Count"));
            var entries = sh.Run($"Get-KeyServiceLog {lab[0].Address} -Source Central -Tail 2 -NewestFirst");
            Assert.Equal(2, entries.Output.Count);
            Assert.All(entries.Output, e => Assert.Equal("Central", e.S("Source")));
            Assert.True((DateTimeOffset)entries.Output[0].P("Timestamp") >= (DateTimeOffset)entries.Output[1].P("Timestamp"));
        }

        [Theory]
        [InlineData(CentralLogFlavor.Elasticsearch, "8.11.3")]
        [InlineData(CentralLogFlavor.OpenSearch, "2.11.1")] // OpenSearch security answers 401 with an empty body
        public async Task Without_access_to_the_central_service_Fallback_warns_once_and_reads_docker_logs(CentralLogFlavor flavour, string version)
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 2, Ssh = true, CentralLogs = true });
            lab.CentralLogs.Flavor = flavour; lab.CentralLogs.Version = version;
            lab[0].AppendLog("level=info msg=\"one\""); lab[1].AppendLog("level=info msg=\"two\"");
            using var sh = ShellFor(lab, lab.WriteKnownHosts(), "wrong-id:wrong-key");
            var denied = sh.Run($"Get-KeyServiceLog {lab[0].Address} -Source Central");
            var e = Assert.Single(denied.Errors);
            Assert.Equal("CentralLogUnauthorized,KeyServiceOps.Commands.GetKeyServiceLogCommand", e.FullyQualifiedErrorId);
            Assert.Contains("-Fallback", e.ErrorDetails.RecommendedAction);

            var r = sh.Run($"'{lab[0].Address}','{lab[1].Address}' | Get-KeyServiceLog -Source Central -Fallback");
            Assert.Empty(r.Errors);
            var w = Assert.Single(r.Warnings);
            Assert.Contains("CentralLogUnauthorized", w);
            Assert.Contains("docker logs over SSH", w);
            Assert.Equal(2, r.Output.Count);
            Assert.All(r.Output, o => Assert.Equal("Docker", o.S("Source")));
            Assert.DoesNotContain("wrong-key", r.AllStreamsText());
        }

        [Fact]
        public async Task Fallback_after_lines_were_written_is_an_error_never_the_same_lines_again_from_docker()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 1, Ssh = true, CentralLogs = true });
            for (int i = 0; i < 60; i++) lab[0].AppendLog($"level=info msg=\"line {i}\"");
            using var sh = ShellFor(lab, lab.WriteKnownHosts(), lab.CentralLogs.ApiKey);
            Assert.Empty(sh.Run("Set-KeyServiceOpsContext -CentralLogPageSize 10").Errors);
            lab.CentralLogs.UnauthorizedAfterSearches = 1; // the key is revoked after the first page
            var r = sh.Run($"Get-KeyServiceLog {lab[0].Address} -Source Central -Fallback");
            Assert.Equal(10, r.Output.Count);
            Assert.All(r.Output, o => Assert.Equal("Central", o.S("Source")));
            var e = Assert.Single(r.Errors);
            Assert.StartsWith("CentralLogUnauthorized,", e.FullyQualifiedErrorId);
            Assert.Contains("not falling back", e.Exception.Message);
            Assert.Empty(r.Warnings);
        }

        [Fact]
        public async Task ECS_documents_are_found_through_the_cmdlet_and_the_field_map_takes_lists()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 1, Ssh = true, CentralLogs = true });
            lab.CentralLogs.AddGenerated(lab[0].Address, 40, CentralLogDocStyle.Flat);
            lab.CentralLogs.AddGenerated(lab[0].Address, 30, CentralLogDocStyle.Ecs);
            using var sh = ShellFor(lab, lab.WriteKnownHosts(), lab.CentralLogs.ApiKey);
            var r = sh.Run($"@(Get-KeyServiceLog {lab[0].Address} -Source Central).Count");
            Assert.Empty(r.Errors);
            Assert.Equal(70, Convert.ToInt32(Assert.Single(r.Output).BaseObject));
            // Only the flat path named: the ECS lines are not found (the host filter is an OR over the names given).
            Assert.Empty(sh.Run("Set-KeyServiceOpsContext -CentralLogFieldMap @{ Host = 'host' }").Errors);
            r = sh.Run($"@(Get-KeyServiceLog {lab[0].Address} -Source Central).Count");
            Assert.Equal(40, Convert.ToInt32(Assert.Single(r.Output).BaseObject));
            Assert.Empty(sh.Run("Set-KeyServiceOpsContext -CentralLogFieldMap @{ Host = 'host', 'host.name'; Timestamp = '@timestamp', 'event.created' } -CentralLogTieBreaker log_id").Errors);
            var view = Assert.Single(sh.Run("Get-KeyServiceOpsContext").Output);
            Assert.Contains("Host=host,host.name", view.S("CentralLogFieldMap"));
            Assert.Contains("Timestamp=@timestamp,event.created", view.S("CentralLogFieldMap"));
            Assert.Equal("log_id", view.S("CentralLogTieBreaker"));
            r = sh.Run($"@(Get-KeyServiceLog {lab[0].Address} -Source Central).Count");
            Assert.Equal(70, Convert.ToInt32(Assert.Single(r.Output).BaseObject));
        }

        [Fact]
        public async Task The_inventory_routes_ssh_per_address_and_Get_KeyServiceInstance_shows_it()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 2, Ssh = true });
            var config = Path.Combine(Path.GetTempPath(), $"kso-config-{Guid.NewGuid():N}.json");
            File.WriteAllText(config, $$"""
                { "sshPort": 22,
                  "inventory": [ { "address": "{{lab[1].Address}}", "environment": "prod-eu-2", "sshUser": "{{lab.Ssh.User}}",
                                   "sshPort": {{lab.Ssh.Port}}, "sshKeyPath": "{{lab.Ssh.KeyPath}}" } ] }
                """);
            using var sh = Shell.For(lab, out _, $"-ConfigPath '{config}' -KnownHostsPath '{lab.WriteKnownHosts()}'");
            var inst = sh.Run($"Get-KeyServiceInstance -Address {lab[1].Address}");
            Assert.Empty(inst.Errors);
            var i = Assert.Single(inst.Output);
            Assert.Equal("prod-eu-2", i.S("Environment"));
            Assert.Equal(lab.Ssh.Port, i.P("SshPort"));
            // Port 22 is the context's default; the inventory's port and key are what reach the VM.
            var c = sh.Run($"Get-KeyServiceContainer {lab[1].Address}");
            Assert.Empty(c.Errors);
            Assert.Equal("running", Assert.Single(c.Output).S("Status"));
        }
    }
}
