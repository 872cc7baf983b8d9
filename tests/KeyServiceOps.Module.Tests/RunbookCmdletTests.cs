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
    public class RunbookCmdletTests
    {
        private static System.Collections.Generic.IEnumerable<System.Management.Automation.PSObject> Actions(ShellResult r) => r.Output.Where(o => o.TypeName().EndsWith(".SelfHealingAction"));
        private static System.Collections.Generic.IEnumerable<System.Management.Automation.PSObject> Summaries(ShellResult r) => r.Output.Where(o => o.TypeName().EndsWith(".SelfHealingPassSummary"));

        private static HostedShell ShellFor(Lab.Estate.Lab lab, out string audit)
        {
            Environment.SetEnvironmentVariable("KEYSERVICEOPS_PD_RETRY_BASE_MS", "20");
            var tokenVar = "KSOPS_PD_" + Guid.NewGuid().ToString("N");
            Environment.SetEnvironmentVariable(tokenVar, lab.PagerDuty.Token);
            var known = lab.WriteKnownHosts();
            return Shell.For(lab, out audit,
                $"-PagerDutyUri '{lab.PagerDuty.BaseUri}' -PagerDutyTokenVariable {tokenVar} -PagerDutyFrom oncall@example.com " +
                $"-SshUser '{lab.Ssh.User}' -SshPort {lab.Ssh.Port} -SshKeyPath '{lab.Ssh.KeyPath}' -KnownHostsPath '{known}' " +
                "-RestartPollSec 0.1 -RestartWaitSec 15 -FaultOwner @{ CipherDependency = 'cipher-owner@example.com' }");
        }

        private static string Plain(string s) => Regex.Replace(s, @"\x1b\[[0-9;]*m", "");

        [Fact]
        public async Task From_the_pager_the_runbook_recovers_a_crashed_instance_and_writes_to_that_incident()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true, PagerDuty = true });
            await lab[0].ApplyScenarioAsync(FaultScenario.CleanCrash);
            var inc = lab.PagerDuty.AddAlert(lab[0].Address, "prod-eu-1");
            using var sh = ShellFor(lab, out var audit);
            var r = sh.Run($"Get-PagerDutyIncident -IncidentId {inc.Id} | Invoke-KeyServiceRunbook -Confirm:$false");
            Assert.True(r.Errors.Count == 0, Shell.Ids(r) + " " + r.AllStreamsText());
            var steps = r.Output.Where(o => o.TypeName().EndsWith("RunbookStepResult")).ToList();
            Assert.Equal(new[] { "Done", "Done", "Done", "Done", "Skipped" }, steps.Select(s => s.S("Outcome")));
            var summary = r.Output.Last();
            Assert.Equal("Recovered", summary.S("FinalState"));
            Assert.Equal(inc.Id, summary.S("IncidentId"));
            Assert.Equal(3, lab.PagerDuty.Incident(inc.Id).Notes.Count);
            Assert.Contains(r.Progress, p => p.StatusDescription.Contains("step 3"));
            var lines = File.ReadAllLines(audit);
            Assert.Contains(lines, l => l.Contains("\"RemoveTarget\""));
            Assert.Contains(lines, l => l.Contains("\"RestartContainer\""));
            Assert.Contains(lines, l => l.Contains("\"AddTarget\""));
            Assert.DoesNotContain(lab.PagerDuty.Token, File.ReadAllText(audit));

            var shown = sh.Run($"$PSStyle.Formatting.TableHeader = ''; Invoke-KeyServiceRunbook {lab[0].Address} -Confirm:$false | Out-Host");
            Assert.Matches(@"Runbook for: \S+\s+Step\s+Name\s+Outcome\s+Secs\s+Detail", Plain(shown.HostText));
            Assert.Matches(@"FinalState\s*:\s*Healthy", Plain(shown.HostText));
            // The summary uses its own view even after the step table: Seconds, not the raw Duration property.
            Assert.Matches(@"Seconds\s*:\s*\d+\.\d", Plain(shown.HostText));
            Assert.DoesNotMatch(@"Duration\s*:", Plain(shown.HostText));
        }

        [Fact]
        public async Task WhatIf_says_what_each_step_would_do_and_changes_nothing()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true, PagerDuty = true });
            await lab[1].ApplyScenarioAsync(FaultScenario.CipherDependency);
            var inc = lab.PagerDuty.AddAlert(lab[1].Address);
            using var sh = ShellFor(lab, out var audit);
            var kongWrites = lab.Kong.Requests.Count(x => !x.StartsWith("GET"));
            var r = sh.Run($"Invoke-KeyServiceRunbook {lab[1].Address} -WhatIf");
            Assert.Empty(r.Errors);
            Assert.Contains($"What if: Performing the operation \"Remove from upstream 'api_key_service' (runbook step 2)\" on target \"{lab[1].Target}\"", r.HostText);
            Assert.Contains("assign the incident to cipher-owner@example.com", r.HostText);
            Assert.Equal("WhatIf", r.Output.Last().S("FinalState"));
            Assert.Equal(kongWrites, lab.Kong.Requests.Count(x => !x.StartsWith("GET")));
            Assert.DoesNotContain(lab.PagerDuty.Requests, x => !x.StartsWith("GET"));
            Assert.Empty(lab.PagerDuty.Incident(inc.Id).Notes);
            Assert.False(File.Exists(audit) && File.ReadAllLines(audit).Length > 0);
        }

        [Fact]
        public async Task Confirm_asks_before_each_change_and_No_changes_nothing()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true, PagerDuty = true });
            await lab[0].ApplyScenarioAsync(FaultScenario.OutOfMemory);
            lab.PagerDuty.AddAlert(lab[0].Address);
            using var sh = ShellFor(lab, out _);
            sh.ConfirmAnswers.Enqueue(2); sh.ConfirmAnswers.Enqueue(2); sh.ConfirmAnswers.Enqueue(2);
            var r = sh.Run($"Invoke-KeyServiceRunbook {lab[0].Address}");
            Assert.Empty(r.Errors);
            Assert.Equal(2, sh.PromptCount); // remove (step 2), restart (step 3)
            Assert.Equal("Declined", r.Output.Last().S("FinalState")); // not "WhatIf": the operator said No
            Assert.Equal(0, lab[0].Restarts);
            Assert.Contains(lab.Kong.Targets(lab.Upstream), t => t.Target == lab[0].Target);
        }

        [Fact]
        public async Task Runbook_and_self_healing_take_a_context_object_over_the_sessions_context()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true, PagerDuty = true });
            await lab[0].SetModeAsync(InstanceMode.Down);
            using var sh = ShellFor(lab, out _);
            Assert.Empty(sh.Run("$good = Get-KeyServiceOpsContext; Set-KeyServiceOpsContext -KongAdminUri 'http://127.0.0.1:9/'").Errors); // the session's context points nowhere
            var state = Path.Combine(Path.GetTempPath(), $"kso-heal-{Guid.NewGuid():N}.json");
            var broken = sh.Run($"Invoke-KeyServiceSelfHealing -StatePath '{state}'");
            Assert.Equal("Error", Assert.Single(Actions(broken)).S("Reason"));
            Assert.Equal(1, Assert.Single(Summaries(broken)).P("Failed"));
            var r = sh.Run($"Invoke-KeyServiceSelfHealing -Context $good -StatePath '{state}'; Invoke-KeyServiceRunbook {lab[1].Address} -Context $good -Confirm:$false");
            Assert.Empty(r.Errors);
            Assert.Equal("Hysteresis", r.Output.First().S("Reason"));
            Assert.Equal("Healthy", r.Output.Last().S("FinalState"));
        }

        [Fact]
        public async Task Self_healing_passes_remove_after_three_failures_and_the_loop_shows_progress()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 4, Ssh = true, PagerDuty = true });
            await lab[2].SetModeAsync(InstanceMode.Down);
            using var sh = ShellFor(lab, out var audit);
            var state = Path.Combine(Path.GetTempPath(), $"kso-heal-{Guid.NewGuid():N}.json");
            var r1 = sh.Run($"1..2 | ForEach-Object {{ Invoke-KeyServiceSelfHealing -StatePath '{state}' }}");
            Assert.Empty(r1.Errors);
            Assert.All(Actions(r1), a => Assert.Equal("Hysteresis", a.S("Reason")));
            Assert.Equal(2, Summaries(r1).Count());
            var w = sh.Run($"Invoke-KeyServiceSelfHealing -StatePath '{state}' -WhatIf");
            Assert.Equal("WouldDo", Assert.Single(Actions(w)).S("Outcome"));
            Assert.Contains($"What if: Performing the operation \"Remove from upstream 'api_key_service' (self-healing: 3 failed checks)\" on target \"{lab[2].Target}\"", w.HostText);
            var r3 = sh.Run($"$PSStyle.Formatting.TableHeader = ''; Invoke-KeyServiceSelfHealing -StatePath '{state}' -Confirm:$false | Out-Host");
            Assert.Empty(r3.Errors);
            Assert.Matches(@"Pass\s+Target\s+Action\s+Outcome\s+Detail", Plain(r3.HostText));
            Assert.Matches(@"Remove\s+Done\s+Unhealthy: ", Plain(r3.HostText));      // the reason leads the detail
            Assert.DoesNotContain(lab.Kong.Targets(lab.Upstream), t => t.Target == lab[2].Target);

            await lab[2].SetModeAsync(InstanceMode.Up);
            var loop = sh.Run($"Start-KeyServiceSelfHealing -StatePath '{state}' -IntervalSec 0.2 -Count 3 -Confirm:$false");
            Assert.Empty(loop.Errors);
            Assert.Contains(loop.Output, a => a.S("Action") == "Add" && a.S("Outcome") == "Done");
            Assert.Contains(lab.Kong.Targets(lab.Upstream), t => t.Target == lab[2].Target);
            Assert.Contains(loop.Progress, p => p.StatusDescription.Contains("next pass in"));
            Assert.Contains(File.ReadAllLines(audit), l => l.Contains("self-healing") && l.Contains("\"AddTarget\""));
        }

        [Fact]
        public async Task Self_healing_Unattended_never_asks_even_when_the_engine_s_profile_sets_ConfirmPreference_Low()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 4 });
            await lab[1].SetModeAsync(InstanceMode.Down);
            var state = Path.Combine(Path.GetTempPath(), $"kso-unatt-{Guid.NewGuid():N}.json");
            var module = Path.Combine(HostedShell.RepoRoot, "out", "KeyServiceOps", "KeyServiceOps.psd1");
            string Script(string extra) => $"Import-Module '{module}'; $ConfirmPreference = 'Low'; " +
                $"Set-KeyServiceOpsContext -KongAdminUri '{lab.KongUri}' -Upstream '{lab.Upstream}' -HealthTimeoutSec 1.5 -AuditLogPath '{state}.audit.jsonl' -Confirm:$false; " +
                $"Invoke-KeyServiceSelfHealing -StatePath '{state}' -FailuresToRemove 1 {extra} | ForEach-Object {{ 'ACTION ' + $_.Action + ' ' + $_.Outcome }}";
            // A real engine's pwsh (-NonInteractive) whose profile sets $ConfirmPreference = 'Low': the pass asks and fails.
            var asked = await RealPwsh.RunAsync(Script(""), null, TimeSpan.FromMinutes(2));
            Assert.Contains(lab.Kong.Targets(lab.Upstream), t => t.Target == lab[1].Target);
            var r = await RealPwsh.RunAsync(Script("-Unattended"), null, TimeSpan.FromMinutes(2));
            Assert.True(r.StdOut.Contains("ACTION Remove Done"), r.ToString());
            Assert.DoesNotContain(lab.Kong.Targets(lab.Upstream), t => t.Target == lab[1].Target);
            Assert.DoesNotContain("ACTION Remove Done", asked.StdOut);
        }
    }
}
