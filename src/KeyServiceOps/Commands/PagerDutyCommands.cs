using System;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using System.Security;
using KeyServiceOps.Core;
using KeyServiceOps.Core.PagerDuty;

namespace KeyServiceOps.Commands
{

    public enum IncidentStatusFilter { Triggered, Acknowledged, Resolved, Open }

    [Cmdlet(VerbsCommon.Get, "PagerDutyIncident", DefaultParameterSetName = "List")]
    [OutputType(typeof(PagerDutyIncident))]
    public sealed class GetPagerDutyIncidentCommand : PagerDutyCmdlet
    {
        [Parameter(Mandatory = true, Position = 0, ParameterSetName = "Id", ValueFromPipelineByPropertyName = true)]
        [Alias("Id")]
        [ArgumentCompleter(typeof(IncidentCompleter))]
        public string[] IncidentId { get; set; }

        [Parameter(Mandatory = true, ParameterSetName = "Address", ValueFromPipelineByPropertyName = true)]
        [Alias("IPAddress", "ComputerName", "Host")]
        public string[] Address { get; set; }

        [Parameter(ParameterSetName = "List")] public IncidentStatusFilter[] Status { get; set; }
        [Parameter(ParameterSetName = "List")] public string[] ServiceId { get; set; }

        protected override void ProcessRecord() => PerItem(() =>
        {
            switch (ParameterSetName)
            {
                case "Id":
                    foreach (var id in IncidentId) PerItem(() => WriteObject(Await(PagerDuty.GetIncidentAsync(id, Cancellation))));
                    break;
                case "Address":
                    foreach (var a in Address)
                        PerItem(() =>
                        {
                            var hits = Await(PagerDuty.FindForAddressAsync(a, Cancellation));
                            if (hits.Count == 0) WriteVerbose($"No open incident names {a}.");
                            WriteObject(hits, true);
                        });
                    break;
                default:
                    var statuses = (Status ?? new[] { IncidentStatusFilter.Open })
                        .SelectMany(s => s == IncidentStatusFilter.Open ? new[] { "triggered", "acknowledged" } : new[] { s.ToString().ToLowerInvariant() }).Distinct();
                    WriteObject(Await(PagerDuty.ListIncidentsAsync(statuses, ServiceId, Cancellation)), true);
                    break;
            }
        });
    }

    /// <summary>The notes on an incident, oldest first: what responders and self-healing wrote (#27 row 10).</summary>
    [Cmdlet(VerbsCommon.Get, "PagerDutyIncidentNote")]
    [OutputType(typeof(PagerDutyNote))]
    public sealed class GetPagerDutyIncidentNoteCommand : PagerDutyCmdlet
    {
        [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
        [Alias("Id")]
        [ArgumentCompleter(typeof(IncidentCompleter))]
        public string[] IncidentId { get; set; }

        /// <summary>Only the notes this module wrote (they start with [KeyServiceOps]).</summary>
        [Parameter] public SwitchParameter ModuleOnly { get; set; }

        protected override void ProcessRecord()
        {
            foreach (var id in IncidentId ?? new string[0]) PerItem(() =>
            {
                var notes = Await(PagerDuty.GetNotesAsync(id, Cancellation));
                WriteObject(notes.Where(n => !ModuleOnly || (n.Content ?? "").StartsWith(KeyServiceOps.Core.Runbook.RunbookRunner.NotePrefix, StringComparison.Ordinal)).OrderBy(n => n.CreatedAt), true);
            });
        }
    }

    [Cmdlet(VerbsCommon.Add, "PagerDutyIncidentNote", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low, DefaultParameterSetName = "Note")]
    [OutputType(typeof(PagerDutyNote))]
    public sealed class AddPagerDutyIncidentNoteCommand : PagerDutyCmdlet
    {
        [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true, ParameterSetName = "Note")]
        [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true, ParameterSetName = "InputObject")]
        [ArgumentCompleter(typeof(IncidentCompleter))]
        public string IncidentId { get; set; }

        /// <summary>Write the notes an earlier runbook could not (the pending-notes outbox beside the audit log).</summary>
        [Parameter(Mandatory = true, ParameterSetName = "Retry")] public SwitchParameter RetryPendingNotes { get; set; }

        [Parameter(Position = 1, ParameterSetName = "Note", Mandatory = true)]
        public string Note { get; set; }

        /// <summary>Any of our result objects (a removed target, a health result, ...): a concise note is written for it.</summary>
        [Parameter(ValueFromPipeline = true, ParameterSetName = "InputObject", Mandatory = true)]
        public PSObject InputObject { get; set; }

        [Parameter] public SwitchParameter PassThru { get; set; }

        private bool _outboxChecked;
        private readonly System.Collections.Generic.HashSet<string> _known = new System.Collections.Generic.HashSet<string>(StringComparer.OrdinalIgnoreCase);

