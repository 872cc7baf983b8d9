using System.Threading;
using System.Threading.Tasks;
using KeyServiceOps.Core.Health;

namespace KeyServiceOps.Core.Remote
{
    /// <summary>Where the health check runs: from this machine over HTTP, or on the VM (curl to localhost) over SSH.</summary>
    public enum HealthVia { Http, Ssh }

    /// <summary>
    /// The one health probe of the cmdlet, the runbook and the restarter: HTTP from here, or the runbook's own
    /// `curl localhost` on the VM over SSH when asked (for instances not reachable from the operator's machine).
    /// </summary>
    public sealed class HealthProbe
    {
        private readonly HealthChecker _http;
        private readonly DockerClient _docker;

        public HealthProbe(HealthChecker http, DockerClient docker) { _http = http; _docker = docker; }

        public Task<HealthResult> CheckAsync(Endpoint ep, SshTarget ssh, HealthVia via, CancellationToken ct)
            => via == HealthVia.Ssh && ssh != null && _docker != null
                ? _docker.CurlHealthAsync(ssh, ep.Port, _http.Path, _http.ExpectedText, _http.Timeout, ct)
                : _http.CheckAsync(ep, ct);
    }
}
