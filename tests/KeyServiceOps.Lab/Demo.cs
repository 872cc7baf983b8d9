using System;
using System.IO;
using System.Threading.Tasks;

namespace KeyServiceOps.Lab
{
    /// <summary>Starts the lab, breaks an instance, and runs the module the way an operator would.</summary>
    public static class Demo
    {
        public static async Task<int> RunAsync(string[] args)
        {
            Console.WriteLine("Starting the lab (4 api_key_service instances, Kong emulator)...");
            await using var lab = await Lab.StartAsync(new LabOptions { Instances = 4 });
            var broken = lab[1];
            await broken.SetModeAsync(InstanceMode.Down);
            broken.ContainerStatus = "exited"; broken.ExitCode = 1;
            Console.WriteLine($"Broke {broken.Target} (container exited, health endpoint refuses connections).\n");
            var audit = Path.Combine(Path.GetTempPath(), $"keyserviceops-demo-{Guid.NewGuid():N}.jsonl");
            using var sh = new HostedShell();
            int failures = 0;
            void Step(string title, string script)
            {
                Console.WriteLine($"PS> {script}");
                var r = sh.Run(script + " | Out-Host");
                Console.Write(r.HostText);
                foreach (var w in r.Warnings) Console.WriteLine("WARNING: " + w);
                foreach (var e in r.Errors) { Console.WriteLine("ERROR: " + (e.ErrorDetails?.Message ?? e.ToString()) + $"  [{e.FullyQualifiedErrorId}]"); failures++; }
                Console.WriteLine();
            }
            Step("context", $"Set-KeyServiceOpsContext -KongAdminUri '{lab.KongUri}' -Upstream '{lab.Upstream}' -HealthTimeoutSec 2 -AuditLogPath '{audit}'");
            Step("targets", "Get-RingBalancerTarget");
            Step("health", "Get-RingBalancerTarget | Test-KeyServiceHealth");
            Step("remove", "Get-RingBalancerTarget | Test-KeyServiceHealth | Where-Object { -not $_.Healthy } | Remove-RingBalancerTarget -Confirm:$false -PassThru");
            Console.WriteLine($"(the container of {broken.Target} is restarted and recovers)\n");
            await broken.SetModeAsync(InstanceMode.Up);
            broken.ContainerStatus = "running"; broken.ExitCode = 0; broken.RestartCount++;
            Step("add back", $"Test-KeyServiceHealth {broken.Address} | Where-Object Healthy | Add-RingBalancerTarget -Confirm:$false -PassThru");
            Step("audit", "Get-KeyServiceAuditLog");
            File.Delete(audit);
            Console.WriteLine(failures == 0 ? "Demo finished." : $"Demo finished with {failures} error(s).");
            return failures == 0 ? 0 : 1;
        }
    }
}
