using System;

namespace KeyServiceOps.Core.Health
{
    public enum HealthStatus { Up, Down, Timeout, Unhealthy, Degraded, Error }

    /// <summary>One health check of one instance.</summary>
    public sealed class HealthResult
    {
        public string Address { get; set; }
        public int Port { get; set; }
        public string Target => Endpoint.Join(Address, Port);
        public bool Healthy { get; set; }
        /// <summary>The typed value for code; PowerShell sees <see cref="Status"/> (its name), so JSON and CSV read the same as the views.</summary>
        internal HealthStatus StatusValue { get; set; }
        public string Status => StatusValue.ToString();
        public int? HttpStatus { get; set; }
        internal TimeSpan Latency { get; set; }
        /// <summary>The probe's round trip in seconds (a TimeSpan would serialise as 15 fields).</summary>
        public double LatencySeconds => Math.Round(Latency.TotalSeconds, 4);
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
