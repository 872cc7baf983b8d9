using System;
using System.Collections.Concurrent;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using System.Security;
using KeyServiceOps.Core;
using KeyServiceOps.Core.Remote;

namespace KeyServiceOps.Commands
{
    /// <summary>
    /// The SSH session pool of each runspace: sessions are reused across cmdlets of one PowerShell session, and
    /// closed when the runspace closes or the module is removed.
    /// </summary>
    internal static class SshPoolStore
    {
        private static readonly ConcurrentDictionary<Guid, SshSessionPool> Pools = new ConcurrentDictionary<Guid, SshSessionPool>();

        public static SshSessionPool Current
        {
            get
            {
                var rs = Runspace.DefaultRunspace;
                var key = rs?.InstanceId ?? Guid.Empty;
                return Pools.GetOrAdd(key, _ =>
                {
                    if (rs != null)
                        rs.StateChanged += (s, e) =>
                        {
                            if (e.RunspaceStateInfo.State == RunspaceState.Closed || e.RunspaceStateInfo.State == RunspaceState.Broken) Close(key);
                        };
                    return new SshSessionPool();
                });
            }
        }

        public static void Close(Guid key)
        {
            if (Pools.TryRemove(key, out var p)) p.Dispose();
        }

        /// <summary>Closes this runspace's sessions only: other runspaces (ForEach-Object -Parallel, a host's pool) keep theirs.</summary>
        public static void CloseCurrent() => Close(Runspace.DefaultRunspace?.InstanceId ?? Guid.Empty);
    }

    /// <summary>
    /// Closes the SSH sessions when the module is removed (Remove-Module KeyServiceOps) — those of the runspace
    /// that removed it. (Closing every runspace's pool cut other runspaces' commands mid-flight: they then hung
    /// until their timeout. Found by the tests running in parallel.)
    /// </summary>
    public sealed class ModuleCleanup : IModuleAssemblyCleanup
    {
        public void OnRemove(PSModuleInfo psModuleInfo) => SshPoolStore.CloseCurrent();
    }

    /// <summary>SSH settings given on a command line, applied to a context (by the SSH cmdlets per call, and by Set-KeyServiceOpsContext).</summary>
    internal sealed class SshOverrides
    {
        public string User; public int? Port; public string KeyPath; public SecureString KeyPassphrase; public PSCredential Credential;
        public string KnownHostsPath; public bool? AcceptNewHostKey; public string JumpHost; public bool? UseSudo; public string Container;
        public double? ConnectTimeoutSec; public double? CommandTimeoutSec;

        public void ApplyTo(OpsContext c, Func<string, string> resolvePath)
        {
            if (User != null) c.SshUser = User;
            if (Port != null) c.SshPort = Port.Value;
            if (KeyPath != null) c.SshKeyPath = resolvePath(KeyPath);
            if (KeyPassphrase != null) c.SshKeyPassphrase = Secret.FromSecureString(KeyPassphrase);
            if (Credential != null) { c.SshUser = Credential.UserName; c.SshPasswordSecret = Secret.FromSecureString(Credential.Password); }
            if (KnownHostsPath != null) c.KnownHostsPath = resolvePath(KnownHostsPath);
            if (AcceptNewHostKey != null) c.AcceptNewHostKey = AcceptNewHostKey.Value;
            if (JumpHost != null) c.JumpHost = JumpHost.Length == 0 ? null : JumpHost;
            if (UseSudo != null) c.UseSudo = UseSudo.Value;
            if (Container != null) c.ContainerName = Container;
            if (ConnectTimeoutSec != null) c.SshConnectTimeout = TimeSpan.FromSeconds(ConnectTimeoutSec.Value);
            if (CommandTimeoutSec != null) c.SshCommandTimeout = TimeSpan.FromSeconds(CommandTimeoutSec.Value);
        }
    }

    /// <summary>Parameters shared by everything that runs commands on an instance's VM over SSH.</summary>
    public abstract class SshCmdlet : ContextCmdlet
    {
        [Parameter] public string SshUser { get; set; }
        [Parameter, ValidateRange(1, 65535)] public int SshPort { get; set; }
        [Parameter] public string SshKeyPath { get; set; }
        [Parameter] public SecureString SshKeyPassphrase { get; set; }
        /// <summary>User and password (password and keyboard-interactive authentication).</summary>
        [Parameter, Credential] public PSCredential Credential { get; set; }
        [Parameter] public string KnownHostsPath { get; set; }
        /// <summary>Record the host key of a VM not yet in known_hosts (a changed key is still refused).</summary>
        [Parameter] public SwitchParameter AcceptNewHostKey { get; set; }
        [Parameter] public string JumpHost { get; set; }
        /// <summary>Run docker as `sudo -n docker`.</summary>
        [Parameter] public SwitchParameter UseSudo { get; set; }
        [Parameter, ValidatePattern("^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")] public string Container { get; set; }
        [Parameter, ValidateRange(1, 600)] public double ConnectTimeoutSec { get; set; }
        [Parameter, ValidateRange(1, 3600)] public double CommandTimeoutSec { get; set; }

        private DockerClient _docker;

        protected override void ApplyOverrides(OpsContext c)
        {
            var b = MyInvocation.BoundParameters;
            new SshOverrides
            {
                User = SshUser, Port = b.ContainsKey(nameof(SshPort)) ? SshPort : (int?)null, KeyPath = SshKeyPath, KeyPassphrase = SshKeyPassphrase,
                Credential = Credential, KnownHostsPath = KnownHostsPath, AcceptNewHostKey = b.ContainsKey(nameof(AcceptNewHostKey)) ? AcceptNewHostKey.IsPresent : (bool?)null,
                JumpHost = JumpHost, UseSudo = b.ContainsKey(nameof(UseSudo)) ? UseSudo.IsPresent : (bool?)null, Container = Container,
                ConnectTimeoutSec = b.ContainsKey(nameof(ConnectTimeoutSec)) ? ConnectTimeoutSec : (double?)null,
                CommandTimeoutSec = b.ContainsKey(nameof(CommandTimeoutSec)) ? CommandTimeoutSec : (double?)null,
            }.ApplyTo(c, GetUnresolvedProviderPathFromPSPath);
        }

        protected SshSessionPool Pool => SshPoolStore.Current;

        protected DockerClient Docker => _docker ?? (_docker = new DockerClient(new RemoteShell(Pool, Log), Log));

        /// <summary>The SSH target for an address (inventory applied); bad input is an error for that item, before any connection.</summary>
        protected SshTarget SshTargetFor(string address)
        {
            if (!Endpoint.TryParse(address, Context.HealthPort, out var ep, out var why))
                throw Endpoint.InvalidAddress(address, why);
            return SshTarget.For(Context, ep.Address);
        }
    }
}
