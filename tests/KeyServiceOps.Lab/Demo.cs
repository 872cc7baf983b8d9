using System;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using KeyServiceOps.TestHost;

namespace KeyServiceOps.Lab
{
    using KeyServiceOps.Lab.Estate; // inside: the simple name Lab is the estate class here, not the namespace

    /// <summary>Starts the lab, breaks instances, and runs the module the way an operator would: the whole runbook.</summary>
    public static class Demo
    {
        public static async Task<int> RunAsync(string[] args)
        {
            var docker = args.Contains("--docker");
            if (docker && RealDockerEstate.Missing() is string why) { Console.WriteLine("demo --docker: " + why + "."); return 1; }
            Console.WriteLine(docker
                ? "Starting the lab (3 VMs, each with its own real Docker Engine and an api_key_service container; Kong, PagerDuty, a real sshd)..."
                : "Starting the lab (4 api_key_service instances, Kong, PagerDuty, a real sshd, central logs)...");
            await using var lab = await Lab.StartAsync(docker
                ? new LabOptions { Instances = 0, RealDockerVms = 3, Ssh = true, PagerDuty = true, CentralLogs = true }
                : new LabOptions { Instances = 4, Ssh = true, PagerDuty = true, CentralLogs = true });
            string crashedAddress, cipherAddress, crashedTarget, cipherTarget;
            Func<Task<int>> crashedRestarts, cipherRestarts;
            if (docker)
            {
                var (crashed, cipher) = (lab.Vms[1], lab.Vms[2]);
                Console.WriteLine($"The real estate came up in {lab.RealDocker.StartUp.TotalSeconds:F1} s ({lab.RealDocker.ResidentBytes() / (1024 * 1024)} MB resident: daemons, shims, containers).");
                var (c0, i0) = (await crashed.StartsAsync(), await cipher.StartsAsync());
                await crashed.ApplyScenarioAsync(FaultScenario.CleanCrash);
                await cipher.ApplyScenarioAsync(FaultScenario.CipherDependency);
                (crashedAddress, crashedTarget, cipherAddress, cipherTarget) = (crashed.Address, crashed.Target, cipher.Address, cipher.Target);
                crashedRestarts = async () => await crashed.StartsAsync() - c0;
                cipherRestarts = async () => await cipher.StartsAsync() - i0;
            }
            else
            {
                var (crashed, cipher) = (lab[1], lab[2]);
                await crashed.ApplyScenarioAsync(FaultScenario.CleanCrash);
                crashed.RestartDelay = TimeSpan.FromSeconds(2);
                await cipher.ApplyScenarioAsync(FaultScenario.CipherDependency);
                (crashedAddress, crashedTarget, cipherAddress, cipherTarget) = (crashed.Address, crashed.Target, cipher.Address, cipher.Target);
                crashedRestarts = () => Task.FromResult(crashed.Restarts);
                cipherRestarts = () => Task.FromResult(cipher.Restarts);
            }
            var alert1 = lab.PagerDuty.AddAlert(crashedAddress, "prod-eu-1");
            var alert2 = lab.PagerDuty.AddAlert(cipherAddress, "prod-eu-1");
            Console.WriteLine($"Broke {crashedTarget} (the service panicked) and {cipherTarget} (cipher service unavailable); PagerDuty paged {alert1.Id} and {alert2.Id}.\n");

            var dir = Path.Combine(Path.GetTempPath(), $"keyserviceops-demo-{Guid.NewGuid():N}");
            Directory.CreateDirectory(dir);
            var audit = Path.Combine(dir, "audit.jsonl");
            var known = lab.WriteKnownHosts(Path.Combine(dir, "known_hosts"));
            // The demo touches nothing outside its own folder (#27 row 13): session defaults, locks, audit log and the
            // notes outbox live in it, and it is deleted at the end.
            var sessionBefore = Environment.GetEnvironmentVariable("KEYSERVICEOPS_SESSION_FILE");
            Environment.SetEnvironmentVariable("KEYSERVICEOPS_SESSION_FILE", Path.Combine(dir, "session.json"));
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
            Step($"Set-KeyServiceOpsContext -KongAdminUri '{lab.KongUri}' -Upstream '{lab.Upstream}' -HealthTimeoutSec 2 -AuditLogPath '{audit}' -LockDirectory '{Path.Combine(dir, "locks")}' " +
                 $"-PagerDutyUri '{lab.PagerDuty.BaseUri}' -PagerDutyTokenVariable DEMO_PD_TOKEN -PagerDutyFrom oncall@example.com " +
                 $"-SshUser '{lab.Ssh.User}' -SshPort {lab.Ssh.Port} -SshKeyPath '{lab.Ssh.KeyPath}' -KnownHostsPath '{known}' " +
                 $"-CentralLogUri '{lab.CentralLogs.BaseUri}' -CentralLogApiKeyVariable DEMO_LOGS_KEY " +
                 "-RestartPollSec 0.5 -RestartWaitSec 30 -FaultOwner @{ CipherDependency = 'cipher-owner@example.com' }");
            Step("Get-PagerDutyIncident -Status Triggered");
            Step("Get-PagerDutyIncident -Status Triggered | Test-KeyServiceHealth");
            Step(docker ? $"Get-KeyServiceLog {cipherAddress} -Tail 50 | Get-KeyServiceFault" : $"Get-KeyServiceLog {cipherAddress} -Source Central -Since 1h | Get-KeyServiceFault");
            Step($"Get-PagerDutyIncident -IncidentId {alert1.Id},{alert2.Id} | Invoke-KeyServiceRunbook -WhatIf");
            Step($"Get-PagerDutyIncident -IncidentId {alert1.Id},{alert2.Id} | Invoke-KeyServiceRunbook -Confirm:$false");
            Step("Get-RingBalancerTarget | Test-KeyServiceHealth");
            Step($"Get-PagerDutyIncident -IncidentId {alert2.Id}");
            Step("Get-KeyServiceAuditLog");
            var ok = lab.Kong.Targets(lab.Upstream).Any(t => t.Target == crashedTarget) && await crashedRestarts() == 1
                     && !lab.Kong.Targets(lab.Upstream).Any(t => t.Target == cipherTarget) && await cipherRestarts() == 0
                     && lab.PagerDuty.Incident(alert2.Id).Assignees.SequenceEqual(new[] { "PCIPHER" });
            if (!ok) { Console.WriteLine("The runbook did not leave the lab as expected."); failures++; }
            try { Directory.Delete(dir, true); } catch (IOException) { }
            Environment.SetEnvironmentVariable("KEYSERVICEOPS_SESSION_FILE", sessionBefore);
            Console.WriteLine(failures == 0 ? "Demo finished: the crashed instance is back in the ring-balancer; the cipher fault went to its owner." : $"Demo finished with {failures} error(s).");
            return failures == 0 ? 0 : 1;
        }
    }
}
