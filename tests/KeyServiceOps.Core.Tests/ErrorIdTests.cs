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
    /// <summary>
    /// Error ids are a contract (scripts catch them by FullyQualifiedErrorId): each id is built in exactly one place, so it
    /// has one message and one piece of advice, and every place that builds one gives advice. Read from the source, since
    /// the ids are raised from 100-odd conditions no test can all reach.
    /// </summary>
    public class ErrorIdTests
    {
        /// <summary>A place an error is built: the id, the file and line, the call's argument text and how it was built.</summary>
        private sealed record Site(string Id, string File, int Line, string Builder, string Args, int ArgCount);

        // The ways an id is raised: the OpsException constructor and the few helpers that pass a literal id straight to it.
        private static readonly Regex Builders = new Regex(@"\b(new OpsException|E|ThrowArgument|Refuse)\(");

        private static List<Site> Sites()
        {
            var sites = new List<Site>();
            foreach (var file in Directory.GetFiles(Path.Combine(HostedShell.RepoRoot, "src"), "*.cs", SearchOption.AllDirectories))
            {
                if (file.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}") || file.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}")) continue;
                var code = File.ReadAllText(file);
                foreach (Match m in Builders.Matches(code))
                {
                    var args = Arguments(code, m.Index + m.Length, out var count);
                    var id = Regex.Match(args, @"^\s*(?:\w+,\s*)?""([A-Za-z]+)""");
                    if (m.Groups[1].Value == "Refuse" && !id.Success) continue;
                    if (!id.Success) continue; // an id passed on (e.ErrorId, a helper's parameter, a service-name prefix)
                    sites.Add(new Site(id.Groups[1].Value, Path.GetRelativePath(HostedShell.RepoRoot, file), code.Take(m.Index).Count(c => c == '\n') + 1, m.Groups[1].Value, args, count));
                }
            }
            return sites;
        }

        /// <summary>The text between the call's parentheses (strings and nesting respected) and its top-level argument count.</summary>
        private static string Arguments(string code, int start, out int count)
        {
            int depth = 1, i = start; bool inString = false; count = 1;
            for (; i < code.Length && depth > 0; i++)
            {
                var c = code[i];
                if (inString) { if (c == '\\') i++; else if (c == '"') inString = false; continue; }
                if (c == '"') inString = true;
                else if (c == '(' || c == '[' || c == '{') depth++;
                else if (c == ')' || c == ']' || c == '}') depth--;
                else if (c == ',' && depth == 1) count++;
            }
            return code.Substring(start, i - 1 - start);
        }

        [Fact]
        public void The_scan_finds_the_ids_it_should()
        {
            var ids = Sites().Select(s => s.Id).ToHashSet();
            // Raised through each kind of builder: the constructor, a client's helper, the cmdlet helper, the guard.
            Assert.Superset(new HashSet<string> { "InvalidAddress", "PagerDutyRateLimited", "NothingToChange", "LastHealthyTarget", "UpstreamEmpty", "TargetNotFound" }, ids);
            Assert.True(ids.Count > 80, $"only {ids.Count} ids found: the scan is broken");
        }

        [Fact]
        public void Every_error_id_is_built_in_exactly_one_place()
        {
            var twice = Sites().GroupBy(s => s.Id).Where(g => g.Count() > 1)
                .Select(g => $"{g.Key}: {string.Join(", ", g.Select(s => $"{s.File}:{s.Line}"))}").ToList();
            Assert.True(twice.Count == 0, "ids built in more than one place (one message per id: build it in one factory):\n" + string.Join("\n", twice));
        }

        [Fact]
        public void Every_place_that_builds_an_error_gives_advice()
        {
            static bool Advises(Site s) => s.Builder switch
            {
                "new OpsException" => s.Args.Contains("recommendedAction:") || (s.ArgCount >= 6 && !Regex.IsMatch(s.Args, @",\s*null\s*(,|$)")),
                "E" => s.ArgCount >= 4,
                "ThrowArgument" => s.ArgCount >= 4,
                "Refuse" => true, // the guard's refusals: the cmdlet adds the advice (Remove-RingBalancerTarget -Force, or fix capacity)
                _ => false,
            };
            var silent = Sites().Where(s => !Advises(s)).Select(s => $"{s.Id} at {s.File}:{s.Line}").ToList();
            Assert.True(silent.Count == 0, "errors built without a recommended action:\n" + string.Join("\n", silent));
        }

        [Fact]
        public void Error_ids_are_pascal_case_names_not_messages()
            => Assert.All(Sites(), s => Assert.Matches("^[A-Z][a-z]+([A-Z0-9][a-z0-9]*)*$", s.Id));

        [Fact]
        public void The_cmdlet_layer_builds_error_records_in_one_place()
        {
            var root = Path.Combine(HostedShell.RepoRoot, "src", "KeyServiceOps");
            var hand = Directory.GetFiles(root, "*.cs", SearchOption.AllDirectories)
                .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}"))
                .Where(f => File.ReadAllText(f).Contains("new ErrorRecord("))
                .Select(f => Path.GetFileName(f)).ToList();
            Assert.Equal(new[] { "OpsErrorRecord.cs" }, hand);
        }
    }
}
