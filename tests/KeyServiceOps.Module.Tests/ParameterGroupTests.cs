using System;
using System.Linq;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using Xunit;
using KeyServiceOps.TestHost;

namespace KeyServiceOps.Module.Tests
{
    /// <summary>
    /// Issue #29: cmdlet bases are at most three deep and every parameter is static (Get-Command and the help show it,
    /// no dynamic-parameter machinery); per-call overrides are declared once, on the base of the cmdlets that use them.
    /// </summary>
    public class ParameterGroupTests
    {
        private static string[] Params(HostedShell sh, string command, string set = null)
        {
            var r = sh.Run(set == null
                ? $"(Get-Command {command}).Parameters.Keys"
                : $"((Get-Command {command}).ParameterSets | Where-Object Name -eq '{set}').Parameters.Name");
            Assert.Empty(r.Errors);
            return r.Output.Select(o => o.ToString()).ToArray();
        }

        private static string FirstErrorId(HostedShell sh, string script)
        {
            var r = sh.Run(script);
            Assert.NotEmpty(r.Errors);
            return r.Errors[0].FullyQualifiedErrorId.Split(',')[0];
        }

        [Fact]
        public void Every_cmdlet_has_at_most_three_bases_of_ours_and_no_dynamic_parameters()
        {
            using var sh = new HostedShell();
            var r = sh.Run("Get-Command -Module KeyServiceOps -CommandType Cmdlet | ForEach-Object { $t = $_.ImplementingType; $d = 0; " +
                           "while ($t.BaseType -ne [System.Management.Automation.PSCmdlet]) { $d++; $t = $t.BaseType }; " +
                           "'{0}={1}={2}' -f $_.Name, $d, [System.Management.Automation.IDynamicParameters].IsAssignableFrom($_.ImplementingType) }");
            Assert.Empty(r.Errors);
            var rows = r.Output.Select(o => o.ToString().Split('=')).ToList();
            Assert.True(rows.Count >= 24, $"{rows.Count} cmdlets");
            foreach (var row in rows)
            {
                Assert.True(int.Parse(row[1]) <= 3, $"{row[0]}: {row[1]} bases between it and PSCmdlet");
                Assert.Equal("False", row[2]);
            }
        }

        [Fact]
        public void Cmdlets_carry_the_overrides_of_what_they_talk_to_and_every_one_takes_a_context()
        {
            using var sh = new HostedShell();
            Assert.DoesNotContain("SshUser", Params(sh, "Test-KeyServiceHealth"));
            var status = Params(sh, "Get-KeyServiceSelfHealingStatus");
            Assert.Contains("MaxEjectionShare", status);
            Assert.Empty(status.Intersect(new[] { "SshUser", "JumpHost", "KongAdminUri", "KongToken", "PagerDutyUri", "PagerDutyToken" }));
            Assert.Contains("SshUser", Params(sh, "Get-KeyServiceLog"));
            Assert.Contains("JumpHost", Params(sh, "Restart-KeyService", "Fault"));
            Assert.Contains("KongAdminUri", Params(sh, "Get-RingBalancerTarget"));
            Assert.Contains("PagerDutyToken", Params(sh, "Get-PagerDutyIncident"));
            // The runbook, self-healing and the timeline touch every service: one -Context, no per-call endpoints.
            foreach (var c in new[] { "Invoke-KeyServiceRunbook", "Start-KeyServiceSelfHealing", "Get-KeyServiceIncidentTimeline" })
            {
                var p = Params(sh, c);
                Assert.Contains("Context", p);
                Assert.Empty(p.Intersect(new[] { "SshUser", "KongAdminUri", "PagerDutyUri" }));
            }
            // Static: the syntax line shows them.
            var syntax = string.Join("\n", sh.Run("Get-Command Get-KeyServiceLog -Syntax").Output.Select(o => o.ToString()));
            Assert.Contains("-SshUser", syntax);
            Assert.Contains("-Context", syntax);
        }

        [Fact]
        public void A_parameter_that_does_not_apply_is_an_error_before_anything_runs()
        {
            using var sh = new HostedShell();
            // Checked by the setting's one rule (the same as Set-KeyServiceOpsContext and the config file).
            Assert.Equal("InvalidSettingValue", FirstErrorId(sh, "Get-KeyServiceFault -Address 127.0.0.1 -SshPort 0"));
            Assert.Equal("InvalidSettingValue", FirstErrorId(sh, "Test-KeyServiceHealth 127.0.0.1 -TimeoutSec 0"));
            // Piped lines were read already: an SSH parameter is a typed error, not silently ignored.
            Assert.Equal("SshParameterWithoutAddress", FirstErrorId(sh, "'a log line' | Get-KeyServiceFault -SshUser ops"));
            // Not offered at all: PowerShell's own "no such parameter".
            Assert.Equal("NamedParameterNotFound", FirstErrorId(sh, "Test-KeyServiceHealth 127.0.0.1 -SshUser ops"));
            Assert.Equal("NamedParameterNotFound", FirstErrorId(sh, "Get-KeyServiceSelfHealingStatus -KongAdminUri http://127.0.0.1:9"));
        }

        [Fact]
        public void A_bad_per_call_address_is_a_typed_error_not_a_crash()
        {
            using var sh = new HostedShell();
            Assert.Equal("InvalidUri", FirstErrorId(sh, "Get-RingBalancerTarget -KongAdminUri ftp://kong.internal/"));
            Assert.Equal("InvalidUri", FirstErrorId(sh, "Get-PagerDutyIncident -PagerDutyUri ftp://pd.internal/"));
        }

        [Fact]
        public void A_context_object_is_a_copy_for_one_estate_that_any_cmdlet_takes()
        {
            using var sh = new HostedShell();
            var r = sh.Run("Set-KeyServiceOpsContext -Reset -KongAdminUri http://127.0.0.1:1/ -Upstream session-up; " +
                           "$eu = New-KeyServiceOpsContext -KongAdminUri http://127.0.0.2:1/ -Upstream eu-up -HealthTimeoutSec 0.5; " +
                           "Set-KeyServiceOpsContext -Upstream changed-later; " +
                           "$eu.Upstream; $eu.KongAdminUri.ToString(); $eu.HealthTimeoutSec; (Get-KeyServiceOpsContext).Upstream; " +
                           "(@($eu.PSObject.Properties | Where-Object MemberType -eq NoteProperty).Count -gt 50).ToString()");
            Assert.Empty(r.Errors);
            Assert.Equal(new[] { "eu-up", "http://127.0.0.2:1/", "0.5", "changed-later", "True" }, r.Output.Select(o => Convert.ToString(o.BaseObject, System.Globalization.CultureInfo.InvariantCulture)).ToArray());
            // New- never inherits the session's settings (a second estate must not get the first one's Kong).
            var fresh = sh.Run("(New-KeyServiceOpsContext).KongAdminUri");
            Assert.Empty(fresh.Errors);
            Assert.Null(fresh.Output.Single()?.BaseObject);
            // -Context takes the estate: Kong is asked at the context's address (nothing listens there: KongUnreachable names it).
            var e = sh.Run("Get-RingBalancerTarget -Context $eu -ErrorAction SilentlyContinue; $Error[0].Exception.Message");
            Assert.Contains("127.0.0.2", string.Join(" ", e.Output.Select(o => o?.ToString())));
            sh.Run("Set-KeyServiceOpsContext -Reset");
        }
    }
}
