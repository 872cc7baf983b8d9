using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation.Language;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using Xunit;
using KeyServiceOps.TestHost;

namespace KeyServiceOps.Module.Tests
{
    /// <summary>pwsh and Pester cannot run here, so the Pester suites are checked so they cannot rot silently.</summary>
    public class PesterFilesTests
    {
        private static IEnumerable<string> Files() => Directory.GetFiles(Path.Combine(HostedShell.RepoRoot, "tests", "Pester"), "*.ps1");

        [Fact]
        public void Every_Pester_file_parses_and_every_It_calls_our_cmdlets_with_real_parameters_and_asserts()
        {
            var files = Files().ToList();
            Assert.True(files.Count(f => f.EndsWith(".Tests.ps1")) >= 3, "expected the Pester suites under tests/Pester");
            using var sh = new HostedShell();
            // Parameter names and aliases of every exported cmdlet, as the module declares them.
            var r = sh.Run("foreach ($c in Get-Command -Module KeyServiceOps) { foreach ($p in $c.Parameters.Values) { \"$($c.Name)|$($p.Name)\"; foreach ($al in $p.Aliases) { \"$($c.Name)|$al\" } } }");
            Assert.Empty(r.Errors);
            var parms = r.Output.Select(o => o.ToString().Split('|')).GroupBy(x => x[0], StringComparer.OrdinalIgnoreCase)
                .ToDictionary(g => g.Key, g => g.Select(x => x[1]).ToList(), StringComparer.OrdinalIgnoreCase);
            int its = 0;
            foreach (var file in files)
            {
                var ast = Parser.ParseFile(file, out _, out var errors);
                Assert.True(errors.Length == 0, $"{Path.GetFileName(file)}: {string.Join("; ", errors.Select(e => $"line {e.Extent.StartLineNumber}: {e.Message}"))}");
                foreach (var cmd in ast.FindAll(a => a is CommandAst, true).Cast<CommandAst>())
                {
                    var name = cmd.GetCommandName();
                    if (name == null || !parms.TryGetValue(name, out var known)) continue;
                    foreach (var p in cmd.CommandElements.OfType<CommandParameterAst>())
                    {
                        var matches = known.Where(k => k.StartsWith(p.ParameterName, StringComparison.OrdinalIgnoreCase)).ToList();
                        Assert.True(matches.Count >= 1, $"{Path.GetFileName(file)} line {p.Extent.StartLineNumber}: {name} has no parameter -{p.ParameterName}");
                    }
                }
                foreach (var it in ast.FindAll(a => a is CommandAst c && c.GetCommandName() == "It", true).Cast<CommandAst>())
                {
                    its++;
                    var body = it.CommandElements.OfType<ScriptBlockExpressionAst>().LastOrDefault();
                    Assert.True(body != null, $"{Path.GetFileName(file)} line {it.Extent.StartLineNumber}: It without a script block");
                    var names = body.FindAll(a => a is CommandAst, true).Cast<CommandAst>().Select(c => c.GetCommandName()).Where(n => n != null).ToList();
                    // Data-driven suites make their objects in a BeforeAll of the It's Describe (or of the file) and assert on them.
                    var setup = BeforeAllsAround(it).SelectMany(b => b.FindAll(a => a is CommandAst, true).Cast<CommandAst>().Select(c => c.GetCommandName())).Where(n => n != null);
                    Assert.True(names.Any(parms.ContainsKey) || setup.Any(parms.ContainsKey), $"{Path.GetFileName(file)} line {it.Extent.StartLineNumber}: It calls none of our cmdlets (nor does a BeforeAll around it)");
                    Assert.True(names.Contains("Should"), $"{Path.GetFileName(file)} line {it.Extent.StartLineNumber}: It has no Should");
                }
            }
            Assert.True(its >= 15, $"only {its} It blocks");
        }

        [Fact]
        public void Expected_error_ids_in_Pester_exist_in_the_code()
        {
            var src = string.Join("\n", Directory.GetFiles(Path.Combine(HostedShell.RepoRoot, "src"), "*.cs", SearchOption.AllDirectories).Select(File.ReadAllText));
            foreach (var file in Files())
                foreach (System.Text.RegularExpressions.Match m in System.Text.RegularExpressions.Regex.Matches(File.ReadAllText(file), @"-ErrorId '([A-Za-z]+),"))
                    if (m.Groups[1].Value != "ParameterArgumentValidationError")
                        Assert.True(src.Contains("\"" + m.Groups[1].Value + "\""), $"{Path.GetFileName(file)}: error id {m.Groups[1].Value} is not raised anywhere in src/");
        }

        /// <summary>The script blocks of the BeforeAll calls in every block that encloses <paramref name="it"/>, and at the file's top.</summary>
        private static IEnumerable<ScriptBlockExpressionAst> BeforeAllsAround(Ast it)
        {
            for (var p = it.Parent; p != null; p = p.Parent)
            {
                if (!(p is NamedBlockAst || p is ScriptBlockAst)) continue;
                var statements = p is NamedBlockAst nb ? nb.Statements : ((ScriptBlockAst)p).EndBlock?.Statements;
                if (statements == null) continue;
                foreach (var st in statements)
                    if (st is PipelineAst pipe && pipe.PipelineElements.FirstOrDefault() is CommandAst c && string.Equals(c.GetCommandName(), "BeforeAll", StringComparison.OrdinalIgnoreCase))
                        foreach (var sb in c.CommandElements.OfType<ScriptBlockExpressionAst>()) yield return sb;
            }
        }
    }
}
