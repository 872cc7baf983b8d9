using System;
using System.Linq;
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
    public abstract class ContextCmdlet : OpsCmdlet, IDynamicParameters
    {
        private RuntimeDefinedParameterDictionary _groups;

        /// <summary>The parameter groups this cmdlet offers (its [ParameterGroups]), those that apply to this call.</summary>
        public object GetDynamicParameters()
        {
            var a = System.Reflection.CustomAttributeExtensions.GetCustomAttribute<ParameterGroupsAttribute>(GetType(), true);
            if (a == null) return null;
            return _groups = ParameterGroups.Offer(a.Groups.Where(Offers), a.ParameterSetName);
        }

        /// <summary>Whether a group applies to this call (given what is bound so far); every declared group by default.</summary>
        protected virtual bool Offers(Type group) => true;

        /// <summary>The values given for a group's parameters (defaults when not given or not offered).</summary>
        protected T Group<T>() where T : new() => ParameterGroups.Get<T>(_groups);

        private OpsContext _ctx;
        private AuditLog _audit;
        protected OpsContext Context => _ctx ?? (_ctx = Build());
        protected AuditLog Audit => _audit ?? (_audit = new AuditLog(Context.AuditLogPath));

        private OpsContext Build()
        {
            var c = ContextStore.Current.Clone();
            try { ApplyOverrides(c); }
            // Scrubbed with what is known so far: the cmdlet's own Redactor would need this very context (and recurse).
            catch (OpsException e) { ThrowTerminatingError(OpsErrorRecord.From(e, Redactor.For(c))); }
            // Every change to an instance also takes its lease on the VM (issue #25), through this runspace's SSH pool.
            c.Leases = new KeyServiceOps.Core.Remote.VmLeases(c, new KeyServiceOps.Core.Remote.RemoteShell(SshPoolStore.Current, Log), Log);
            return c;
        }

        protected virtual void ApplyOverrides(OpsContext c) { }

        private Redactor _redactor;
        protected override Redactor Redactor => _redactor ?? (_redactor = Redactor.For(Context));

        protected HealthChecker NewHealthChecker(TimeSpan? timeout = null) => HealthChecker.FromContext(Context, Log, timeout);

        private RingBalancerService _rb;
        protected RingBalancerService RingBalancer
            => _rb ?? (_rb = Setup(() => new RingBalancerService(Context, new KongClient(Context.ForKong(), Log), NewHealthChecker(), Audit, Log)));

        protected string UpstreamOrDefault(string upstream) => string.IsNullOrEmpty(upstream) ? Context.Upstream : upstream;

        private PagerDutyClient _pd;
        /// <summary>The PagerDuty client; a terminating error when no token is set.</summary>
        protected PagerDutyClient PagerDuty => _pd ?? (_pd = Setup(() => new PagerDutyClient(Context.ForPagerDuty(), Log, Audit, RetryBaseDelay("KEYSERVICEOPS_PD_RETRY_BASE_MS"))));
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
}
