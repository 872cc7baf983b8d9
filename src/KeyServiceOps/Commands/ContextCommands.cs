using System;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Security;
using KeyServiceOps.Core;
using KeyServiceOps.Bases;

namespace KeyServiceOps.Commands
{
    /// <summary>
    /// A context as an object: what New-KeyServiceOpsContext and Get-KeyServiceOpsContext return and -Context takes (a
    /// copy of the settings, taken when it was made). It shows every setting (ContextSettings.View; secrets only as
    /// "set" or the variable that holds them) as properties, so Format-List, ConvertTo-Json and Export-Csv see them.
    /// </summary>
    public sealed class KeyServiceOpsContext
    {
        internal OpsContext Settings { get; }

        internal KeyServiceOpsContext(OpsContext settings) { Settings = settings.Clone(); }

        internal PSObject ToPSObject()
        {
            var o = new PSObject(this);
            foreach (var kv in ContextSettings.View(Settings)) o.Properties.Add(new PSNoteProperty(kv.Key, kv.Value));
            return o;
        }

        public override string ToString() => $"Kong {Settings.Kong.AdminUri}, upstream '{Settings.Kong.Upstream}', PagerDuty {Settings.PagerDuty.Uri}";
    }

    /// <summary>
    /// The parameters of Set- and New-KeyServiceOpsContext, declared once: one per setting of ContextSettings (same
    /// name), applied by SettingParameters through that setting's rule, plus the secrets given as SecureString or
    /// PSCredential and the two maps (fault owners, central-log fields).
    /// </summary>
    public abstract class ContextSettingsCmdlet : PSCmdlet
    {
        [Parameter] public string ConfigPath { get; set; }
        // Kong
        [Parameter] public Uri KongAdminUri { get; set; }
        [Parameter] public string Upstream { get; set; }
        [Parameter] public string Workspace { get; set; }
        [Parameter] public SecureString KongToken { get; set; }
        [Parameter] public string KongTokenVariable { get; set; }
        [Parameter] public string KongTokenHeader { get; set; }
        [Parameter] public SwitchParameter SkipCertificateCheck { get; set; }
        [Parameter] public string CaCertificatePath { get; set; }
        [Parameter] public int KongPageSize { get; set; }
        // HTTP (Kong, PagerDuty, central logs)
        [Parameter] public double HttpTimeoutSec { get; set; }
        [Parameter] public int MaxResponseMegabytes { get; set; }
        // Health
        [Parameter] public int HealthPort { get; set; }
        [Parameter] public string HealthPath { get; set; }
        [Parameter] public string ExpectedText { get; set; }
        [Parameter] public double HealthTimeoutSec { get; set; }
        [Parameter] public int ThrottleLimit { get; set; }
        // Removal and its guards
        [Parameter] public double MaxRemoveShare { get; set; }
        [Parameter] public string MaintenanceTag { get; set; }
        [Parameter] public string[] MaintenanceTarget { get; set; }
        /// <summary>How the runbook, self-healing and Remove-RingBalancerTarget take a target out: Delete (default), Drain (weight 0) or MarkUnhealthy (Kong's health mark).</summary>
        [Parameter] public RemovalMethod RemovalMethod { get; set; }
        /// <summary>Tags that mark upstreams and targets owned by a declarative tool (decK): changing one warns that the next sync reverts it.</summary>
        [Parameter, AllowEmptyCollection] public string[] DeclarativeTag { get; set; }
        // SSH
        [Parameter] public string SshUser { get; set; }
        [Parameter] public int SshPort { get; set; }
        [Parameter] public string SshKeyPath { get; set; }
        [Parameter] public SecureString SshKeyPassphrase { get; set; }
        [Parameter] public PSCredential SshCredential { get; set; }
        [Parameter] public string KnownHostsPath { get; set; }
        [Parameter] public SwitchParameter AcceptNewHostKey { get; set; }
        [Parameter] public string JumpHost { get; set; }
        [Parameter] public SwitchParameter UseSudo { get; set; }
        [Parameter] public string ContainerName { get; set; }
        [Parameter] public double SshConnectTimeoutSec { get; set; }
        [Parameter] public double SshCommandTimeoutSec { get; set; }
        // Diagnosis and healing
        [Parameter] public string FaultRulesPath { get; set; }
        /// <summary>Category -> owner (a PagerDuty user's email), e.g. @{ CipherDependency = 'cipher-owner@example.com' }.</summary>
        [Parameter] public Hashtable FaultOwner { get; set; }
        [Parameter] public double RestartWaitSec { get; set; }
        [Parameter] public double RestartPollSec { get; set; }
        // PagerDuty
        [Parameter] public Uri PagerDutyUri { get; set; }
        [Parameter] public SecureString PagerDutyToken { get; set; }
        [Parameter] public string PagerDutyTokenVariable { get; set; }
        [Parameter] public string PagerDutyFrom { get; set; }
        [Parameter] public SwitchParameter PagerDutySkipCertificateCheck { get; set; }
        [Parameter] public string PagerDutyCaCertificatePath { get; set; }
        [Parameter] public int PagerDutyMaxRetries { get; set; }
        // Central logs
        [Parameter] public Uri CentralLogUri { get; set; }
        [Parameter] public string CentralLogIndex { get; set; }
        [Parameter] public string CentralLogQuery { get; set; }
        [Parameter] public SecureString CentralLogApiKey { get; set; }
        [Parameter] public string CentralLogApiKeyVariable { get; set; }
        [Parameter, Credential] public PSCredential CentralLogCredential { get; set; }
        [Parameter] public string CentralLogUser { get; set; }
        [Parameter] public string CentralLogPasswordVariable { get; set; }
        [Parameter] public SwitchParameter CentralLogSkipCertificateCheck { get; set; }
        [Parameter] public string CentralLogCaCertificatePath { get; set; }
        [Parameter] public int CentralLogPageSize { get; set; }
        /// <summary>Field names in the documents: @{ Timestamp='@timestamp'; Message='message'; Level='log.level'; Host='host.name'; Instance='instance_id' }.</summary>
        [Parameter] public Hashtable CentralLogFieldMap { get; set; }
        /// <summary>A unique keyword field of the log documents to page on where the cluster gives no point in time and refuses a sort on _id; '' clears it.</summary>
        [Parameter, AllowEmptyString] public string CentralLogTieBreaker { get; set; }
        // Locks and audit
        [Parameter] public string AuditLogPath { get; set; }
        [Parameter] public string LockDirectory { get; set; }
        [Parameter] public double LockTimeoutSec { get; set; }

