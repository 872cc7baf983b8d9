using System;
using System.Management.Automation;
using KeyServiceOps.Core.Audit;
using KeyServiceOps.Bases;

namespace KeyServiceOps.Commands
{
    [Cmdlet(VerbsCommon.Get, "KeyServiceAuditLog")]
    [OutputType(typeof(AuditEntry))]
    public sealed class GetKeyServiceAuditLogCommand : ContextCmdlet
    {
        [Parameter] public DateTime Since { get; set; }
        [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)] [SupportsWildcards] public string Target { get; set; }
        [Parameter] [SupportsWildcards] [ArgumentCompleter(typeof(AuditActionCompleter))] public string Action { get; set; }
        [Parameter] public string Path { get; set; }
        [Parameter, ValidateRange(1, int.MaxValue)] public int Last { get; set; }

        protected override void ProcessRecord() => PerItem(() =>
        {
            var log = Path != null ? new AuditLog(GetUnresolvedProviderPathFromPSPath(Path)) : Audit;
            DateTimeOffset? since = MyInvocation.BoundParameters.ContainsKey(nameof(Since)) ? new DateTimeOffset(Since.ToUniversalTime()) : (DateTimeOffset?)null;
            var entries = log.Read(since, Target, Action);
            if (MyInvocation.BoundParameters.ContainsKey(nameof(Last)))
            {
                var q = new System.Collections.Generic.Queue<AuditEntry>();
                foreach (var e in entries) { q.Enqueue(e); if (q.Count > Last) q.Dequeue(); }
                entries = q;
            }
            foreach (var e in entries) WriteObject(e);
        });
    }
}
