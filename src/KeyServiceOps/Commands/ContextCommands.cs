using System;
using System.Linq;
using System.Management.Automation;
using System.Security;
using KeyServiceOps.Core;

namespace KeyServiceOps.Commands
{
    /// <summary>What Get-KeyServiceOpsContext shows: settings, with secrets only as "set" or not.</summary>
    public sealed class KeyServiceOpsContextView
    {
        public Uri KongAdminUri { get; set; }
        public string Upstream { get; set; }
        public string Workspace { get; set; }
        public string KongTokenHeader { get; set; }
        public bool KongTokenSet { get; set; }
        public bool SkipCertificateCheck { get; set; }
        public int HealthPort { get; set; }
        public string HealthPath { get; set; }
        public string ExpectedText { get; set; }
        public double HealthTimeoutSec { get; set; }
        public int ThrottleLimit { get; set; }
        public double MaxRemoveShare { get; set; }
        public string RemovalMethod { get; set; }
        public TextList DeclarativeTags { get; set; }
        public string SshUser { get; set; }
        public int SshPort { get; set; }
        public string SshKeyPath { get; set; }
        public string KnownHostsPath { get; set; }
        public string JumpHost { get; set; }
        public bool UseSudo { get; set; }
        public string ContainerName { get; set; }
        public bool AcceptNewHostKey { get; set; }
        public bool SshKeyPassphraseSet { get; set; }
        public string FaultRulesPath { get; set; }
        public double RestartWaitSec { get; set; }
        public Uri CentralLogUri { get; set; }
        public string CentralLogIndex { get; set; }
        public string CentralLogQuery { get; set; }
        public bool CentralLogCredentialSet { get; set; }
        public Uri PagerDutyUri { get; set; }
        public bool PagerDutyTokenSet { get; set; }
        public string PagerDutyFrom { get; set; }
        public string AuditLogPath { get; set; }
        public string ConfigPath { get; set; }
        public int InventoryCount { get; set; }
        // Every other setting of the config file (ContextSettings.Surfaces): shown, so nothing set is invisible.
        public string CaCertificatePath { get; set; }
        public double HttpTimeoutSec { get; set; }
        public int KongPageSize { get; set; }
        public int MaxResponseMegabytes { get; set; }
        public string MaintenanceTag { get; set; }
        public string KongTokenVariable { get; set; }
        public double SshConnectTimeoutSec { get; set; }
        public double SshCommandTimeoutSec { get; set; }
        public double RestartPollSec { get; set; }
        public string PagerDutyTokenVariable { get; set; }
        public bool PagerDutySkipCertificateCheck { get; set; }
        public string PagerDutyCaCertificatePath { get; set; }
        public int PagerDutyMaxRetries { get; set; }
        public string CentralLogApiKeyVariable { get; set; }
        public string CentralLogUser { get; set; }
        public string CentralLogPasswordVariable { get; set; }
        public bool CentralLogSkipCertificateCheck { get; set; }
        public string CentralLogCaCertificatePath { get; set; }
        public int CentralLogPageSize { get; set; }
        public string CentralLogTieBreaker { get; set; }
        /// <summary>Who owns a dependency fault, by category ("CipherDependency=owner@example.com; …"); empty when none.</summary>
        public string FaultOwners { get; set; }
        /// <summary>Each logical field and the document paths read for it, e.g. "Host=host,host.name; Level=level,log.level".</summary>
        public string CentralLogFieldMap { get; set; }
        public string LockDirectory { get; set; }
        public double LockTimeoutSec { get; set; }

