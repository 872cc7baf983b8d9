using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace KeyServiceOps.Core
{
    /// <summary>
    /// One description per setting of the config file (key, how to read it with a typed error, how to write it),
    /// used by <see cref="OpsContext.LoadConfigFile"/> and by the saved session defaults, so the two cannot drift.
    /// Secrets are never read or written: only the names of the environment variables that hold them.
    /// </summary>
    public static class ContextSettings
    {
        private sealed class Setting
        {
            public string Key;
            public string Expected;
            public Func<OpsContext, JToken> Get;
            public Action<OpsContext, JToken> Set;
        }

        private static readonly List<Setting> All = new List<Setting>();

        public static IReadOnlyList<string> Keys => All.Select(s => s.Key).ToList();

        /// <summary>
        /// Where each setting shows up besides the config and session files: its Set-KeyServiceOpsContext parameter and
        /// its property on Get-KeyServiceOpsContext's view. By rule the key in PascalCase ("...Seconds" as "...Sec");
        /// the exceptions are listed here. A test walks every setting through all three, so they cannot drift.
        /// </summary>
        public sealed class Surface
        {
            public string Key { get; internal set; }
            public string Parameter { get; internal set; }
            public string View { get; internal set; }
            public string Expected { get; internal set; }
        }

        private static readonly Dictionary<string, (string parameter, string view)> Exceptions = new Dictionary<string, (string, string)>
        {
            ["declarativeTags"] = ("DeclarativeTag", "DeclarativeTags"),
        };

        private static string Pascal(string key)
        {
            var p = char.ToUpperInvariant(key[0]) + key.Substring(1);
            return p.EndsWith("Seconds", StringComparison.Ordinal) ? p.Substring(0, p.Length - "onds".Length) : p;
        }

        public static IReadOnlyList<Surface> Surfaces => All.Select(s => new Surface
        {
            Key = s.Key, Expected = s.Expected,
            Parameter = Exceptions.TryGetValue(s.Key, out var e) ? e.parameter : Pascal(s.Key),
            View = Exceptions.TryGetValue(s.Key, out var v) ? v.view : Pascal(s.Key),
        }).ToList();

        private static void Str(string key, Func<OpsContext, string> get, Action<OpsContext, string> set)
            => All.Add(new Setting { Key = key, Expected = "a string", Get = c => get(c), Set = (c, t) => set(c, t.Type == JTokenType.String ? (string)t : throw Bad()) });

        private static void Bool(string key, Func<OpsContext, bool> get, Action<OpsContext, bool> set)
            => All.Add(new Setting { Key = key, Expected = "true or false", Get = c => get(c), Set = (c, t) => set(c, t.Type == JTokenType.Boolean ? (bool)t : throw Bad()) });

        private static void Int(string key, int min, int max, Func<OpsContext, int> get, Action<OpsContext, int> set)
            => All.Add(new Setting
            {
                Key = key, Expected = $"a whole number from {min} to {max}", Get = c => get(c),
                Set = (c, t) => set(c, t.Type == JTokenType.Integer && (long)t >= min && (long)t <= max ? (int)(long)t : throw Bad()),
            });

        private static void Seconds(string key, double min, double max, Func<OpsContext, TimeSpan> get, Action<OpsContext, TimeSpan> set)
            => All.Add(new Setting
            {
                Key = key, Expected = $"a number of seconds from {min.ToString(CultureInfo.InvariantCulture)} to {max.ToString(CultureInfo.InvariantCulture)}",
                Get = c => Math.Round(get(c).TotalSeconds, 3),
                Set = (c, t) => set(c, (t.Type == JTokenType.Integer || t.Type == JTokenType.Float) && (double)t >= min && (double)t <= max ? TimeSpan.FromSeconds((double)t) : throw Bad()),
            });

        private static void Share(string key, Func<OpsContext, double> get, Action<OpsContext, double> set)
            => All.Add(new Setting
            {
                Key = key, Expected = "a share from 0.01 to 1.0", Get = c => get(c),
                Set = (c, t) => set(c, (t.Type == JTokenType.Integer || t.Type == JTokenType.Float) && (double)t >= 0.01 && (double)t <= 1.0 ? (double)t : throw Bad()),
            });

        private static void Http(string key, Func<OpsContext, Uri> get, Action<OpsContext, Uri> set)
            => All.Add(new Setting
            {
                Key = key, Expected = "an http:// or https:// address (no user:password@ in it: credentials go in their own settings)", Get = c => get(c)?.ToString(),
                Set = (c, t) => set(c, t.Type == JTokenType.String && Uri.TryCreate((string)t, UriKind.Absolute, out var u) && HttpAddress.IsValid(u) ? u : throw Bad()),
            });

        /// <summary>The name of the environment variable holding a secret; the value itself never touches a file.</summary>
        private static void SecretVariable(string key, Func<OpsContext, Secret> get, Action<OpsContext, Secret> set)
            => All.Add(new Setting
            {
                Key = key, Expected = "the name of an environment variable", Get = c => get(c)?.Variable,
                Set = (c, t) =>
                {
                    if (t.Type != JTokenType.String || string.IsNullOrWhiteSpace((string)t)) throw Bad();
                    var s = Secret.FromEnvironment((string)t);
                    if (s != null) set(c, s);
                },
            });

        private static void Enum<T>(string key, Func<OpsContext, T> get, Action<OpsContext, T> set) where T : struct
            => All.Add(new Setting
            {
                Key = key, Expected = "one of " + string.Join(", ", System.Enum.GetNames(typeof(T))), Get = c => get(c).ToString(),
                Set = (c, t) => set(c, t.Type == JTokenType.String && System.Enum.TryParse<T>((string)t, true, out var v) && System.Enum.IsDefined(typeof(T), v) ? v : throw Bad()),
            });

        private static void StrList(string key, Func<OpsContext, List<string>> get, Action<OpsContext, List<string>> set)
            => All.Add(new Setting
            {
                Key = key, Expected = "a list of strings", Get = c => new JArray(get(c)),
                Set = (c, t) => set(c, t is JArray a && a.All(x => x.Type == JTokenType.String) ? a.Select(x => (string)x).ToList() : throw Bad()),
            });

        private static Exception Bad() => new FormatException();

        static ContextSettings()
        {
            Http("kongAdminUri", c => c.KongAdminUri, (c, v) => c.KongAdminUri = v);
            Str("upstream", c => c.Upstream, (c, v) => c.Upstream = v);
            Str("workspace", c => c.Workspace, (c, v) => c.Workspace = v.Length == 0 ? null : v);
            Str("kongTokenHeader", c => c.KongTokenHeader, (c, v) => c.KongTokenHeader = v);
            SecretVariable("kongTokenVariable", c => c.KongToken, (c, v) => c.KongToken = v);
            Bool("skipCertificateCheck", c => c.SkipCertificateCheck, (c, v) => c.SkipCertificateCheck = v);
            Str("caCertificatePath", c => c.CaCertificatePath, (c, v) => c.CaCertificatePath = v);
            Seconds("httpTimeoutSeconds", 1, 3600, c => c.HttpTimeout, (c, v) => c.HttpTimeout = v);
            Int("kongPageSize", 1, 1000, c => c.KongPageSize, (c, v) => c.KongPageSize = v);
            Int("maxResponseMegabytes", 1, 1024, c => (int)(c.MaxResponseBytes / (1024 * 1024)), (c, v) => c.MaxResponseBytes = v * 1024L * 1024);
            Int("healthPort", 1, 65535, c => c.HealthPort, (c, v) => c.HealthPort = v);
            Str("healthPath", c => c.HealthPath, (c, v) => c.HealthPath = v);
            Str("expectedText", c => c.ExpectedText, (c, v) => c.ExpectedText = v);
            Seconds("healthTimeoutSeconds", 0.05, 600, c => c.HealthTimeout, (c, v) => c.HealthTimeout = v);
            Int("throttleLimit", 0, 1024, c => c.ThrottleLimit, (c, v) => c.ThrottleLimit = v); // 0: automatic
            Share("maxRemoveShare", c => c.MaxRemoveShare, (c, v) => c.MaxRemoveShare = v);
            Str("maintenanceTag", c => c.MaintenanceTag, (c, v) => c.MaintenanceTag = v);
            Enum<RemovalMethod>("removalMethod", c => c.RemovalMethod, (c, v) => c.RemovalMethod = v);
            StrList("declarativeTags", c => c.DeclarativeTags, (c, v) => c.DeclarativeTags = v);
            Str("sshUser", c => c.SshUser, (c, v) => c.SshUser = v.Length == 0 ? throw Bad() : v);
            Int("sshPort", 1, 65535, c => c.SshPort, (c, v) => c.SshPort = v);
            Str("sshKeyPath", c => c.SshKeyPath, (c, v) => c.SshKeyPath = v);
            Str("knownHostsPath", c => c.KnownHostsPath, (c, v) => c.KnownHostsPath = v);
            Bool("acceptNewHostKey", c => c.AcceptNewHostKey, (c, v) => c.AcceptNewHostKey = v);
            Str("jumpHost", c => c.JumpHost, (c, v) => c.JumpHost = v.Length == 0 ? null : v);
            Bool("useSudo", c => c.UseSudo, (c, v) => c.UseSudo = v);
            Str("containerName", c => c.ContainerName, (c, v) => c.ContainerName = ContainerNames.Pattern.IsMatch(v) && v.Length <= 128 ? v : throw Bad());
            Seconds("sshConnectTimeoutSeconds", 1, 600, c => c.SshConnectTimeout, (c, v) => c.SshConnectTimeout = v);
            Seconds("sshCommandTimeoutSeconds", 1, 3600, c => c.SshCommandTimeout, (c, v) => c.SshCommandTimeout = v);
            Str("faultRulesPath", c => c.FaultRulesPath, (c, v) => c.FaultRulesPath = v);
            Seconds("restartWaitSeconds", 1, 3600, c => c.RestartWaitTimeout, (c, v) => c.RestartWaitTimeout = v);
            Seconds("restartPollSeconds", 0.05, 600, c => c.RestartPollInterval, (c, v) => c.RestartPollInterval = v);
            Http("pagerDutyUri", c => c.PagerDutyUri, (c, v) => c.PagerDutyUri = v);
            SecretVariable("pagerDutyTokenVariable", c => c.PagerDutyToken, (c, v) => c.PagerDutyToken = v);
            Str("pagerDutyFrom", c => c.PagerDutyFrom, (c, v) => c.PagerDutyFrom = v);
            Bool("pagerDutySkipCertificateCheck", c => c.PagerDutySkipCertificateCheck, (c, v) => c.PagerDutySkipCertificateCheck = v);
            Str("pagerDutyCaCertificatePath", c => c.PagerDutyCaCertificatePath, (c, v) => c.PagerDutyCaCertificatePath = v);
            Int("pagerDutyMaxRetries", 0, 20, c => c.PagerDutyMaxRetries, (c, v) => c.PagerDutyMaxRetries = v);
            Http("centralLogUri", c => c.CentralLogUri, (c, v) => c.CentralLogUri = v);
            Str("centralLogIndex", c => c.CentralLogIndex, (c, v) => c.CentralLogIndex = v);
            Str("centralLogQuery", c => c.CentralLogQuery, (c, v) => c.CentralLogQuery = v);
            SecretVariable("centralLogApiKeyVariable", c => c.CentralLogApiKey, (c, v) => c.CentralLogApiKey = v);
            Str("centralLogUser", c => c.CentralLogUser, (c, v) => c.CentralLogUser = v);
            SecretVariable("centralLogPasswordVariable", c => c.CentralLogPassword, (c, v) => c.CentralLogPassword = v);
            Bool("centralLogSkipCertificateCheck", c => c.CentralLogSkipCertificateCheck, (c, v) => c.CentralLogSkipCertificateCheck = v);
            Str("centralLogCaCertificatePath", c => c.CentralLogCaCertificatePath, (c, v) => c.CentralLogCaCertificatePath = v);
            Int("centralLogPageSize", 1, 10000, c => c.CentralLogPageSize, (c, v) => c.CentralLogPageSize = v);
            Str("centralLogTieBreaker", c => c.CentralLogTieBreaker, (c, v) => c.CentralLogTieBreaker = v.Length == 0 ? null : v);
            Str("auditLogPath", c => c.AuditLogPath, (c, v) => c.AuditLogPath = v);
            Str("lockDirectory", c => c.LockDirectory, (c, v) => c.LockDirectory = v.Length == 0 ? null : v);
            Seconds("lockTimeoutSeconds", 0, 3600, c => c.LockTimeout, (c, v) => c.LockTimeout = v);
        }

        /// <summary>Applies every known key of <paramref name="o"/>; a value of the wrong type or range is ConfigFileInvalid naming the key.</summary>
        public static void Apply(OpsContext c, JObject o, string path)
        {
            foreach (var s in All)
            {
                var t = o[s.Key];
                if (t == null || t.Type == JTokenType.Null) continue;
                try { s.Set(c, t); }
                catch (Exception e) when (e is FormatException || e is InvalidCastException || e is OverflowException || e is ArgumentException || e is UriFormatException)
                {
                    throw Invalid(path, s.Key, s.Expected, t);
                }
            }
            Read(path, "faultOwners", () =>
            {
                if (o["faultOwners"] == null) return;
                if (!(o["faultOwners"] is JObject fo)) throw Bad();
                foreach (var p in fo.Properties()) c.FaultOwners[p.Name] = p.Value.Type == JTokenType.String ? (string)p.Value : throw Bad();
            }, "an object of category: owner email strings", o["faultOwners"]);
            Read(path, "maintenanceTargets", () =>
            {
                if (o["maintenanceTargets"] == null) return;
                if (!(o["maintenanceTargets"] is JArray mt)) throw Bad();
                c.MaintenanceTargets = mt.Select(t => t.Type == JTokenType.String ? (string)t : throw Bad()).ToList();
            }, "an array of target strings", o["maintenanceTargets"]);
            Read(path, "centralLogFields", () =>
            {
                if (o["centralLogFields"] == null) return;
                if (!(o["centralLogFields"] is JObject cf)) throw Bad();
                // Each field is a name or a list of names (a file from before lists took one name for Timestamp, Message, Instance).
                var f = new CentralLogFields();
                foreach (var p in cf.Properties())
                {
                    var names = p.Value.Type == JTokenType.String ? new List<string> { (string)p.Value }
                        : p.Value is JArray a && a.All(x => x.Type == JTokenType.String) ? a.Select(x => (string)x).ToList() : throw Bad();
                    names = names.Where(x => !string.IsNullOrWhiteSpace(x)).ToList();
                    if (names.Count == 0) throw Bad();
                    switch (p.Name.ToLowerInvariant())
                    {
                        case "timestamp": f.Timestamp = names; break;
                        case "message": f.Message = names; break;
                        case "level": f.Level = names; break;
                        case "host": f.Host = names; break;
                        case "instance": f.Instance = names; break;
                        default: throw Bad();
                    }
                }
                c.CentralLogFields = f;
            }, "an object of Timestamp, Message, Level, Host, Instance: a field name or a list of names each", o["centralLogFields"]);
            Read(path, "inventory", () =>
            {
                if (o["inventory"] == null) return;
                if (!(o["inventory"] is JArray inv)) throw Bad();
                var list = inv.ToObject<List<InventoryEntry>>();
                foreach (var e in list)
                {
                    if (e == null || !Endpoint.TryParse(e.Address, e.Port, out _, out _)) throw Bad();
                    if (e.Port < 1 || e.Port > 65535 || (e.SshPort.HasValue && (e.SshPort < 1 || e.SshPort > 65535))) throw Bad();
                }
                c.Inventory = list;
            }, "an array of { address, port 1-65535, environment, sshUser, sshPort, sshKeyPath, jumpHost, useSudo, maintenance }", o["inventory"]);
        }

        private static void Read(string path, string key, Action read, string expected, JToken value)
        {
            try { read(); }
            catch (Exception e) when (e is FormatException || e is InvalidCastException || e is OverflowException || e is ArgumentException || e is JsonException)
            {
                throw Invalid(path, key, expected, value);
            }
        }

        private static OpsException Invalid(string path, string key, string expected, JToken value)
        {
            var shown = value?.ToString(Formatting.None) ?? "null";
            if (shown.Length > 200) shown = shown.Substring(0, 200) + "…";
            return ConfigFileInvalid(path, $"'{key}' must be {expected}; it is {shown}", null);
        }

        /// <summary>The one ConfigFileInvalid: the file cannot be read, is empty, or holds a bad value.</summary>
        public static OpsException ConfigFileInvalid(string path, string why, Exception inner)
            => new OpsException("ConfigFileInvalid", OpsErrorCategory.InvalidData, $"The KeyServiceOps config file '{path}' is not usable: {why}. Nothing was changed.", path,
                recommendedAction: "Fix the JSON in the file (one object of settings; about_KeyServiceOps lists every key), then run Set-KeyServiceOpsContext -ConfigPath again.", inner: inner);

        /// <summary>The settings as a config-file object: no secret values, only the variables that hold them.</summary>
        public static JObject ToJson(OpsContext c)
        {
            var o = new JObject();
            foreach (var s in All)
            {
                var v = s.Get(c);
                if (v != null && v.Type != JTokenType.Null) o[s.Key] = v;
            }
            if (c.FaultOwners.Count > 0) o["faultOwners"] = JObject.FromObject(c.FaultOwners);
            if (c.MaintenanceTargets.Count > 0) o["maintenanceTargets"] = new JArray(c.MaintenanceTargets);
            o["centralLogFields"] = JObject.FromObject(c.CentralLogFields);
            if (c.Inventory.Count > 0) o["inventory"] = JArray.FromObject(c.Inventory);
            return o;
        }

        /// <summary>Where the session defaults live: KEYSERVICEOPS_SESSION_FILE, else ~/.keyserviceops/session.json.</summary>
        public static string SessionFilePath()
        {
            var env = Environment.GetEnvironmentVariable("KEYSERVICEOPS_SESSION_FILE");
            if (!string.IsNullOrEmpty(env)) return env;
            var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            return Path.Combine(string.IsNullOrEmpty(home) ? Path.GetTempPath() : home, ".keyserviceops", "session.json");
        }

        /// <summary>Writes the session defaults (atomically: a temp file, then a rename); returns the path.</summary>
        public static string SaveSession(OpsContext c, string path = null)
        {
            path = path ?? SessionFilePath();
            try
            {
                // Owner-only, never through a symlink, and never absent or torn for a reader (SafeFile).
                SafeFile.WriteAllText(path, ToJson(c).ToString(Formatting.Indented));
                return path;
            }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
            {
                throw new OpsException("SessionFileUnwritable", OpsErrorCategory.PermissionDenied, $"Could not save the session defaults to '{path}': {e.Message}", path,
                    recommendedAction: "Set KEYSERVICEOPS_SESSION_FILE to a writable path, or fix the folder's permissions.", inner: e);
            }
        }
    }
}
