using System;
using System.Collections.Generic;
using System.Management.Automation;
using KeyServiceOps.Core;
using KeyServiceOps.Core.Audit;
using KeyServiceOps.Core.Health;
using KeyServiceOps.Core.PagerDuty;
using KeyServiceOps.Core.Remote;
using KeyServiceOps.Core.RingBalancer;
using KeyServiceOps.Commands;

namespace KeyServiceOps.Bases
{
    /// <summary>
    /// Every cmdlet that talks to the estate: the settings of this call (the session's, or -Context's, with the per-call
    /// overrides this cmdlet declares), and the clients made from them.
    /// </summary>
    public abstract class ContextCmdlet : OpsCmdlet
    {
        /// <summary>A context from New-KeyServiceOpsContext (or Get-KeyServiceOpsContext): this call talks to that estate, not the session's.</summary>
        [Parameter] public KeyServiceOpsContext Context { get; set; }

        /// <summary>
        /// The per-call overrides this cmdlet declares: its parameter → the setting it overrides (ContextSettings names;
        /// a SecureString or PSCredential parameter → the secret it sets). Applied by <see cref="SettingParameters"/>.
        /// </summary>
        protected virtual IReadOnlyDictionary<string, string> Overrides => SettingParameters.None;

        private OpsContext _settings;
        private AuditLog _audit;

        /// <summary>The settings of this call.</summary>
        protected OpsContext Settings => _settings ?? (_settings = Build());
        protected AuditLog Audit => _audit ?? (_audit = new AuditLog(Settings.Safety.AuditLogPath));

        private OpsContext Build()
        {
            var c = (Context?.Settings ?? ContextStore.Current).Clone();
            foreach (var w in ContextStore.TakeWarnings()) Log.Warning(w);
            // Scrubbed with what is known so far: the cmdlet's own Redactor would need this very context (and recurse).
            try { SettingParameters.Apply(c, MyInvocation.BoundParameters, Overrides, GetUnresolvedProviderPathFromPSPath); }
            catch (OpsException e) { ThrowTerminatingError(OpsErrorRecord.From(e, Redactor.For(c))); }
            // Every change to an instance also takes its lease on the VM (issue #25), through this runspace's SSH pool.
            c.Leases = new VmLeases(c, new RemoteShell(SshPoolStore.Current, Log), Log);
            return c;
        }

        private Redactor _redactor;
        protected override Redactor Redactor => _redactor ?? (_redactor = Redactor.For(Settings));

        protected HealthChecker NewHealthChecker(TimeSpan? timeout = null) => HealthChecker.FromContext(Settings, Log, timeout);

        private RingBalancerService _rb;
        protected RingBalancerService RingBalancer
            => _rb ?? (_rb = Setup(() => new RingBalancerService(Settings, new KongClient(Settings.ForKong(), Log), NewHealthChecker(), Audit, Log)));

        protected string UpstreamOrDefault(string upstream) => string.IsNullOrEmpty(upstream) ? Settings.Kong.Upstream : upstream;

        private PagerDutyClient _pd;
        /// <summary>The PagerDuty client; a terminating error when no token is set.</summary>
        protected PagerDutyClient PagerDuty => _pd ?? (_pd = Setup(() => new PagerDutyClient(Settings.ForPagerDuty(), Log, Audit, RetryBaseDelay("KEYSERVICEOPS_PD_RETRY_BASE_MS"))));
        /// <summary>The PagerDuty client, or null when PagerDuty is not configured (notes are then skipped).</summary>
        protected PagerDutyClient PagerDutyIfConfigured => Settings.PagerDuty.Token == null ? null : PagerDuty;

        private DockerClient _docker;
        /// <summary>docker on the instances' VMs, over this runspace's SSH pool.</summary>
        protected DockerClient Docker => _docker ?? (_docker = new DockerClient(new RemoteShell(SshPoolStore.Current, Log), Log));

        /// <summary>The SSH target for an address (inventory applied); bad input is an error for that item, before any connection.</summary>
        protected SshTarget SshTargetFor(string address)
        {
            if (!Endpoint.TryParse(address, Settings.Health.Port, out var ep, out var why))
                throw Endpoint.InvalidAddress(address, why);
            return SshTarget.For(Settings, ep.Address);
        }

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
