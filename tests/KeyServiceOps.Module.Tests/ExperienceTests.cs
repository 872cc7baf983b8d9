using System;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using System.Threading.Tasks;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using Xunit;
using KeyServiceOps.TestHost;

namespace KeyServiceOps.Module.Tests
{
    public class ExperienceTests
    {
        private static string[] Complete(HostedShell sh, string line)
        {
            sh.SetVariable("line", line);
            var r = sh.Run("[System.Management.Automation.CommandCompletion]::CompleteInput($line, $line.Length, $null).CompletionMatches | ForEach-Object CompletionText");
            Assert.Empty(r.Errors);
            return r.Output.Select(o => o.ToString().Trim('\'')).ToArray();
        }

        [Fact]
        public async Task Tab_completion_offers_upstreams_targets_incidents_and_environments()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, PagerDuty = true });
            lab.Kong.AddUpstream("billing_service");
            var inc = lab.PagerDuty.AddAlert(lab[1].Address, "prod-eu-1");
            var config = Path.Combine(Path.GetTempPath(), $"kso-config-{Guid.NewGuid():N}.json");
            File.WriteAllText(config, $"{{ \"inventory\": [ {{ \"address\": \"{lab[0].Address}\", \"environment\": \"prod-eu-1\" }}, {{ \"address\": \"{lab[1].Address}\", \"environment\": \"stage-us-2\" }} ] }}");
            Environment.SetEnvironmentVariable("KSO_COMPLETE_PD", lab.PagerDuty.Token);
            using var sh = Shell.For(lab, out _, $"-ConfigPath '{config}' -PagerDutyUri '{lab.PagerDuty.BaseUri}' -PagerDutyTokenVariable KSO_COMPLETE_PD");
            Assert.Equal(new[] { "api_key_service", "billing_service" }, Complete(sh, "Get-RingBalancerTarget -Upstream ").OrderBy(x => x));
            Assert.Equal(new[] { "billing_service" }, Complete(sh, "Get-RingBalancerTarget -Upstream bill"));
            Assert.Equal(lab.Instances.Select(i => i.Target).OrderBy(x => x), Complete(sh, "Remove-RingBalancerTarget -Target ").OrderBy(x => x));
            Assert.Contains(inc.Id, Complete(sh, "Set-PagerDutyIncident -IncidentId "));
            Assert.Equal(new[] { "prod-eu-1" }, Complete(sh, "Get-KeyServiceInstance -Environment pro"));
        }

        [Fact]
        public async Task Tab_completion_offers_addresses_targets_to_add_back_incident_ids_and_audit_actions()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, PagerDuty = true });
            var inc = lab.PagerDuty.AddAlert(lab[1].Address, "prod-eu-1");
            var config = Path.Combine(Path.GetTempPath(), $"kso-config-{Guid.NewGuid():N}.json");
            File.WriteAllText(config, $"{{ \"inventory\": [ {{ \"address\": \"10.9.8.7\", \"port\": 8888, \"environment\": \"prod-eu-1\" }} ] }}");
            Environment.SetEnvironmentVariable("KSO_COMPLETE_PD2", lab.PagerDuty.Token);
            using var sh = Shell.For(lab, out _, $"-ConfigPath '{config}' -PagerDutyUri '{lab.PagerDuty.BaseUri}' -PagerDutyTokenVariable KSO_COMPLETE_PD2");
            var addresses = lab.Instances.Select(i => i.Address).Append("10.9.8.7").OrderBy(x => x).ToArray();
            foreach (var cmd in new[] { "Test-KeyServiceHealth", "Restart-KeyService", "Get-KeyServiceContainer", "Get-KeyServiceLog", "Invoke-KeyServiceRunbook", "Get-KeyServiceInstance" })
                Assert.Equal(addresses, Complete(sh, cmd + " -Address ").OrderBy(x => x));
            Assert.Equal(addresses, Complete(sh, "Get-KeyServiceFault -Address ").OrderBy(x => x));
            // Add-RingBalancerTarget offers what is not in the upstream: the inventory instance, then also a removed target.
            Assert.Equal(new[] { "10.9.8.7:8888" }, Complete(sh, "Add-RingBalancerTarget -Target "));
            Assert.Empty(sh.Run($"Remove-RingBalancerTarget {lab[2].Target} -Confirm:$false -Force").Errors);
            Assert.Equal(new[] { "10.9.8.7:8888", lab[2].Target }.OrderBy(x => x), Complete(sh, "Add-RingBalancerTarget -Target ").OrderBy(x => x));
            Assert.Contains(inc.Id, Complete(sh, "Remove-RingBalancerTarget -IncidentId "));
            Assert.Contains(inc.Id, Complete(sh, "Test-KeyServiceHealth -IncidentId "));
            Assert.Contains("RemoveTarget", Complete(sh, "Get-KeyServiceAuditLog -Action "));
            Assert.Equal(new[] { "RemoveTarget", "RestartContainer" }, Complete(sh, "Get-KeyServiceAuditLog -Action Re").OrderBy(x => x));
        }

        [Fact]
        public async Task Verbose_tells_the_story_and_debug_keeps_ssh_passphrase_and_log_api_key_out_of_every_stream_and_file()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 2, Ssh = true, CentralLogs = true });
            await lab[0].ApplyScenarioAsync(FaultScenario.OutOfMemory);
            var known = lab.WriteKnownHosts();
            const string canaryKey = "canary-id:CANARY-4f1d-central-secret";
            using var sh = Shell.For(lab, out var audit, $"-SshUser '{lab.Ssh.User}' -SshPort {lab.Ssh.Port} -SshKeyPath '{lab.Ssh.RsaPemKeyPath}' -KnownHostsPath '{known}' -CentralLogUri '{lab.CentralLogs.BaseUri}' -RestartPollSec 0.1");
            sh.SetVariable("pass", new System.Net.NetworkCredential("", LabSsh.RsaPassphrase).SecurePassword);
            sh.SetVariable("key", new System.Net.NetworkCredential("", canaryKey).SecurePassword);
            Assert.Empty(sh.Run("Set-KeyServiceOpsContext -SshKeyPassphrase $pass -CentralLogApiKey $key").Errors);
            var r = sh.Run($"$DebugPreference = 'Continue'; Get-KeyServiceLog {lab[0].Address} -Source Central -Fallback -Tail 20 -Verbose -Debug | Get-KeyServiceFault -Verbose | Out-Host; " +
                           $"Restart-KeyService {lab[0].Address} -Wait -TimeoutSec 20 -Confirm:$false -Verbose -Debug | Out-Host; Get-KeyServiceOpsContext | Out-Host");
            Assert.Empty(r.Errors);
            var all = r.AllStreamsText();
            Assert.Contains(r.Verbose, v => v.Contains("SSH: connected to"));
            Assert.Contains(r.Verbose, v => v.Contains("docker restart api_key_service") || v.Contains("`docker restart"));
            Assert.Contains(r.Verbose, v => v.Contains("CentralLog: GET / -> 401") || v.Contains("CentralLog: POST"));
            Assert.Contains(r.Debug, d => d.Contains("Authorization=***") || d.Contains("ApiKey ***"));
            Assert.Single(r.Warnings, w => w.Contains("CentralLogUnauthorized"));
            foreach (var secret in new[] { LabSsh.RsaPassphrase, canaryKey, Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(canaryKey)), "CANARY-4f1d" })
            {
                Assert.DoesNotContain(secret, all);
                Assert.DoesNotContain(secret, File.ReadAllText(audit));
            }
        }

        [Fact]
        public async Task New_output_types_render_in_120_columns()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true, PagerDuty = true });
            await lab[0].ApplyScenarioAsync(FaultScenario.IamDependency);
            lab[1].AppendLog("time=\"x\" level=info msg=\"GET /api/v1/apikeys 200\"");
            var known = lab.WriteKnownHosts();
            using var sh = Shell.For(lab, out _, $"-SshUser '{lab.Ssh.User}' -SshPort {lab.Ssh.Port} -SshKeyPath '{lab.Ssh.KeyPath}' -KnownHostsPath '{known}'");
            var r = sh.Run($"$PSStyle.Formatting.TableHeader = ''; Get-KeyServiceLog {lab[0].Address},{lab[1].Address} -Tail 3 | Out-Host; Get-KeyServiceFault -Address {lab[0].Address} | Out-Host; " +
                           $"Get-KeyServiceContainer {lab[0].Address} | Out-Host; Restart-KeyService {lab[1].Address} -Confirm:$false | Out-Host; " +
                           $"Invoke-KeyServiceRunbook {lab[2].Address} -Confirm:$false | Out-Host; Invoke-KeyServiceSelfHealing -StatePath ([IO.Path]::Combine([IO.Path]::GetTempPath(), '{Guid.NewGuid():N}.json')) -WhatIf | Out-Host");
            Assert.Empty(r.Errors);
            var text = Regex.Replace(r.HostText, @"\x1b\[[0-9;]*m", "");
            Assert.Contains($"Instance: {lab[0].Address} (api_key_service, Docker)", text);
            Assert.Contains($"Instance: {lab[1].Address} (api_key_service, Docker)", text);
            Assert.Matches(@"Instance: \S+\s+Category\s+Action\s+Count\s+LastSeen\s+Evidence", text);
            Assert.Matches(@"Address\s+Container\s+Status\s+Exit\s+OOM\s+Restarts\s+FinishedAt", text);
            Assert.Matches(@"Address\s+Container\s+Status\s+Secs\s+Checks\s+Health\s+LastFault", text);
            Assert.Matches(@"Runbook for: \S+\s+Step\s+Name\s+Outcome\s+Secs\s+Detail", text);
            Assert.All(text.Split('\n'), l => Assert.True(l.TrimEnd().Length <= 120, $"line over 120 columns: {l}"));
        }
    }
}
