using System;
using System.Collections.Concurrent;

namespace KeyServiceOps.Core
{
    // Each remote client is given only its own settings, taken from the context when the client is made
    // (OpsContext.ForKong/ForPagerDuty/ForCentralLogs): a client cannot read another service's token or TLS choice,
    // and a test or a script can make one without a whole context.

    /// <summary>What the Kong Admin API client needs.</summary>
    public sealed class KongSettings
    {
        public Uri AdminUri { get; set; }
        public Secret Token { get; set; }
        /// <summary>Kong-Admin-Token unless set (Kong Enterprise RBAC; a gateway in front may want another header).</summary>
        public string TokenHeader { get; set; }
        public string Workspace { get; set; }
        public bool SkipCertificateCheck { get; set; }
        public string CaCertificatePath { get; set; }
        public TimeSpan HttpTimeout { get; set; } = TimeSpan.FromSeconds(30);
        public long MaxResponseBytes { get; set; } = OpsContext.DefaultMaxResponseBytes;
        public int PageSize { get; set; } = 1000;
        /// <summary>What the session learned once (Kong's version and mode, from GET /); shared by every client of the session.</summary>
        public ConcurrentDictionary<string, object> SessionCache { get; set; } = new ConcurrentDictionary<string, object>();
    }

    /// <summary>What the PagerDuty REST API client needs.</summary>
    public sealed class PagerDutySettings
    {
        public Uri Uri { get; set; }
        public Secret Token { get; set; }
        /// <summary>The From header: the email of a PagerDuty user, needed for every change.</summary>
        public string From { get; set; }
        public bool SkipCertificateCheck { get; set; }
        public string CaCertificatePath { get; set; }
        public TimeSpan HttpTimeout { get; set; } = TimeSpan.FromSeconds(30);
        public long MaxResponseBytes { get; set; } = OpsContext.DefaultMaxResponseBytes;
        public int MaxRetries { get; set; } = 5;
        public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromSeconds(30);
        /// <summary>The instances' port, for matching an alert's address to an instance (address:port).</summary>
        public int InstancePort { get; set; } = 8888;
    }

    /// <summary>What the central log search client needs.</summary>
    public sealed class CentralLogSettings
    {
        public Uri Uri { get; set; }
        public Secret ApiKey { get; set; }
        public string User { get; set; }
        public Secret Password { get; set; }
        public string Index { get; set; }
        public string Query { get; set; }
        public CentralLogFields Fields { get; set; } = new CentralLogFields();
        /// <summary>A unique field to page on when the cluster offers no point in time (null: _id where the cluster allows it).</summary>
        public string TieBreaker { get; set; }
        /// <summary>What the session learned once (the cluster's flavour and version, from GET /).</summary>
        public ConcurrentDictionary<string, object> SessionCache { get; set; } = new ConcurrentDictionary<string, object>();
        public int PageSize { get; set; } = 500;
        public int MaxRetries { get; set; } = 4;
        public bool SkipCertificateCheck { get; set; }
        public string CaCertificatePath { get; set; }
        public TimeSpan HttpTimeout { get; set; } = TimeSpan.FromSeconds(30);
        public long MaxResponseBytes { get; set; } = OpsContext.DefaultMaxResponseBytes;
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
        int HealthPort { get; }
        double MaxRemoveShare { get; }
        string MaintenanceTag { get; }
        System.Collections.Generic.List<string> MaintenanceTargets { get; }
        System.Collections.Generic.List<string> DeclarativeTags { get; }
        string LockDirectory { get; }
        TimeSpan LockTimeout { get; }
        InventoryEntry FindInventory(string address);
        /// <summary>The lease on the VM that every actor passes; null when only this machine's lock applies.</summary>
        IInstanceLeases Leases { get; }
    }
}
