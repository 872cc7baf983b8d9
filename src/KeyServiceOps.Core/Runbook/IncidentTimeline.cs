using System;
using KeyServiceOps.Core.RingBalancer;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Net;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using KeyServiceOps.Core.Audit;
using KeyServiceOps.Core.Diagnosis;
using KeyServiceOps.Core.PagerDuty;
using KeyServiceOps.Core.Remote;

namespace KeyServiceOps.Core.Runbook
{
    /// <summary>One thing that happened, from one source (issue #31).</summary>
    public sealed class TimelineEvent
    {
        public DateTimeOffset Time { get; set; }
        /// <summary>PagerDuty, Audit, Kong (its listing: when the target was created, what it shows now), Journal (the VM's restart journal), Container (docker inspect), Logs (flagged lines).</summary>
        public string Source { get; set; }
        public string Actor { get; set; }
        /// <summary>Triggered, Acknowledged, Escalated, Assigned, Note, Resolved; Removed, Added, Restarted, …; Started, Exited; Fault.</summary>
        public string Kind { get; set; }
        public string Target { get; set; }
        public string Detail { get; set; }
        /// <summary>Where it was read (an audit line, a log entry id, a docker field).</summary>
        public string Evidence { get; set; }
        public override string ToString() => $"{Time:yyyy-MM-ddTHH:mm:ssZ} {Source} {Kind} {Detail}";
    }

    /// <summary>The figures a postmortem asks for, computed from the events; null when the events do not say.</summary>
    public sealed class IncidentTimelineSummary
    {
        public string IncidentId { get; set; }
        public string Address { get; set; }
        public DateTimeOffset? Start { get; set; }
        /// <summary>Alert (or first failure) → first action by a responder or self-healing.</summary>
        public double? TimeToDetectSeconds { get; set; }
        /// <summary>Taken out of the ring-balancer → put back (or until now while still out).</summary>
        public double? OutOfRotationSeconds { get; set; }
        /// <summary>Alert → back in the ring-balancer.</summary>
        public double? TimeToRecoverSeconds { get; set; }
        public int Restarts { get; set; }
        public int Escalations { get; set; }
        public TextList Responders { get; set; } = new TextList();
        /// <summary>Sources that could not be read (listed, never silently left out).</summary>
        public TextList Missing { get; set; } = new TextList();
        public int Events { get; set; }
        public override string ToString() => $"{IncidentId} {Address}: {Events} events";
    }

    public sealed class IncidentTimeline
    {
        public List<TimelineEvent> Events { get; } = new List<TimelineEvent>();
        public IncidentTimelineSummary Summary { get; set; } = new IncidentTimelineSummary();
    }

    /// <summary>
    /// Lines up what every source the module can read says about one incident: the incident's log entries and notes
    /// (PagerDuty), the audit log (intents and outcomes, who and from where), the VM's restart journal and the
    /// container's state (docker over SSH), and the log lines the fault rules flag. A source that cannot be read is
    /// listed in Summary.Missing.
    /// </summary>
    public sealed class IncidentTimelineBuilder
    {
        private readonly OpsContext _ctx;
        private readonly PagerDutyClient _pd;
        private readonly AuditLog _audit;
        private readonly DockerClient _docker;
        private readonly FaultRuleSet _rules;
        private readonly RingBalancerService _kong;

        /// <param name="kong">Kong's own word (optional): the target's created_at (when it was last put in) and its state now.</param>
        public IncidentTimelineBuilder(OpsContext ctx, PagerDutyClient pd, AuditLog audit, DockerClient docker, FaultRuleSet rules, RingBalancerService kong = null)
        {
            _ctx = ctx; _pd = pd; _audit = audit; _docker = docker; _rules = rules ?? FaultRuleSet.Default; _kong = kong;
        }

