using System;
using System.Management.Automation;
using System.Security;
using KeyServiceOps.Core;
using KeyServiceOps.Core.Health;
using KeyServiceOps.Core.PagerDuty;
using KeyServiceOps.Core.RingBalancer;
using KeyServiceOps.Core.Runbook;
using KeyServiceOps.Core.Audit;

namespace KeyServiceOps.Commands
{
    /// <summary>Parameters shared by everything that talks to the Kong Admin API.</summary>
    public abstract class KongCmdlet : ContextCmdlet
    {
        [Parameter] public Uri KongAdminUri { get; set; }
        [Parameter] public string Workspace { get; set; }
        [Parameter] public SecureString KongToken { get; set; }
        [Parameter] public SwitchParameter SkipCertificateCheck { get; set; }

        protected override void ApplyOverrides(OpsContext c) => EndpointOverrides.Kong(c, KongAdminUri, Workspace, KongToken, SkipCertificateCheck);
    }
}
