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
    /// <summary>Issue #27: the operator at 3 a.m., row by row, in the cmdlets.</summary>
    public class OperatorCmdletTests
    {
        [Fact]
        public async Task Row2_the_remove_share_counts_what_is_out_now_across_commands_and_a_healthy_target_warns()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 4 });
            using var sh = Shell.For(lab, out _);
            // Three commands, one target each, all healthy: the share (50%) counts what earlier commands took out.
            var one = sh.Run($"Remove-RingBalancerTarget {lab[0].Target} -Confirm:$false");
            Assert.Empty(one.Errors);
            Assert.Contains(one.Warnings, w => w.Contains("is operational") && w.Contains("taking traffic"));
            Assert.Empty(sh.Run($"Remove-RingBalancerTarget {lab[1].Target} -Confirm:$false").Errors);
            var third = sh.Run($"Remove-RingBalancerTarget {lab[2].Target} -Confirm:$false");
            var e = Assert.Single(third.Errors);
            Assert.StartsWith("RemoveShareExceeded,", e.FullyQualifiedErrorId);
            Assert.Contains("2 already out", e.Exception.Message);
            Assert.Equal(2, lab.Kong.Targets(lab.Upstream).Count);
        }

        [Fact]
        public async Task Row1_a_wait_for_another_actor_shows_a_progress_bar_naming_the_holder_with_a_countdown()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3 });
            var locks = Path.Combine(Path.GetTempPath(), "kso-wait-" + Guid.NewGuid().ToString("N").Substring(0, 8));
            using var sh = Shell.For(lab, out _, $"-LockDirectory '{locks}'");
            await lab[0].SetModeAsync(InstanceMode.Down);
            // Another operator's command holds the instance for 2.5 s: the lock file opened share-none (an exclusive flock,
            // as the module takes it) and its holder file, as another process leaves them.
            Directory.CreateDirectory(locks);
            File.WriteAllText(Path.Combine(locks, lab[0].Address + ".holder"), "process 4242 on ops-b (bob) since 2026-12-06 03:00:00Z: operator B's runbook");
            var held = new FileStream(Path.Combine(locks, lab[0].Address + ".lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            _ = Task.Delay(2500).ContinueWith(_ => held.Dispose());
            var r = sh.Run($"Remove-RingBalancerTarget {lab[0].Target} -Confirm:$false -LockTimeoutSec 20");
            Assert.Empty(r.Errors);
            Assert.Contains(r.Progress, p => p.Activity == $"Waiting for {lab[0].Address}" && p.StatusDescription.Contains("operator B's runbook") && p.SecondsRemaining > 0 && p.SecondsRemaining <= 20);
            Assert.Contains(r.Progress, p => p.Activity == $"Waiting for {lab[0].Address}" && p.RecordType == System.Management.Automation.ProgressRecordType.Completed);
            Assert.DoesNotContain(lab.Kong.Targets(lab.Upstream), t => t.Target == lab[0].Target);
        }

        [Fact]
        public async Task Row3_restarting_an_operational_instance_warns_that_it_is_taking_traffic()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 2, Ssh = true });
            using var sh = Shell.For(lab, out _, $"-SshUser '{lab.Ssh.User}' -SshPort {lab.Ssh.Port} -SshKeyPath '{lab.Ssh.KeyPath}' -KnownHostsPath '{lab.WriteKnownHosts()}'");
            var r = sh.Run($"Restart-KeyService {lab[0].Address} -Confirm:$false");
            Assert.Empty(r.Errors);
            Assert.Contains(r.Warnings, w => w.Contains($"{lab[0].Address} is operational") && w.Contains("drops the requests in flight"));
            await lab[1].SetModeAsync(InstanceMode.Down);
            var down = sh.Run($"Restart-KeyService {lab[1].Address} -Confirm:$false");
            Assert.DoesNotContain(down.Warnings, w => w.Contains("is operational"));
        }

        [Fact]
        public async Task Row8_the_aliases_the_help_lists_bind_by_property_name_from_Import_Csv()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 2 });
            using var sh = Shell.For(lab, out _);
            foreach (var column in new[] { "ComputerName", "IPAddress", "Host" })
            {
                // What Import-Csv makes of hosts.csv (the hosted runspace has no Import-Csv; Pester's Operator suite uses the real one).
                var r = sh.Run($"[pscustomobject]@{{ {column} = '{lab[0].Address}'; Owner = 'team-a' }}, [pscustomobject]@{{ {column} = '{lab[1].Address}'; Owner = 'team-b' }} | Test-KeyServiceHealth");
                Assert.Empty(r.Errors);
                Assert.Equal(new[] { lab[0].Address, lab[1].Address }, r.Output.Select(o => o.S("Address")).ToArray());
            }
        }

        [Fact]
        public async Task Row10_the_notes_on_an_incident_can_be_read_back()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 2, PagerDuty = true });
            var inc = lab.PagerDuty.AddAlert(lab[0].Address);
            Environment.SetEnvironmentVariable("KSO_NOTES_PD", lab.PagerDuty.Token);
            using var sh = Shell.For(lab, out _, $"-PagerDutyUri '{lab.PagerDuty.BaseUri}' -PagerDutyTokenVariable KSO_NOTES_PD -PagerDutyFrom oncall@example.com");
            Assert.Empty(sh.Run($"Add-PagerDutyIncidentNote -IncidentId {inc.Id} -Note 'cipher team paged on Slack' -Confirm:$false").Errors);
            Assert.Empty(sh.Run($"Remove-RingBalancerTarget {lab[1].Target} -Confirm:$false -Force -PassThru | Add-PagerDutyIncidentNote -IncidentId {inc.Id} -Confirm:$false").Errors);
            var all = sh.Run($"Get-PagerDutyIncident -IncidentId {inc.Id} | Get-PagerDutyIncidentNote");
            Assert.Empty(all.Errors);
            Assert.Equal(2, all.Output.Count);
            Assert.Equal("cipher team paged on Slack", all.Output[0].S("Content"));
            Assert.Contains(lab[1].Target, all.Output[1].S("Content"));
            // What the runbook and self-healing write starts with [KeyServiceOps]: -ModuleOnly keeps those.
            Assert.Empty(sh.Run($"Add-PagerDutyIncidentNote -IncidentId {inc.Id} -Note '[KeyServiceOps] restarted api_key_service' -Confirm:$false").Errors);
            var mine = sh.Run($"Get-PagerDutyIncidentNote {inc.Id} -ModuleOnly");
            Assert.Equal("[KeyServiceOps] restarted api_key_service", Assert.Single(mine.Output).S("Content"));
        }

        [Fact]
        public async Task Row12_serve_prints_a_context_line_to_paste_and_commands_that_break_an_instance()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 2, Ssh = true, PagerDuty = true, CentralLogs = true });
            var known = lab.WriteKnownHosts();
            var (control, controlUri) = await LabHost.StartAsync(async ctx =>
            {
                var inst = lab.Instances.First(i => i.Address == ctx.Request.Query["address"].ToString());
                if (ctx.Request.Path == "/mode") await inst.SetModeAsync(Enum.Parse<InstanceMode>(ctx.Request.Query["mode"].ToString()));
                await Microsoft.AspNetCore.Http.HttpResponseWritingExtensions.WriteAsync(ctx.Response, "ok");
            });
            try
            {
                var guide = ServeGuide.Text(lab, known, controlUri, 600, lab.Ssh.Dir);
                Assert.DoesNotContain("{", guide.Split('\n')[0]); // not a JSON dump
                var lines = guide.Split('\n').Select(l => l.Trim()).ToList();
                using var sh = new HostedShell();
                foreach (var l in lines.Where(l => l.StartsWith("$env:") || l.StartsWith("Set-KeyServiceOpsContext"))) Assert.Empty(sh.Run(l).Errors);
                var targets = sh.Run("Get-RingBalancerTarget -NoHealth");
                Assert.Empty(targets.Errors);
                Assert.Equal(2, targets.Output.Count);
                // The break command, as printed, takes the instance down.
                var post = lines.First(l => l.Contains("mode?address="));
                var url = post.Split('\'')[1];
                using (var http = new System.Net.Http.HttpClient()) (await http.PostAsync(url, null)).EnsureSuccessStatusCode();
                var h = sh.Run($"Test-KeyServiceHealth {lab[0].Address}");
                Assert.False((bool)Assert.Single(h.Output).P("Healthy"));
                Assert.Contains("Invoke-KeyServiceRunbook", guide);
            }
            finally { await LabHost.StopAsync(control); }
        }

        [Fact]
        public async Task Row11_fault_owners_are_visible_in_the_context()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 1 });
            using var sh = Shell.For(lab, out _, "-FaultOwner @{ CipherDependency = 'cipher-owner@example.com'; IamDependency = 'iam@example.com' }");
            var v = Assert.Single(sh.Run("Get-KeyServiceOpsContext").Output);
            Assert.Equal("CipherDependency=cipher-owner@example.com; IamDependency=iam@example.com", v.S("FaultOwners"));
        }

        [Fact]
        public async Task Row17_a_Kong_that_never_answers_names_the_HttpTimeoutSec_parameter()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 1 });
            using var sh = Shell.For(lab, out _, "-HttpTimeoutSec 1");
            lab.Kong.StallNext = 5;
            var r = sh.Run("Get-RingBalancerTarget -NoHealth");
            var e = Assert.Single(r.Errors);
            Assert.StartsWith("KongTimeout,", e.FullyQualifiedErrorId);
            Assert.Contains("-HttpTimeoutSec", e.ErrorDetails.RecommendedAction);
        }
    }
}