        public async Task<IncidentTimeline> BuildAsync(string incidentId, string address, DateTimeOffset? since, DateTimeOffset? until, CancellationToken ct)
        {
            var tl = new IncidentTimeline();
            var s = tl.Summary;
            s.IncidentId = incidentId; s.Address = address;
            void Add(DateTimeOffset? t, string source, string actor, string kind, string target, string detail, string evidence)
            {
                if (t == null) return;
                tl.Events.Add(new TimelineEvent { Time = t.Value.ToUniversalTime(), Source = source, Actor = SafeText.Neutralize(actor), Kind = SafeText.Neutralize(kind), Target = SafeText.Neutralize(target), Detail = SafeText.Neutralize(detail), Evidence = SafeText.Neutralize(evidence) });
            }

            PagerDutyIncident inc = null;
            if (incidentId != null)
            {
                if (_pd == null) s.Missing.Add("PagerDuty (not configured)");
                else
                {
                    try
                    {
                        inc = await _pd.GetIncidentAsync(incidentId, ct).ConfigureAwait(false);
                        s.Address = s.Address ?? inc.Address;
                        s.Start = inc.CreatedAt;
                        try
                        {
                            foreach (var e in await _pd.GetLogEntriesAsync(incidentId, ct).ConfigureAwait(false))
                                Add(e.CreatedAt, "PagerDuty", e.Agent, KindOf(e.Type), s.Address, e.Summary, "log entry " + e.Type);
                        }
                        catch (OpsException e) when (!e.IsCancellation)
                        {
                            s.Missing.Add($"PagerDuty log entries ({e.ErrorId})");
                            Add(inc.CreatedAt, "PagerDuty", null, "Triggered", s.Address, inc.Title, "incident created_at");
                        }
                        foreach (var n in await _pd.GetNotesAsync(incidentId, ct).ConfigureAwait(false))
                            Add(n.CreatedAt, "PagerDuty", n.User, "Note", s.Address, n.Content, "note " + n.NoteId);
                    }
                    // An incident PagerDuty does not know is a mistyped id, not a source that is down: the caller's typed error.
                    catch (OpsException e) when (!e.IsCancellation && e.ErrorId != "PagerDutyNotFound") { s.Missing.Add($"PagerDuty ({e.ErrorId})"); }
                }
            }
            if (s.Address == null)
                s.Missing.Add("the VM, the container, its logs and Kong (the incident's instance is not known: give -Address)");
            var from = since ?? (s.Start - TimeSpan.FromMinutes(15)) ?? DateTimeOffset.UtcNow.AddDays(-1);
            var to = until ?? DateTimeOffset.UtcNow;

            // The audit log: this incident's lines, and the address's lines in the window.
            try
            {
                foreach (var a in _audit?.Read(from) ?? Enumerable.Empty<AuditEntry>())
                {
                    if (a.Time > to) continue;
                    var other = incidentId != null && a.Incident != null && !string.Equals(a.Incident, incidentId, StringComparison.OrdinalIgnoreCase);
                    var mine = !other && ((incidentId != null && string.Equals(a.Incident, incidentId, StringComparison.OrdinalIgnoreCase))
                               || (s.Address != null && a.Target != null && (a.Target == s.Address || a.Target.StartsWith(s.Address + ":", StringComparison.Ordinal))));
                    if (!mine) continue;
                    Add(a.Time, "Audit", a.Actor, ActionKind(a.Action, a.Outcome), a.Target, $"{a.Action}: {a.Outcome}{(string.IsNullOrEmpty(a.Detail) ? "" : " — " + a.Detail)}", $"audit {a.Host}");
                }
            }
            catch (OpsException e) { s.Missing.Add($"audit log ({e.ErrorId})"); }

            // Kong keeps no history, but it says when the target was created (the last time anyone put it in, whoever did:
            // a responder on another machine too) and how it stands now.
            if (s.Address != null && _kong != null)
            {
                var target = $"{s.Address}:{_ctx.Health.Port}";
                try
                {
                    var upstream = _ctx.Kong.Upstream;
                    var now = await _kong.FindIncludingDrainedAsync(upstream, target, ct).ConfigureAwait(false);
                    if (now?.CreatedAt != null && now.CreatedAt >= from && now.CreatedAt <= to)
                        Add(now.CreatedAt, "Kong", null, "Listed", target, $"{target} created in upstream '{upstream}' (weight {now.Weight})", "Kong target created_at");
                    if (until == null)
                    {
                        var marked = now != null && now.Weight > 0 && await _kong.MarkedUnhealthyInKongAsync(upstream, target, ct).ConfigureAwait(false);
                        var (kind, what) = now == null ? ("Absent", "not in the upstream") : now.Weight == 0 ? ("Drained", "listed with weight 0")
                            : marked ? ("MarkedUnhealthy", $"listed (weight {now.Weight}) but marked unhealthy") : ("InRotation", $"in rotation (weight {now.Weight})");
                        Add(DateTimeOffset.UtcNow, "Kong", null, kind, target, $"{target} {what} in '{upstream}' when this timeline was read", "Kong's listing now");
                    }
                }
                catch (OpsException e) when (!e.IsCancellation) { s.Missing.Add($"Kong ({e.ErrorId})"); }
            }

            // The VM: its restart journal (every responder's restarts), the container's start and exit, flagged log lines.
            if (s.Address != null && _docker != null)
            {
                SshTarget t = null;
                try { t = SshTarget.For(_ctx, s.Address); } catch (OpsException e) { s.Missing.Add($"the VM ({e.ErrorId})"); }
                if (t != null)
                {
                    try
                    {
                        foreach (var j in await _docker.ReadRestartJournalAsync(t, ct).ConfigureAwait(false))
                            // A restart journalled for another incident is that incident's, not this one's (it was counted as ours).
                            if (j.LocalTime >= from && j.LocalTime <= to && (incidentId == null || j.Incident == null || string.Equals(j.Incident, incidentId, StringComparison.OrdinalIgnoreCase)))
                                Add(j.LocalTime, "Journal", j.Actor, "Restarted", s.Address, $"docker restart{(j.Incident != null ? " for incident " + j.Incident : "")}", "the VM's restart journal");
                        var state = await _docker.InspectAsync(t, ct).ConfigureAwait(false);
                        if (state.StartedAt >= from) Add(state.StartedAt, "Container", null, "Started", s.Address, $"{t.Container} started (restart count {state.RestartCount})", "docker inspect .State.StartedAt");
                        if (state.FinishedAt >= from && state.FinishedAt <= to) Add(state.FinishedAt, "Container", null, "Exited", s.Address, $"{t.Container} exited (exit code {state.ExitCode}{(state.OOMKilled ? ", out of memory" : "")})", "docker inspect .State.FinishedAt");
                        var faults = new FaultAnalyzer(_rules, _ctx.Healing.FaultOwners, null);
                        await _docker.LogsAsync(t, new LogQuery { Since = ShellText.ValidTime(from, "Since"), Until = ShellText.ValidTime(to, "Until") }, faults.Add, ct).ConfigureAwait(false);
                        foreach (var f in faults.Results().Where(f => f.FirstSeen != null))
                            Add(f.FirstSeen, "Logs", null, "Fault", s.Address, $"{f.Category} ({f.Count} {(f.Count == 1 ? "line" : "lines")}): {f.LastEvidence}", "docker logs, rule " + f.Rule);
                    }
                    catch (OpsException e) when (!e.IsCancellation) { s.Missing.Add($"the VM {s.Address} ({e.ErrorId})"); }
                }
            }
            tl.Events.Sort((a, b) => a.Time.CompareTo(b.Time));
            Figures(tl);
            return tl;
        }

