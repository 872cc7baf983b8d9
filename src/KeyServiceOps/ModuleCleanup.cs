using System.Collections.Concurrent;
using System.Management.Automation;
using System.Security;
using KeyServiceOps.Core;
using KeyServiceOps.Core.Remote;
using KeyServiceOps.Bases;

namespace KeyServiceOps
{
    /// <summary>
    /// Closes the SSH sessions when the module is removed (Remove-Module KeyServiceOps) — those of the runspace
    /// that removed it. (Closing every runspace's pool cut other runspaces' commands mid-flight: they then hung
    /// until their timeout. Found by the tests running in parallel.)
    /// </summary>
    public sealed class ModuleCleanup : IModuleAssemblyCleanup
    {
        public void OnRemove(PSModuleInfo psModuleInfo) => SshPoolStore.CloseCurrent();
    }
}
