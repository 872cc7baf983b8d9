using System;
using System.IO;
using System.Linq;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using Xunit;
using KeyServiceOps.TestHost;

namespace KeyServiceOps.Module.Tests
{
    internal static class Shell
    {
        /// <summary>A hosted runspace with the staged module imported and the context pointed at the lab.</summary>
        public static HostedShell For(Lab.Estate.Lab lab, out string auditPath, string extra = "")
        {
            auditPath = Path.Combine(Path.GetTempPath(), $"ksops-mod-{Guid.NewGuid():N}.jsonl");
            var sh = new HostedShell();
            var ws = lab.Options.Workspace == null ? "" : $" -Workspace '{lab.Options.Workspace}'";
            var r = sh.Run($"Set-KeyServiceOpsContext -KongAdminUri '{lab.KongUri}' -Upstream '{lab.Upstream}'{ws} -HealthTimeoutSec 1.5 -AuditLogPath '{auditPath}' {extra}");
            Assert.Empty(r.Errors);
            return sh;
        }

        public static string Ids(ShellResult r) => string.Join(", ", r.Errors.Select(e => e.FullyQualifiedErrorId));
    }
}

namespace KeyServiceOps.Module.Tests
{
    internal static class PsExt
    {
        /// <summary>A property of an output object, read by name (the module's types live in its own load context).</summary>
        public static object P(this System.Management.Automation.PSObject o, string name) => o.Properties[name]?.Value;
        public static string S(this System.Management.Automation.PSObject o, string name) => o.Properties[name]?.Value?.ToString();
        public static string TypeName(this System.Management.Automation.PSObject o) => o.BaseObject.GetType().FullName;
    }
}
