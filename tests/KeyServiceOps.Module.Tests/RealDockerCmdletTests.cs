using System.Linq;
using System.Threading.Tasks;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using Xunit;

namespace KeyServiceOps.Module.Tests
{
    /// <summary>The cmdlets an operator types, against real containers on real Docker Engines through the real sshd.</summary>
    public sealed class RealDockerCmdletTests
    {
        [Fact]
        public async Task Container_log_fault_and_restart_cmdlets_work_on_a_real_engine()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 0, RealDockerVms = 2, Ssh = true });
            var vm = lab.Vms[0];
            var starts = await vm.StartsAsync();
            await vm.ApplyScenarioAsync(FaultScenario.OutOfMemory);
            var known = lab.WriteKnownHosts();
            using var sh = Tests.Shell.For(lab, out var audit,
                $"-SshUser '{lab.Ssh.User}' -SshPort {lab.Ssh.Port} -SshKeyPath '{lab.Ssh.KeyPath}' -KnownHostsPath '{known}' -RestartPollSec 0.2");

            var state = sh.Run($"Get-KeyServiceContainer {vm.Address}");
            Assert.True(state.Errors.Count == 0, Tests.Shell.Ids(state));
            var c = Assert.Single(state.Output);
            Assert.Equal("exited", c.S("Status"));
            Assert.Equal(true, c.P("OOMKilled"));
            Assert.Equal(137, c.P("ExitCode"));

            var fault = sh.Run($"Get-KeyServiceLog {vm.Address} -Tail 50 | Get-KeyServiceFault");
            Assert.True(fault.Errors.Count == 0, Tests.Shell.Ids(fault));
            Assert.DoesNotContain(fault.Output, f => f.S("Category") == "OutOfMemory");
            // The kernel killed it before it could write why: its log has a warning only; -Address adds docker's own word (OOMKilled).
            var diag = sh.Run($"Get-KeyServiceFault -Address {vm.Address}");
            Assert.True(diag.Errors.Count == 0, Tests.Shell.Ids(diag));
            Assert.Contains(diag.Output, f => f.S("Category") == "OutOfMemory");

            var r = sh.Run($"Restart-KeyService {vm.Address} -Wait -TimeoutSec 60 -Confirm:$false");
            Assert.True(r.Errors.Count == 0, Tests.Shell.Ids(r));
            Assert.Equal("Recovered", Assert.Single(r.Output).S("Status"));
            Assert.Equal(starts + 1, await vm.StartsAsync());
            Assert.True(await vm.IsHealthyAsync());

            var logs = sh.Run($"Get-KeyServiceLog {vm.Address} -Tail 10");
            Assert.True(logs.Errors.Count == 0, Tests.Shell.Ids(logs));
            Assert.Contains(logs.Output, l => l.S("Message").Contains("api_key_service starting"));
            Assert.Contains("RestartContainer", System.IO.File.ReadAllText(audit));

            await vm.DockerAsync("rm", "-f", RealDockerEstate.Container);
            var gone = sh.Run($"Get-KeyServiceContainer {vm.Address}");
            Assert.StartsWith("ContainerNotFound,", Assert.Single(gone.Errors).FullyQualifiedErrorId);
        }

        [Fact]
        public async Task The_demo_runs_the_whole_runbook_on_real_containers()
        {
            Assert.Equal(0, await Demo.RunAsync(new[] { "--docker" }));
        }
    }
}
