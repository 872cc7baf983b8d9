using System;
using System.IO;
using KeyServiceOps.Core.Health;
using KeyServiceOps.Core.RingBalancer;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using KeyServiceOps.Core.Audit;

namespace KeyServiceOps.Core.Tests
{
    internal sealed class ListLog : IOpsLog
    {
        public readonly System.Collections.Concurrent.ConcurrentQueue<string> Lines = new System.Collections.Concurrent.ConcurrentQueue<string>();
        public void Verbose(string message) => Lines.Enqueue("V " + message);
        public void Debug(string message) => Lines.Enqueue("D " + message);
        public void Warning(string message) => Lines.Enqueue("W " + message);
        public string All => string.Join("\n", Lines);
    }

    internal static class TestCtx
    {
        public static OpsContext For(Lab.Estate.Lab lab, string auditPath = null)
            => new OpsContext
            { Kong = { AdminUri = lab.KongUri, Upstream = lab.Upstream, Workspace = lab.Options.Workspace, Token = Secret.FromPlainText(lab.Options.RbacToken) }, Health = { Timeout = TimeSpan.FromSeconds(2) }, Safety = { AuditLogPath = auditPath ?? Path.Combine(Path.GetTempPath(), $"ksops-test-{Guid.NewGuid():N}.jsonl") } };

        /// <summary>A known_hosts file that trusts the lab's sshd on every instance address.</summary>
        public static string KnownHostsFor(Lab.Estate.Lab lab) => lab.WriteKnownHosts();

        public static OpsContext ForSsh(Lab.Estate.Lab lab, string knownHosts)
        {
            var c = For(lab);
            c.Ssh.User = lab.Ssh.User; c.Ssh.Port = lab.Ssh.Port; c.Ssh.KeyPath = lab.Ssh.KeyPath; c.Ssh.KnownHostsPath = knownHosts;
            c.Ssh.ConnectTimeout = TimeSpan.FromSeconds(10); c.Ssh.CommandTimeout = TimeSpan.FromSeconds(20);
            return c;
        }

        public static RingBalancerService Service(OpsContext ctx, IOpsLog log = null)
            => new RingBalancerService(ctx, new KongClient(ctx.ForKong(), log), HealthChecker.FromContext(ctx, log), new AuditLog(ctx.Safety.AuditLogPath), log);
    }
}
