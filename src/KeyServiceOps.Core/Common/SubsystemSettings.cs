using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;

namespace KeyServiceOps.Core
{
    // The context (OpsContext) is composed of these sections, one per subsystem; each setting lives in exactly one of
    // them, with its default. A client takes its own section (OpsContext.ForKong/ForPagerDuty/ForCentralLogs hand it a
    // copy): it cannot read another service's token or TLS choice, and a test or a script can make one without a whole
    // context. How each setting is named, validated, resolved, read from a file or the environment and shown:
    // SettingCatalog, one line per setting.

    /// <summary>What every HTTP client (Kong, PagerDuty, central logs) shares: one timeout and one cap on an answer.</summary>
    public sealed class HttpSettings
    {
        public const long DefaultMaxResponseBytes = 16L * 1024 * 1024; // 16 MiB: a Kong page of 1,000 targets is ~0.4 MB, a log page ~1 MB; a 16 MiB answer costs ~35 MB as text (#26: ≤ 64 MB)
        public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(30);
        /// <summary>The most of any HTTP answer that is read.</summary>
        public long MaxResponseBytes { get; set; } = DefaultMaxResponseBytes;
        public HttpSettings Clone() => (HttpSettings)MemberwiseClone();
    }

    /// <summary>The Kong Admin API: where it is, the upstream of the key service, credentials, TLS, paging.</summary>
    public sealed class KongSettings
    {
        public Uri AdminUri { get; set; }
        public string Upstream { get; set; } = OpsContext.DefaultUpstream;
        public Secret Token { get; set; }
        /// <summary>Kong-Admin-Token unless set (Kong Enterprise RBAC; a gateway in front may want another header).</summary>
        public string TokenHeader { get; set; } = "Kong-Admin-Token";
        public string Workspace { get; set; }
        public bool SkipCertificateCheck { get; set; }
        public string CaCertificatePath { get; set; }
        public int PageSize { get; set; } = 1000;
        /// <summary>The context's HTTP section (shared, not a copy inside a context).</summary>
        public HttpSettings Http { get; set; } = new HttpSettings();
        /// <summary>Not a setting: what the session learned once (Kong's version and mode, from GET /); shared by every client of the session.</summary>
        public ConcurrentDictionary<string, object> SessionCache { get; set; } = new ConcurrentDictionary<string, object>();
        public KongSettings Clone() => (KongSettings)MemberwiseClone();
    }

    /// <summary>The PagerDuty REST API: where, the token, the From user, its own TLS settings, retries.</summary>
    public sealed class PagerDutySettings
    {
        public Uri Uri { get; set; } = new Uri("https://api.pagerduty.com/");
        public Secret Token { get; set; }
        /// <summary>The From header: the email of a PagerDuty user, needed for every change.</summary>
        public string From { get; set; }
        public bool SkipCertificateCheck { get; set; }
        public string CaCertificatePath { get; set; }
        public int MaxRetries { get; set; } = 5;
        public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromSeconds(30);
        public HttpSettings Http { get; set; } = new HttpSettings();
        /// <summary>Not a setting: the instances' port (the health section's), for matching an alert's address to an instance.</summary>
        public int InstancePort { get; set; } = OpsContext.DefaultServicePort;
        public PagerDutySettings Clone() => (PagerDutySettings)MemberwiseClone();
    }

    /// <summary>The central log search (the runbook's "logmet"): an Elasticsearch/OpenSearch _search endpoint.</summary>
    public sealed class CentralLogSettings
    {
        public Uri Uri { get; set; }
        /// <summary>"id:key" or its base64 form (Authorization: ApiKey ...).</summary>
        public Secret ApiKey { get; set; }
        public string User { get; set; }
        public Secret Password { get; set; }
        public string Index { get; set; } = "logstash-*";
        /// <summary>The runbook's query; the instance's host is ANDed to it.</summary>
        public string Query { get; set; } = "instance_id:KeyServiceApi";
        public CentralLogFields Fields { get; set; } = new CentralLogFields();
        /// <summary>A unique keyword field to page on where the cluster has no point in time and refuses a sort on _id (Elasticsearch 8).</summary>
        public string TieBreaker { get; set; }
        public int PageSize { get; set; } = 500;
        public int MaxRetries { get; set; } = 4;
        public bool SkipCertificateCheck { get; set; }
        public string CaCertificatePath { get; set; }
        public HttpSettings Http { get; set; } = new HttpSettings();
        /// <summary>Not a setting: what the session learned once (the cluster's flavour and version, from GET /).</summary>
        public ConcurrentDictionary<string, object> SessionCache { get; set; } = new ConcurrentDictionary<string, object>();
        public CentralLogSettings Clone() { var c = (CentralLogSettings)MemberwiseClone(); c.Fields = Fields.Clone(); return c; }
    }

