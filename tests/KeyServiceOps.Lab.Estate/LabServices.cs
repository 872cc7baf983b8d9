using System.Linq;
using System.Threading.Tasks;

namespace KeyServiceOps.Lab.Estate
{
    public sealed partial class Lab
    {
        /// <summary>The real sshd on the instance addresses (when <see cref="LabOptions.Ssh"/>).</summary>
        public LabSsh Ssh { get; private set; }

        /// <summary>Writes a known_hosts file that trusts the lab's sshd on every instance address (a new temp file unless a path is given).</summary>
        public string WriteKnownHosts(string path = null)
        {
            path ??= System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"kso-known-{System.Guid.NewGuid():N}");
            System.IO.File.WriteAllLines(path, Instances.Select(i => i.Address).Concat(Vms.Select(v => v.Address)).Select(Ssh.KnownHostsEntry));
            return path;
        }

        private async Task StartSshCoreAsync()
        {
            Ssh = RealDocker != null
                ? await LabSsh.StartForRealDockerAsync(RealDocker.DockerHosts)
                : await LabSsh.StartAsync(Instances.Select(i => i.Address), ip => Instances.FirstOrDefault(i => i.Address == ip));
            _disposers.Add(() => Ssh.DisposeAsync());
        }

        /// <summary>The central log service (the runbook's "logmet"), fed by the instances' container logs.</summary>
        public CentralLogEmulator CentralLogs { get; private set; }

        private async Task StartCentralLogsCoreAsync()
        {
            CentralLogs = await CentralLogEmulator.StartAsync(() => Instances);
            _disposers.Add(() => CentralLogs.DisposeAsync());
        }
    }
}
