using System;
using System.Linq;
using System.Threading.Tasks;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using Xunit;
using KeyServiceOps.TestHost;

namespace KeyServiceOps.Module.Tests
{
    /// <summary>Issue #30: the page starts the runbook — a signed webhook delivery to a recovered instance, once.</summary>
    public class WebhookCmdletTests
    {
        [Fact]
        public async Task A_signed_delivery_runs_the_runbook_once_and_a_replay_or_a_forgery_changes_nothing()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true, PagerDuty = true });
            await lab[1].ApplyScenarioAsync(FaultScenario.CleanCrash);
            var inc = lab.PagerDuty.AddAlert(lab[1].Address);
            Environment.SetEnvironmentVariable("KSO_HOOK_PD", lab.PagerDuty.Token);
            Environment.SetEnvironmentVariable("KSO_HOOK_SECRET", "whsec-lab-1");
            using var sh = Shell.For(lab, out _, $"-SshUser '{lab.Ssh.User}' -SshPort {lab.Ssh.Port} -SshKeyPath '{lab.Ssh.KeyPath}' -KnownHostsPath '{lab.WriteKnownHosts()}' " +
                                                 $"-PagerDutyUri '{lab.PagerDuty.BaseUri}' -PagerDutyTokenVariable KSO_HOOK_PD -PagerDutyFrom oncall@example.com -RestartPollSec 0.1 -RestartWaitSec 20");
            var (body, signature, eventId) = lab.PagerDuty.Webhook(inc, new[] { "whsec-lab-1" });
            sh.SetVariable("body", body);
            sh.SetVariable("headers", new System.Collections.Hashtable { ["Content-Type"] = "application/json", ["x-pagerduty-signature"] = signature });

            // A forged delivery (another secret): a typed error, nothing run.
            var (fbody, fsig, _) = lab.PagerDuty.Webhook(inc, new[] { "not-the-secret" });
            sh.SetVariable("fbody", fbody);
            sh.SetVariable("fheaders", new System.Collections.Hashtable { ["X-PagerDuty-Signature"] = fsig });
            var forged = sh.Run("ConvertFrom-PagerDutyWebhook -Body $fbody -Headers $fheaders -SigningSecretVariable KSO_HOOK_SECRET | Invoke-KeyServiceRunbook -Confirm:$false");
            Assert.StartsWith("PagerDutyWebhookBadSignature,", Assert.Single(forged.Errors).FullyQualifiedErrorId);
            Assert.Equal(0, lab[1].Restarts);

            var r = sh.Run("ConvertFrom-PagerDutyWebhook -Body $body -Headers $headers -SigningSecretVariable KSO_HOOK_SECRET | Invoke-KeyServiceRunbook -Confirm:$false");
            Assert.Empty(r.Errors);
            var summary = r.Output.Last();
            Assert.Equal("Recovered", summary.S("FinalState"));
            Assert.Equal(inc.Id, summary.S("IncidentId"));
            Assert.Equal(1, lab[1].Restarts);

            // PagerDuty retries the same delivery: nothing happens the second time, and it says so.
            var again = sh.Run("ConvertFrom-PagerDutyWebhook -Body $body -Headers $headers -SigningSecretVariable KSO_HOOK_SECRET | Invoke-KeyServiceRunbook -Confirm:$false");
            Assert.Empty(again.Errors);
            Assert.Empty(again.Output);
            Assert.Contains(again.Warnings, w => w.Contains(eventId) && w.Contains("seen before"));
            Assert.Equal(1, lab[1].Restarts);

            // Azure Automation's $WebhookData shape; another event type is not acted on.
            var (abody, asig, _) = lab.PagerDuty.Webhook(inc, new[] { "whsec-lab-1" }, eventType: "incident.acknowledged");
            sh.SetVariable("wd", new System.Management.Automation.PSObject(new { RequestBody = System.Text.Encoding.UTF8.GetString(abody), RequestHeader = new System.Collections.Hashtable { ["X-PagerDuty-Signature"] = asig } }));
            var ack = sh.Run("ConvertFrom-PagerDutyWebhook -WebhookData $wd -SigningSecretVariable KSO_HOOK_SECRET");
            Assert.Empty(ack.Errors);
            Assert.Empty(ack.Output);
        }

        [Fact]
        public async Task The_on_page_recipe_in_a_fresh_pwsh_recovers_once_notes_a_summary_and_exits_by_what_happened()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true, PagerDuty = true });
            await lab[2].ApplyScenarioAsync(FaultScenario.CleanCrash);
            var inc = lab.PagerDuty.AddAlert(lab[2].Address);
            var dir = System.IO.Directory.CreateTempSubdirectory("kso-recipe-").FullName;
            var config = System.IO.Path.Combine(dir, "config.json");
            System.IO.File.WriteAllText(config, new System.Text.Json.Nodes.JsonObject
            {
                ["kongAdminUri"] = lab.KongUri.ToString(), ["upstream"] = lab.Upstream,
                ["sshUser"] = lab.Ssh.User, ["sshPort"] = lab.Ssh.Port, ["sshKeyPath"] = lab.Ssh.KeyPath, ["knownHostsPath"] = lab.WriteKnownHosts(),
                ["pagerDutyUri"] = lab.PagerDuty.BaseUri.ToString(), ["pagerDutyTokenVariable"] = "PD_TOKEN", ["pagerDutyFrom"] = "oncall@example.com",
                ["auditLogPath"] = System.IO.Path.Combine(dir, "audit.jsonl"), ["lockDirectory"] = System.IO.Path.Combine(dir, "locks"),
                ["restartPollSeconds"] = 0.2, ["restartWaitSeconds"] = 20,
            }.ToJsonString());
            var (body, signature, _) = lab.PagerDuty.Webhook(inc, new[] { "whsec-recipe" });
            var bodyFile = System.IO.Path.Combine(dir, "delivery.json");
            System.IO.File.WriteAllBytes(bodyFile, body);
            var recipe = System.IO.Path.Combine(HostedShell.RepoRoot, "docs", "recipes", "on-page.ps1");
            var env = new System.Collections.Generic.Dictionary<string, string>
            {
                ["PD_BODY_FILE"] = bodyFile, ["PD_SIGNATURE"] = signature, ["KSO_CONFIG"] = config, ["PD_TOKEN"] = lab.PagerDuty.Token,
                ["KSO_MODULE"] = System.IO.Path.Combine(HostedShell.RepoRoot, "out", "KeyServiceOps", "KeyServiceOps.psd1"),
                ["KEYSERVICEOPS_PD_WEBHOOK_SECRET"] = "whsec-recipe", ["KEYSERVICEOPS_SESSION_FILE"] = System.IO.Path.Combine(dir, "session.json"),
            };
            var run = await RealPwsh.RunAsync($"& '{recipe}'; exit $LASTEXITCODE", env, TimeSpan.FromMinutes(3));
            Assert.True(run.ExitCode == 0, run.ToString());
            var line = run.StdOut.Split('\n').Select(l => l.Trim()).Single(l => l.StartsWith("{"));
            Assert.Contains("\"finalState\":\"Recovered\"", line);
            Assert.Equal(1, lab[2].Restarts);
            var summaryNote = Assert.Single(lab.PagerDuty.Incident(inc.Id).Notes, n => n.Content.Contains("unattended runbook for"));
            Assert.Contains("Recovered", summaryNote.Content);

            // The same delivery again (PagerDuty's retry): nothing to do, exit 0, no second restart.
            var again = await RealPwsh.RunAsync($"& '{recipe}'; exit $LASTEXITCODE", env, TimeSpan.FromMinutes(3));
            Assert.True(again.ExitCode == 0, again.ToString());
            Assert.Contains("nothing to do", again.StdOut);
            Assert.Equal(1, lab[2].Restarts);

            // A forged delivery: exit 3, nothing done.
            env["PD_SIGNATURE"] = lab.PagerDuty.Webhook(inc, new[] { "someone-else" }).signature;
            var forged = await RealPwsh.RunAsync($"& '{recipe}'; exit $LASTEXITCODE", env, TimeSpan.FromMinutes(3));
            Assert.Equal(3, forged.ExitCode);
            Assert.Contains("PagerDutyWebhookBadSignature", forged.StdErr + forged.StdOut);
            Assert.Equal(1, lab[2].Restarts);
        }
    }
}
