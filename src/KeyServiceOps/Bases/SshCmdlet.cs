using System;
using System.Collections.Concurrent;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using System.Security;
using KeyServiceOps.Core;
using KeyServiceOps.Core.Remote;

namespace KeyServiceOps.Commands
{
    /// <summary>Everything that runs commands on an instance's VM over SSH: the SSH parameter group.</summary>
    [ParameterGroups(typeof(SshParameters))]
    public abstract class SshCmdlet : ContextCmdlet
    {
        private DockerClient _docker;

        protected override void ApplyOverrides(OpsContext c)
        {
            var b = MyInvocation.BoundParameters;
            var s = Group<SshParameters>();
            new SshOverrides
            {
                User = s.SshUser, Port = b.ContainsKey(nameof(s.SshPort)) ? s.SshPort : (int?)null, KeyPath = s.SshKeyPath, KeyPassphrase = s.SshKeyPassphrase,
                Credential = s.Credential, KnownHostsPath = s.KnownHostsPath, AcceptNewHostKey = b.ContainsKey(nameof(s.AcceptNewHostKey)) ? s.AcceptNewHostKey.IsPresent : (bool?)null,
                JumpHost = s.JumpHost, UseSudo = b.ContainsKey(nameof(s.UseSudo)) ? s.UseSudo.IsPresent : (bool?)null, Container = s.Container,
                ConnectTimeoutSec = b.ContainsKey(nameof(s.ConnectTimeoutSec)) ? s.ConnectTimeoutSec : (double?)null,
                CommandTimeoutSec = b.ContainsKey(nameof(s.CommandTimeoutSec)) ? s.CommandTimeoutSec : (double?)null,
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