        /// <summary>Every parameter above that is a setting or a secret (the rest: ConfigPath and the two maps).</summary>
        private static readonly IReadOnlyDictionary<string, string> AllSettings = SettingParameters.Join(
            SettingParameters.Same(ContextSettings.Settings.Select(s => s.Name).ToArray()),
            SettingParameters.Same("KongToken", "PagerDutyToken", "CentralLogApiKey", "SshKeyPassphrase", "SshCredential", "CentralLogCredential"));

        /// <summary>Applies -ConfigPath, then every setting given, then the maps, to <paramref name="c"/>; all or nothing.</summary>
        protected void ApplyTo(OpsContext c)
        {
            try
            {
                var trial = c.Clone();
                if (ConfigPath != null) trial.LoadConfigFile(GetUnresolvedProviderPathFromPSPath(ConfigPath));
                SettingParameters.Apply(trial, MyInvocation.BoundParameters, AllSettings, GetUnresolvedProviderPathFromPSPath);
                if (FaultOwner != null) foreach (DictionaryEntry kv in FaultOwner) trial.Healing.FaultOwners[kv.Key.ToString()] = kv.Value?.ToString();
                if (CentralLogFieldMap != null) CentralLogFieldMaps.Apply(trial.CentralLogs.Fields, CentralLogFieldMap);
                c.TakeSettingsOf(trial);
            }
            catch (OpsException e) { ThrowOps(e); }
        }

        protected void ThrowOps(OpsException e) => ThrowTerminatingError(OpsErrorRecord.From(e, Redactor.None));
    }

    /// <summary>-CentralLogFieldMap: each logical field and the document field (or fields) that hold it.</summary>
    internal static class CentralLogFieldMaps
    {
        public static void Apply(CentralLogFields f, Hashtable map)
        {
            foreach (DictionaryEntry kv in map)
            {
                var value = kv.Value is PSObject p ? p.BaseObject : kv.Value;
                var names = (value is object[] arr ? arr.Select(x => x?.ToString()) : new[] { value?.ToString() }).Where(x => !string.IsNullOrEmpty(x)).ToList();
                if (names.Count == 0)
                    throw new OpsException("InvalidCentralLogField", OpsErrorCategory.InvalidArgument, $"The central-log field '{kv.Key}' is given no name. Nothing was changed.", kv.Key,
                        recommendedAction: "Name the document field that holds it, e.g. -CentralLogFieldMap @{ Timestamp = '@timestamp' }.");
                switch (kv.Key.ToString().ToLowerInvariant())
                {
                    case "timestamp": f.Timestamp = names; break;
                    case "message": f.Message = names; break;
                    case "level": f.Level = names; break;
                    case "host": f.Host = names; break;
                    case "instance": f.Instance = names; break;
                    default:
                        throw OpsErrorRecord.InvalidArgument("UnknownCentralLogField", $"Unknown central-log field '{kv.Key}'.", kv.Key, "Use Timestamp, Message, Level, Host or Instance.");
                }
            }
        }
    }

