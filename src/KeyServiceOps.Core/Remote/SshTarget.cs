using System;
using System.Linq;
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
        /// <summary>
        /// A pooled session is reused only when every security-relevant setting matches: the known_hosts file (path
        /// and content), the key file (path and content), the passphrase, the password and sudo. Any
        /// difference opens (and verifies) a new session, so a changed host key is SshHostKeyChanged whether or
        /// not a session is pooled, and a wrong passphrase fails as it would on a first connection.
        /// </summary>
        public string PoolKey => $"{User}@{Host}:{Port}|{JumpHost}|{SecurityFingerprint()}";

        private static readonly byte[] Salt = Guid.NewGuid().ToByteArray(); // per process: fingerprints never leave it

        private string SecurityFingerprint()
        {
            using (var sha = System.Security.Cryptography.SHA256.Create())
            {
                void Add(string s) { var b = System.Text.Encoding.UTF8.GetBytes((s ?? "\u0000") + "\u0001"); sha.TransformBlock(b, 0, b.Length, null, 0); }
                void AddFile(string path)
                {
                    Add(path);
                    try { var b = path != null && System.IO.File.Exists(path) ? System.IO.File.ReadAllBytes(path) : new byte[0]; sha.TransformBlock(b, 0, b.Length, null, 0); }
                    catch (Exception e) when (e is System.IO.IOException || e is UnauthorizedAccessException) { Add("unreadable"); }
                }
                sha.TransformBlock(Salt, 0, Salt.Length, null, 0);
                AddFile(KnownHostsPath);
                AddFile(KeyPath);
                Add(KeyPassphrase?.Reveal());
                Add(Password?.Reveal());
                // accept-new is not part of it: a session verified strictly serves an accept-new call as well, and
                // one that recorded a key is stored under the known_hosts content that now holds that key.
                Add(UseSudo ? "sudo" : "");
                sha.TransformFinalBlock(new byte[0], 0, 0);
                return Convert.ToBase64String(sha.Hash, 0, 12);
            }
        }

        public static SshTarget For(OpsContext ctx, string address)
        {
            var inv = ctx.FindInventory(address);
            var t = new SshTarget
            {
                Host = address,
                Port = inv?.SshPort ?? ctx.Ssh.Port,
                User = inv?.SshUser ?? ctx.Ssh.User ?? Environment.UserName,
                KeyPath = inv?.SshKeyPath ?? ctx.Ssh.KeyPath,
                KeyPassphrase = ctx.Ssh.KeyPassphrase,
                Password = ctx.Ssh.Password,
                KnownHostsPath = string.IsNullOrEmpty(ctx.Ssh.KnownHostsPath) ? KnownHostsFile.DefaultPath() : ctx.Ssh.KnownHostsPath,
                AcceptNewHostKey = ctx.Ssh.AcceptNewHostKey,
                JumpHost = inv?.JumpHost ?? ctx.Ssh.JumpHost,
                UseSudo = inv?.UseSudo ?? ctx.Ssh.UseSudo,
                Container = ctx.Ssh.ContainerName,
                ConnectTimeout = ctx.Ssh.ConnectTimeout,
                CommandTimeout = ctx.Ssh.CommandTimeout,
            };
            ShellText.ValidContainer(t.Container);
            // Checked before any connection, each with its own id (not a library's exception at connect time).
            if (string.IsNullOrWhiteSpace(t.User) || t.User.Any(ch => char.IsWhiteSpace(ch) || char.IsControl(ch)) || t.User.Length > 64)
                throw new OpsException("InvalidSshUser", OpsErrorCategory.InvalidArgument,
                    $"The SSH user '{(t.User ?? "").Trim()}' is empty or not a user name. Nothing was run.", t.User,
                    recommendedAction: "Give the account you log in with, e.g. -SshUser ops (or set sshUser in the inventory).");
            if (System.IO.Directory.Exists(t.KnownHostsPath))
                throw new OpsException("SshKnownHostsUnreadable", OpsErrorCategory.ReadError,
                    $"The known_hosts path '{t.KnownHostsPath}' is a folder, not a file. Nothing was run.", t.KnownHostsPath,
                    recommendedAction: "Point -KnownHostsPath at a known_hosts file, e.g. ~/.ssh/known_hosts.");
            if (!string.IsNullOrEmpty(t.JumpHost)) t.JumpTarget();
            return t;
        }

        private static readonly Regex JumpForm = new Regex(@"^(?:(?<user>[A-Za-z0-9._-]+)@)?(?<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(?<port>\d{1,5}))?$");

        /// <summary>Parses [user@]host[:port] into a target that shares this one's credentials and known_hosts.</summary>
        public SshTarget JumpTarget()
        {
            var m = JumpForm.Match(JumpHost ?? "");
            OpsException Invalid(string why) => new OpsException("InvalidJumpHost", OpsErrorCategory.InvalidArgument,
                $"Jump host '{JumpHost}' is not usable: {why}.", JumpHost,
                recommendedAction: "Give the bastion as [user@]host[:port], e.g. ops@bastion.example.com:22.");
            if (!m.Success) throw Invalid("it is not in the form [user@]host[:port]");
            var port = m.Groups["port"].Success ? int.Parse(m.Groups["port"].Value, CultureInfo.InvariantCulture) : 22;
            if (port < 1 || port > 65535) throw Invalid($"port {port} is not from 1 to 65535");
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
