using System;
using System.Collections.Concurrent;
using System.Management.Automation.Runspaces;
using KeyServiceOps.Core;
using KeyServiceOps.Core.Remote;
using KeyServiceOps.Commands;

namespace KeyServiceOps.Bases
{
    /// <summary>
    /// The SSH session pool of each runspace: sessions are reused across cmdlets of one PowerShell session, and
    /// closed when the runspace closes or the module is removed.
    /// </summary>
    internal static class SshPoolStore
    {
        private static readonly ConcurrentDictionary<Guid, SshSessionPool> Pools = new ConcurrentDictionary<Guid, SshSessionPool>();

        public static SshSessionPool Current
        {
            get
            {
                var rs = Runspace.DefaultRunspace;
                var key = rs?.InstanceId ?? Guid.Empty;
                return Pools.GetOrAdd(key, _ =>
                {
                    if (rs != null)
                        rs.StateChanged += (s, e) =>
                        {
                            if (e.RunspaceStateInfo.State == RunspaceState.Closed || e.RunspaceStateInfo.State == RunspaceState.Broken) Close(key);
                        };
                    return new SshSessionPool();
                });
            }
        }

        public static void Close(Guid key)
        {
            if (Pools.TryRemove(key, out var p)) p.Dispose();
        }

        /// <summary>Closes this runspace's sessions only: other runspaces (ForEach-Object -Parallel, a host's pool) keep theirs.</summary>
        public static void CloseCurrent() => Close(Runspace.DefaultRunspace?.InstanceId ?? Guid.Empty);
    }
}
