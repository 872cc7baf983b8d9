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
    /// The catalog: one line per setting says where it lives (its section of <see cref="OpsContext"/>), its config-file
    /// key, its parameter and view name, the environment variable that sets it (if any), its range, and how a path is
    /// resolved. The config file, the saved session, the environment, Set-/New-KeyServiceOpsContext and
    /// Get-KeyServiceOpsContext's view all go through it, so one rule holds for every source (issue #29).
    /// Secrets are never read or written here: only the names of the environment variables that hold them.
    /// </summary>
    public static class ContextSettings
    {
        /// <summary>One setting, described once.</summary>
        public sealed class Setting
        {
            /// <summary>The config-file key (camelCase).</summary>
            public string Key { get; internal set; }
            /// <summary>The Set-/New-KeyServiceOpsContext parameter and the view's property.</summary>
            public string Name { get; internal set; }
            /// <summary>The view's property (the parameter's name unless a list: DeclarativeTag → DeclarativeTags).</summary>
            public string View { get; internal set; }
            /// <summary>The section of the context it lives in.</summary>
            public string Section { get; internal set; }
            /// <summary>An environment variable that sets it in a new session, or null.</summary>
            public string Environment { get; internal set; }
            public string Expected { get; internal set; }
            internal Func<OpsContext, object> Get;
            internal Action<OpsContext, object> Put;
            /// <summary>A value from a file (JSON), checked; FormatException when it is not what is expected.</summary>
            internal Func<JToken, Func<string, string>, object> FromJson;
            /// <summary>A value from a parameter or the environment (text), checked; FormatException when it is not what is expected.</summary>
            internal Func<object, Func<string, string>, string, object> FromValue;
            internal Func<object, JToken> ToJson = v => v == null ? null : JToken.FromObject(v);
            internal Func<object, object> ToView = v => v;
        }

        private static readonly List<Setting> All = new List<Setting>();

        public static IReadOnlyList<Setting> Settings => All;
        public static IReadOnlyList<string> Keys => All.Select(s => s.Key).ToList();

        private static string Pascal(string key)
        {
            var p = char.ToUpperInvariant(key[0]) + key.Substring(1);
            return p.EndsWith("Seconds", StringComparison.Ordinal) ? p.Substring(0, p.Length - "onds".Length) : p;
        }

        private static Setting Add(string section, string key, string expected, Func<OpsContext, object> get, Action<OpsContext, object> put,
            Func<JToken, Func<string, string>, object> fromJson, Func<object, Func<string, string>, string, object> fromValue, string env = null, string name = null)
        {
            var s = new Setting { Section = section, Key = key, Name = name ?? Pascal(key), View = Pascal(key), Expected = expected, Get = get, Put = put, FromJson = fromJson, FromValue = fromValue, Environment = env };
            All.Add(s);
            return s;
        }

        private static Exception Bad() => new FormatException();
        private static string AsText(object v) => v is string s ? s : v is Uri u ? u.OriginalString : v == null ? null : Convert.ToString(v, CultureInfo.InvariantCulture);
        private static double AsNumber(object v) => v is string s ? (double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : throw Bad()) : Convert.ToDouble(v, CultureInfo.InvariantCulture);

        /// <summary>Text; <paramref name="clearable"/>: '' clears it (null); <paramref name="check"/>: what else it must be.</summary>
        private static void Text(string section, string key, Func<OpsContext, string> get, Action<OpsContext, string> set, bool clearable = false, Func<string, bool> check = null, string expected = "a text without control characters", string env = null)
        {
            // One rule for every text setting: no control characters (a header, a path or a log query split by CR/LF);
            // blank is empty (cleared where the setting can be cleared, refused where it cannot).
            object Parse(string t) => t == null || t.Any(char.IsControl) ? throw Bad() : t.Trim().Length == 0 ? (clearable ? null : throw Bad()) : check == null || check(t) ? t : throw Bad();
            Add(section, key, expected, c => get(c), (c, v) => set(c, (string)v),
                (t, _) => Parse(t.Type == JTokenType.String ? (string)t : throw Bad()), (v, _, src) => Parse(AsText(v)), env);
        }

        /// <summary>A file or folder path: resolved by the source's rule (a parameter against the PowerShell location, a file against its folder); '' clears it when <paramref name="clearable"/>.</summary>
        private static void PathSetting(string section, string key, Func<OpsContext, string> get, Action<OpsContext, string> set, bool clearable = true, string env = null)
        {
            object Parse(string t, Func<string, string> resolve) => t == null ? throw Bad() : t.Length == 0 ? (clearable ? null : throw Bad()) : (resolve == null ? t : resolve(t));
            Add(section, key, "a path", c => get(c), (c, v) => set(c, (string)v),
                (t, r) => Parse(t.Type == JTokenType.String ? (string)t : throw Bad(), r), (v, r, src) => Parse(AsText(v), r), env);
        }

        private static void Bool(string section, string key, Func<OpsContext, bool> get, Action<OpsContext, bool> set)
            => Add(section, key, "true or false", c => get(c), (c, v) => set(c, (bool)v),
                (t, _) => t.Type == JTokenType.Boolean ? (bool)t : throw Bad(),
                (v, _, src) => v is bool b ? b : v is string s && bool.TryParse(s, out var p) ? p : LanguageTrue(v));

        private static object LanguageTrue(object v)
        {
            // A PowerShell switch arrives as SwitchParameter; it is read by its IsPresent without a reference to PowerShell.
            var isPresent = v?.GetType().GetProperty("IsPresent");
            if (isPresent != null && isPresent.PropertyType == typeof(bool)) return (bool)isPresent.GetValue(v);
            throw Bad();
        }

        private static void Int(string section, string key, int min, int max, Func<OpsContext, int> get, Action<OpsContext, int> set, string note = null)
            => Add(section, key, $"a whole number from {min} to {max}{note}", c => get(c), (c, v) => set(c, (int)v),
                (t, _) => t.Type == JTokenType.Integer && (long)t >= min && (long)t <= max ? (int)(long)t : throw Bad(),
                (v, _, src) => { var d = AsNumber(v); return d >= min && d <= max && Math.Abs(d - Math.Round(d)) < 1e-9 ? (object)(int)Math.Round(d) : throw Bad(); });

        private static void Seconds(string section, string key, double min, double max, Func<OpsContext, TimeSpan> get, Action<OpsContext, TimeSpan> set)
        {
            var s = Add(section, key, $"a number of seconds from {min.ToString(CultureInfo.InvariantCulture)} to {max.ToString(CultureInfo.InvariantCulture)}",
                c => get(c), (c, v) => set(c, (TimeSpan)v),
                (t, _) => (t.Type == JTokenType.Integer || t.Type == JTokenType.Float) && (double)t >= min && (double)t <= max ? TimeSpan.FromSeconds((double)t) : throw Bad(),
                (v, _, src) => { var d = AsNumber(v); return d >= min && d <= max ? (object)TimeSpan.FromSeconds(d) : throw Bad(); });
            s.ToJson = v => Math.Round(((TimeSpan)v).TotalSeconds, 3);
            s.ToView = v => ((TimeSpan)v).TotalSeconds;
        }

        private static void Share(string section, string key, double min, Func<OpsContext, double> get, Action<OpsContext, double> set)
            => Add(section, key, $"a share from {min.ToString(CultureInfo.InvariantCulture)} to 1.0", c => get(c), (c, v) => set(c, (double)v),
                (t, _) => (t.Type == JTokenType.Integer || t.Type == JTokenType.Float) && (double)t >= min && (double)t <= 1.0 ? (double)t : throw Bad(),
                (v, _, src) => { var d = AsNumber(v); return d >= min && d <= 1.0 ? (object)d : throw Bad(); });

        /// <summary>A service address: the one rule (HttpAddress) for every source.</summary>
        private static void Http(string section, string key, Func<OpsContext, Uri> get, Action<OpsContext, Uri> set, string env)
        {
            var s = Add(section, key, "an http:// or https:// address (no user:password@ in it: credentials go in their own settings)", c => get(c), (c, v) => set(c, (Uri)v),
                (t, _) => t.Type == JTokenType.String && Uri.TryCreate((string)t, UriKind.Absolute, out var u) && HttpAddress.IsValid(u) ? u : throw Bad(),
                null, env);
            s.FromValue = (v, _, src) => v is Uri u ? HttpAddress.Require(u, src) : HttpAddress.Require(AsText(v), src);
            s.ToJson = v => ((Uri)v)?.ToString();
        }

        /// <summary>The name of the environment variable holding a secret; the value itself never touches a file.</summary>
        private static void SecretVariable(string section, string key, Func<OpsContext, Secret> get, Action<OpsContext, Secret> set, string env = null)
        {
            var s = Add(section, key, "the name of an environment variable that is set", c => get(c), (c, v) => set(c, (Secret)v),
                (t, _) =>
                {
                    if (t.Type != JTokenType.String || string.IsNullOrWhiteSpace((string)t)) throw Bad();
                    return Secret.FromEnvironment((string)t) ?? (object)Unset.Value; // a file may name a variable this process lacks: the setting stays
                },
                (v, _, src) => { var n = AsText(v); return string.IsNullOrWhiteSpace(n) ? throw Bad() : Secret.FromEnvironment(n) ?? throw TokenVariableEmpty(n); });
            s.ToJson = v => ((Secret)v)?.Variable;
            s.ToView = v => ((Secret)v)?.Variable;
            // A variable with a fixed name sets the secret itself in a new session (KEYSERVICEOPS_KONG_TOKEN).
            s.Environment = env;
        }

        private static void Enum<T>(string section, string key, Func<OpsContext, T> get, Action<OpsContext, T> set) where T : struct
        {
            object Parse(string t) => t != null && System.Enum.TryParse<T>(t, true, out var v) && System.Enum.IsDefined(typeof(T), v) ? v : throw Bad();
            var s = Add(section, key, "one of " + string.Join(", ", System.Enum.GetNames(typeof(T))), c => get(c), (c, v) => set(c, (T)v),
                (t, _) => Parse(t.Type == JTokenType.String ? (string)t : throw Bad()), (v, _, src) => v is T e && System.Enum.IsDefined(typeof(T), e) ? e : Parse(AsText(v)));
            s.ToJson = v => v.ToString();
            s.ToView = v => v.ToString();
        }

        private static void StrList(string section, string key, Func<OpsContext, List<string>> get, Action<OpsContext, List<string>> set, string name = null)
        {
            var s = Add(section, key, "a list of strings", c => get(c), (c, v) => set(c, (List<string>)v),
                (t, _) => t is JArray a && a.All(x => x.Type == JTokenType.String) ? a.Select(x => (string)x).Where(x => !string.IsNullOrWhiteSpace(x)).ToList() : throw Bad(),
                (v, _, src) => v is string one ? new List<string> { one }.Where(x => !string.IsNullOrWhiteSpace(x)).ToList()
                    : v is System.Collections.IEnumerable e ? e.Cast<object>().Select(AsText).Where(x => !string.IsNullOrWhiteSpace(x)).ToList() : throw Bad(), null, name);
            s.ToJson = v => new JArray((List<string>)v);
            s.ToView = v => new TextList((List<string>)v);
        }

        /// <summary>~/… in a file or a variable: the user's home (as a shell would), else null.</summary>
        private static string HomePath(string x)
        {
            if (x != "~" && !x.StartsWith("~/", StringComparison.Ordinal)) return null;
            var home = System.Environment.GetFolderPath(System.Environment.SpecialFolder.UserProfile);
            return x == "~" ? home : Path.Combine(home, x.Substring(2));
        }

        /// <summary>A parameter names a variable this process does not have.</summary>
        public static OpsException TokenVariableEmpty(string name)
            => new OpsException("TokenVariableEmpty", OpsErrorCategory.InvalidArgument, $"The environment variable '{name}' is not set or empty. Nothing was changed.", name,
                recommendedAction: $"Set it first: $env:{name} = '...'");

        /// <summary>A file naming a variable this process does not have: the setting keeps its value.</summary>
        private sealed class Unset { public static readonly Unset Value = new Unset(); }

        static ContextSettings()
        {
            // One line per setting. Section, key (the parameter and view name is its PascalCase, "...Seconds" as "...Sec").
            Http("Kong", "kongAdminUri", c => c.Kong.AdminUri, (c, v) => c.Kong.AdminUri = v, "KEYSERVICEOPS_KONG_URI");
            Text("Kong", "upstream", c => c.Kong.Upstream, (c, v) => c.Kong.Upstream = v, check: v => v.Trim() == v, expected: "an upstream name (no spaces around it, no control characters)", env: "KEYSERVICEOPS_UPSTREAM");
            Text("Kong", "workspace", c => c.Kong.Workspace, (c, v) => c.Kong.Workspace = v, clearable: true, env: "KEYSERVICEOPS_WORKSPACE");
            Text("Kong", "kongTokenHeader", c => c.Kong.TokenHeader, (c, v) => c.Kong.TokenHeader = v, check: v => System.Text.RegularExpressions.Regex.IsMatch(v, "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"), expected: "an HTTP header name");
            SecretVariable("Kong", "kongTokenVariable", c => c.Kong.Token, (c, v) => c.Kong.Token = v, "KEYSERVICEOPS_KONG_TOKEN");
            Bool("Kong", "skipCertificateCheck", c => c.Kong.SkipCertificateCheck, (c, v) => c.Kong.SkipCertificateCheck = v);
            PathSetting("Kong", "caCertificatePath", c => c.Kong.CaCertificatePath, (c, v) => c.Kong.CaCertificatePath = v);
            Int("Kong", "kongPageSize", 1, 1000, c => c.Kong.PageSize, (c, v) => c.Kong.PageSize = v);
            Seconds("Http", "httpTimeoutSeconds", 1, 3600, c => c.Http.Timeout, (c, v) => c.Http.Timeout = v);
            Int("Http", "maxResponseMegabytes", 1, 1024, c => (int)(c.Http.MaxResponseBytes / (1024 * 1024)), (c, v) => c.Http.MaxResponseBytes = v * 1024L * 1024);
            Int("Health", "healthPort", 1, 65535, c => c.Health.Port, (c, v) => c.Health.Port = v);
            Text("Health", "healthPath", c => c.Health.Path, (c, v) => c.Health.Path = v, check: v => v.StartsWith("/", StringComparison.Ordinal) && !v.StartsWith("//", StringComparison.Ordinal) && !v.Contains(" "), expected: "a path on the instance starting with / (e.g. /api/auth/healthz)");
            Text("Health", "expectedText", c => c.Health.ExpectedText, (c, v) => c.Health.ExpectedText = v);
            Seconds("Health", "healthTimeoutSeconds", 0.05, 600, c => c.Health.Timeout, (c, v) => c.Health.Timeout = v);
            Int("Health", "throttleLimit", 0, 1024, c => c.Health.ThrottleLimit, (c, v) => c.Health.ThrottleLimit = v, " (0: automatic)");
            Share("Removal", "maxRemoveShare", 0.01, c => c.Removal.MaxRemoveShare, (c, v) => c.Removal.MaxRemoveShare = v);
            Text("Removal", "maintenanceTag", c => c.Removal.MaintenanceTag, (c, v) => c.Removal.MaintenanceTag = v);
            StrList("Removal", "maintenanceTargets", c => c.Removal.MaintenanceTargets, (c, v) => c.Removal.MaintenanceTargets = v.All(x => Endpoint.TryParse(x, OpsContext.DefaultServicePort, out _, out _)) ? v : throw Bad(), "MaintenanceTarget");
            Enum<RemovalMethod>("Removal", "removalMethod", c => c.Removal.Method, (c, v) => c.Removal.Method = v);
            StrList("Removal", "declarativeTags", c => c.Removal.DeclarativeTags, (c, v) => c.Removal.DeclarativeTags = v, "DeclarativeTag");
            Text("Ssh", "sshUser", c => c.Ssh.User, (c, v) => c.Ssh.User = v);
            Int("Ssh", "sshPort", 1, 65535, c => c.Ssh.Port, (c, v) => c.Ssh.Port = v);
            PathSetting("Ssh", "sshKeyPath", c => c.Ssh.KeyPath, (c, v) => c.Ssh.KeyPath = v);
            PathSetting("Ssh", "knownHostsPath", c => c.Ssh.KnownHostsPath, (c, v) => c.Ssh.KnownHostsPath = v);
            Bool("Ssh", "acceptNewHostKey", c => c.Ssh.AcceptNewHostKey, (c, v) => c.Ssh.AcceptNewHostKey = v);
            Text("Ssh", "jumpHost", c => c.Ssh.JumpHost, (c, v) => c.Ssh.JumpHost = v, clearable: true);
            Bool("Ssh", "useSudo", c => c.Ssh.UseSudo, (c, v) => c.Ssh.UseSudo = v);
            Text("Ssh", "containerName", c => c.Ssh.ContainerName, (c, v) => c.Ssh.ContainerName = v, check: v => ContainerNames.Pattern.IsMatch(v) && v.Length <= 128, expected: "a container name (letters, digits, _ . -)");
            Seconds("Ssh", "sshConnectTimeoutSeconds", 1, 600, c => c.Ssh.ConnectTimeout, (c, v) => c.Ssh.ConnectTimeout = v);
            Seconds("Ssh", "sshCommandTimeoutSeconds", 1, 3600, c => c.Ssh.CommandTimeout, (c, v) => c.Ssh.CommandTimeout = v);
            PathSetting("Healing", "faultRulesPath", c => c.Healing.FaultRulesPath, (c, v) => c.Healing.FaultRulesPath = v);
            Seconds("Healing", "restartWaitSeconds", 1, 3600, c => c.Healing.RestartWaitTimeout, (c, v) => c.Healing.RestartWaitTimeout = v);
            Seconds("Healing", "restartPollSeconds", 0.05, 600, c => c.Healing.RestartPollInterval, (c, v) => c.Healing.RestartPollInterval = v);
            Http("PagerDuty", "pagerDutyUri", c => c.PagerDuty.Uri, (c, v) => c.PagerDuty.Uri = v, "KEYSERVICEOPS_PAGERDUTY_URI");
            SecretVariable("PagerDuty", "pagerDutyTokenVariable", c => c.PagerDuty.Token, (c, v) => c.PagerDuty.Token = v, "KEYSERVICEOPS_PAGERDUTY_TOKEN");
            Text("PagerDuty", "pagerDutyFrom", c => c.PagerDuty.From, (c, v) => c.PagerDuty.From = v, check: v => System.Text.RegularExpressions.Regex.IsMatch(v, @"^[^@\s]+@[^@\s]+\.[^@\s]+$"), expected: "the email of a PagerDuty user", env: "KEYSERVICEOPS_PAGERDUTY_FROM");
            Bool("PagerDuty", "pagerDutySkipCertificateCheck", c => c.PagerDuty.SkipCertificateCheck, (c, v) => c.PagerDuty.SkipCertificateCheck = v);
            PathSetting("PagerDuty", "pagerDutyCaCertificatePath", c => c.PagerDuty.CaCertificatePath, (c, v) => c.PagerDuty.CaCertificatePath = v);
            Int("PagerDuty", "pagerDutyMaxRetries", 0, 20, c => c.PagerDuty.MaxRetries, (c, v) => c.PagerDuty.MaxRetries = v);
            Http("CentralLogs", "centralLogUri", c => c.CentralLogs.Uri, (c, v) => c.CentralLogs.Uri = v, "KEYSERVICEOPS_CENTRAL_LOG_URI");
            Text("CentralLogs", "centralLogIndex", c => c.CentralLogs.Index, (c, v) => c.CentralLogs.Index = v);
            Text("CentralLogs", "centralLogQuery", c => c.CentralLogs.Query, (c, v) => c.CentralLogs.Query = v);
            SecretVariable("CentralLogs", "centralLogApiKeyVariable", c => c.CentralLogs.ApiKey, (c, v) => c.CentralLogs.ApiKey = v, "KEYSERVICEOPS_CENTRAL_LOG_APIKEY");
            Text("CentralLogs", "centralLogUser", c => c.CentralLogs.User, (c, v) => c.CentralLogs.User = v);
            SecretVariable("CentralLogs", "centralLogPasswordVariable", c => c.CentralLogs.Password, (c, v) => c.CentralLogs.Password = v);
            Bool("CentralLogs", "centralLogSkipCertificateCheck", c => c.CentralLogs.SkipCertificateCheck, (c, v) => c.CentralLogs.SkipCertificateCheck = v);
            PathSetting("CentralLogs", "centralLogCaCertificatePath", c => c.CentralLogs.CaCertificatePath, (c, v) => c.CentralLogs.CaCertificatePath = v);
            Int("CentralLogs", "centralLogPageSize", 1, 10000, c => c.CentralLogs.PageSize, (c, v) => c.CentralLogs.PageSize = v);
            Text("CentralLogs", "centralLogTieBreaker", c => c.CentralLogs.TieBreaker, (c, v) => c.CentralLogs.TieBreaker = v?.Trim(), clearable: true);
            PathSetting("Safety", "auditLogPath", c => c.Safety.AuditLogPath, (c, v) => c.Safety.AuditLogPath = v, clearable: false, env: "KEYSERVICEOPS_AUDIT_LOG");
            PathSetting("Safety", "lockDirectory", c => c.Safety.LockDirectory, (c, v) => c.Safety.LockDirectory = v, env: "KEYSERVICEOPS_LOCK_DIR");
            Seconds("Safety", "lockTimeoutSeconds", 0, 3600, c => c.Safety.LockTimeout, (c, v) => c.Safety.LockTimeout = v);
        }

        public static Setting Find(string nameOrKey)
            => All.FirstOrDefault(s => string.Equals(s.Name, nameOrKey, StringComparison.OrdinalIgnoreCase) || string.Equals(s.Key, nameOrKey, StringComparison.OrdinalIgnoreCase));

        /// <summary>
        /// Sets one setting from a parameter's value (the source named as "-Name"); paths resolved by <paramref name="resolvePath"/>
        /// (the PowerShell location). A value out of range is the typed InvalidSettingValue; nothing is changed.
        /// </summary>
        public static void SetFromParameter(OpsContext c, string name, object value, Func<string, string> resolvePath, string parameter = null)
        {
            var s = Find(name) ?? throw new ArgumentException("not a setting: " + name, nameof(name));
            c.Put(s, Check(s, value, resolvePath, "-" + (parameter ?? s.Name)));
        }

        private static void Put(this OpsContext c, Setting s, object v) { if (!(v is Unset)) s.Put(c, v); }

        private static object Check(Setting s, object value, Func<string, string> resolvePath, string source)
        {
            try { return s.FromValue(value, resolvePath, source); }
            catch (Exception e) when (BadValue(e))
            {
                throw InvalidSettingValue(source, s, value);
            }
        }

        /// <summary>What a setting's reader throws for a value that is not what it expects (every source: parameter, variable, file).</summary>
        private static bool BadValue(Exception e) => e is FormatException || e is InvalidCastException || e is OverflowException || e is ArgumentException;

        /// <summary>The one InvalidSettingValue: a parameter or an environment variable out of its setting's range.</summary>
        public static OpsException InvalidSettingValue(string source, Setting s, object value)
        {
            var text = AsText(value);
            var shown = s.Key.EndsWith("Variable", StringComparison.Ordinal) || value is System.Security.SecureString ? "(not shown)" : string.IsNullOrEmpty(text) ? "empty" : "'" + SafeText.Neutralize(text) + "'";
            if (shown.Length > 200) shown = shown.Substring(0, 200) + "…";
            return new OpsException("InvalidSettingValue", OpsErrorCategory.InvalidArgument, $"{source} must be {s.Expected}; it is {shown}. Nothing was changed.", s.Name,
                recommendedAction: $"Give {source} {s.Expected} (Get-Help Set-KeyServiceOpsContext -Parameter {s.Name}).");
        }

        /// <summary>Applies the KEYSERVICEOPS_* variables the catalog names (each through its setting's rule).</summary>
        /// <remarks>
        /// <paramref name="invalid"/> null: the first invalid variable is the typed error (New-KeyServiceOpsContext). Given
        /// (a new session): an invalid variable is reported through it and skipped; the others still apply.
        /// </remarks>
        public static void ApplyEnvironment(OpsContext c, Action<OpsException> invalid = null)
        {
            foreach (var s in All.Where(x => x.Environment != null))
            {
                var text = System.Environment.GetEnvironmentVariable(s.Environment);
                if (string.IsNullOrEmpty(text)) continue;
                if (s.Key.EndsWith("Variable", StringComparison.Ordinal)) { s.Put(c, Secret.FromEnvironment(s.Environment)); continue; }
                object v;
                // The setting's own rule, as for a parameter (an address through HttpAddress, naming the variable).
                try { v = Check(s, text, x => HomePath(x) ?? Path.GetFullPath(x), s.Environment); }
                catch (OpsException e) when (invalid != null) { invalid(e); continue; }
                c.Put(s, v);
            }
        }

        /// <summary>What Get-KeyServiceOpsContext shows, in catalog order by section: every setting (secrets only as the variable that holds them), then what is derived.</summary>
        public static IReadOnlyList<KeyValuePair<string, object>> View(OpsContext c)
        {
            var list = new List<KeyValuePair<string, object>>();
            foreach (var s in All) list.Add(new KeyValuePair<string, object>(s.View, s.ToView(s.Get(c))));
            void Derived(string n, object v) => list.Add(new KeyValuePair<string, object>(n, v));
            Derived("KongTokenSet", c.Kong.Token != null);
            Derived("PagerDutyTokenSet", c.PagerDuty.Token != null);
            Derived("CentralLogCredentialSet", c.CentralLogs.ApiKey != null || c.CentralLogs.Password != null);
            Derived("SshKeyPassphraseSet", c.Ssh.KeyPassphrase != null);
            Derived("SshPasswordSet", c.Ssh.Password != null);
            Derived("FaultOwners", string.Join("; ", c.Healing.FaultOwners.OrderBy(kv => kv.Key, StringComparer.OrdinalIgnoreCase).Select(kv => $"{kv.Key}={kv.Value}")));
            var f = c.CentralLogs.Fields;
            Derived("CentralLogFieldMap", $"Timestamp={string.Join(",", f.Timestamp)}; Message={string.Join(",", f.Message)}; Level={string.Join(",", f.Level)}; Host={string.Join(",", f.Host)}; Instance={string.Join(",", f.Instance)}");
            Derived("InventoryCount", c.Inventory.Count);
            Derived("ConfigPath", c.ConfigPath);
            return list;
        }

        /// <summary>Applies every known key of <paramref name="o"/>; a value of the wrong type or range is ConfigFileInvalid naming the key.</summary>
        public static void Apply(OpsContext c, JObject o, string path)
        {
            // A relative path in a file is relative to the file's folder (not to wherever the reader stands).
            var folder = Path.GetDirectoryName(Path.GetFullPath(path));
            Func<string, string> resolve = x => HomePath(x) ?? (Path.IsPathRooted(x) ? x : Path.GetFullPath(Path.Combine(folder, x)));
            foreach (var s in All)
            {
                var t = o[s.Key];
                if (t == null || t.Type == JTokenType.Null) continue;
                try { c.Put(s, s.FromJson(t, resolve)); }
                catch (Exception e) when (BadValue(e)) // UriFormatException is a FormatException
                {
                    throw Invalid(path, s.Key, s.Expected, t);
                }
            }
            Read(path, "faultOwners", () =>
            {
                if (o["faultOwners"] == null) return;
                if (!(o["faultOwners"] is JObject fo)) throw Bad();
                foreach (var p in fo.Properties()) c.Healing.FaultOwners[p.Name] = p.Value.Type == JTokenType.String ? (string)p.Value : throw Bad();
            }, "an object of category: owner email strings", o["faultOwners"]);
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
                c.CentralLogs.Fields = f;
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
                    if (!string.IsNullOrEmpty(e.SshKeyPath)) e.SshKeyPath = resolve(e.SshKeyPath); // relative to the file's folder, as the top-level paths
                }
                c.Inventory = list;
            }, "an array of { address, port 1-65535, environment, sshUser, sshPort, sshKeyPath, jumpHost, useSudo, maintenance }", o["inventory"]);
        }

        private static void Read(string path, string key, Action read, string expected, JToken value)
        {
            try { read(); }
            catch (Exception e) when (BadValue(e) || e is JsonException)
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
                recommendedAction: "Check the path (Test-Path) and the JSON in the file (one object of settings; about_KeyServiceOps lists every key), then run Set-KeyServiceOpsContext -ConfigPath again.", inner: inner);

        /// <summary>The settings as a config-file object: no secret values, only the variables that hold them.</summary>
        public static JObject ToJson(OpsContext c)
        {
            var o = new JObject();
            foreach (var s in All)
            {
                var raw = s.Get(c);
                var v = raw == null ? null : s.ToJson(raw);
                if (v != null && v.Type != JTokenType.Null && !(v is JArray a && a.Count == 0 && s.Key == "maintenanceTargets")) o[s.Key] = v;
            }
            if (c.Healing.FaultOwners.Count > 0) o["faultOwners"] = JObject.FromObject(c.Healing.FaultOwners);
            o["centralLogFields"] = JObject.FromObject(c.CentralLogs.Fields);
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
