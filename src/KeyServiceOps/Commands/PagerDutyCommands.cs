using System;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using System.Security;
using KeyServiceOps.Core;
using KeyServiceOps.Core.PagerDuty;
using KeyServiceOps.Bases;

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

    /// <summary>
    /// A PagerDuty V3 webhook delivery as it arrives (the raw body and its headers, Azure Automation's $WebhookData, or a
    /// saved body with its signature) → verified (X-PagerDuty-Signature, HMAC-SHA256, every configured secret, constant
    /// time) → filtered (event type, the runbook's "is down" alert) → the incident, as Get-PagerDutyIncident returns it,
    /// so `… | Invoke-KeyServiceRunbook` works unchanged. A delivery seen before (its event id) emits nothing (issue #30).
    /// </summary>
    [Cmdlet(VerbsData.ConvertFrom, "PagerDutyWebhook", DefaultParameterSetName = "Body")]
    [OutputType(typeof(PagerDutyIncident))]
    public sealed class ConvertFromPagerDutyWebhookCommand : ContextCmdlet
    {
        /// <summary>The request body exactly as received: bytes, or text (encoded as UTF-8, as PagerDuty sends it).</summary>
        [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ParameterSetName = "Body")]
        public object Body { get; set; }
        /// <summary>The request headers (X-PagerDuty-Signature is read from them, any case).</summary>
        [Parameter(ParameterSetName = "Body")] [Parameter(ParameterSetName = "Path")]
        public IDictionary Headers { get; set; }
        /// <summary>The X-PagerDuty-Signature value, when the headers are not at hand.</summary>
        [Parameter(ParameterSetName = "Body")] [Parameter(ParameterSetName = "Path")]
        public string Signature { get; set; }
        /// <summary>Azure Automation's $WebhookData (RequestBody, RequestHeader).</summary>
        [Parameter(Mandatory = true, ParameterSetName = "WebhookData")]
        public PSObject WebhookData { get; set; }
        /// <summary>A file holding the body as received.</summary>
        [Parameter(Mandatory = true, ParameterSetName = "Path")]
        public string Path { get; set; }
        /// <summary>Signing secrets (several while one is rotated).</summary>
        [Parameter] public SecureString[] SigningSecret { get; set; }
        /// <summary>Environment variables holding signing secrets; default KEYSERVICEOPS_PD_WEBHOOK_SECRET.</summary>
        [Parameter] public string[] SigningSecretVariable { get; set; }
        /// <summary>Event types acted on; default incident.triggered.</summary>
        [Parameter] public string[] EventType { get; set; } = { "incident.triggered" };
        /// <summary>Also incidents whose title is not the runbook's "… is down, url is http://…" alert.</summary>
        [Parameter] public SwitchParameter AnyAlert { get; set; }
        /// <summary>Emit a delivery seen before too (its event id is in the replay file beside the audit log).</summary>
        [Parameter] public SwitchParameter AllowReplay { get; set; }

        protected override void ProcessRecord() => PerItem(() =>
        {
            byte[] body; string signature = Signature;
            switch (ParameterSetName)
            {
                case "WebhookData":
                    var raw = WebhookData.Properties["RequestBody"]?.Value;
                    body = raw is byte[] rb ? rb : new System.Text.UTF8Encoding(false).GetBytes(raw?.ToString() ?? "");
                    signature = signature ?? HeaderValue(WebhookData.Properties["RequestHeader"]?.Value);
                    break;
                case "Path":
                    var full = GetUnresolvedProviderPathFromPSPath(Path);
                    if (!System.IO.File.Exists(full)) throw new OpsException("WebhookFileNotFound", OpsErrorCategory.ObjectNotFound, $"No file '{full}'.", full, recommendedAction: "Give the file that holds the delivery's body as received.");
                    if (new System.IO.FileInfo(full).Length > PagerDutyWebhook.MaxBodyBytes) throw PagerDutyWebhook.Malformed($"'{full}' is larger than a PagerDuty delivery");
                    body = System.IO.File.ReadAllBytes(full);
                    signature = signature ?? HeaderValue(Headers);
                    break;
                default:
                    var b = Body is PSObject pb ? pb.BaseObject : Body;
                    body = b is byte[] bytes ? bytes : new System.Text.UTF8Encoding(false).GetBytes(b?.ToString() ?? "");
                    signature = signature ?? HeaderValue(Headers);
                    break;
            }
            var secrets = (SigningSecret ?? new SecureString[0]).Select(Secret.FromSecureString)
                .Concat((SigningSecretVariable ?? (SigningSecret == null ? new[] { "KEYSERVICEOPS_PD_WEBHOOK_SECRET" } : new string[0])).Select(Secret.FromEnvironment))
                .Where(x => x != null).ToList();
            var d = PagerDutyWebhook.VerifyAndParse(body, signature, secrets);
            if (!EventType.Contains(d.EventType, StringComparer.OrdinalIgnoreCase))
            {
                WriteVerbose($"Delivery {d.EventId}: {d.EventType} is not acted on (-EventType {string.Join(",", EventType)}).");
                return;
            }
            if (d.Incident == null) { WriteVerbose($"Delivery {d.EventId}: not about an incident."); return; }
            if (!AnyAlert && d.Incident.Address == null)
            {
                WriteVerbose($"Delivery {d.EventId}: incident {d.Incident.IncidentId} is not the runbook's alert ('{d.Incident.Title}'); -AnyAlert takes it anyway.");
                return;
            }
            if (!AllowReplay && !WebhookReplayGuard.For(Settings).FirstTime(d.EventId))
            {
                WriteWarning($"Delivery {d.EventId} ({d.EventType}, incident {d.Incident.IncidentId}) was seen before (PagerDuty retries deliveries): nothing to do.");
                return;
            }
            WriteVerbose($"Delivery {d.EventId}: {d.EventType} for incident {d.Incident.IncidentId} ({d.Incident.Address}).");
            WriteObject(d.Incident);
        });

        private static string HeaderValue(object headers)
        {
            var o = headers is PSObject p ? p.BaseObject : headers;
            if (o is IDictionary dict)
            {
                foreach (DictionaryEntry e in dict)
                    if (string.Equals(e.Key?.ToString(), PagerDutyWebhook.SignatureHeader, StringComparison.OrdinalIgnoreCase))
                        return e.Value is IEnumerable en && !(e.Value is string) ? string.Join(",", en.Cast<object>()) : e.Value?.ToString();
                return null;
            }
            if (headers is PSObject ps)
                foreach (var prop in ps.Properties)
                    if (string.Equals(prop.Name, PagerDutyWebhook.SignatureHeader, StringComparison.OrdinalIgnoreCase)) return prop.Value?.ToString();
            return null;
        }
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
            var outbox = NoteOutbox.For(Settings);
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
            c.Http.Timeout = TimeSpan.FromSeconds(3);
            c.PagerDuty.MaxRetries = 0;
            if (c.PagerDuty.Token == null) return Enumerable.Empty<CompletionResult>();
            var open = CompletionHelp.Quietly(ct => new PagerDutyClient(c.ForPagerDuty(), null).ListIncidentsAsync(new[] { "triggered", "acknowledged" }, null, ct), new List<PagerDutyIncident>());
            var p = new WildcardPattern((wordToComplete ?? "").Trim('\'', '"') + "*", WildcardOptions.IgnoreCase);
            return open.Where(i => p.IsMatch(i.IncidentId)).Select(i => new CompletionResult(i.IncidentId, i.IncidentId, CompletionResultType.ParameterValue, i.Title ?? i.IncidentId));
        }
    }
}
