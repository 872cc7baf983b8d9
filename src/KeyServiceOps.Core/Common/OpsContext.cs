using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace KeyServiceOps.Core
{
    /// <summary>One entry of the inventory: an address and how to reach its VM (the runbook's "Doctor" VM).</summary>
    public sealed class InventoryEntry
    {
        public string Address { get; set; }
        public int Port { get; set; } = 8888;
        public string Environment { get; set; }
        public string SshUser { get; set; }
        public int? SshPort { get; set; }
        public string SshKeyPath { get; set; }
        public string JumpHost { get; set; }
        public bool? UseSudo { get; set; }
        public bool Maintenance { get; set; }
    }

    /// <summary>Where the central log service's documents keep each value (names vary by ingest pipeline).</summary>
    public sealed class CentralLogFields
    {
        // Each logical field is one or more document paths, tried in order when a hit is read. A dotted path matches a
        // dotted key ("log.level") or nested objects ({"log":{"level":…}}). The defaults cover flat pipelines and ECS
        // (Elastic Agent, Filebeat 7+, Logstash with ECS on) at once, because one index pattern often spans both.
        /// <summary>The first is sorted and ranged on (it must be a date field in every index).</summary>
        public List<string> Timestamp { get; set; } = new List<string> { "@timestamp" };
        public List<string> Message { get; set; } = new List<string> { "message" };
        public List<string> Level { get; set; } = new List<string> { "level", "log.level" };
        /// <summary>The host filter is an OR over these.</summary>
        public List<string> Host { get; set; } = new List<string> { "host", "host.name" };
        public List<string> Instance { get; set; } = new List<string> { "instance_id" };
        public CentralLogFields Clone() => new CentralLogFields { Timestamp = Timestamp.ToList(), Message = Message.ToList(), Level = Level.ToList(), Host = Host.ToList(), Instance = Instance.ToList() };
    }

    /// <summary>The session's defaults. Every cmdlet may override any of them per call.</summary>
    public sealed class OpsContext : IRingBalancerSettings
    {
        public const string DefaultUpstream = "api_key_service";
        public const string DefaultHealthPath = "/api/auth/healthz";
        public const string DefaultExpectedText = "The API is available and operational";
        public const int DefaultServicePort = 8888;

        // Kong
        public Uri KongAdminUri { get; set; }
        public string Upstream { get; set; } = DefaultUpstream;
        public string Workspace { get; set; }
        public string KongTokenHeader { get; set; } = "Kong-Admin-Token";
        public Secret KongToken { get; set; }
        public bool SkipCertificateCheck { get; set; }
        public string CaCertificatePath { get; set; }
        public TimeSpan HttpTimeout { get; set; } = TimeSpan.FromSeconds(30);
        public int KongPageSize { get; set; } = 1000;
        /// <summary>The most of any HTTP answer (Kong, PagerDuty, central logs) that is read.</summary>
        public long MaxResponseBytes { get; set; } = DefaultMaxResponseBytes;
        public const long DefaultMaxResponseBytes = 16L * 1024 * 1024; // 16 MiB: a Kong page of 1,000 targets is ~0.4 MB, a log page ~1 MB; a 16 MiB answer costs ~35 MB as text (#26: ≤ 64 MB)

        // Health
        public int HealthPort { get; set; } = DefaultServicePort;
        public string HealthPath { get; set; } = DefaultHealthPath;
        public string ExpectedText { get; set; } = DefaultExpectedText;
        public TimeSpan HealthTimeout { get; set; } = TimeSpan.FromSeconds(5);
        /// <summary>How many health checks at once; 0 (the default) is automatic: see <see cref="HttpThrottle"/> and <see cref="SshThrottle"/>.</summary>
        public int ThrottleLimit { get; set; }

        /// <summary>Direct HTTP probes at once: the setting, or automatically as many as there are instances up to 1,024 (a probe is a socket; a fleet with hung instances is then one timeout, not several).</summary>
        public int HttpThrottle => ThrottleLimit > 0 ? ThrottleLimit : AutoHttpThrottle;

        /// <summary>Probes over SSH at once (-Via Ssh: an SSH command each, through a jump host): the setting, or 64.</summary>
        public int SshThrottle => ThrottleLimit > 0 ? ThrottleLimit : 64;

        public const int AutoHttpThrottle = 1024;

        // Guards
        public double MaxRemoveShare { get; set; } = 0.5;
        public List<string> MaintenanceTargets { get; set; } = new List<string>();
        public string MaintenanceTag { get; set; } = "maintenance";
        /// <summary>How the runbook, self-healing and Remove-RingBalancerTarget take a target out (and put it back).</summary>
        public RemovalMethod RemovalMethod { get; set; } = RemovalMethod.Delete;
        /// <summary>
        /// Tags that mark upstreams/targets owned by a declarative tool (decK, an ingress controller): a change to
        /// one of them is reverted at the next sync, so the module warns and names the alternative.
        /// </summary>
        public List<string> DeclarativeTags { get; set; } = new List<string>();
        /// <summary>
        /// What the session learned once and keeps (Kong's version and mode per Admin API address). Shared by the
        /// copies a cmdlet makes for its overrides; a new context starts empty.
        /// </summary>
        public System.Collections.Concurrent.ConcurrentDictionary<string, object> SessionCache { get; } = new System.Collections.Concurrent.ConcurrentDictionary<string, object>();

        // SSH / docker
        public string SshUser { get; set; }
        public int SshPort { get; set; } = 22;
        public string SshKeyPath { get; set; }
        public Secret SshKeyPassphrase { get; set; }
        public Secret SshPasswordSecret { get; set; }
        public string KnownHostsPath { get; set; }
        /// <summary>Record the key of a host not yet in known_hosts (never a changed one).</summary>
        public bool AcceptNewHostKey { get; set; }
        public string JumpHost { get; set; }
        public bool UseSudo { get; set; }
        public string ContainerName { get; set; } = "api_key_service";
        public TimeSpan SshConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);
        public TimeSpan SshCommandTimeout { get; set; } = TimeSpan.FromSeconds(60);

        // Diagnosis / restart
        /// <summary>An operator's fault-rules file, used before the module's own rules (or instead, when it says so).</summary>
        public string FaultRulesPath { get; set; }
        /// <summary>Who owns a dependency fault, by category (e.g. CipherDependency -> a PagerDuty user's email).</summary>
        public Dictionary<string, string> FaultOwners { get; set; } = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        /// <summary>How long Restart-KeyService -Wait polls health before giving up (the runbook: "wait for several minutes").</summary>
        public TimeSpan RestartWaitTimeout { get; set; } = TimeSpan.FromMinutes(5);
        public TimeSpan RestartPollInterval { get; set; } = TimeSpan.FromSeconds(5);

        // PagerDuty
        public Uri PagerDutyUri { get; set; } = new Uri("https://api.pagerduty.com/");
        public Secret PagerDutyToken { get; set; }
        public string PagerDutyFrom { get; set; }
        public int PagerDutyMaxRetries { get; set; } = 5;
        public TimeSpan PagerDutyMaxBackoff { get; set; } = TimeSpan.FromSeconds(30);

        // Central log search (the runbook's "logmet"): an Elasticsearch/OpenSearch _search endpoint
        public Uri CentralLogUri { get; set; }
        public string CentralLogIndex { get; set; } = "logstash-*";
        /// <summary>The runbook's query; the instance's host is ANDed to it.</summary>
        public string CentralLogQuery { get; set; } = "instance_id:KeyServiceApi";
        /// <summary>"id:key" or its base64 form (Authorization: ApiKey ...).</summary>
        public Secret CentralLogApiKey { get; set; }
        public string CentralLogUser { get; set; }
        public Secret CentralLogPassword { get; set; }
        /// <summary>PagerDuty's own TLS settings (never Kong's).</summary>
        public bool PagerDutySkipCertificateCheck { get; set; }
        public string PagerDutyCaCertificatePath { get; set; }
        public bool CentralLogSkipCertificateCheck { get; set; }
        public string CentralLogCaCertificatePath { get; set; }
        public int CentralLogPageSize { get; set; } = 500;
        public int CentralLogMaxRetries { get; set; } = 4;
        public CentralLogFields CentralLogFields { get; set; } = new CentralLogFields();
        /// <summary>A unique keyword field to page on where the cluster has no point in time and refuses a sort on _id (Elasticsearch 8).</summary>
        public string CentralLogTieBreaker { get; set; }

        // One actor per instance: where the lock files live (shared by every operator of the machine) and how long
        // a second actor waits for the first before InstanceBusy.
        public string LockDirectory { get; set; }
        public TimeSpan LockTimeout { get; set; } = TimeSpan.FromSeconds(30);

        // Audit
        public string AuditLogPath { get; set; } = DefaultAuditLogPath();

        // Inventory
        public List<InventoryEntry> Inventory { get; set; } = new List<InventoryEntry>();
        public string ConfigPath { get; set; }

        public static string DefaultAuditLogPath()
        {
            var env = System.Environment.GetEnvironmentVariable("KEYSERVICEOPS_AUDIT_LOG");
            if (!string.IsNullOrEmpty(env)) return env;
            var home = System.Environment.GetFolderPath(System.Environment.SpecialFolder.UserProfile);
            return Path.Combine(string.IsNullOrEmpty(home) ? Path.GetTempPath() : home, ".keyserviceops", "audit.jsonl");
        }

        /// <summary>A new context seeded from KEYSERVICEOPS_* environment variables.</summary>
        public static OpsContext FromEnvironment()
        {
            var c = new OpsContext();
            string Env(string n) => System.Environment.GetEnvironmentVariable(n);
            if (!string.IsNullOrEmpty(Env("KEYSERVICEOPS_KONG_URI"))) c.KongAdminUri = HttpAddress.Require(Env("KEYSERVICEOPS_KONG_URI"), "KEYSERVICEOPS_KONG_URI");
            if (!string.IsNullOrEmpty(Env("KEYSERVICEOPS_UPSTREAM"))) c.Upstream = Env("KEYSERVICEOPS_UPSTREAM");
            if (!string.IsNullOrEmpty(Env("KEYSERVICEOPS_WORKSPACE"))) c.Workspace = Env("KEYSERVICEOPS_WORKSPACE");
            c.KongToken = Secret.FromEnvironment("KEYSERVICEOPS_KONG_TOKEN");
            c.PagerDutyToken = Secret.FromEnvironment("KEYSERVICEOPS_PAGERDUTY_TOKEN");
            if (!string.IsNullOrEmpty(Env("KEYSERVICEOPS_PAGERDUTY_URI"))) c.PagerDutyUri = HttpAddress.Require(Env("KEYSERVICEOPS_PAGERDUTY_URI"), "KEYSERVICEOPS_PAGERDUTY_URI");
            if (!string.IsNullOrEmpty(Env("KEYSERVICEOPS_PAGERDUTY_FROM"))) c.PagerDutyFrom = Env("KEYSERVICEOPS_PAGERDUTY_FROM");
            if (!string.IsNullOrEmpty(Env("KEYSERVICEOPS_CENTRAL_LOG_URI"))) c.CentralLogUri = HttpAddress.Require(Env("KEYSERVICEOPS_CENTRAL_LOG_URI"), "KEYSERVICEOPS_CENTRAL_LOG_URI");
            c.CentralLogApiKey = Secret.FromEnvironment("KEYSERVICEOPS_CENTRAL_LOG_APIKEY");
            if (!string.IsNullOrEmpty(Env("KEYSERVICEOPS_CONFIG")) && File.Exists(Env("KEYSERVICEOPS_CONFIG"))) c.LoadConfigFile(Env("KEYSERVICEOPS_CONFIG"));
            return c;
        }

        /// <summary>
        /// What a new process or runspace starts with: the environment, then the session defaults saved with
        /// Set-KeyServiceOpsContext -Save (no secret values: tokens come from the variables it names).
        /// A damaged session file is ignored (the environment still applies) rather than breaking every command.
        /// </summary>
        public static OpsContext FromEnvironmentAndSession(Action<string> warn = null)
        {
            OpsContext c;
            try { c = FromEnvironment(); }
            catch (Exception e) when (e is OpsException || e is UriFormatException) { warn?.Invoke($"KeyServiceOps: the KEYSERVICEOPS_* environment is invalid ({e.Message}); starting from defaults."); c = new OpsContext(); }
            var session = ContextSettings.SessionFilePath();
            if (File.Exists(session))
            {
                try { c.LoadConfigFile(session); }
                catch (OpsException e) { warn?.Invoke($"KeyServiceOps: ignored the saved session defaults: {e.Message}"); }
            }
            return c;
        }

        /// <summary>The Kong client's own settings, taken now.</summary>
        public KongSettings ForKong() => new KongSettings
        {
            AdminUri = KongAdminUri, Token = KongToken, TokenHeader = KongTokenHeader, Workspace = Workspace, SkipCertificateCheck = SkipCertificateCheck,
            CaCertificatePath = CaCertificatePath, HttpTimeout = HttpTimeout, MaxResponseBytes = MaxResponseBytes, PageSize = KongPageSize, SessionCache = SessionCache,
        };

        /// <summary>The PagerDuty client's own settings, taken now (its own TLS settings, never Kong's).</summary>
        public PagerDutySettings ForPagerDuty() => new PagerDutySettings
        {
            Uri = PagerDutyUri, Token = PagerDutyToken, From = PagerDutyFrom, SkipCertificateCheck = PagerDutySkipCertificateCheck, CaCertificatePath = PagerDutyCaCertificatePath,
            HttpTimeout = HttpTimeout, MaxResponseBytes = MaxResponseBytes, MaxRetries = PagerDutyMaxRetries, MaxBackoff = PagerDutyMaxBackoff, InstancePort = HealthPort,
        };

        /// <summary>The central log client's own settings, taken now.</summary>
        public CentralLogSettings ForCentralLogs() => new CentralLogSettings
        {
            Uri = CentralLogUri, ApiKey = CentralLogApiKey, User = CentralLogUser, Password = CentralLogPassword, Index = CentralLogIndex, Query = CentralLogQuery,
            Fields = CentralLogFields, TieBreaker = CentralLogTieBreaker, SessionCache = SessionCache, PageSize = CentralLogPageSize, MaxRetries = CentralLogMaxRetries, SkipCertificateCheck = CentralLogSkipCertificateCheck,
            CaCertificatePath = CentralLogCaCertificatePath, HttpTimeout = HttpTimeout, MaxResponseBytes = MaxResponseBytes,
        };

        public OpsContext Clone()
        {
            var c = (OpsContext)MemberwiseClone();
            c.Inventory = Inventory.ToList();
            c.MaintenanceTargets = MaintenanceTargets.ToList();
            c.DeclarativeTags = DeclarativeTags.ToList();
            c.FaultOwners = new Dictionary<string, string>(FaultOwners, StringComparer.OrdinalIgnoreCase);
            c.CentralLogFields = CentralLogFields.Clone();
            return c;
        }

        /// <summary>
        /// The lease every actor on every machine passes (<see cref="Remote.VmLeases"/>), set by whoever owns an SSH pool
        /// (the cmdlet layer, the tests' rig); null: only this machine's lock. Not a setting: never saved or shown.
        /// </summary>
        internal IInstanceLeases Leases { get; set; }
        IInstanceLeases IRingBalancerSettings.Leases => Leases;

        /// <summary>Whether SSH to this address was configured at all (a user, a key, a jump host or an inventory entry): only then is a lease on the VM tried.</summary>
        public bool SshConfiguredFor(string address)
        {
            var inv = FindInventory(address);
            return !string.IsNullOrEmpty(SshUser) || !string.IsNullOrEmpty(SshKeyPath) || !string.IsNullOrEmpty(JumpHost) || SshPasswordSecret != null
                   || (inv != null && (!string.IsNullOrEmpty(inv.SshUser) || !string.IsNullOrEmpty(inv.JumpHost) || !string.IsNullOrEmpty(inv.SshKeyPath)));
        }

        public InventoryEntry FindInventory(string address)
            => Inventory.FirstOrDefault(e => string.Equals(e.Address, address, StringComparison.OrdinalIgnoreCase));

        /// <summary>
        /// Reads a JSON config file: top-level settings (same names as the properties) and an
        /// "inventory" array. Secrets are never read from it, only the names of environment variables holding them.
        /// </summary>
        /// <summary>The largest config file read (1 MiB).</summary>
        public const int MaxConfigBytes = 1024 * 1024;

        public void LoadConfigFile(string path)
        {
            JObject o;
            // Settings (where Kong is, which secrets to send) are never taken from a file another user could have planted.
            var problem = File.Exists(path) ? SafeFile.FolderProblem(path) : null;
            if (problem != null) throw ContextSettings.ConfigFileInvalid(path, problem, null);
            try
            {
                // Bounded (a config is a few KiB): -ConfigPath /dev/zero or a log file by mistake is a typed error, not out of memory.
                var text = SafeFile.ReadSmall(path, MaxConfigBytes + 1);
                if (System.Text.Encoding.UTF8.GetByteCount(text) > MaxConfigBytes) throw ContextSettings.ConfigFileInvalid(path, $"it is larger than {MaxConfigBytes / 1024} KiB (is it the config file?)", null);
                o = JObject.Parse(text);
            }
            catch (Exception e) when (e is IOException || e is JsonException || e is UnauthorizedAccessException || e is ArgumentException || e is NotSupportedException)
            {
                var what = Directory.Exists(path) ? "it is a folder, not a file" : e is JsonException ? "it is not valid JSON (" + e.Message + ")" : e.Message;
                throw ContextSettings.ConfigFileInvalid(path, what, e);
            }
            if (o == null) throw ContextSettings.ConfigFileInvalid(path, "it is empty", null);
            // Apply to a copy first: a bad value anywhere changes nothing.
            var trial = Clone();
            ContextSettings.Apply(trial, o, path);
            foreach (var prop in typeof(OpsContext).GetProperties()) if (prop.CanWrite) prop.SetValue(this, prop.GetValue(trial));
            ConfigPath = path;
        }
    }
}
