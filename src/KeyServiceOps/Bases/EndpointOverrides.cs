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
    /// <summary>Per-call Kong and PagerDuty endpoints, shared by every cmdlet family that declares them.</summary>
    internal static class EndpointOverrides
    {
        /// <summary>An http:// or https:// address without credentials (HttpAddress, the one rule), naming the parameter.</summary>
        public static Uri RequireHttp(Uri uri, string parameter) => HttpAddress.Require(uri, "-" + parameter);

        public static void Kong(OpsContext c, KongParameters k)
        {
            if (k.KongAdminUri != null) c.KongAdminUri = RequireHttp(k.KongAdminUri, "KongAdminUri");
            if (k.Workspace != null) c.Workspace = k.Workspace;
            if (k.KongToken != null) c.KongToken = Secret.FromSecureString(k.KongToken);
            if (k.SkipCertificateCheck) c.SkipCertificateCheck = true;
        }

        public static void PagerDuty(OpsContext c, PagerDutyParameters p)
        {
            if (p.PagerDutyUri != null) c.PagerDutyUri = RequireHttp(p.PagerDutyUri, "PagerDutyUri");
            if (p.PagerDutyToken != null) c.PagerDutyToken = Secret.FromSecureString(p.PagerDutyToken);
        }
    }
}