        internal static KeyServiceOpsContextView From(OpsContext c) => new KeyServiceOpsContextView
        {
            KongAdminUri = c.KongAdminUri, Upstream = c.Upstream, Workspace = c.Workspace, KongTokenHeader = c.KongTokenHeader,
            KongTokenSet = c.KongToken != null, SkipCertificateCheck = c.SkipCertificateCheck, HealthPort = c.HealthPort,
            HealthPath = c.HealthPath, ExpectedText = c.ExpectedText, HealthTimeoutSec = c.HealthTimeout.TotalSeconds, ThrottleLimit = c.ThrottleLimit,
            MaxRemoveShare = c.MaxRemoveShare, RemovalMethod = c.RemovalMethod.ToString(), DeclarativeTags = new TextList(c.DeclarativeTags), SshUser = c.SshUser, SshPort = c.SshPort, SshKeyPath = c.SshKeyPath,
            KnownHostsPath = c.KnownHostsPath, JumpHost = c.JumpHost, UseSudo = c.UseSudo, ContainerName = c.ContainerName,
            AcceptNewHostKey = c.AcceptNewHostKey, SshKeyPassphraseSet = c.SshKeyPassphrase != null, FaultRulesPath = c.FaultRulesPath, RestartWaitSec = c.RestartWaitTimeout.TotalSeconds,
            CentralLogUri = c.CentralLogUri, CentralLogIndex = c.CentralLogIndex, CentralLogQuery = c.CentralLogQuery,
            CentralLogCredentialSet = c.CentralLogApiKey != null || c.CentralLogPassword != null,
            PagerDutyUri = c.PagerDutyUri, PagerDutyTokenSet = c.PagerDutyToken != null, PagerDutyFrom = c.PagerDutyFrom,
            AuditLogPath = c.AuditLogPath, ConfigPath = c.ConfigPath, InventoryCount = c.Inventory.Count,
            CaCertificatePath = c.CaCertificatePath, HttpTimeoutSec = c.HttpTimeout.TotalSeconds, KongPageSize = c.KongPageSize,
            MaxResponseMegabytes = (int)(c.MaxResponseBytes / (1024 * 1024)), MaintenanceTag = c.MaintenanceTag, KongTokenVariable = c.KongToken?.Variable,
            SshConnectTimeoutSec = c.SshConnectTimeout.TotalSeconds, SshCommandTimeoutSec = c.SshCommandTimeout.TotalSeconds, RestartPollSec = c.RestartPollInterval.TotalSeconds,
            PagerDutyTokenVariable = c.PagerDutyToken?.Variable, PagerDutySkipCertificateCheck = c.PagerDutySkipCertificateCheck, PagerDutyCaCertificatePath = c.PagerDutyCaCertificatePath,
            PagerDutyMaxRetries = c.PagerDutyMaxRetries, CentralLogApiKeyVariable = c.CentralLogApiKey?.Variable, CentralLogUser = c.CentralLogUser,
            CentralLogPasswordVariable = c.CentralLogPassword?.Variable, CentralLogSkipCertificateCheck = c.CentralLogSkipCertificateCheck,
            CentralLogCaCertificatePath = c.CentralLogCaCertificatePath, CentralLogPageSize = c.CentralLogPageSize, CentralLogTieBreaker = c.CentralLogTieBreaker,
            FaultOwners = string.Join("; ", c.FaultOwners.OrderBy(kv => kv.Key, StringComparer.OrdinalIgnoreCase).Select(kv => $"{kv.Key}={kv.Value}")),
            CentralLogFieldMap = $"Timestamp={string.Join(",", c.CentralLogFields.Timestamp)}; Message={string.Join(",", c.CentralLogFields.Message)}; Level={string.Join(",", c.CentralLogFields.Level)}; Host={string.Join(",", c.CentralLogFields.Host)}; Instance={string.Join(",", c.CentralLogFields.Instance)}",
            LockDirectory = c.LockDirectory, LockTimeoutSec = c.LockTimeout.TotalSeconds,
        };
    }

