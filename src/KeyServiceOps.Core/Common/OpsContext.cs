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

    /// <summary>
    /// The session's settings, composed of one section per subsystem (SubsystemSettings.cs): each setting lives in one
    /// section, with its default; SettingCatalog says how each is named, validated, read and shown.
    /// </summary>
    public sealed class OpsContext : IRingBalancerSettings
    {
        public const string DefaultUpstream = "api_key_service";
        public const string DefaultHealthPath = "/api/auth/healthz";
        public const string DefaultExpectedText = "The API is available and operational";
        public const int DefaultServicePort = 8888;

        public OpsContext() { Wire(); }

        public HttpSettings Http { get; private set; } = new HttpSettings();
        public KongSettings Kong { get; private set; } = new KongSettings();
        public PagerDutySettings PagerDuty { get; private set; } = new PagerDutySettings();
        public CentralLogSettings CentralLogs { get; private set; } = new CentralLogSettings();
        public HealthSettings Health { get; private set; } = new HealthSettings();
        public RemovalSettings Removal { get; private set; } = new RemovalSettings();
        public SshSettings Ssh { get; private set; } = new SshSettings();
        public HealingSettings Healing { get; private set; } = new HealingSettings();
        public SafetySettings Safety { get; private set; } = new SafetySettings();

        // Inventory
        public List<InventoryEntry> Inventory { get; set; } = new List<InventoryEntry>();
        public string ConfigPath { get; set; }

        /// <summary>
        /// What the session learned once and keeps (Kong's version and mode per Admin API address). Shared by the
        /// copies a cmdlet makes for its overrides; a new context starts empty. Not a setting.
        /// </summary>
        public System.Collections.Concurrent.ConcurrentDictionary<string, object> SessionCache { get; private set; } = new System.Collections.Concurrent.ConcurrentDictionary<string, object>();

        /// <summary>The HTTP clients' sections share this context's HTTP section and session cache.</summary>
        private void Wire()
        {
            Kong.Http = Http; this.PagerDuty.Http = Http; this.CentralLogs.Http = Http;
            Kong.SessionCache = SessionCache; this.CentralLogs.SessionCache = SessionCache;
        }

        public static string DefaultAuditLogPath()
        {
            // KEYSERVICEOPS_AUDIT_LOG is read by the settings catalog (auditLogPath), like every other variable.
            var home = System.Environment.GetFolderPath(System.Environment.SpecialFolder.UserProfile);
            return Path.Combine(string.IsNullOrEmpty(home) ? Path.GetTempPath() : home, ".keyserviceops", "audit.jsonl");
        }

        /// <summary>A new context seeded from KEYSERVICEOPS_* environment variables.</summary>
        /// <param name="invalid">Null: an invalid variable is the typed error. Given: it is reported there and skipped.</param>
        public static OpsContext FromEnvironment(Action<OpsException> invalid = null)
        {
            var c = new OpsContext();
            string Env(string n) => System.Environment.GetEnvironmentVariable(n);
            ContextSettings.ApplyEnvironment(c, invalid);
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
            // An invalid variable is skipped with a warning; the others still apply (a bad KEYSERVICEOPS_KONG_URI must not
            // also throw away KEYSERVICEOPS_KONG_TOKEN and the rest).
            try { c = FromEnvironment(e => warn?.Invoke($"KeyServiceOps: ignored {e.Message}")); }
            catch (Exception e) when (e is OpsException || e is UriFormatException) { warn?.Invoke($"KeyServiceOps: the KEYSERVICEOPS_* environment is invalid ({e.Message}); starting from defaults."); c = new OpsContext(); }
            var session = ContextSettings.SessionFilePath();
            if (File.Exists(session))
            {
                try { c.LoadConfigFile(session); }
                catch (OpsException e) { warn?.Invoke($"KeyServiceOps: ignored the saved session defaults: {e.Message}"); }
            }
            return c;
        }

        /// <summary>The Kong client's own section, taken now (a copy: a later Set- does not change a client already made).</summary>
        public KongSettings ForKong() { var k = Kong.Clone(); k.Http = Http.Clone(); return k; }

        /// <summary>The PagerDuty client's own section, taken now (its own TLS settings, never Kong's).</summary>
        public PagerDutySettings ForPagerDuty() { var p = this.PagerDuty.Clone(); p.Http = Http.Clone(); p.InstancePort = this.Health.Port; return p; }

        /// <summary>The central log client's own section, taken now.</summary>
        public CentralLogSettings ForCentralLogs() { var c = this.CentralLogs.Clone(); c.Http = Http.Clone(); return c; }

        public OpsContext Clone()
        {
            var c = (OpsContext)MemberwiseClone();
            c.Http = Http.Clone(); c.Kong = Kong.Clone(); c.PagerDuty = this.PagerDuty.Clone(); c.CentralLogs = this.CentralLogs.Clone();
            c.Health = this.Health.Clone(); c.Removal = Removal.Clone(); c.Ssh = Ssh.Clone(); c.Healing = Healing.Clone(); c.Safety = Safety.Clone();
            c.Inventory = Inventory.ToList();
            c.Wire();
            return c;
        }

        /// <summary>Takes every setting of <paramref name="other"/> (its sections, inventory and config path); the session cache stays.</summary>
        public void TakeSettingsOf(OpsContext other)
        {
            var o = other.Clone();
            Http = o.Http; Kong = o.Kong; PagerDuty = o.PagerDuty; CentralLogs = o.CentralLogs; Health = o.Health; Removal = o.Removal;
            Ssh = o.Ssh; Healing = o.Healing; Safety = o.Safety; Inventory = o.Inventory; ConfigPath = o.ConfigPath;
            Wire();
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
            return !string.IsNullOrEmpty(Ssh.User) || !string.IsNullOrEmpty(Ssh.KeyPath) || !string.IsNullOrEmpty(Ssh.JumpHost) || Ssh.Password != null
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
                var what = Directory.Exists(path) ? "it is a folder, not a file" : e is FileNotFoundException || e is DirectoryNotFoundException ? "it does not exist" : e is JsonException ? "it is not valid JSON (" + e.Message + ")" : e.Message.TrimEnd('.');
                throw ContextSettings.ConfigFileInvalid(path, what, e);
            }
            if (o == null) throw ContextSettings.ConfigFileInvalid(path, "it is empty", null);
            // Apply to a copy first: a bad value anywhere changes nothing.
            var trial = Clone();
            ContextSettings.Apply(trial, o, path);
            TakeSettingsOf(trial);
            ConfigPath = path;
        }
    }
}
