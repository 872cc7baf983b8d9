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
    public class PagerDutyCmdletTests
    {
        private static HostedShell ShellWithPd(Lab.Estate.Lab lab, out string audit, string token = null, string from = "oncall@example.com")
        {
            Environment.SetEnvironmentVariable("KEYSERVICEOPS_PD_RETRY_BASE_MS", "20");
            var var = "KSOPS_PD_" + Guid.NewGuid().ToString("N");
            Environment.SetEnvironmentVariable(var, token ?? lab.PagerDuty.Token);
            var fromArg = from == null ? "" : $" -PagerDutyFrom '{from}'";
            return Shell.For(lab, out audit, $"-PagerDutyUri '{lab.PagerDuty.BaseUri}' -PagerDutyTokenVariable {var}{fromArg}");
        }

        [Fact]
        public async Task Removed_target_piped_to_a_note_writes_the_runbooks_note()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, PagerDuty = true });
            await lab[2].SetModeAsync(InstanceMode.Down);
            var inc = lab.PagerDuty.AddAlert(lab[2].Address);
            using var sh = ShellWithPd(lab, out var audit);
            var r = sh.Run($"Remove-RingBalancerTarget {lab[2].Target} -Confirm:$false -PassThru | Add-PagerDutyIncidentNote -IncidentId {inc.Id} -Confirm:$false -PassThru");
            Assert.True(r.Errors.Count == 0, Shell.Ids(r));
            var note = Assert.Single(lab.PagerDuty.Incident(inc.Id).Notes).Content;
            Assert.Matches($@"^manually removed target {System.Text.RegularExpressions.Regex.Escape(lab[2].Target)} from upstream api_key_service at \d\d:\d\dZ$", note);
            var lines = File.ReadAllLines(audit);
            Assert.Contains(lines, l => l.Contains("\"action\":\"RemoveTarget\""));
            Assert.Contains(lines, l => l.Contains("\"action\":\"AddIncidentNote\""));
        }

        [Fact]
        public async Task Find_by_address_then_escalate_and_assign_with_and_without_WhatIf()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 2, PagerDuty = true });
            lab.PagerDuty.AddIncident("Unrelated: disk full on db-7");
            var inc = lab.PagerDuty.AddAlert(lab[1].Address, "prod-eu-1");
            using var sh = ShellWithPd(lab, out _);
            var found = sh.Run($"Get-PagerDutyIncident -Address {lab[1].Address}");
            Assert.Equal(inc.Id, Assert.Single(found.Output).S("IncidentId"));
            Assert.Equal("prod-eu-1", found.Output[0].S("Environment"));

            var writesBefore = lab.PagerDuty.Requests.Count(q => !q.StartsWith("GET"));
            var whatIf = sh.Run($"Get-PagerDutyIncident -Address {lab[1].Address} | Set-PagerDutyIncident -EscalationLevel 2 -WhatIf; Add-PagerDutyIncidentNote {inc.Id} 'hello' -WhatIf; Set-PagerDutyIncident {inc.Id} -AssignTo cipher-owner@example.com -WhatIf");
            Assert.Empty(whatIf.Errors);
            Assert.Contains($"What if: Performing the operation \"escalate to level 2\" on target \"incident {inc.Id}\"", whatIf.HostText);
            Assert.Contains("assign to cipher-owner@example.com (PCIPHER)", whatIf.HostText);
            Assert.Equal(writesBefore, lab.PagerDuty.Requests.Count(q => !q.StartsWith("GET")));
            Assert.Equal(1, lab.PagerDuty.Incident(inc.Id).Level);
            Assert.Empty(lab.PagerDuty.Incident(inc.Id).Notes);

            var esc = sh.Run($"Set-PagerDutyIncident {inc.Id} -EscalationLevel 2 -Confirm:$false -PassThru");
            Assert.Empty(esc.Errors);
            Assert.Equal(2, (int)esc.Output.Single().P("EscalationLevel"));
            Assert.Equal(new[] { "PUSER02" }, lab.PagerDuty.Incident(inc.Id).Assignees);
            var asg = sh.Run($"Set-PagerDutyIncident {inc.Id} -AssignTo cipher-owner@example.com -Confirm:$false");
            Assert.Empty(asg.Errors);
            Assert.Equal(new[] { "PCIPHER" }, lab.PagerDuty.Incident(inc.Id).Assignees);
            var table = sh.Run($"Get-PagerDutyIncident -IncidentId {inc.Id} | Out-Host").HostText;
            HealthAndFormatTests.AssertHeader(table, "IncidentId", "Status", "Lvl", "Address", "Title", "[assignees]");
        }

        [Fact]
        public async Task Errors_are_typed_missing_From_bad_token_cannot_escalate_rate_limit()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 1, PagerDuty = true });
            var inc = lab.PagerDuty.AddAlert(lab[0].Address);
            using (var noFrom = ShellWithPd(lab, out _, from: null))
            {
                var r = noFrom.Run($"Add-PagerDutyIncidentNote {inc.Id} 'x' -Confirm:$false");
                var e = Assert.Single(r.Errors);
                Assert.Equal("PagerDutyFromMissing,KeyServiceOps.Commands.AddPagerDutyIncidentNoteCommand", e.FullyQualifiedErrorId);
                Assert.Contains("Set-KeyServiceOpsContext -PagerDutyFrom", e.ErrorDetails.RecommendedAction);
            }
            using (var badToken = ShellWithPd(lab, out _, token: "nope"))
                Assert.Equal("PagerDutyUnauthorized,KeyServiceOps.Commands.GetPagerDutyIncidentCommand", Assert.Single(badToken.Run("Get-PagerDutyIncident").Errors).FullyQualifiedErrorId);
            using var sh = ShellWithPd(lab, out _);
            Assert.Equal("PagerDutyCannotEscalate,KeyServiceOps.Commands.SetPagerDutyIncidentCommand",
                Assert.Single(sh.Run($"Set-PagerDutyIncident {inc.Id} -EscalationLevel 7 -Confirm:$false").Errors).FullyQualifiedErrorId);
            lab.PagerDuty.RateLimitNext = 3;
            var ok = sh.Run($"Add-PagerDutyIncidentNote {inc.Id} 'after 429s' -Confirm:$false -Verbose");
            Assert.Empty(ok.Errors);
            Assert.Equal(3, ok.Verbose.Count(v => v.Contains("answered 429")));
            Assert.Single(lab.PagerDuty.Incident(inc.Id).Notes);
        }

        [Fact]
        public async Task Canary_token_never_appears_in_any_stream_or_file()
        {
            const string canary = "CANARY-pd-module-91ad";
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 2, PagerDuty = true });
            lab.PagerDuty.Token = canary;
            var inc = lab.PagerDuty.AddAlert(lab[1].Address);
            using var sh = ShellWithPd(lab, out var audit, token: canary);
            var r = sh.Run($"$DebugPreference='Continue'; Get-PagerDutyIncident -Address {lab[1].Address} -Verbose -Debug | Set-PagerDutyIncident -Status Acknowledged -Confirm:$false -PassThru -Verbose -Debug | Out-Host; Add-PagerDutyIncidentNote {inc.Id} 'n' -Confirm:$false -Verbose -Debug; Get-KeyServiceOpsContext | Out-Host");
            Assert.Empty(r.Errors);
            Assert.Contains(r.Debug, d => d.Contains("Token token=***"));
            Assert.DoesNotContain(canary, r.AllStreamsText());
            Assert.DoesNotContain(canary, File.ReadAllText(audit));
        }

        [Fact]
        public async Task Start_from_the_pager_incidents_pipe_into_health()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 2, PagerDuty = true });
            await lab[0].SetModeAsync(InstanceMode.Down);
            var inc = lab.PagerDuty.AddAlert(lab[0].Address);
            using var sh = ShellWithPd(lab, out _);
            var r = sh.Run("Get-PagerDutyIncident -Status Triggered | Test-KeyServiceHealth");
            Assert.Empty(r.Errors);
            var h = Assert.Single(r.Output);
            Assert.Equal(lab[0].Address, h.S("Address"));
            Assert.Equal("Down", h.S("Status"));
            Assert.Equal(inc.Id, h.S("IncidentId"));
        }
    }
}