        private static string KindOf(string type)
        {
            switch (type)
            {
                case "trigger_log_entry": return "Triggered";
                case "acknowledge_log_entry": return "Acknowledged";
                case "escalate_log_entry": return "Escalated";
                case "assign_log_entry": return "Assigned";
                case "annotate_log_entry": return "Annotated";
                case "resolve_log_entry": return "Resolved";
                default: return type ?? "Other";
            }
        }

        private static string ActionKind(string action, string outcome)
        {
            var failed = outcome == AuditLog.Failed;
            switch (action)
            {
                case "RemoveTarget": case "DrainTarget": case "MarkTargetUnhealthy": return failed ? "RemoveFailed" : "Removed";
                case "AddTarget": case "MarkTargetHealthy": return failed ? "AddFailed" : "Added";
                case "RestartContainer": return failed ? "RestartFailed" : "Restarted";
                default: return action ?? "Other";
            }
        }

        /// <summary>The first removal from the ring-balancer and the first add after it (null when there is none).</summary>
        internal static (TimelineEvent removed, TimelineEvent added) OutOfRotation(IReadOnlyList<TimelineEvent> ev)
        {
            // The first removal, and the add after the LAST removal (taken out again after an add: not back yet).
            var removed = ev.FirstOrDefault(e => e.Source == "Audit" && e.Kind == "Removed");
            var lastRemoved = ev.LastOrDefault(e => e.Source == "Audit" && e.Kind == "Removed");
            var added = lastRemoved == null ? null : ev.FirstOrDefault(e => e.Source == "Audit" && e.Kind == "Added" && e.Time >= lastRemoved.Time);
            // Kong's word now outranks the audit log: a target Kong shows out of rotation has not recovered.
            if (ev.Any(e => e.Source == "Kong" && (e.Kind == "Absent" || e.Kind == "Drained" || e.Kind == "MarkedUnhealthy"))) added = null;
            return (removed, added);
        }

