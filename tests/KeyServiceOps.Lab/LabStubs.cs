using System.Linq;
using System.Threading.Tasks;

namespace KeyServiceOps.Lab
{
    public sealed partial class Lab
    {
        /// <summary>The real sshd on the instance addresses (when <see cref="LabOptions.Ssh"/>).</summary>
        public LabSsh Ssh { get; private set; }

        private async Task StartSshCoreAsync()
        {
            Ssh = await LabSsh.StartAsync(Instances.Select(i => i.Address), ip => Instances.FirstOrDefault(i => i.Address == ip));
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
