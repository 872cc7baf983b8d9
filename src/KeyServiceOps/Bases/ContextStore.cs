using System.Collections.Generic;
using System;
using System.Collections.Concurrent;
using System.Management.Automation.Runspaces;
using System.Threading.Tasks;
using KeyServiceOps.Core;
using KeyServiceOps.Commands;

namespace KeyServiceOps.Bases
{
    /// <summary>
    /// The session's context, one per runspace (so parallel runspaces in one process do not share changes). A new
    /// runspace (ForEach-Object -Parallel, Start-ThreadJob, a runspace pool) starts from a copy of the context last
    /// set in this process — held in memory, secrets included, never written — or, in a new process, from the
    /// environment and the session defaults saved with Set-KeyServiceOpsContext -Save. A closed runspace's context
    /// is dropped.
    /// </summary>
    internal static class ContextStore
    {
        private static readonly ConcurrentDictionary<Guid, OpsContext> Map = new ConcurrentDictionary<Guid, OpsContext>();
        private static readonly ConcurrentDictionary<Guid, bool> Tracked = new ConcurrentDictionary<Guid, bool>();
        private static volatile OpsContext _processDefault;
        /// <summary>The runspace the module was first used in (the operator's session): only its Set- becomes the default of new runspaces.</summary>
        private static Guid? _primary;
        /// <summary>What making a session's context had to say (an invalid KEYSERVICEOPS_* variable, a damaged session file), written by the next cmdlet.</summary>
        private static readonly ConcurrentQueue<string> Warnings = new ConcurrentQueue<string>();

        public static IEnumerable<string> TakeWarnings()
        {
            while (Warnings.TryDequeue(out var w)) yield return w;
        }
        private static Guid Key => Runspace.DefaultRunspace?.InstanceId ?? Guid.Empty;
        public static OpsContext Current
        {
            get => Map.GetOrAdd(Key, _ => { Track(); return _processDefault?.Clone() ?? OpsContext.FromEnvironmentAndSession(Warnings.Enqueue); });
            set
            {
                Track(); Map[Key] = value;
                // A context set in a thread job or a -Parallel runspace stays there: it is not what later runspaces start from.
                if (_primary == null || _primary == Key) _processDefault = value;
            }
        }

        private static void Track()
        {
            var rs = Runspace.DefaultRunspace;
            if (rs == null) return;
            var id = rs.InstanceId;
            if (_primary == null) _primary = id;
            // Once per runspace: its context goes when it closes (a Set- in a loop does not pile up handlers).
            if (!Tracked.TryAdd(id, true)) return;
            rs.StateChanged += (s, e) =>
            {
                if (e.RunspaceStateInfo.State == RunspaceState.Closed || e.RunspaceStateInfo.State == RunspaceState.Broken) { Map.TryRemove(id, out _); Tracked.TryRemove(id, out _); if (_primary == id) _primary = null; }
            };
        }
    }
}
