using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Security;
using KeyServiceOps.Core;
using KeyServiceOps.Commands;

namespace KeyServiceOps.Bases
{
    /// <summary>
    /// Parameters that set settings — Set-/New-KeyServiceOpsContext's, and the per-call overrides of the Kong, PagerDuty
    /// and SSH cmdlets — applied in one way: each through its ContextSettings entry (one rule per setting for every
    /// source), the secrets given as SecureString or PSCredential here.
    /// </summary>
    internal static class SettingParameters
    {
        public static readonly IReadOnlyDictionary<string, string> None = new Dictionary<string, string>();

        public static readonly IReadOnlyDictionary<string, string> Kong = Same("KongAdminUri", "Workspace", "KongToken", "SkipCertificateCheck");
        public static readonly IReadOnlyDictionary<string, string> PagerDuty = Same("PagerDutyUri", "PagerDutyToken");
        public static readonly IReadOnlyDictionary<string, string> Ssh = Join(Same("SshUser", "SshPort", "SshKeyPath", "SshKeyPassphrase", "KnownHostsPath", "AcceptNewHostKey", "JumpHost", "UseSudo"),
            new Dictionary<string, string> { ["Credential"] = "SshCredential", ["Container"] = "ContainerName", ["ConnectTimeoutSec"] = "SshConnectTimeoutSec", ["CommandTimeoutSec"] = "SshCommandTimeoutSec" });
        /// <summary>A change's wait for another actor (the four cmdlets that change an instance).</summary>
        public static readonly IReadOnlyDictionary<string, string> LockTimeout = Same("LockTimeoutSec");

        public static IReadOnlyDictionary<string, string> Same(params string[] names) => names.ToDictionary(n => n, n => n, StringComparer.OrdinalIgnoreCase);

        public static IReadOnlyDictionary<string, string> Join(params IReadOnlyDictionary<string, string>[] maps)
        {
            var d = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            foreach (var m in maps) foreach (var kv in m) d[kv.Key] = kv.Value;
            return d;
        }

        /// <summary>Applies the bound parameters that <paramref name="map"/> names; everything is checked before anything is applied to <paramref name="c"/>.</summary>
        public static void Apply(OpsContext c, IDictionary<string, object> bound, IReadOnlyDictionary<string, string> map, Func<string, string> resolvePath)
        {
            var trial = c.Clone();
            foreach (var kv in bound)
            {
                if (!map.TryGetValue(kv.Key, out var setting)) continue;
                var value = kv.Value is PSObject p ? p.BaseObject : kv.Value;
                if (!Secret(trial, setting, value)) ContextSettings.SetFromParameter(trial, setting, value, resolvePath, kv.Key);
            }
            c.TakeSettingsOf(trial);
        }

        /// <summary>The secrets, which no file or variable name carries: SecureString and PSCredential parameters.</summary>
        private static bool Secret(OpsContext c, string setting, object value)
        {
            switch (setting)
            {
                case "KongToken": c.Kong.Token = Core.Secret.FromSecureString((SecureString)value); return true;
                case "PagerDutyToken": c.PagerDuty.Token = Core.Secret.FromSecureString((SecureString)value); return true;
                case "CentralLogApiKey": c.CentralLogs.ApiKey = Core.Secret.FromSecureString((SecureString)value); return true;
                case "SshKeyPassphrase": c.Ssh.KeyPassphrase = Core.Secret.FromSecureString((SecureString)value); return true;
                case "SshCredential":
                    var sc = (PSCredential)value;
                    c.Ssh.User = sc.UserName; c.Ssh.Password = Core.Secret.FromSecureString(sc.Password); return true;
                case "CentralLogCredential":
                    var cc = (PSCredential)value;
                    c.CentralLogs.User = cc.UserName; c.CentralLogs.Password = Core.Secret.FromSecureString(cc.Password); c.CentralLogs.ApiKey = null; return true;
                case "CentralLogPasswordVariable":
                    ContextSettings.SetFromParameter(c, setting, value, null); c.CentralLogs.ApiKey = null; return true; // a password replaces an API key
                default: return false;
            }
        }
    }
}
