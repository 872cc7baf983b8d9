using System;
using System.Collections.Concurrent;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using System.Security;
using KeyServiceOps.Core;
using KeyServiceOps.Core.Remote;

namespace KeyServiceOps.Commands
{
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
}
