using System;

namespace KeyServiceOps.Core.Diagnosis
{
    /// <summary>What `docker inspect` says about the container.</summary>
    public sealed class ContainerState
    {
        public string Address { get; set; }
        public string Container { get; set; }
        public string Status { get; set; }
        public bool Running { get; set; }
        public bool Paused { get; set; }
        public bool Restarting { get; set; }
        public bool OOMKilled { get; set; }
        public bool Dead { get; set; }
        public int Pid { get; set; }
        public int ExitCode { get; set; }
        public string Error { get; set; }
        public DateTimeOffset? StartedAt { get; set; }
        /// <summary>Null while the container has never stopped (docker reports 0001-01-01).</summary>
        public DateTimeOffset? FinishedAt { get; set; }
        public int RestartCount { get; set; }
        public string Health { get; set; }
        /// <summary>docker's container id: a container re-created under the same name has a new one.</summary>
        public string Id { get; set; }
        public override string ToString() => $"{Address} {Container} {Status} exit={ExitCode}";
    }
}