        /// <summary>The figures, from the events alone (so they can be checked against them).</summary>
        public static void Figures(IncidentTimeline tl)
        {
            var s = tl.Summary;
            var ev = tl.Events;
            s.Events = ev.Count;
            s.Start = s.Start ?? ev.FirstOrDefault(e => e.Kind == "Triggered" || e.Kind == "Fault" || e.Kind == "Exited")?.Time;
            var actions = ev.Where(e => e.Source == "Audit" && (e.Kind == "Removed" || e.Kind == "Restarted" || e.Kind == "Added")).ToList();
            var firstAction = actions.FirstOrDefault(e => s.Start == null || e.Time >= s.Start.Value.AddMinutes(-1));
            if (s.Start != null && firstAction != null) s.TimeToDetectSeconds = Math.Round(Math.Max(0, (firstAction.Time - s.Start.Value).TotalSeconds), 1);
            var (removed, added) = OutOfRotation(ev);
            if (removed != null) s.OutOfRotationSeconds = Math.Round(((added?.Time ?? DateTimeOffset.UtcNow) - removed.Time).TotalSeconds, 1);
            if (s.Start != null && added != null) s.TimeToRecoverSeconds = Math.Round((added.Time - s.Start.Value).TotalSeconds, 1);
            // A restart is in the audit log of the machine that made it and in the VM's journal: counted once (within 5 s).
            var restarts = ev.Where(e => e.Kind == "Restarted").OrderBy(e => e.Time).ToList();
            var counted = new List<DateTimeOffset>();
            foreach (var r in restarts) if (!counted.Any(c => Math.Abs((c - r.Time).TotalSeconds) <= 5)) counted.Add(r.Time);
            s.Restarts = counted.Count;
            s.Escalations = ev.Count(e => e.Source == "PagerDuty" && e.Kind == "Escalated");
            s.Responders = ev.Where(e => e.Source != "PagerDuty" || e.Kind != "Triggered").Select(e => e.Actor).Where(a => !string.IsNullOrEmpty(a))
                             .Select(a => a.Split('/')[0]).Distinct(StringComparer.OrdinalIgnoreCase).OrderBy(a => a, StringComparer.OrdinalIgnoreCase).ToArray();
        }
    }

    /// <summary>The timeline as one self-contained HTML page (no network, no script, no fonts: printable) or Markdown.</summary>
    public static class IncidentReport
    {
        private static string H(string s) => WebUtility.HtmlEncode(s ?? "");
        private static string Secs(double? s) => s == null ? "—" : s < 120 ? $"{s:0} s" : $"{s / 60:0.#} min";

        public static string Markdown(IncidentTimeline tl)
        {
            var s = tl.Summary;
            var sb = new StringBuilder();
            sb.AppendLine($"## Incident {s.IncidentId} — {s.Address}");
            sb.AppendLine();
            sb.AppendLine($"| time to detect | out of rotation | time to recover | restarts | escalations | responders |");
            sb.AppendLine("|---|---|---|---|---|---|");
            sb.AppendLine($"| {Secs(s.TimeToDetectSeconds)} | {Secs(s.OutOfRotationSeconds)} | {Secs(s.TimeToRecoverSeconds)} | {s.Restarts} | {s.Escalations} | {string.Join(", ", s.Responders)} |");
            if (s.Missing.Count > 0) { sb.AppendLine(); sb.AppendLine("Not read: " + string.Join("; ", s.Missing)); }
            sb.AppendLine();
            sb.AppendLine("| time (UTC) | source | kind | actor | detail |");
            sb.AppendLine("|---|---|---|---|---|");
            foreach (var e in tl.Events)
                sb.AppendLine($"| {e.Time:yyyy-MM-dd HH:mm:ss} | {e.Source} | {e.Kind} | {Md(e.Actor)} | {Md(e.Detail)} |");
            return sb.ToString();
        }

