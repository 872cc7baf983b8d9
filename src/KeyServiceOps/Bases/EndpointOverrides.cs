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
        /// <summary>An http:// or https:// address, or InvalidUri naming the parameter.</summary>
        public static Uri RequireHttp(Uri uri, string parameter)
        {
            if (uri == null) return null;
            if (!uri.IsAbsoluteUri || (uri.Scheme != "http" && uri.Scheme != "https"))
                throw new OpsException("InvalidUri", OpsErrorCategory.InvalidArgument,
                    $"-{parameter} '{uri.OriginalString}' is not an http:// or https:// address. Nothing was changed.", uri.OriginalString,
                    recommendedAction: $"Give the full address, e.g. -{parameter} https://kong-admin.internal:8444.");
            return uri;
        }

        public static void Kong(OpsContext c, Uri uri, string workspace, SecureString token, bool skipCertificateCheck)
        {
            if (uri != null) c.KongAdminUri = RequireHttp(uri, "KongAdminUri");
            if (workspace != null) c.Workspace = workspace;
            if (token != null) c.KongToken = Secret.FromSecureString(token);
            if (skipCertificateCheck) c.SkipCertificateCheck = true;
        }

        public static void PagerDuty(OpsContext c, Uri uri, SecureString token)
        {
            if (uri != null) c.PagerDutyUri = RequireHttp(uri, "PagerDutyUri");
            if (token != null) c.PagerDutyToken = Secret.FromSecureString(token);
        }
    }
}
