using System.Collections.Generic;
using System.Linq;
using System;
using System.Text.RegularExpressions;

namespace KeyServiceOps.Core.PagerDuty
{
    /// <summary>A PagerDuty incident, with the instance parsed from the runbook's alert text when it matches.</summary>
    public sealed class PagerDutyIncident
    {
        public string IncidentId { get; set; }
        public string Id => IncidentId;
        public int Number { get; set; }
        public string Title { get; set; }
        public string Status { get; set; }
        public string Urgency { get; set; }
        public string Service { get; set; }
        public string ServiceId { get; set; }
        public string EscalationPolicy { get; set; }
        public string EscalationPolicyId { get; set; }
        public int? EscalationLevel { get; set; }
        public TextList Assignees { get; set; } = new TextList();
        public TextList AssigneeIds { get; set; } = new TextList();
        public DateTimeOffset? CreatedAt { get; set; }
        public string HtmlUrl { get; set; }
        // Parsed from "Service: apiplatform_key_service in env: <env> is down, url is http://X.X.X.X:8888/api/auth/healthz"
        public string Address { get; set; }
        public int? Port { get; set; }
        public string Environment { get; set; }
        public string HealthUrl { get; set; }
        public override string ToString() => $"{IncidentId} [{Status}] {Title}";
    }

    /// <summary>What to change on an incident (PUT /incidents/{id}); null members are left as they are.</summary>
    public sealed class IncidentUpdate
    {
        public int? EscalationLevel { get; set; }
        /// <summary>User ids (P…) to assign; resolve emails first with ResolveUserIdAsync.</summary>
        public IList<string> AssigneeIds { get; set; }
        public string EscalationPolicyId { get; set; }
        /// <summary>acknowledged or resolved.</summary>
        public string Status { get; set; }
        public string Resolution { get; set; }

        public bool IsEmpty => EscalationLevel == null && AssigneeIds == null && EscalationPolicyId == null && Status == null;

        internal Newtonsoft.Json.Linq.JObject ToFields()
        {
            var f = new Newtonsoft.Json.Linq.JObject();
            if (EscalationLevel != null) f["escalation_level"] = EscalationLevel.Value;
            if (AssigneeIds != null)
                f["assignments"] = new Newtonsoft.Json.Linq.JArray(AssigneeIds.Select(id => new Newtonsoft.Json.Linq.JObject { ["assignee"] = new Newtonsoft.Json.Linq.JObject { ["id"] = id, ["type"] = "user_reference" } }));
            if (EscalationPolicyId != null) f["escalation_policy"] = new Newtonsoft.Json.Linq.JObject { ["id"] = EscalationPolicyId, ["type"] = "escalation_policy_reference" };
            if (Status != null) f["status"] = Status;
            if (Status == "resolved" && Resolution != null) f["resolution"] = Resolution;
            return f;
        }
    }

    public sealed class PagerDutyNote
    {
        public string IncidentId { get; set; }
        public string NoteId { get; set; }
        public string User { get; set; }
        public string Content { get; set; }
        public DateTimeOffset? CreatedAt { get; set; }
        public override string ToString() => Content;
    }

    /// <summary>One entry of an incident's log (trigger_log_entry, escalate_log_entry, …).</summary>
    public sealed class PagerDutyLogEntry
    {
        public string IncidentId { get; set; }
        public string Type { get; set; }
        public string Summary { get; set; }
        public string Agent { get; set; }
        public DateTimeOffset? CreatedAt { get; set; }
    }

    /// <summary>Parses the alert text the runbook starts from.</summary>
    public static class AlertText
    {
        private static readonly Regex Rx = new Regex(
            @"Service:\s*(?<svc>\S+)\s+in\s+env:\s*(?<env>\S*?)\s*is\s+down,\s*url\s+is\s+(?<url>https?://(?<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(?<port>\d{1,5})(?<path>/[^\s""'<>]*)?)",
            RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

        public static bool TryParse(string text, out string address, out int port, out string environment, out string url)
        {
            address = null; port = 0; environment = null; url = null;
            if (string.IsNullOrEmpty(text)) return false;
            var m = Rx.Match(text);
            if (!m.Success || !int.TryParse(m.Groups["port"].Value, out port) || port < 1 || port > 65535) { port = 0; return false; }
            if (!Endpoint.TryParse(m.Groups["host"].Value + ":" + port, port, out var ep, out _)) { port = 0; return false; }
            address = ep.Address;
            environment = m.Groups["env"].Value.Length == 0 ? null : m.Groups["env"].Value;
            url = m.Groups["url"].Value;
            return true;
        }
    }
}
