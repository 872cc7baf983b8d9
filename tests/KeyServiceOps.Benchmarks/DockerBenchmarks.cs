using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Threading.Tasks;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using KeyServiceOps.TestHost;

namespace KeyServiceOps.Benchmarks
{
    /// <summary>Crash to recovered on a real Docker Engine: the module against the commands an operator would type.</summary>
    public static class DockerBenchmarks
    {
        private static double Median(IEnumerable<double> xs) { var a = xs.OrderBy(x => x).ToArray(); return a[a.Length / 2]; }

        /// <summary>
        /// One crashed instance (a real container that exited with a panic): `Restart-KeyService -Wait` (diagnose, restart,
        /// poll health every 0.2 s) vs `ssh VM docker restart api_key_service` followed by a curl loop every 0.2 s until
        /// healthy, median of 5 each, in the same run. Also the real estate's start-up time and memory.
        /// </summary>
        public static async Task<List<Row>> RecoveryAsync()
        {
            if (RealDockerEstate.Missing() is string why) return new List<Row> { new Row("Docker recovery", "not run: " + why, double.NaN, double.NaN, "s", "≤ 1.5× bare", null) };
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 0, RealDockerVms = 3, Ssh = true });
            var vm = lab.Vms[0];
            var known = lab.WriteKnownHosts();
            using var sh = new HostedShell();
            var set = sh.Run($"Set-KeyServiceOpsContext -KongAdminUri '{lab.KongUri}' -SshUser '{lab.Ssh.User}' -SshPort {lab.Ssh.Port} -SshKeyPath '{lab.Ssh.KeyPath}' -KnownHostsPath '{known}' -RestartPollSec 0.2");
            if (set.Errors.Count > 0) throw new InvalidOperationException(set.Errors[0].ToString());
            sh.Run($"Get-KeyServiceContainer {vm.Address} | Out-Null"); // JIT and the SSH session outside the timing
            var ours = new List<double>(); var bare = new List<double>();
            for (int rep = 0; rep < 5; rep++)
            {
                await vm.ApplyScenarioAsync(FaultScenario.CleanCrash);
                var sw = Stopwatch.StartNew();
                var r = sh.Run($"Restart-KeyService {vm.Address} -Wait -TimeoutSec 60 -Confirm:$false");
                ours.Add(sw.Elapsed.TotalSeconds);
                if (r.Errors.Count > 0 || r.Output.Single().Properties["Status"].Value.ToString() != "Recovered")
                    throw new InvalidOperationException("Restart-KeyService did not recover: " + string.Join("; ", r.Errors));

                await vm.ApplyScenarioAsync(FaultScenario.CleanCrash);
                sw.Restart();
                var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
                psi.ArgumentList.Add("-c");
                psi.ArgumentList.Add($"ssh -q -p {lab.Ssh.Port} -i '{lab.Ssh.KeyPath}' -o UserKnownHostsFile='{known}' -o StrictHostKeyChecking=yes -o BatchMode=yes {lab.Ssh.User}@{vm.Address} docker restart api_key_service >/dev/null && " +
                                     $"until curl -sf -m 2 {vm.HealthUrl} | grep -q 'The API is available and operational'; do sleep 0.2; done");
                using (var p = Process.Start(psi)) { p.StandardOutput.ReadToEnd(); p.WaitForExit(); if (p.ExitCode != 0) throw new InvalidOperationException("bare restart failed"); }
                bare.Add(sw.Elapsed.TotalSeconds);
            }
            var o = Median(ours); var b = Median(bare);
            return new List<Row>
            {
                new Row("Docker recovery", "crash → healthy on a real engine: Restart-KeyService -Wait vs ssh docker restart + curl loop (poll 0.2 s, median of 5)", o, b, "s", "≤ 1.5× bare", o <= 1.5 * b,
                        "ours also reads 500 log lines and docker inspect before restarting, and writes the audit line"),
                new Row("Real estate", $"3 VMs up (dockerd + image + container, healthy); resident memory {lab.RealDocker.ResidentBytes() / 1048576.0:F0} MB", lab.RealDocker.StartUp.TotalSeconds, double.NaN, "s", "–", null),
            };
        }
    }
}
