using System;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using Xunit;

namespace KeyServiceOps.Module.Tests
{
    /// <summary>Issue #31 through the cmdlets: the timeline's events then its figures; the report written by rename.</summary>
    public class TimelineCmdletTests
    {
        [Fact]
        public async Task The_runbook_then_the_timeline_and_the_report_of_its_incident()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true, PagerDuty = true });
            await lab[1].ApplyScenarioAsync(FaultScenario.CleanCrash);
            var inc = lab.PagerDuty.AddAlert(lab[1].Address);
            Environment.SetEnvironmentVariable("KSO_TL_PD", lab.PagerDuty.Token);
            using var sh = Shell.For(lab, out _, $"-SshUser '{lab.Ssh.User}' -SshPort {lab.Ssh.Port} -SshKeyPath '{lab.Ssh.KeyPath}' -KnownHostsPath '{lab.WriteKnownHosts()}' " +
                                                 $"-PagerDutyUri '{lab.PagerDuty.BaseUri}' -PagerDutyTokenVariable KSO_TL_PD -PagerDutyFrom oncall@example.com -RestartPollSec 0.1 -RestartWaitSec 20");
            Assert.Equal("Recovered", sh.Run($"Invoke-KeyServiceRunbook {lab[1].Address} -IncidentId {inc.Id} -Confirm:$false").Output.Last().S("FinalState"));
            var r = sh.Run($"Get-PagerDutyIncident -IncidentId {inc.Id} | Get-KeyServiceIncidentTimeline");
            Assert.Empty(r.Errors);
            var summary = r.Output.Last();
            Assert.Equal(1, Convert.ToInt32(summary.P("Restarts")));
            Assert.NotNull(summary.P("TimeToRecoverSeconds"));
            Assert.True(r.Output.Count > 5);
            Assert.All(r.Output.Take(r.Output.Count - 1), e => Assert.NotNull(e.P("Source")));

            var path = Path.Combine(Path.GetTempPath(), $"kso-report-{Guid.NewGuid():N}.html");
            var w = sh.Run($"Export-KeyServiceIncidentReport -IncidentId {inc.Id} -Path '{path}'");
            Assert.Empty(w.Errors);
            Assert.Contains($"Incident {inc.Id}", File.ReadAllText(path));
            var again = sh.Run($"Export-KeyServiceIncidentReport -IncidentId {inc.Id} -Path '{path}' -AsMarkdown");
            Assert.StartsWith("ReportExists,", Assert.Single(again.Errors).FullyQualifiedErrorId);
            Assert.Empty(sh.Run($"Export-KeyServiceIncidentReport -IncidentId {inc.Id} -Path '{path}' -AsMarkdown -Force").Errors);
            Assert.StartsWith("## Incident", File.ReadAllText(path));
        }
    }
}
