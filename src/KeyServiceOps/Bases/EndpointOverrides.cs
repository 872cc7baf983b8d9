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
            // A user:password@ in the address would reach verbose lines, errors and the session file: refused, never echoed.
            if (!string.IsNullOrEmpty(uri.UserInfo))
            {
                var safe = new UriBuilder(uri) { UserName = "", Password = "" }.Uri.ToString();
                throw new OpsException("UriWithCredentials", OpsErrorCategory.InvalidArgument,
                    $"-{parameter} has a user name or password in it ({safe} with user-info): it would be written to verbose lines, errors and the session file. Nothing was changed.", safe,
                    recommendedAction: parameter == "CentralLogUri" ? "Give the address alone and the credentials with -CentralLogCredential or -CentralLogApiKey." : $"Give the address alone; the token has its own parameter.");
            }
            return uri;
        }

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
