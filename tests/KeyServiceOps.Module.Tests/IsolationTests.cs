using System.Diagnostics;
using System.IO;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using Xunit;
using KeyServiceOps.TestHost;

namespace KeyServiceOps.Module.Tests
{
    public class IsolationTests
    {
        [Fact]
        public void Another_SSH_NET_and_Newtonsoft_loaded_first_do_not_break_the_module_and_ours_stay_private()
        {
            // A fresh process: this test host already holds its own copies of the assemblies.
            var here = Path.GetDirectoryName(typeof(IsolationTests).Assembly.Location)!;
            var config = new DirectoryInfo(here).Parent!.Name; // bin/<Configuration>/net10.0
            var lab = Path.Combine(HostedShell.RepoRoot, "tests", "KeyServiceOps.Lab", "bin", config, "net10.0", "KeyServiceOps.Lab.dll");
            Assert.True(File.Exists(lab), lab);
            var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
            psi.ArgumentList.Add(lab); psi.ArgumentList.Add("isolation-check");
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEnd();
            var stderr = p.StandardError.ReadToEnd();
            Assert.True(p.WaitForExit(120_000));
            Assert.True(p.ExitCode == 0, stdout + stderr);
            Assert.Contains("Renci.SshNet         2024.2.0.1   context: DefaultAssemblyLoadContext", stdout);
            Assert.Contains("Renci.SshNet         2026.0.0.1   context: DependencyLoadContext", stdout);
            Assert.Contains("Newtonsoft.Json      13.0.0.0     context: DependencyLoadContext", stdout);
            Assert.Contains("KeyServiceOps.Core   0.1.0.0      context: DependencyLoadContext", stdout);
            Assert.Contains("cmdlet output: PagerDutyIncident, ContainerState, RingBalancerTarget", stdout);
        }
    }
}
