using System;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using Xunit;
using KeyServiceOps.TestHost;

namespace KeyServiceOps.Module.Tests
{
    public sealed class SshModuleFixture : IAsyncLifetime
    {
        public Lab.Estate.Lab Lab { get; private set; }
        public string KnownHosts { get; private set; }

        public async Task InitializeAsync()
        {
            Lab = await KeyServiceOps.Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 16, Ssh = true });
            KnownHosts = Lab.WriteKnownHosts();
        }

        public SimInstance Fresh() => Lab.NextUnused();

        /// <summary>A hosted runspace whose context reaches the lab over SSH.</summary>
        public HostedShell Shell(out string audit, string knownHosts = null)
            => Tests.Shell.For(Lab, out audit,
                $"-SshUser '{Lab.Ssh.User}' -SshPort {Lab.Ssh.Port} -SshKeyPath '{Lab.Ssh.KeyPath}' -KnownHostsPath '{knownHosts ?? KnownHosts}' " +
                "-RestartPollSec 0.1 -FaultOwner @{ CipherDependency = 'cipher-owner@example.com' }");

        public async Task DisposeAsync() => await Lab.DisposeAsync();
    }

    public class SshCmdletTests : IClassFixture<SshModuleFixture>
    {
        private readonly SshModuleFixture _f;
        public SshCmdletTests(SshModuleFixture f) { _f = f; }

        private static string Plain(string s) => Regex.Replace(s, @"\x1b\[[0-9;]*m", "");

        [Fact]
        public async Task Logs_piped_to_Get_KeyServiceFault_name_the_dependency_fault_and_its_owner()
        {
            var inst = _f.Fresh();
            await inst.ApplyScenarioAsync(FaultScenario.CipherDependency);
            using var sh = _f.Shell(out _);
            var r = sh.Run($"Get-KeyServiceLog -Address {inst.Address} -Tail 200 | Get-KeyServiceFault");
            Assert.Empty(r.Errors);
            var f = Assert.Single(r.Output);
            Assert.Equal("KeyServiceOps.Core.Diagnosis.Fault", f.TypeName());
            Assert.Equal("CipherDependency", f.S("Category"));
            Assert.Equal(true, f.P("Dependency"));
            Assert.Equal("AssignToOwner", f.S("Action"));
            Assert.Equal("cipher-owner@example.com", f.S("Owner"));
            Assert.Equal(inst.Address, f.S("Address"));
            Assert.Contains("do not restart", f.S("Advice"));

            var table = sh.Run($"$PSStyle.Formatting.TableHeader = ''; Get-KeyServiceLog {inst.Address} -Tail 2 | Out-Host; Get-KeyServiceLog {inst.Address} -Tail 200 | Get-KeyServiceFault | Out-Host");
            Assert.Empty(table.Errors);
            var text = Plain(table.HostText);
            Assert.Matches(@"Timestamp\s+Stream\s+Level\s+Message", text);
            Assert.Contains($"Instance: {inst.Address} (api_key_service, Docker)", text); // grouped by host
            Assert.Matches(@"err\s+Fatal\s+\S", text);
            Assert.DoesNotMatch(@"Fatal\s+time=", text); // the message first, not the logrus time= prefix (#27 row 5)
            Assert.Matches(@"Instance: \S+\s+Category\s+Action\s+Count\s+LastSeen\s+Evidence", text);
            Assert.Contains("CipherDependency", text);
        }

        [Fact]
        public async Task Restart_Wait_WhatIf_says_what_it_would_do_and_touches_nothing()
        {
            var inst = _f.Fresh();
            await inst.ApplyScenarioAsync(FaultScenario.OutOfMemory);
            using var sh = _f.Shell(out var audit);
            var before = _f.Lab.Ssh.AcceptedConnections();
            var calls = _f.Lab.Ssh.Docker.Calls.Count(c => c.Address == inst.Address);
            var r = sh.Run($"Restart-KeyService -Address {inst.Address} -Wait -WhatIf");
            Assert.Empty(r.Errors);
            Assert.Empty(r.Output);
            Assert.Contains($"What if: Performing the operation \"Restart container and wait for health\" on target \"api_key_service on {inst.Address}\"", r.HostText);
            Assert.Equal(0, inst.Restarts);
            Assert.Equal(calls, _f.Lab.Ssh.Docker.Calls.Count(c => c.Address == inst.Address));
            Assert.Equal(before, _f.Lab.Ssh.AcceptedConnections());
            Assert.False(File.Exists(audit) && File.ReadAllText(audit).Contains("RestartContainer"));
        }

        [Fact]
        public async Task Restart_Wait_recovers_with_progress_and_an_audit_line()
        {
            var inst = _f.Fresh();
            await inst.ApplyScenarioAsync(FaultScenario.OutOfMemory);
            inst.RestartDelay = TimeSpan.FromMilliseconds(1500);
            using var sh = _f.Shell(out var audit);
            var r = sh.Run($"Restart-KeyService {inst.Address} -Wait -TimeoutSec 30 -IncidentId PINC7 -Confirm:$false");
            Assert.True(r.Errors.Count == 0, Tests.Shell.Ids(r));
            var res = Assert.Single(r.Output);
            Assert.Equal("Recovered", res.S("Status"));
            Assert.Equal(true, res.P("Recovered"));
            Assert.True((double)res.P("Seconds") >= 1.4);
            Assert.Equal(1, inst.Restarts);
            Assert.Contains(r.Progress, p => p.StatusDescription.Contains("s left"));
            Assert.Contains(r.Progress, p => p.RecordType == System.Management.Automation.ProgressRecordType.Completed);
            var line = File.ReadAllLines(audit).Single(l => l.Contains("RestartContainer") && !l.Contains("\"outcome\":\"Started\""));
            Assert.Contains("\"outcome\":\"Recovered\"", line);
            Assert.Contains("\"incident\":\"PINC7\"", line);
        }

        [Fact]
        public async Task Restart_refuses_a_dependency_fault_piped_from_Get_KeyServiceFault_and_restarts_a_plain_crash()
        {
            var cipher = _f.Fresh(); var crash = _f.Fresh();
            await cipher.ApplyScenarioAsync(FaultScenario.CipherDependency);
            await crash.ApplyScenarioAsync(FaultScenario.CleanCrash);
            using var sh = _f.Shell(out _);
            var r = sh.Run($"'{cipher.Address}','{crash.Address}' | Get-KeyServiceLog -Tail 200 | Get-KeyServiceFault | Restart-KeyService -Confirm:$false");
            var e = Assert.Single(r.Errors);
            Assert.Equal("DependencyFaultNoRestart,KeyServiceOps.Commands.RestartKeyServiceCommand", e.FullyQualifiedErrorId);
            Assert.Equal(cipher.Address, e.TargetObject);
            Assert.Contains("cipher-owner@example.com", e.ErrorDetails.RecommendedAction);
            var res = Assert.Single(r.Output);
            Assert.Equal(crash.Address, res.S("Address"));
            Assert.Equal("Restarted", res.S("Status"));
            Assert.Equal(0, cipher.Restarts);
            Assert.Equal(1, crash.Restarts);

            // Without piped faults the cmdlet reads the logs itself before restarting.
            var again = sh.Run($"Restart-KeyService {cipher.Address} -Confirm:$false");
            Assert.Equal("DependencyFaultNoRestart", Assert.Single(again.Errors).FullyQualifiedErrorId.Split(',')[0]);
            var forced = sh.Run($"Restart-KeyService {cipher.Address} -Force -Confirm:$false");
            Assert.Empty(forced.Errors);
            Assert.Equal(1, cipher.Restarts);
        }

        [Fact]
        public async Task A_restart_that_does_not_recover_returns_the_result_and_an_error_that_says_escalate()
        {
            var inst = _f.Fresh();
            await inst.ApplyScenarioAsync(FaultScenario.PortInUse, persists: true);
            using var sh = _f.Shell(out _);
            var r = sh.Run($"Restart-KeyService {inst.Address} -Wait -TimeoutSec 1 -Confirm:$false");
            Assert.Equal("NotRecovered", Assert.Single(r.Output).S("Status"));
            var e = Assert.Single(r.Errors);
            Assert.StartsWith("KeyServiceNotRecovered,", e.FullyQualifiedErrorId);
            Assert.Contains("escalate", e.ErrorDetails.RecommendedAction);
        }

        [Fact]
        public void A_container_name_with_shell_metacharacters_is_refused_before_any_connection()
        {
            var inst = _f.Fresh();
            File.Delete("/tmp/kso-pwned-mod");
            using var sh = _f.Shell(out _);
            var before = _f.Lab.Ssh.AcceptedConnections();
            foreach (var name in new[] { "api_key_service; touch /tmp/kso-pwned-mod", "$(touch /tmp/kso-pwned-mod)" })
            {
                var r = sh.Run($"Get-KeyServiceLog {inst.Address} -Container '{name}'; Restart-KeyService {inst.Address} -Container '{name}' -Confirm:$false");
                Assert.Equal(2, r.Errors.Count);
                Assert.All(r.Errors, e => Assert.StartsWith("InvalidSettingValue", e.FullyQualifiedErrorId));
                Assert.All(r.Errors, e => Assert.StartsWith("-Container must be a container name", e.Exception.Message));
            }
            Assert.Equal(before, _f.Lab.Ssh.AcceptedConnections());
            Assert.False(File.Exists("/tmp/kso-pwned-mod"));
        }

        [Fact]
        public void Unknown_host_key_is_a_security_error_until_accepted_then_sessions_are_reused_across_cmdlets()
        {
            var inst = _f.Fresh();
            var known = Path.Combine(Path.GetTempPath(), $"kso-known-{Guid.NewGuid():N}");
            using var sh = _f.Shell(out _, knownHosts: known);
            var r = sh.Run($"Get-KeyServiceContainer {inst.Address}");
            var e = Assert.Single(r.Errors);
            Assert.Equal("SshHostKeyUnknown,KeyServiceOps.Commands.GetKeyServiceContainerCommand", e.FullyQualifiedErrorId);
            Assert.Equal(System.Management.Automation.ErrorCategory.SecurityError, e.CategoryInfo.Category);
            Assert.Contains(_f.Lab.Ssh.HostKeyFingerprint, e.Exception.Message);
            Assert.Contains("-AcceptNewHostKey", e.ErrorDetails.RecommendedAction);

            var before = _f.Lab.Ssh.AcceptedConnections();
            var ok = sh.Run($"Get-KeyServiceContainer {inst.Address} -AcceptNewHostKey");
            Assert.Empty(ok.Errors);
            Assert.Equal("running", Assert.Single(ok.Output).S("Status"));
            Assert.Contains(ok.Warnings, w => w.Contains("recorded the new host key"));
            Assert.Contains(_f.Lab.Ssh.KnownHostsEntry(inst.Address), File.ReadAllText(known));

            // Later cmdlets in the same session reuse that one connection.
            var more = sh.Run($"Get-KeyServiceLog {inst.Address} -Tail 5 | Out-Null; Test-KeyServiceHealth {inst.Address} -Via Ssh; Get-KeyServiceContainer {inst.Address}");
            Assert.Empty(more.Errors);
            var h = more.Output.First();
            Assert.Equal("Ssh", h.S("Via"));
            Assert.Equal(true, h.P("Healthy"));
            Thread.Sleep(200);
            Assert.Equal(before + 1, _f.Lab.Ssh.AcceptedConnections());
        }

        [Fact]
        public void Remove_Module_closes_the_pooled_sessions()
        {
            var inst = _f.Fresh();
            using var sh = _f.Shell(out _);
            Assert.Empty(sh.Run($"Get-KeyServiceContainer {inst.Address}").Errors);
            var closed = _f.Lab.Ssh.CountLogLines("Disconnected from user");
            Assert.Empty(sh.Run("Remove-Module KeyServiceOps").Errors);
            var after = closed;
            for (int i = 0; i < 50 && after == closed; i++) { Thread.Sleep(100); after = _f.Lab.Ssh.CountLogLines("Disconnected from user"); }
            Assert.Equal(closed + 1, after);
        }

        [Fact]
        public void Remove_Module_in_one_runspace_leaves_another_runspaces_sessions_alone()
        {
            var inst = _f.Fresh();
            using var a = _f.Shell(out _);
            using var b = _f.Shell(out _);
            Assert.Empty(a.Run($"Get-KeyServiceContainer {inst.Address}").Errors);
            var accepted = _f.Lab.Ssh.AcceptedConnections();
            Assert.Empty(b.Run("Remove-Module KeyServiceOps").Errors);
            var again = a.Run($"Get-KeyServiceContainer {inst.Address} -CommandTimeoutSec 10");
            Assert.Empty(again.Errors);
            Thread.Sleep(200);
            Assert.Equal(accepted, _f.Lab.Ssh.AcceptedConnections()); // same pooled connection, not a new one
        }

        [Fact]
        public async Task Get_KeyServiceContainer_binds_ring_balancer_targets_from_the_pipeline()
        {
            using var sh = _f.Shell(out _);
            var r = sh.Run("Get-RingBalancerTarget | Get-KeyServiceContainer");
            Assert.Empty(r.Errors);
            Assert.Equal(_f.Lab.Instances.Count, r.Output.Count);
            Assert.All(r.Output, o => Assert.Equal("api_key_service", o.S("Container")));
            await Task.CompletedTask;
        }
    }
}
