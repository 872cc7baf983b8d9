using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using Xunit;
using KeyServiceOps.TestHost;

namespace KeyServiceOps.Core.Tests
{
    /// <summary>The core's namespaces (one folder each) depend on each other in one direction only.</summary>
    public class NamespaceLayeringTests
    {
        private static Dictionary<string, HashSet<string>> Graph()
        {
            var root = Path.Combine(HostedShell.RepoRoot, "src", "KeyServiceOps.Core");
            var folders = Directory.GetDirectories(root).Select(Path.GetFileName).Where(d => d != "bin" && d != "obj").ToList();
            var named = folders.Where(f => f != "Common").ToList(); // Common holds the root namespace, KeyServiceOps.Core
            var graph = folders.ToDictionary(f => f, _ => new HashSet<string>());
            foreach (var f in folders)
                foreach (var file in Directory.GetFiles(Path.Combine(root, f), "*.cs"))
                {
                    var code = Regex.Replace(File.ReadAllText(file), @"//.*", "");
                    foreach (var other in named.Where(n => n != f))
                        if (Regex.IsMatch(code, $@"\bKeyServiceOps\.Core\.{other}\b|(?<![\w.]){other}\.[A-Z]\w*"))
                            graph[f].Add(other);
                    // Every named namespace sits under the root one and may use it; the root uses none of them (checked above).
                    if (f != "Common") graph[f].Add("Common");
                }
            return graph;
        }

        [Fact]
        public void There_is_no_cycle_between_core_namespaces()
        {
            var g = Graph();
            var state = new Dictionary<string, int>();
            var path = new Stack<string>();
            void Visit(string n)
            {
                state[n] = 1; path.Push(n);
                foreach (var m in g[n])
                {
                    if (state.TryGetValue(m, out var s) && s == 1)
                        Assert.Fail("namespace cycle: " + string.Join(" -> ", path.Reverse().SkipWhile(x => x != m).Append(m)));
                    if (!state.ContainsKey(m)) Visit(m);
                }
                path.Pop(); state[n] = 2;
            }
            foreach (var n in g.Keys) if (!state.ContainsKey(n)) Visit(n);
            // The layering the design names: clients never use the runbook layer; audit uses no client.
            foreach (var client in new[] { "Health", "RingBalancer", "Remote", "Diagnosis", "PagerDuty", "CentralLogs" })
                Assert.DoesNotContain("Runbook", g[client]);
            Assert.DoesNotContain(g["Audit"], x => x != "Common");
        }
    }
}