        protected override void ProcessRecord() => PerItem(() =>
        {
            var outbox = NoteOutbox.For(Context);
            if (ParameterSetName == "Retry")
            {
                var pending = outbox?.Pending() ?? new System.Collections.Generic.List<PendingNote>();
                if (!ShouldProcess(outbox?.Path ?? "(no audit log)", $"Write {pending.Count} pending note(s) to PagerDuty")) return;
                var (written, left) = Await(outbox?.FlushAsync(PagerDuty, Log, Cancellation) ?? System.Threading.Tasks.Task.FromResult((0, 0)));
                WriteInformation(new HostInformationMessage { Message = $"{written} pending note(s) written, {left} still pending." }, new[] { "PSHOST" });
                if (left > 0) WriteWarning($"{left} note(s) are still pending in {outbox.Path}: PagerDuty did not take them (see -Verbose); run this again later.");
                return;
            }
            // The next command that talks to PagerDuty writes what an earlier runbook could not (best-effort).
            if (!_outboxChecked)
            {
                _outboxChecked = true; // once per invocation, not once per piped note
                if (outbox != null && outbox.Pending().Count > 0 && ShouldProcess(outbox.Path, "Write the pending notes first"))
                    Await(outbox.FlushAsync(PagerDuty, Log, Cancellation));
            }
            var text = ParameterSetName == "Note" ? Note : NoteText.Describe(InputObject?.BaseObject);
            if (string.IsNullOrWhiteSpace(IncidentId))
                throw new OpsException("IncidentIdMissing", OpsErrorCategory.InvalidArgument, "No incident id: nothing was sent.", InputObject,
                    recommendedAction: "Pass -IncidentId, or pipe an object that carries one (Get-PagerDutyIncident, the runbook's steps).");
            if (!ShouldProcess($"incident {IncidentId}", $"Add note \"{text}\"")) return;
            // The incident is looked up first (once per id): a mistyped id is PagerDutyNotFound with nothing written, not
            // even an audit line for a note that could never be added.
            if (_known.Add(IncidentId)) Await(PagerDuty.GetIncidentAsync(IncidentId, Cancellation));
            var note = Await(PagerDuty.AddNoteAsync(IncidentId, text, Cancellation));
            WriteVerbose($"Note added to incident {IncidentId}: {text}");
            if (PassThru) WriteObject(note);
        });
    }

    public enum IncidentStatusChange { Acknowledged, Resolved }

    [Cmdlet(VerbsCommon.Set, "PagerDutyIncident", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
    [OutputType(typeof(PagerDutyIncident))]
    public sealed class SetPagerDutyIncidentCommand : PagerDutyCmdlet
    {
        [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
        [ArgumentCompleter(typeof(IncidentCompleter))]
        public string IncidentId { get; set; }

        [Parameter, ValidateRange(1, 100)] public int EscalationLevel { get; set; }
        /// <summary>A user id (P…) or the user's email, resolved to the id.</summary>
        [Parameter] public string[] AssignTo { get; set; }
        [Parameter] public string EscalationPolicy { get; set; }
        [Parameter] public IncidentStatusChange Status { get; set; }
        [Parameter] public string Resolution { get; set; }
        [Parameter] public SwitchParameter PassThru { get; set; }

        protected override void ProcessRecord() => PerItem(() =>
        {
            var b = MyInvocation.BoundParameters;
            var fields = new IncidentUpdate();
            var what = new List<string>();
            if (b.ContainsKey(nameof(EscalationLevel))) { fields.EscalationLevel = EscalationLevel; what.Add($"escalate to level {EscalationLevel}"); }
            if (AssignTo != null)
            {
                var ids = AssignTo.Select(a => Await(PagerDuty.ResolveUserIdAsync(a, Cancellation))).ToList();
                fields.AssigneeIds = ids;
                what.Add("assign to " + string.Join(", ", AssignTo.Zip(ids, (a, id) => a == id ? id : $"{a} ({id})")));
            }
            if (EscalationPolicy != null) { fields.EscalationPolicyId = EscalationPolicy; what.Add("reassign to escalation policy " + EscalationPolicy); }
            if (b.ContainsKey(nameof(Status)))
            {
                fields.Status = Status.ToString().ToLowerInvariant();
                fields.Resolution = Resolution;
                what.Add("set status " + Status);
            }
            if (what.Count == 0) ThrowArgument("NothingToChange", $"Nothing to change on incident {IncidentId}: no change was given.", IncidentId, "Say what to change: -EscalationLevel, -AssignTo, -EscalationPolicy or -Status.");
            if (!ShouldProcess($"incident {IncidentId}", string.Join("; ", what))) return;
            var before = Await(PagerDuty.GetIncidentAsync(IncidentId, Cancellation));
            var after = Await(PagerDuty.UpdateIncidentAsync(before.IncidentId, fields, before, Cancellation));
            WriteVerbose($"Incident {IncidentId}: {string.Join("; ", what)}.");
            if (PassThru) WriteObject(after);
        });
    }

    public sealed class IncidentCompleter : IArgumentCompleter
    {
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            var c = ContextStore.Current.Clone();
            c.HttpTimeout = TimeSpan.FromSeconds(3);
            c.PagerDutyMaxRetries = 0;
            if (c.PagerDutyToken == null) return Enumerable.Empty<CompletionResult>();
            var open = CompletionHelp.Quietly(ct => new PagerDutyClient(c.ForPagerDuty(), null).ListIncidentsAsync(new[] { "triggered", "acknowledged" }, null, ct), new List<PagerDutyIncident>());
            var p = new WildcardPattern((wordToComplete ?? "").Trim('\'', '"') + "*", WildcardOptions.IgnoreCase);
            return open.Where(i => p.IsMatch(i.IncidentId)).Select(i => new CompletionResult(i.IncidentId, i.IncidentId, CompletionResultType.ParameterValue, i.Title ?? i.IncidentId));
        }
    }
}
