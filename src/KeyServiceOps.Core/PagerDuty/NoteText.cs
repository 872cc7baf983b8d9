using KeyServiceOps.Core.Health;
using KeyServiceOps.Core.RingBalancer;

namespace KeyServiceOps.Core.PagerDuty
{
    /// <summary>The concise note the runbook expects for each of our result objects.</summary>
    public static class NoteText
    {
        public static string Describe(object o)
        {
            switch (o)
            {
                case null: return null;
                case string s: return s;
                case TargetChange c:
                    var who = c.Actor == "self-healing" ? "self-healing" : "manually";
                    var at = c.Time.UtcDateTime.ToString("HH:mm") + "Z";
                    switch (c.ActionValue)
                    {
                        case TargetChangeAction.Removed: return $"{who} removed target {c.Target} from upstream {c.Upstream} at {at}" + (c.Forced ? " (forced past the safety guard)" : "");
                        case TargetChangeAction.Drained: return $"{who} drained target {c.Target} (weight {c.Weight} -> 0) in upstream {c.Upstream} at {at}";
                        case TargetChangeAction.Added: return $"{who} added target {c.Target} back to upstream {c.Upstream} at {at}";
                        case TargetChangeAction.Restored: return $"{who} restored target {c.Target} to weight {c.Weight} in upstream {c.Upstream} at {at}";
                        case TargetChangeAction.AlreadyAbsent: return $"target {c.Target} was already absent from upstream {c.Upstream} at {at} (self-healing or someone else removed it)";
                        default: return $"target {c.Target} was already present in upstream {c.Upstream} at {at}";
                    }
                case HealthResult h:
                    return $"health check of {h.Target} at {h.CheckedAt.UtcDateTime:HH:mm}Z: {(h.Healthy ? "The API is available and operational" : h.Status.ToString().ToUpperInvariant() + " (" + h.Detail + ")")}";
                default:
                    return o.ToString();
            }
        }
    }
}
