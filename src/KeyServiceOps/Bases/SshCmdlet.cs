using System;
using System.Collections.Concurrent;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using System.Security;
using KeyServiceOps.Core;
using KeyServiceOps.Core.Remote;

namespace KeyServiceOps.Commands
{
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
