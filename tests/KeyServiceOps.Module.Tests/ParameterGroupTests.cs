using System.Linq;
using KeyServiceOps.Lab;
using Xunit;

namespace KeyServiceOps.Module.Tests
{
    /// <summary>
    /// Each cmdlet carries only the parameters it uses: the SSH, Kong and PagerDuty groups are declared once and offered by
    /// composition, by the cmdlets (and in the cases) that use them.
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
        public void Cmdlets_offer_the_groups_they_use_and_no_others()
        {
            using var sh = new HostedShell();
            Assert.DoesNotContain("SshUser", Params(sh, "Get-KeyServiceFault", "InputObject"));
            Assert.DoesNotContain("SshUser", Params(sh, "Test-KeyServiceHealth"));
            var status = Params(sh, "Get-KeyServiceSelfHealingStatus");
            Assert.Contains("MaxEjectionShare", status);
            Assert.Empty(status.Intersect(new[] { "SshUser", "JumpHost", "KongAdminUri", "KongToken", "PagerDutyUri", "PagerDutyToken" }));
            // The groups, where they are used: each parameter declared once, offered by all of these.
            Assert.Contains("SshUser", Params(sh, "Get-KeyServiceLog"));
            Assert.Contains("JumpHost", Params(sh, "Restart-KeyService", "Fault"));
            Assert.Contains("KongAdminUri", Params(sh, "Get-RingBalancerTarget"));
            Assert.Contains("PagerDutyToken", Params(sh, "Get-PagerDutyIncident"));
            var runbook = Params(sh, "Invoke-KeyServiceRunbook");
            Assert.Superset(new System.Collections.Generic.HashSet<string> { "SshUser", "KongAdminUri", "PagerDutyUri" }, runbook.ToHashSet());
            Assert.Contains("SshUser", Params(sh, "Start-KeyServiceSelfHealing"));
        }

        [Fact]
        public void A_conditional_group_binds_when_it_applies_and_is_an_unknown_parameter_otherwise()
        {
            using var sh = new HostedShell();
            // Applies: the value is bound and validated like any parameter (SshPort 1..65535).
            Assert.Equal("ParameterArgumentValidationError", FirstErrorId(sh, "Test-KeyServiceHealth 127.0.0.1 -Via Ssh -SshPort 0"));
            Assert.Equal("ParameterArgumentValidationError", FirstErrorId(sh, "Get-KeyServiceFault -Address 127.0.0.1 -SshPort 0"));
            Assert.Equal("ParameterArgumentValidationError", FirstErrorId(sh, "Get-KeyServiceFault 127.0.0.1 -SshPort 0"));
            // Does not apply: PowerShell's own "no such parameter", before anything runs.
            Assert.Equal("NamedParameterNotFound", FirstErrorId(sh, "Test-KeyServiceHealth 127.0.0.1 -SshUser ops"));
            Assert.Equal("NamedParameterNotFound", FirstErrorId(sh, "'a log line' | Get-KeyServiceFault -SshUser ops"));
            Assert.Equal("NamedParameterNotFound", FirstErrorId(sh, "Get-KeyServiceSelfHealingStatus -KongAdminUri http://127.0.0.1:9"));
        }

        [Fact]
        public void A_bad_per_call_address_is_a_typed_error_not_a_crash()
        {
            using var sh = new HostedShell();
            Assert.Equal("InvalidUri", FirstErrorId(sh, "Get-RingBalancerTarget -KongAdminUri ftp://kong.internal/"));
            Assert.Equal("InvalidUri", FirstErrorId(sh, "Get-PagerDutyIncident -PagerDutyUri ftp://pd.internal/"));
        }
    }
}