    /// <summary>The session's context: changed in place (and for runspaces started from now on), optionally saved for new processes.</summary>
    [Cmdlet(VerbsCommon.Set, "KeyServiceOpsContext", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
    [OutputType(typeof(KeyServiceOpsContext))]
    public sealed class SetKeyServiceOpsContextCommand : ContextSettingsCmdlet
    {
        /// <summary>Start from a context object (New-KeyServiceOpsContext) instead of the session's current settings.</summary>
        [Parameter] public KeyServiceOpsContext Context { get; set; }
        [Parameter] public SwitchParameter Reset { get; set; }
        [Parameter] public SwitchParameter PassThru { get; set; }
        /// <summary>Also save these settings (no secret values) as the defaults of new processes (Start-Job, a new pwsh).</summary>
        [Parameter] public SwitchParameter Save { get; set; }

        protected override void EndProcessing()
        {
            var c = Context != null ? Context.Settings.Clone() : Reset ? OpsContext.FromEnvironmentAndSession(m => WriteWarning(m)) : ContextStore.Current.Clone();
            ApplyTo(c);
            var where = $"Kong {c.Kong.AdminUri}, upstream '{c.Kong.Upstream}', audit log {c.Safety.AuditLogPath}";
            if (!ShouldProcess(where, "Set the KeyServiceOps context of this session (and of runspaces started from now on)"))
                return;
            ContextStore.Current = c;
            WriteVerbose($"KeyServiceOps context set: {where}.");
            if (Save)
            {
                var path = ContextSettings.SessionFilePath();
                if (ShouldProcess(path, "Save the session defaults (no secret values; tokens only as the names of their environment variables)"))
                {
                    try { path = ContextSettings.SaveSession(c, path); }
                    catch (OpsException e) { ThrowOps(e); }
                    WriteInformation(new HostInformationMessage { Message = $"Saved the KeyServiceOps session defaults to {path} (no secret values)." }, new[] { "PSHOST" });
                    foreach (var (name, secret, variable) in new[] { ("Kong token", c.Kong.Token, "KongTokenVariable"), ("PagerDuty token", c.PagerDuty.Token, "PagerDutyTokenVariable"), ("central-log API key", c.CentralLogs.ApiKey, "CentralLogApiKeyVariable"), ("central-log password", c.CentralLogs.Password, "CentralLogPasswordVariable") })
                        if (secret != null && secret.Variable == null)
                            WriteWarning($"The {name} was given as a SecureString and is not saved: new processes need it from an environment variable (-{variable}).");
                }
            }
            if (PassThru) WriteObject(new KeyServiceOpsContext(c).ToPSObject());
        }
    }

    /// <summary>
    /// A context for one estate, as an object, for scripts that talk to more than one (-Context on every cmdlet). It
    /// starts from the module's defaults, the KEYSERVICEOPS_* environment and -ConfigPath — never from the session's
    /// settings, so a second estate does not inherit the first one's token. The session is not changed.
    /// </summary>
    [Cmdlet(VerbsCommon.New, "KeyServiceOpsContext")]
    [OutputType(typeof(KeyServiceOpsContext))]
    public sealed class NewKeyServiceOpsContextCommand : ContextSettingsCmdlet
    {
        protected override void EndProcessing()
        {
            OpsContext c;
            try { c = OpsContext.FromEnvironment(); }
            catch (OpsException e) { ThrowOps(e); return; }
            ApplyTo(c);
            WriteObject(new KeyServiceOpsContext(c).ToPSObject());
        }
    }

    [Cmdlet(VerbsCommon.Get, "KeyServiceOpsContext")]
    [OutputType(typeof(KeyServiceOpsContext))]
    public sealed class GetKeyServiceOpsContextCommand : PSCmdlet
    {
        protected override void EndProcessing()
        {
            var c = ContextStore.Current;
            foreach (var w in ContextStore.TakeWarnings()) WriteWarning(w);
            WriteObject(new KeyServiceOpsContext(c).ToPSObject());
        }
    }
}
