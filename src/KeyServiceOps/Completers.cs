using System;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using System.Threading;
using KeyServiceOps.Core;
using KeyServiceOps.Core.RingBalancer;
using KeyServiceOps.Bases;
using KeyServiceOps.Commands;

namespace KeyServiceOps
{
    /// <summary>Completion helpers: quick (a few seconds at most) and silent on failure.</summary>
    internal static class CompletionHelp
    {
        public static IEnumerable<CompletionResult> Filter(IEnumerable<string> values, string word)
        {
            var p = new WildcardPattern((word ?? "").Trim('\'', '"') + "*", WildcardOptions.IgnoreCase);
            return values.Where(v => v != null && p.IsMatch(v)).Distinct().OrderBy(v => v)
                .Select(v => new CompletionResult(v.IndexOfAny(new[] { ' ', '$', ';' }) >= 0 ? "'" + v + "'" : v, v, CompletionResultType.ParameterValue, v));
        }

        public static T Quietly<T>(Func<CancellationToken, System.Threading.Tasks.Task<T>> work, T fallback)
        {
            try
            {
                using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(3)))
                    return work(cts.Token).GetAwaiter().GetResult();
            }
            catch (Exception) { return fallback; }
        }

        public static OpsContext Context(IDictionary fake)
        {
            var c = (fake?["Context"] is KeyServiceOpsContext k ? k.Settings : fake?["Context"] is PSObject { BaseObject: KeyServiceOpsContext pk } ? pk.Settings : ContextStore.Current).Clone();
            c.Http.Timeout = TimeSpan.FromSeconds(3);
            if (fake != null && fake["KongAdminUri"] is Uri u) c.Kong.AdminUri = u;
            else if (fake != null && fake["KongAdminUri"] is string s && Uri.TryCreate(s, UriKind.Absolute, out var us)) c.Kong.AdminUri = us;
            if (fake != null && fake["Workspace"] is string w) c.Kong.Workspace = w;
            return c;
        }
    }

    public sealed class UpstreamCompleter : IArgumentCompleter
    {
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            var c = CompletionHelp.Context(fakeBoundParameters);
            var names = c.Kong.AdminUri == null ? new List<string>() :
                CompletionHelp.Quietly(ct => new KongClient(c.ForKong(), null).ListUpstreamsAsync(ct), new List<string>());
            names.Add(c.Kong.Upstream);
            return CompletionHelp.Filter(names, wordToComplete);
        }
    }

    public sealed class TargetCompleter : IArgumentCompleter
    {
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            var c = CompletionHelp.Context(fakeBoundParameters);
            if (c.Kong.AdminUri == null) return Enumerable.Empty<CompletionResult>();
            var upstream = fakeBoundParameters?["Upstream"] as string ?? c.Kong.Upstream;
            var targets = CompletionHelp.Quietly(ct => new KongClient(c.ForKong(), null).GetTargetsAsync(upstream, ct), new List<RingBalancerTarget>());
            return CompletionHelp.Filter(targets.Select(t => t.Target), wordToComplete);
        }
    }

    public sealed class EnvironmentCompleter : IArgumentCompleter
    {
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters)
            => CompletionHelp.Filter(ContextStore.Current.Inventory.Select(e => e.Environment), wordToComplete);
    }

    /// <summary>Instance addresses: Kong's targets of the upstream and the inventory.</summary>
    public sealed class AddressCompleter : IArgumentCompleter
    {
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            var c = CompletionHelp.Context(fakeBoundParameters);
            var values = c.Inventory.Select(e => e.Address).ToList();
            if (c.Kong.AdminUri != null)
            {
                var upstream = fakeBoundParameters?["Upstream"] as string ?? c.Kong.Upstream;
                values.AddRange(CompletionHelp.Quietly(ct => new KongClient(c.ForKong(), null).GetTargetsAsync(upstream, ct), new List<RingBalancerTarget>()).Select(t => t.Address));
            }
            return CompletionHelp.Filter(values, wordToComplete);
        }
    }

    /// <summary>What can be added back: inventory instances and targets the audit log says were removed, less those in the upstream now.</summary>
    public sealed class AddTargetCompleter : IArgumentCompleter
    {
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            var c = CompletionHelp.Context(fakeBoundParameters);
            var upstream = fakeBoundParameters?["Upstream"] as string ?? c.Kong.Upstream;
            var candidates = c.Inventory.Select(e => new Endpoint(e.Address, e.Port).Target).ToList();
            try { candidates.AddRange(new KeyServiceOps.Core.Audit.AuditLog(c.Safety.AuditLogPath).Read(null, null, "RemoveTarget").Where(e => e.Upstream == null || e.Upstream == upstream).Select(e => e.Target)); }
            catch (Exception) { /* completion is silent on failure */ }
            var present = c.Kong.AdminUri == null ? new List<RingBalancerTarget>()
                : CompletionHelp.Quietly(ct => new KongClient(c.ForKong(), null).GetTargetsAsync(upstream, ct), new List<RingBalancerTarget>());
            var there = new HashSet<string>(present.Where(t => t.Weight > 0).Select(t => t.Target), StringComparer.OrdinalIgnoreCase);
            return CompletionHelp.Filter(candidates.Where(t => t != null && !there.Contains(t)), wordToComplete);
        }
    }

    /// <summary>The audit log's actions: the ones this module writes, and any other found in the log.</summary>
    public sealed class AuditActionCompleter : IArgumentCompleter
    {
        private static readonly string[] Known = { "RemoveTarget", "DrainTarget", "AddTarget", "RestartContainer", "AddIncidentNote", "UpdateIncident" };

        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            var values = Known.ToList();
            try { values.AddRange(new KeyServiceOps.Core.Audit.AuditLog(fakeBoundParameters?["Path"] as string ?? ContextStore.Current.Safety.AuditLogPath).Read().Select(e => e.Action)); }
            catch (Exception) { /* completion is silent on failure */ }
            return CompletionHelp.Filter(values, wordToComplete);
        }
    }
}
