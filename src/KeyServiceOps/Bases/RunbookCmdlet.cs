using System;
using System.Linq;
using System.Management.Automation;
using KeyServiceOps.Core;
using KeyServiceOps.Core.Diagnosis;
using KeyServiceOps.Core.Remote;
using KeyServiceOps.Core.Runbook;

namespace KeyServiceOps.Commands
{
    /// <summary>Cmdlets that touch everything (Kong, the VMs, PagerDuty): the SSH parameters plus per-call Kong and PagerDuty endpoints.</summary>
    public abstract class RunbookCmdlet : SshCmdlet
    {
        [Parameter] public Uri KongAdminUri { get; set; }
        [Parameter] public string Workspace { get; set; }
        [Parameter] public System.Security.SecureString KongToken { get; set; }
        [Parameter] public SwitchParameter SkipCertificateCheck { get; set; }
        [Parameter] public Uri PagerDutyUri { get; set; }
        [Parameter] public System.Security.SecureString PagerDutyToken { get; set; }

        protected override void ApplyOverrides(OpsContext c)
        {
            base.ApplyOverrides(c);
            EndpointOverrides.Kong(c, KongAdminUri, Workspace, KongToken, SkipCertificateCheck);
            EndpointOverrides.PagerDuty(c, PagerDutyUri, PagerDutyToken);
        }
    }
}
