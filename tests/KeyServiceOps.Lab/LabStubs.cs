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

        // Filled in by the central-log part of the lab when it lands.
        private Task StartCentralLogsCoreAsync() => throw new System.NotSupportedException("The central log emulator is not built yet.");
    }
}