    /// <summary>The runbook's health check (its curl), and how many run at once.</summary>
    public sealed class HealthSettings
    {
        public int Port { get; set; } = OpsContext.DefaultServicePort;
        public string Path { get; set; } = OpsContext.DefaultHealthPath;
        public string ExpectedText { get; set; } = OpsContext.DefaultExpectedText;
        public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(5);
        /// <summary>How many health checks at once; 0 (the default) is automatic: see <see cref="HttpThrottle"/> and <see cref="SshThrottle"/>.</summary>
        public int ThrottleLimit { get; set; }
        /// <summary>Direct HTTP probes at once: the setting, or automatically as many as there are instances up to 1,024 (a probe is a socket; a fleet with hung instances is then one timeout, not several).</summary>
        public int HttpThrottle => ThrottleLimit > 0 ? ThrottleLimit : AutoHttpThrottle;
        /// <summary>Probes over SSH at once (-Via Ssh: an SSH command each, through a jump host): the setting, or 64.</summary>
        public int SshThrottle => ThrottleLimit > 0 ? ThrottleLimit : 64;
        public const int AutoHttpThrottle = 1024;
        public HealthSettings Clone() => (HealthSettings)MemberwiseClone();
    }

    /// <summary>How a target is taken out of the ring-balancer, and the guards on it.</summary>
    public sealed class RemovalSettings
    {
        public double MaxRemoveShare { get; set; } = 0.5;
        public List<string> MaintenanceTargets { get; set; } = new List<string>();
        public string MaintenanceTag { get; set; } = "maintenance";
        /// <summary>How the runbook, self-healing and Remove-RingBalancerTarget take a target out (and put it back).</summary>
        public RemovalMethod Method { get; set; } = RemovalMethod.Delete;
        /// <summary>
        /// Tags that mark upstreams/targets owned by a declarative tool (decK, an ingress controller): a change to
        /// one of them is reverted at the next sync, so the module warns and names the alternative.
        /// </summary>
        public List<string> DeclarativeTags { get; set; } = new List<string>();
        public RemovalSettings Clone() { var c = (RemovalSettings)MemberwiseClone(); c.MaintenanceTargets = MaintenanceTargets.ToList(); c.DeclarativeTags = DeclarativeTags.ToList(); return c; }
    }

    /// <summary>SSH to the instances' VMs, and the container there.</summary>
    public sealed class SshSettings
    {
        public string User { get; set; }
        public int Port { get; set; } = 22;
        public string KeyPath { get; set; }
        public Secret KeyPassphrase { get; set; }
        public Secret Password { get; set; }
        public string KnownHostsPath { get; set; }
        /// <summary>Record the key of a host not yet in known_hosts (never a changed one).</summary>
        public bool AcceptNewHostKey { get; set; }
        public string JumpHost { get; set; }
        public bool UseSudo { get; set; }
        public string ContainerName { get; set; } = "api_key_service";
        public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);
        public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromSeconds(60);
        public SshSettings Clone() => (SshSettings)MemberwiseClone();
    }

    /// <summary>Diagnosis and healing: the fault rules, who owns a dependency fault, how long a restart is waited for.</summary>
    public sealed class HealingSettings
    {
        /// <summary>An operator's fault-rules file, used before the module's own rules (or instead, when it says so).</summary>
        public string FaultRulesPath { get; set; }
        /// <summary>Who owns a dependency fault, by category (e.g. CipherDependency -> a PagerDuty user's email).</summary>
        public Dictionary<string, string> FaultOwners { get; set; } = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        /// <summary>How long Restart-KeyService -Wait polls health before giving up (the runbook: "wait for several minutes").</summary>
        public TimeSpan RestartWaitTimeout { get; set; } = TimeSpan.FromMinutes(5);
        public TimeSpan RestartPollInterval { get; set; } = TimeSpan.FromSeconds(5);
        public HealingSettings Clone() { var c = (HealingSettings)MemberwiseClone(); c.FaultOwners = new Dictionary<string, string>(FaultOwners, StringComparer.OrdinalIgnoreCase); return c; }
    }

    /// <summary>One actor per instance and the write-ahead record: where the locks and the audit log live, how long a second actor waits.</summary>
    public sealed class SafetySettings
    {
        /// <summary>Where the lock files live (shared by every operator of the machine); null: ~/.keyserviceops/locks.</summary>
        public string LockDirectory { get; set; }
        /// <summary>How long a second actor waits for the first before InstanceBusy.</summary>
        public TimeSpan LockTimeout { get; set; } = TimeSpan.FromSeconds(30);
        public string AuditLogPath { get; set; } = OpsContext.DefaultAuditLogPath();
        public SafetySettings Clone() => (SafetySettings)MemberwiseClone();
    }
}

namespace KeyServiceOps.Core
{
    /// <summary>
    /// What the ring-balancer service (the capacity guard, maintenance, the write-ahead removal and restore) reads. A view of
    /// the context, not a copy: the service is long-lived in a session and follows Set-KeyServiceOpsContext, while it
    /// cannot reach the tokens, the SSH or PagerDuty settings.
    /// </summary>
    public interface IRingBalancerSettings
    {
        HealthSettings Health { get; }
        RemovalSettings Removal { get; }
        SafetySettings Safety { get; }
        InventoryEntry FindInventory(string address);
        /// <summary>The lease on the VM that every actor passes; null when only this machine's lock applies.</summary>
        IInstanceLeases Leases { get; }
    }
}
