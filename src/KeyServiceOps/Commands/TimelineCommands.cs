using System;
using System.IO;
using System.Management.Automation;
using KeyServiceOps.Core;
using KeyServiceOps.Core.Diagnosis;
using KeyServiceOps.Core.Runbook;
using KeyServiceOps.Bases;

namespace KeyServiceOps.Commands
{
    /// <summary>Shared by the timeline cmdlets: which incident or instance, and the window.</summary>
    public abstract class TimelineCmdlet : ContextCmdlet
    {
        [Parameter(Mandatory = true, Position = 0, ParameterSetName = "Incident", ValueFromPipelineByPropertyName = true)]
        [ArgumentCompleter(typeof(IncidentCompleter))]
        public string IncidentId { get; set; }

        [Parameter(Mandatory = true, ParameterSetName = "Address")]
        [Alias("IPAddress", "ComputerName", "Host")]
        public string Address { get; set; }

        /// <summary>A [datetime], a [timespan] back from now, an RFC 3339 time. Default: 15 min before the incident, or a day.</summary>
        [Parameter] public object Since { get; set; }
        [Parameter] public object Until { get; set; }

        protected IncidentTimeline Build()
        {
            string address = null;
            if (Address != null)
            {
                if (!Endpoint.TryParse(Address, Settings.Health.Port, out var ep, out var why)) throw Endpoint.InvalidAddress(Address, why);
                address = ep.Address;
            }
            var now = DateTimeOffset.UtcNow;
            DateTimeOffset? When(object v) => v == null ? (DateTimeOffset?)null : KeyServiceOps.Core.Remote.ShellText.ResolveTime(KeyServiceOps.Core.Remote.ShellText.ValidTime(v is PSObject p ? p.BaseObject : v, "Since"), now);
            var builder = new IncidentTimelineBuilder(Settings, PagerDutyIfConfigured, Audit, Docker, Setup(() => FaultRuleSet.Load(Settings.Healing.FaultRulesPath)), RingBalancer);
            var tl = Await(builder.BuildAsync(string.IsNullOrEmpty(IncidentId) ? null : IncidentId, address, When(Since), When(Until), Cancellation));
            foreach (var m in tl.Summary.Missing) WriteWarning($"Not in the timeline: {m}.");
            return tl;
        }
    }

    /// <summary>
    /// The incident's story from every source the module reads (PagerDuty's log entries and notes, the audit log, the
    /// VM's restart journal, docker inspect, the flagged log lines), one object per event in time order, then the
    /// figures a postmortem asks for (issue #31).
    /// </summary>
    [Cmdlet(VerbsCommon.Get, "KeyServiceIncidentTimeline", DefaultParameterSetName = "Incident")]
    [OutputType(typeof(TimelineEvent), typeof(IncidentTimelineSummary))]
    public sealed class GetKeyServiceIncidentTimelineCommand : TimelineCmdlet
    {
        protected override void ProcessRecord() => PerItem(() =>
        {
            var tl = Build();
            WriteObject(tl.Events, true);
            WriteObject(tl.Summary);
        });
    }

    /// <summary>The timeline as one self-contained HTML page (lanes per source on a shared time axis, the figures on top), or Markdown.</summary>
    [Cmdlet(VerbsData.Export, "KeyServiceIncidentReport", DefaultParameterSetName = "Incident", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
    [OutputType(typeof(FileInfo))]
    public sealed class ExportKeyServiceIncidentReportCommand : TimelineCmdlet
    {
        [Parameter(Mandatory = true)] public string Path { get; set; }
        /// <summary>Markdown (for a postmortem document) instead of HTML.</summary>
        [Parameter] public SwitchParameter AsMarkdown { get; set; }
        [Parameter] public SwitchParameter Force { get; set; }

        protected override void ProcessRecord() => PerItem(() =>
        {
            var full = GetUnresolvedProviderPathFromPSPath(Path);
            if (Directory.Exists(full))
                throw new OpsException("ReportPathIsFolder", OpsErrorCategory.InvalidArgument, $"'{full}' is a folder; nothing was written.", full, recommendedAction: "Give the report's file name, e.g. -Path ./incident.html.");
            if (File.Exists(full) && !Force)
                throw new OpsException("ReportExists", OpsErrorCategory.ResourceExists, $"'{full}' exists; nothing was written.", full, recommendedAction: "Give another -Path, or -Force to replace it.");
            var tl = Build();
            if (!ShouldProcess(full, "Write the incident report")) return;
            var text = AsMarkdown ? IncidentReport.Markdown(tl) : IncidentReport.Html(tl);
            // Written by rename, never through a link someone planted at that path; never into a folder others control.
            try { SafeFile.WriteAllText(full, text); }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
            {
                throw new OpsException("ReportUnwritable", e is UnsafeFileException ? OpsErrorCategory.SecurityError : OpsErrorCategory.PermissionDenied,
                    $"Could not write the report to '{full}': {e.Message}. Nothing was written.", full,
                    recommendedAction: "Write it into a folder of your own (a folder every user can write to needs the sticky bit, as /tmp has).", inner: e);
            }
            WriteObject(new FileInfo(full));
        });
    }
}