    [Cmdlet(VerbsCommon.Set, "KeyServiceOpsContext", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
    [OutputType(typeof(KeyServiceOpsContextView))]
    public sealed class SetKeyServiceOpsContextCommand : PSCmdlet
    {
        [Parameter] public string ConfigPath { get; set; }
        [Parameter] public SwitchParameter Reset { get; set; }
        [Parameter] public Uri KongAdminUri { get; set; }
        [Parameter] public string Upstream { get; set; }
        [Parameter] public string Workspace { get; set; }
        [Parameter] public SecureString KongToken { get; set; }
        [Parameter] public string KongTokenVariable { get; set; }
        [Parameter] public string KongTokenHeader { get; set; }
        [Parameter] public SwitchParameter SkipCertificateCheck { get; set; }
        [Parameter] public string CaCertificatePath { get; set; }
        [Parameter, ValidateRange(1, 65535)] public int HealthPort { get; set; }
        [Parameter] public string HealthPath { get; set; }
        [Parameter] public string ExpectedText { get; set; }
        [Parameter, ValidateRange(0.05, 600)] public double HealthTimeoutSec { get; set; }
        [Parameter, ValidateRange(1, 3600)] public double HttpTimeoutSec { get; set; }
        [Parameter, ValidateRange(1, 1000)] public int KongPageSize { get; set; }
        [Parameter, ValidateRange(1, 1024)] public int MaxResponseMegabytes { get; set; }
        [Parameter] public string MaintenanceTag { get; set; }
        [Parameter, ValidateRange(0, 20)] public int PagerDutyMaxRetries { get; set; }
        [Parameter] public string CentralLogUser { get; set; }
        [Parameter] public string CentralLogPasswordVariable { get; set; }
        [Parameter] public string LockDirectory { get; set; }
        [Parameter, ValidateRange(0, 1024)] public int ThrottleLimit { get; set; }
        [Parameter, ValidateRange(0.01, 1.0)] public double MaxRemoveShare { get; set; }
        [Parameter] public string[] MaintenanceTarget { get; set; }
        /// <summary>How the runbook, self-healing and Remove-RingBalancerTarget take a target out: Delete (default), Drain (weight 0) or MarkUnhealthy (Kong's health mark).</summary>
        [Parameter] public RemovalMethod RemovalMethod { get; set; }
        /// <summary>Tags that mark upstreams and targets owned by a declarative tool (decK): changing one warns that the next sync reverts it.</summary>
        [Parameter, AllowEmptyCollection] public string[] DeclarativeTag { get; set; }
        [Parameter] public string SshUser { get; set; }
        [Parameter, ValidateRange(1, 65535)] public int SshPort { get; set; }
        [Parameter] public string SshKeyPath { get; set; }
        [Parameter] public SecureString SshKeyPassphrase { get; set; }
        [Parameter] public PSCredential SshCredential { get; set; }
        [Parameter] public string KnownHostsPath { get; set; }
        [Parameter] public string JumpHost { get; set; }
        [Parameter] public SwitchParameter UseSudo { get; set; }
        [Parameter, ValidatePattern("^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")] public string ContainerName { get; set; }
        [Parameter, ValidateRange(1, 3600)] public double SshCommandTimeoutSec { get; set; }
        [Parameter, ValidateRange(1, 600)] public double SshConnectTimeoutSec { get; set; }
        [Parameter] public SwitchParameter AcceptNewHostKey { get; set; }
        [Parameter] public string FaultRulesPath { get; set; }
        /// <summary>Category -> owner (a PagerDuty user's email), e.g. @{ CipherDependency = 'cipher-owner@example.com' }.</summary>
        [Parameter] public System.Collections.Hashtable FaultOwner { get; set; }
        [Parameter, ValidateRange(1, 3600)] public double RestartWaitSec { get; set; }
        [Parameter, ValidateRange(0.05, 600)] public double RestartPollSec { get; set; }
        [Parameter] public Uri CentralLogUri { get; set; }
        [Parameter] public string CentralLogIndex { get; set; }
        [Parameter] public string CentralLogQuery { get; set; }
        [Parameter] public SecureString CentralLogApiKey { get; set; }
        [Parameter] public string CentralLogApiKeyVariable { get; set; }
        [Parameter, Credential] public PSCredential CentralLogCredential { get; set; }
        [Parameter] public SwitchParameter CentralLogSkipCertificateCheck { get; set; }
        [Parameter] public string CentralLogCaCertificatePath { get; set; }
        [Parameter, ValidateRange(1, 10000)] public int CentralLogPageSize { get; set; }
        /// <summary>Field names in the documents: @{ Timestamp='@timestamp'; Message='message'; Level='log.level'; Host='host.name'; Instance='instance_id' }.</summary>
        [Parameter] public System.Collections.Hashtable CentralLogFieldMap { get; set; }
        /// <summary>A unique keyword field of the log documents to page on where the cluster gives no point in time and refuses a sort on _id; '' clears it.</summary>
        [Parameter, AllowEmptyString] public string CentralLogTieBreaker { get; set; }
        [Parameter] public Uri PagerDutyUri { get; set; }
        [Parameter] public SecureString PagerDutyToken { get; set; }
        [Parameter] public string PagerDutyTokenVariable { get; set; }
        [Parameter] public string PagerDutyFrom { get; set; }
        [Parameter] public SwitchParameter PagerDutySkipCertificateCheck { get; set; }
        [Parameter] public string PagerDutyCaCertificatePath { get; set; }
        [Parameter] public string AuditLogPath { get; set; }
        [Parameter, ValidateRange(0, 3600)] public double LockTimeoutSec { get; set; }
        [Parameter] public SwitchParameter PassThru { get; set; }
        /// <summary>Also save these settings (no secret values) as the defaults of new processes (Start-Job, a new pwsh).</summary>
        [Parameter] public SwitchParameter Save { get; set; }

        protected override void EndProcessing()
        {
            var c = Reset ? OpsContext.FromEnvironmentAndSession(m => WriteWarning(m)) : ContextStore.Current.Clone();
            try
            {
                if (ConfigPath != null) c.LoadConfigFile(GetUnresolvedProviderPathFromPSPath(ConfigPath));
            }
            catch (OpsException e) { ThrowOps(e); }
            var b = MyInvocation.BoundParameters;
            try
            {
                if (KongAdminUri != null) EndpointOverrides.RequireHttp(KongAdminUri, "KongAdminUri");
                if (PagerDutyUri != null) EndpointOverrides.RequireHttp(PagerDutyUri, "PagerDutyUri");
                if (CentralLogUri != null) EndpointOverrides.RequireHttp(CentralLogUri, "CentralLogUri");
            }
            catch (OpsException e) { ThrowOps(e); }
            if (KongAdminUri != null) c.KongAdminUri = KongAdminUri;
            if (Upstream != null) c.Upstream = Upstream;
            if (Workspace != null) c.Workspace = Workspace.Length == 0 ? null : Workspace;
            if (KongToken != null) c.KongToken = Secret.FromSecureString(KongToken);
            if (KongTokenVariable != null) c.KongToken = RequireEnv(KongTokenVariable);
            if (KongTokenHeader != null) c.KongTokenHeader = KongTokenHeader;
            if (b.ContainsKey(nameof(SkipCertificateCheck))) c.SkipCertificateCheck = SkipCertificateCheck;
            if (CaCertificatePath != null) c.CaCertificatePath = GetUnresolvedProviderPathFromPSPath(CaCertificatePath);
            if (b.ContainsKey(nameof(HealthPort))) c.HealthPort = HealthPort;
            if (HealthPath != null) c.HealthPath = HealthPath;
            if (ExpectedText != null) c.ExpectedText = ExpectedText;
            if (b.ContainsKey(nameof(HealthTimeoutSec))) c.HealthTimeout = TimeSpan.FromSeconds(HealthTimeoutSec);
            if (b.ContainsKey(nameof(HttpTimeoutSec))) c.HttpTimeout = TimeSpan.FromSeconds(HttpTimeoutSec);
            if (b.ContainsKey(nameof(KongPageSize))) c.KongPageSize = KongPageSize;
            if (b.ContainsKey(nameof(MaxResponseMegabytes))) c.MaxResponseBytes = MaxResponseMegabytes * 1024L * 1024;
            if (MaintenanceTag != null) c.MaintenanceTag = MaintenanceTag;
            if (b.ContainsKey(nameof(PagerDutyMaxRetries))) c.PagerDutyMaxRetries = PagerDutyMaxRetries;
            if (LockDirectory != null) c.LockDirectory = LockDirectory.Length == 0 ? null : GetUnresolvedProviderPathFromPSPath(LockDirectory);
            if (b.ContainsKey(nameof(ThrottleLimit))) c.ThrottleLimit = ThrottleLimit;
            if (b.ContainsKey(nameof(MaxRemoveShare))) c.MaxRemoveShare = MaxRemoveShare;
            if (MaintenanceTarget != null) c.MaintenanceTargets = MaintenanceTarget.ToList();
            if (b.ContainsKey(nameof(RemovalMethod))) c.RemovalMethod = RemovalMethod;
            if (DeclarativeTag != null) c.DeclarativeTags = DeclarativeTag.Where(t => !string.IsNullOrWhiteSpace(t)).ToList();
            new SshOverrides
            {
                User = SshUser, Port = b.ContainsKey(nameof(SshPort)) ? SshPort : (int?)null, KeyPath = SshKeyPath, KeyPassphrase = SshKeyPassphrase,
                Credential = SshCredential, KnownHostsPath = KnownHostsPath, AcceptNewHostKey = b.ContainsKey(nameof(AcceptNewHostKey)) ? AcceptNewHostKey.IsPresent : (bool?)null,
                JumpHost = JumpHost, UseSudo = b.ContainsKey(nameof(UseSudo)) ? UseSudo.IsPresent : (bool?)null, Container = ContainerName,
                ConnectTimeoutSec = b.ContainsKey(nameof(SshConnectTimeoutSec)) ? SshConnectTimeoutSec : (double?)null,
                CommandTimeoutSec = b.ContainsKey(nameof(SshCommandTimeoutSec)) ? SshCommandTimeoutSec : (double?)null,
            }.ApplyTo(c, GetUnresolvedProviderPathFromPSPath);
            if (FaultRulesPath != null) c.FaultRulesPath = FaultRulesPath.Length == 0 ? null : GetUnresolvedProviderPathFromPSPath(FaultRulesPath);
            if (FaultOwner != null) foreach (System.Collections.DictionaryEntry kv in FaultOwner) c.FaultOwners[kv.Key.ToString()] = kv.Value?.ToString();
            if (b.ContainsKey(nameof(RestartWaitSec))) c.RestartWaitTimeout = TimeSpan.FromSeconds(RestartWaitSec);
            if (b.ContainsKey(nameof(RestartPollSec))) c.RestartPollInterval = TimeSpan.FromSeconds(RestartPollSec);
            if (CentralLogUri != null) c.CentralLogUri = CentralLogUri;
            if (CentralLogIndex != null) c.CentralLogIndex = CentralLogIndex;
            if (CentralLogQuery != null) c.CentralLogQuery = CentralLogQuery;
            if (CentralLogApiKey != null) c.CentralLogApiKey = Secret.FromSecureString(CentralLogApiKey);
            if (CentralLogApiKeyVariable != null) c.CentralLogApiKey = RequireEnv(CentralLogApiKeyVariable);
            if (CentralLogUser != null) c.CentralLogUser = CentralLogUser;
            if (CentralLogPasswordVariable != null) { c.CentralLogPassword = RequireEnv(CentralLogPasswordVariable); c.CentralLogApiKey = null; }
            if (CentralLogCredential != null) { c.CentralLogUser = CentralLogCredential.UserName; c.CentralLogPassword = Secret.FromSecureString(CentralLogCredential.Password); c.CentralLogApiKey = null; }
            if (b.ContainsKey(nameof(CentralLogSkipCertificateCheck))) c.CentralLogSkipCertificateCheck = CentralLogSkipCertificateCheck;
            if (CentralLogCaCertificatePath != null) c.CentralLogCaCertificatePath = GetUnresolvedProviderPathFromPSPath(CentralLogCaCertificatePath);
            if (b.ContainsKey(nameof(CentralLogPageSize))) c.CentralLogPageSize = CentralLogPageSize;
            if (CentralLogTieBreaker != null) c.CentralLogTieBreaker = CentralLogTieBreaker.Trim().Length == 0 ? null : CentralLogTieBreaker.Trim();
            if (CentralLogFieldMap != null)
            {
                foreach (System.Collections.DictionaryEntry kv in CentralLogFieldMap)
                {
                    var names = (kv.Value is object[] arr ? arr.Select(x => x.ToString()) : new[] { kv.Value?.ToString() }).Where(x => !string.IsNullOrEmpty(x)).ToList();
                    switch (kv.Key.ToString().ToLowerInvariant())
                    {
                        case var _ when names.Count == 0:
                            ThrowOps(new OpsException("InvalidCentralLogField", OpsErrorCategory.InvalidArgument, $"The central-log field '{kv.Key}' is given no name. Nothing was changed.", kv.Key,
                                recommendedAction: "Name the document field that holds it, e.g. -CentralLogFieldMap @{ Timestamp = '@timestamp' }."));
                            break;
                        case "timestamp": c.CentralLogFields.Timestamp = names; break;
                        case "message": c.CentralLogFields.Message = names; break;
                        case "level": c.CentralLogFields.Level = names; break;
                        case "host": c.CentralLogFields.Host = names; break;
                        case "instance": c.CentralLogFields.Instance = names; break;
                        default:
                            ThrowArgument("UnknownCentralLogField", $"Unknown central-log field '{kv.Key}'.", kv.Key, "Use Timestamp, Message, Level, Host or Instance.");
                            break;
                    }
                }
            }
            if (PagerDutyUri != null) c.PagerDutyUri = PagerDutyUri;
            if (MyInvocation.BoundParameters.ContainsKey(nameof(PagerDutySkipCertificateCheck))) c.PagerDutySkipCertificateCheck = PagerDutySkipCertificateCheck;
            if (PagerDutyCaCertificatePath != null) c.PagerDutyCaCertificatePath = GetUnresolvedProviderPathFromPSPath(PagerDutyCaCertificatePath); // resolved like the other two
            if (PagerDutyToken != null) c.PagerDutyToken = Secret.FromSecureString(PagerDutyToken);
            if (PagerDutyTokenVariable != null) c.PagerDutyToken = RequireEnv(PagerDutyTokenVariable);
            if (PagerDutyFrom != null) c.PagerDutyFrom = PagerDutyFrom;
            if (AuditLogPath != null) c.AuditLogPath = GetUnresolvedProviderPathFromPSPath(AuditLogPath);
            if (b.ContainsKey(nameof(LockTimeoutSec))) c.LockTimeout = TimeSpan.FromSeconds(LockTimeoutSec);
            if (!ShouldProcess($"Kong {c.KongAdminUri}, upstream '{c.Upstream}', audit log {c.AuditLogPath}", "Set the KeyServiceOps context of this session (and of runspaces started from now on)"))
                return;
            ContextStore.Current = c;
            WriteVerbose($"KeyServiceOps context set: Kong {c.KongAdminUri}, upstream '{c.Upstream}', audit log {c.AuditLogPath}.");
            if (Save)
            {
                var path = ContextSettings.SessionFilePath();
                if (ShouldProcess(path, "Save the session defaults (no secret values; tokens only as the names of their environment variables)"))
                {
                    try { path = ContextSettings.SaveSession(c, path); }
                    catch (OpsException e) { ThrowOps(e); }
                    WriteInformation(new HostInformationMessage { Message = $"Saved the KeyServiceOps session defaults to {path} (no secret values)." }, new[] { "PSHOST" });
                    foreach (var (name, secret) in new[] { ("Kong token", c.KongToken), ("PagerDuty token", c.PagerDutyToken), ("central-log API key", c.CentralLogApiKey), ("central-log password", c.CentralLogPassword) })
                        if (secret != null && secret.Variable == null)
                            WriteWarning($"The {name} was given as a SecureString and is not saved: new processes need it from an environment variable (-{(name.StartsWith("Kong") ? "KongTokenVariable" : name.StartsWith("PagerDuty") ? "PagerDutyTokenVariable" : "CentralLogApiKeyVariable")}).");
                }
            }
            if (PassThru) WriteObject(KeyServiceOpsContextView.From(c));
        }


        private void ThrowOps(OpsException e) => ThrowTerminatingError(OpsErrorRecord.From(e, Redactor.None));

        private void ThrowArgument(string errorId, string message, object target, string action)
            => ThrowOps(OpsErrorRecord.InvalidArgument(errorId, message, target, action));

        private Secret RequireEnv(string name)
        {
            var s = Secret.FromEnvironment(name);
            if (s == null)
                ThrowArgument("TokenVariableEmpty", $"The environment variable '{name}' is not set or empty.", name, $"Set it first: $env:{name} = '...'");
            return s;
        }
    }

    [Cmdlet(VerbsCommon.Get, "KeyServiceOpsContext")]
    [OutputType(typeof(KeyServiceOpsContextView))]
    public sealed class GetKeyServiceOpsContextCommand : PSCmdlet
    {
        protected override void EndProcessing() => WriteObject(KeyServiceOpsContextView.From(ContextStore.Current));
    }
}
