using System;
using System.Globalization;
using System.Text.RegularExpressions;

namespace KeyServiceOps.Core.Remote
{
    /// <summary>Where and how to reach one instance's VM over SSH: the session context, the inventory entry, then per-call overrides.</summary>
    public sealed class SshTarget
    {
        public string Host { get; set; }
        public int Port { get; set; } = 22;
        public string User { get; set; }
        public string KeyPath { get; set; }
        public Secret KeyPassphrase { get; set; }
        public Secret Password { get; set; }
        public string KnownHostsPath { get; set; }
        public bool AcceptNewHostKey { get; set; }
        /// <summary>Bastion in the form [user@]host[:port]; null to connect directly.</summary>
        public string JumpHost { get; set; }
        public bool UseSudo { get; set; }
        public string Container { get; set; } = "api_key_service";
        public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);
        public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromSeconds(60);

        public string HostToken => KnownHostsFile.HostToken(Host, Port);
        public string Display => $"{User}@{HostToken}" + (string.IsNullOrEmpty(JumpHost) ? "" : $" via {JumpHost}");
        /// <summary>The pool key: one session per (host, port, user, jump host).</summary>
        public string PoolKey => $"{User}@{Host}:{Port}|{JumpHost}";

        public static SshTarget For(OpsContext ctx, string address)
        {
            var inv = ctx.FindInventory(address);
            var t = new SshTarget
            {
                Host = address,
                Port = inv?.SshPort ?? ctx.SshPort,
                User = inv?.SshUser ?? ctx.SshUser ?? Environment.UserName,
                KeyPath = inv?.SshKeyPath ?? ctx.SshKeyPath,
                KeyPassphrase = ctx.SshKeyPassphrase,
                Password = ctx.SshPasswordSecret,
                KnownHostsPath = string.IsNullOrEmpty(ctx.KnownHostsPath) ? KnownHostsFile.DefaultPath() : ctx.KnownHostsPath,
                AcceptNewHostKey = ctx.AcceptNewHostKey,
                JumpHost = inv?.JumpHost ?? ctx.JumpHost,
                UseSudo = inv?.UseSudo ?? ctx.UseSudo,
                Container = ctx.ContainerName,
                ConnectTimeout = ctx.SshConnectTimeout,
                CommandTimeout = ctx.SshCommandTimeout,
            };
            ShellText.ValidContainer(t.Container);
            return t;
        }

        private static readonly Regex JumpForm = new Regex(@"^(?:(?<user>[A-Za-z0-9._-]+)@)?(?<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(?<port>\d{1,5}))?$");

        /// <summary>Parses [user@]host[:port] into a target that shares this one's credentials and known_hosts.</summary>
        public SshTarget JumpTarget()
        {
            var m = JumpForm.Match(JumpHost ?? "");
            if (!m.Success)
                throw new OpsException("InvalidJumpHost", OpsErrorCategory.InvalidArgument,
                    $"Jump host '{JumpHost}' is not in the form [user@]host[:port].", JumpHost,
                    recommendedAction: "Give the bastion as e.g. ops@bastion.example.com:22.");
            var port = m.Groups["port"].Success ? int.Parse(m.Groups["port"].Value, CultureInfo.InvariantCulture) : 22;
            return new SshTarget
            {
                Host = m.Groups["host"].Value.Trim('[', ']'), Port = port,
                User = m.Groups["user"].Success ? m.Groups["user"].Value : User,
                KeyPath = KeyPath, KeyPassphrase = KeyPassphrase, Password = Password,
                KnownHostsPath = KnownHostsPath, AcceptNewHostKey = AcceptNewHostKey,
                ConnectTimeout = ConnectTimeout, CommandTimeout = CommandTimeout,
            };
        }

        public override string ToString() => Display;
    }
}
