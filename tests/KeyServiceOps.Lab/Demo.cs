using System;
using System.IO;
using System.Linq;
using System.Threading.Tasks;

namespace KeyServiceOps.Lab
{
    /// <summary>Starts the lab, breaks instances, and runs the module the way an operator would: the whole runbook.</summary>
    public static class Demo
    {
        public static async Task<int> RunAsync(string[] args)
        {
            Console.WriteLine("Starting the lab (4 api_key_service instances, Kong, PagerDuty, a real sshd, central logs)...");
            await using var lab = await Lab.StartAsync(new LabOptions { Instances = 4, Ssh = true, PagerDuty = true, CentralLogs = true });
            var crashed = lab[1]; var cipher = lab[2];
            await crashed.ApplyScenarioAsync(FaultScenario.CleanCrash);
            crashed.RestartDelay = TimeSpan.FromSeconds(2);
            await cipher.ApplyScenarioAsync(FaultScenario.CipherDependency);
            var alert1 = lab.PagerDuty.AddAlert(crashed.Address, "prod-eu-1");
            var alert2 = lab.PagerDuty.AddAlert(cipher.Address, "prod-eu-1");
            Console.WriteLine($"Broke {crashed.Target} (the service panicked) and {cipher.Target} (cipher service unavailable); PagerDuty paged {alert1.Id} and {alert2.Id}.\n");

            var dir = Path.Combine(Path.GetTempPath(), $"keyserviceops-demo-{Guid.NewGuid():N}");
            Directory.CreateDirectory(dir);
            var audit = Path.Combine(dir, "audit.jsonl");
            var known = lab.WriteKnownHosts(Path.Combine(dir, "known_hosts"));
            Environment.SetEnvironmentVariable("DEMO_PD_TOKEN", lab.PagerDuty.Token);
            Environment.SetEnvironmentVariable("DEMO_LOGS_KEY", lab.CentralLogs.ApiKey);
            using var sh = new HostedShell();
            sh.Run("$PSStyle.Formatting.TableHeader = ''");
            int failures = 0;
            void Step(string script, bool expectErrors = false)
            {
                Console.WriteLine($"PS> {script}");
                var r = sh.Run(script + " | Out-Host");
                Console.Write(System.Text.RegularExpressions.Regex.Replace(r.HostText, @"\x1b\[[0-9;]*m", ""));
                foreach (var w in r.Warnings) Console.WriteLine("WARNING: " + w);
                foreach (var e in r.Errors) { Console.WriteLine("ERROR: " + (e.ErrorDetails?.Message ?? e.ToString()) + $"  [{e.FullyQualifiedErrorId}]"); if (!expectErrors) failures++; }
                Console.WriteLine();
            }
            Step($"Set-KeyServiceOpsContext -KongAdminUri '{lab.KongUri}' -Upstream '{lab.Upstream}' -HealthTimeoutSec 2 -AuditLogPath '{audit}' " +
                 $"-PagerDutyUri '{lab.PagerDuty.BaseUri}' -PagerDutyTokenVariable DEMO_PD_TOKEN -PagerDutyFrom oncall@example.com " +
                 $"-SshUser '{lab.Ssh.User}' -SshPort {lab.Ssh.Port} -SshKeyPath '{lab.Ssh.KeyPath}' -KnownHostsPath '{known}' " +
                 $"-CentralLogUri '{lab.CentralLogs.BaseUri}' -CentralLogApiKeyVariable DEMO_LOGS_KEY " +
                 "-RestartPollSec 0.5 -RestartWaitSec 30 -FaultOwner @{ CipherDependency = 'cipher-owner@example.com' }");
            Step("Get-PagerDutyIncident -Status Triggered");
            Step("Get-PagerDutyIncident -Status Triggered | Test-KeyServiceHealth");
            Step($"Get-KeyServiceLog {cipher.Address} -Source Central -Since 1h | Get-KeyServiceFault");
            Step($"Get-PagerDutyIncident -IncidentId {alert1.Id},{alert2.Id} | Invoke-KeyServiceRunbook -WhatIf");
            Step($"Get-PagerDutyIncident -IncidentId {alert1.Id},{alert2.Id} | Invoke-KeyServiceRunbook -Confirm:$false");
            Step("Get-RingBalancerTarget | Test-KeyServiceHealth");
            Step($"Get-PagerDutyIncident -IncidentId {alert2.Id}");
            Step("Get-KeyServiceAuditLog");
            var ok = lab.Kong.Targets(lab.Upstream).Any(t => t.Target == crashed.Target) && crashed.Restarts == 1
                     && !lab.Kong.Targets(lab.Upstream).Any(t => t.Target == cipher.Target) && cipher.Restarts == 0
                     && lab.PagerDuty.Incident(alert2.Id).Assignees.SequenceEqual(new[] { "PCIPHER" });
            if (!ok) { Console.WriteLine("The runbook did not leave the lab as expected."); failures++; }
            try { Directory.Delete(dir, true); } catch (IOException) { }
            Console.WriteLine(failures == 0 ? "Demo finished: the crashed instance is back in the ring-balancer; the cipher fault went to its owner." : $"Demo finished with {failures} error(s).");
            return failures == 0 ? 0 : 1;
        }
    }
}
