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
    /// <summary>Context plumbing: the session's defaults, overridden per call by the derived cmdlet's parameters.</summary>
    public abstract class ContextCmdlet : OpsCmdlet
    {
        private OpsContext _ctx;
        private AuditLog _audit;
        protected OpsContext Context => _ctx ?? (_ctx = Build());
        protected AuditLog Audit => _audit ?? (_audit = new AuditLog(Context.AuditLogPath));

        private OpsContext Build()
        {
            var c = ContextStore.Current.Clone();
            try { ApplyOverrides(c); }
            catch (OpsException e) { ThrowOps(e); }
            return c;
        }

        protected virtual void ApplyOverrides(OpsContext c) { }

        private Redactor _redactor;
        protected override Redactor Redactor => _redactor ?? (_redactor = Redactor.For(Context));

        protected HealthChecker NewHealthChecker(TimeSpan? timeout = null) => HealthChecker.FromContext(Context, Log, timeout);

        private RingBalancerService _rb;
        protected RingBalancerService RingBalancer
            => _rb ?? (_rb = Setup(() => new RingBalancerService(Context, new KongClient(Context, Log), NewHealthChecker(), Audit, Log)));

        protected string UpstreamOrDefault(string upstream) => string.IsNullOrEmpty(upstream) ? Context.Upstream : upstream;

        private PagerDutyClient _pd;
        /// <summary>The PagerDuty client; a terminating error when no token is set.</summary>
        protected PagerDutyClient PagerDuty => _pd ?? (_pd = Setup(() => new PagerDutyClient(Context, Log, Audit, RetryBaseDelay("KEYSERVICEOPS_PD_RETRY_BASE_MS"))));
        /// <summary>The PagerDuty client, or null when PagerDuty is not configured (notes are then skipped).</summary>
        protected PagerDutyClient PagerDutyIfConfigured => Context.PagerDutyToken == null ? null : PagerDuty;

        /// <summary>Tests shorten retry back-offs through environment variables; operators never need them.</summary>
        protected static TimeSpan? RetryBaseDelay(string variable)
            => double.TryParse(Environment.GetEnvironmentVariable(variable), out var ms) ? TimeSpan.FromMilliseconds(ms) : (TimeSpan?)null;

        /// <summary>Builds a core service, turning a setup failure into a terminating error.</summary>
        protected T Setup<T>(Func<T> make)
        {
            try { return make(); }
            catch (OpsException e) { ThrowOps(e); return default; }
        }
    }

    /// <summary>Parameters shared by everything that talks to the Kong Admin API.</summary>
    public abstract class KongCmdlet : ContextCmdlet
    {
        [Parameter] public Uri KongAdminUri { get; set; }
        [Parameter] public string Workspace { get; set; }
        [Parameter] public SecureString KongToken { get; set; }
        [Parameter] public SwitchParameter SkipCertificateCheck { get; set; }

        protected override void ApplyOverrides(OpsContext c) => EndpointOverrides.Kong(c, KongAdminUri, Workspace, KongToken, SkipCertificateCheck);
    }

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
