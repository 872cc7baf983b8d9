using System.Collections.Generic;
using System.Management.Automation;
using System.Security;
using KeyServiceOps.Commands;

namespace KeyServiceOps.Bases
{
    /// <summary>
    /// Cmdlets that work on one instance's VM over SSH (its log, its container, a restart): how to reach the VM may be
    /// given per call — a one-off look with another user, key or jump host is what operators reach for.
    /// </summary>
    public abstract class SshCmdlet : ContextCmdlet
    {
        [Parameter] public string SshUser { get; set; }
        [Parameter] public int SshPort { get; set; }
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
        [Parameter] public string Container { get; set; }
        [Parameter] public double ConnectTimeoutSec { get; set; }
        [Parameter] public double CommandTimeoutSec { get; set; }

        protected override IReadOnlyDictionary<string, string> Overrides => SettingParameters.Ssh;
    }
}
