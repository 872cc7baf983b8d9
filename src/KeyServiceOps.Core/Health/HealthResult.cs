using System;

namespace KeyServiceOps.Core.Health
{
    public enum HealthStatus { Up, Down, Timeout, Unhealthy, Degraded, Error }

    /// <summary>One health check of one instance.</summary>
    public sealed class HealthResult
    {
        public string Address { get; set; }
        public int Port { get; set; }
        public string Target => Address != null && Address.Contains(":") ? $"[{Address}]:{Port}" : $"{Address}:{Port}";
        public bool Healthy { get; set; }
        public HealthStatus Status { get; set; }
        public int? HttpStatus { get; set; }
        public TimeSpan Latency { get; set; }
        public string Detail { get; set; }
        public DateTimeOffset CheckedAt { get; set; }
        public string Url { get; set; }
        /// <summary>Carried through from a piped ring-balancer target, so the next cmdlet knows its upstream.</summary>
        public string Upstream { get; set; }
        /// <summary>Carried through from a piped incident.</summary>
        public string IncidentId { get; set; }
        public string Via { get; set; } = "Http";
        public override string ToString() => $"{Target} {Status}";
    }
}