        /// <summary>
        /// Text for a Markdown table cell, inert: every character Markdown (CommonMark, GitHub) gives a meaning to is
        /// backslash-escaped, so a log line or a note cannot become a link, an image (a request when the page is viewed),
        /// a heading or HTML; line breaks become spaces.
        /// </summary>
        private static string Md(string s)
        {
            var b = new StringBuilder();
            foreach (var c in (s ?? "").Replace("\r", " ").Replace("\n", " "))
            {
                if ("\\`*_{}[]()<>#!|~&@:".IndexOf(c) >= 0) b.Append('\\'); // ':' too: no bare-URL autolink
                b.Append(c);
            }
            return b.ToString();
        }

        public static string Html(IncidentTimeline tl)
        {
            var s = tl.Summary;
            var lanes = new[] { "PagerDuty", "Audit", "Kong", "Journal", "Container", "Logs" };
            var t0 = tl.Events.Count > 0 ? tl.Events.Min(e => e.Time) : DateTimeOffset.UtcNow;
            var t1 = tl.Events.Count > 0 ? tl.Events.Max(e => e.Time) : t0;
            if (s.Start != null && s.Start < t0) t0 = s.Start.Value;
            var span = Math.Max(1, (t1 - t0).TotalSeconds);
            string X(DateTimeOffset t) => (2 + 96 * (t - t0).TotalSeconds / span).ToString("0.###", CultureInfo.InvariantCulture);
            var sb = new StringBuilder();
            sb.Append("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">");
            sb.Append($"<title>Incident {H(s.IncidentId)} — {H(s.Address)}</title><style>");
            sb.Append("body{font-family:system-ui,sans-serif;margin:1.5rem;color:#111}h1{font-size:1.3rem}.figs{display:flex;flex-wrap:wrap;gap:1rem;margin:1rem 0}");
            sb.Append(".fig{border:1px solid #ccc;border-radius:6px;padding:.5rem .8rem;min-width:8rem}.fig b{display:block;font-size:1.4rem}");
            sb.Append(".lane{position:relative;height:2.2rem;border-bottom:1px solid #eee;margin-left:7rem}.lane .name{position:absolute;left:-7rem;top:.5rem;width:6.5rem;font-size:.85rem;color:#555}");
            sb.Append(".bar{position:absolute;top:.35rem;height:1.5rem;border-radius:3px;opacity:.35}.bar.out{background:#d33}.bar.down{background:#f90}.bar.restart{background:#36c}");
            sb.Append(".axis{position:relative;height:1.2rem;margin-left:7rem;font-size:.75rem;color:#666}.axis span{position:absolute;transform:translateX(-50%)}");
            sb.Append(".ev{position:absolute;top:.55rem;width:.8rem;height:.8rem;margin-left:-.4rem;border-radius:50%;background:#246}.ev:hover{outline:2px solid #f60}");
            sb.Append("table{border-collapse:collapse;width:100%;margin-top:1.5rem;font-size:.85rem}td,th{border:1px solid #ddd;padding:.25rem .4rem;text-align:left;vertical-align:top}td.d{white-space:pre-wrap;word-break:break-word}");
            sb.Append("@media print{.lane{break-inside:avoid}}</style></head><body>");
            sb.Append($"<h1>Incident {H(s.IncidentId)} — {H(s.Address)}</h1>");
            sb.Append("<div class=\"figs\">");
            foreach (var (label, value, id) in new[] { ("time to detect", Secs(s.TimeToDetectSeconds), "ttd"), ("out of rotation", Secs(s.OutOfRotationSeconds), "oor"), ("time to recover", Secs(s.TimeToRecoverSeconds), "ttr"),
                                                     ("restarts", s.Restarts.ToString(CultureInfo.InvariantCulture), "restarts"), ("escalations", s.Escalations.ToString(CultureInfo.InvariantCulture), "escalations"), ("responders", string.Join(", ", s.Responders), "responders") })
                sb.Append($"<div class=\"fig\" id=\"fig-{id}\">{H(label)}<b>{H(value)}</b></div>");
            sb.Append("</div>");
            if (s.Missing.Count > 0) sb.Append($"<p class=\"missing\">Not read: {H(string.Join("; ", s.Missing))}</p>");
            sb.Append($"<p>{H(t0.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss"))}Z → {H(t1.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss"))}Z</p>");
            var (removed, added) = IncidentTimelineBuilder.OutOfRotation(tl.Events);
            string W(DateTimeOffset a, DateTimeOffset b) => Math.Max(0.4, 96 * (b - a).TotalSeconds / span).ToString("0.###", CultureInfo.InvariantCulture);
            string Bar(string kind, string cls, DateTimeOffset a, DateTimeOffset b, string title)
                => $"<div class=\"bar {cls}\" data-kind=\"{kind}\" data-from=\"{a.UtcDateTime:o}\" data-to=\"{b.UtcDateTime:o}\" style=\"left:{X(a)}%;width:{W(a, b)}%\" title=\"{H(title)}\"></div>";
            // The time axis: five ticks, UTC.
            sb.Append("<div class=\"axis\">");
            for (int i = 0; i <= 4; i++) { var t = t0 + TimeSpan.FromSeconds(span * i / 4); sb.Append($"<span style=\"left:{X(t)}%\">{H(t.UtcDateTime.ToString("HH:mm:ss"))}</span>"); }
            sb.Append("</div>");
            // Restarting: from each restart to the container's next start (docker inspect), when it is known.
            var restarting = new List<(DateTimeOffset from, DateTimeOffset to)>();
            foreach (var r in tl.Events.Where(e => e.Kind == "Restarted" && (e.Source == "Audit" || e.Source == "Journal")).OrderBy(e => e.Time))
            {
                var started = tl.Events.FirstOrDefault(e => e.Source == "Container" && e.Kind == "Started" && e.Time >= r.Time.AddSeconds(-1));
                if (started != null && !restarting.Any(x => Math.Abs((x.from - r.Time).TotalSeconds) <= 5)) restarting.Add((r.Time, started.Time));
            }
            // One number per event, its place in time order: a dot links to its table row.
            var number = new Dictionary<TimelineEvent, int>();
            for (int i = 0; i < tl.Events.Count; i++) number[tl.Events[i]] = i + 1;
            foreach (var lane in lanes)
            {
                sb.Append($"<div class=\"lane\" data-lane=\"{H(lane)}\"><span class=\"name\">{H(lane)}</span>");
                // Down: from the alert (or the first failure) until it was back in rotation (or to the end: not recovered).
                if (lane == "PagerDuty" && s.Start != null)
                    sb.Append(Bar("down", "down", s.Start.Value, added?.Time ?? t1, added != null ? "down until back in rotation" : "down: not back in rotation"));
                if (lane == "Audit" && removed != null)
                    sb.Append(Bar("out-of-rotation", "out", removed.Time, added?.Time ?? t1, "out of rotation"));
                if (lane == "Container")
                    foreach (var (from, to) in restarting) sb.Append(Bar("restarting", "restart", from, to, "restarting"));
                foreach (var e in tl.Events.Where(x => x.Source == lane))
                {
                    sb.Append($"<a class=\"ev\" href=\"#e{number[e]}\" data-time=\"{e.Time.UtcDateTime:o}\" style=\"left:{X(e.Time)}%\" title=\"{H($"{e.Time.UtcDateTime:HH:mm:ss}Z {e.Kind}: {e.Detail}")}\"></a>");
                }
                sb.Append("</div>");
            }
            sb.Append("<table><thead><tr><th>time (UTC)</th><th>source</th><th>kind</th><th>actor</th><th>detail</th></tr></thead><tbody>");
            foreach (var e in tl.Events)
                sb.Append($"<tr id=\"e{number[e]}\" data-source=\"{H(e.Source)}\"><td>{H(e.Time.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss"))}</td><td>{H(e.Source)}</td><td>{H(e.Kind)}</td><td>{H(e.Actor)}</td><td class=\"d\">{H(e.Detail)}</td></tr>");
            sb.Append("</tbody></table></body></html>");
            return sb.ToString();
        }
    }
}
