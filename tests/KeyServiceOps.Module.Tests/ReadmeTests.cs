using System;
using System.IO;
using System.Linq;
using System.Management.Automation.Language;
using System.Text.RegularExpressions;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using Xunit;
using KeyServiceOps.TestHost;

namespace KeyServiceOps.Module.Tests
{
    public class ReadmeTests
    {
        [Fact]
        public void Every_powershell_block_in_the_README_parses_and_uses_real_cmdlets_and_parameters()
        {
            var readme = File.ReadAllText(Path.Combine(HostedShell.RepoRoot, "README.md"));
            var blocks = Regex.Matches(readme, "```powershell\\n(.*?)```", RegexOptions.Singleline).Select(m => m.Groups[1].Value).ToList();
            Assert.True(blocks.Count >= 5);
            using var sh = new HostedShell();
            var r = sh.Run("foreach ($c in Get-Command -Module KeyServiceOps) { foreach ($p in $c.Parameters.Values) { \"$($c.Name)|$($p.Name)\"; foreach ($al in $p.Aliases) { \"$($c.Name)|$al\" } } }");
            var parms = r.Output.Select(o => o.ToString().Split('|')).GroupBy(x => x[0], StringComparer.OrdinalIgnoreCase)
                .ToDictionary(g => g.Key, g => g.Select(x => x[1]).ToList(), StringComparer.OrdinalIgnoreCase);
            var used = 0;
            foreach (var block in blocks)
            {
                var ast = Parser.ParseInput(block, out _, out var errors);
                Assert.True(errors.Length == 0, $"README block does not parse: {block}\n{string.Join("\n", errors.Select(e => e.Message))}");
                foreach (var cmd in ast.FindAll(a => a is CommandAst, true).Cast<CommandAst>())
                {
                    var name = cmd.GetCommandName();
                    if (name == null) continue;
                    if (Regex.IsMatch(name, @"^(Get|Set|Add|Remove|Test|Invoke|Start|Restart)-(KeyService|RingBalancer|PagerDuty)"))
                        Assert.True(parms.ContainsKey(name), $"README uses {name}, which the module does not export");
                    if (!parms.TryGetValue(name, out var known)) continue;
                    used++;
                    foreach (var p in cmd.CommandElements.OfType<CommandParameterAst>())
                        Assert.True(known.Any(k => k.StartsWith(p.ParameterName, StringComparison.OrdinalIgnoreCase)), $"README: {name} has no parameter -{p.ParameterName}");
                }
            }
            Assert.True(used >= 30, $"only {used} uses of our cmdlets in the README");
        }
    }
}
