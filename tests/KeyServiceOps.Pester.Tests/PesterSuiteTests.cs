using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation.Language;
using System.Text.Json;
using System.Threading.Tasks;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using Xunit;
using Xunit.Abstractions;
using KeyServiceOps.TestHost;

namespace KeyServiceOps.Pester.Tests
{
    /// <summary>Runs every Pester suite once, in the pinned real pwsh, and keeps each test's result.</summary>
    public sealed class PesterRun : IAsyncLifetime
    {
        public PwshResult Process { get; private set; }
        public List<JsonElement> Tests { get; } = new List<JsonElement>();
        public List<JsonElement> Containers { get; } = new List<JsonElement>();

        // The run happens inside the first test that needs it, not in the fixture: xunit counts a test's time and not a
        // fixture's, so the summary's "Duration" then includes the minutes the Pester suites take (#27 row 14).
        private Task _started;
        private readonly object _gate = new object();
        public Task InitializeAsync() => Task.CompletedTask;

        public void Ensure()
        {
            lock (_gate) _started ??= RunAsync();
            _started.GetAwaiter().GetResult();
        }

        private async Task RunAsync()
        {
            var pester = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "pester-module.txt")).Trim();
            var result = Path.Combine(Path.GetTempPath(), $"kso-pester-{Guid.NewGuid():N}.json");
            var runner = Path.Combine(HostedShell.RepoRoot, "tests", "Pester", "Invoke-KsoPester.ps1");
            Process = await RealPwsh.RunAsync($"& '{runner}' -ResultPath '{result}' -PesterPath '{pester}'; exit $LASTEXITCODE", timeout: TimeSpan.FromMinutes(12));
            if (File.Exists(result))
            {
                using var doc = JsonDocument.Parse(File.ReadAllText(result));
                foreach (var t in Items(doc.RootElement, "Tests")) Tests.Add(t.Clone());
                foreach (var c in Items(doc.RootElement, "Containers")) Containers.Add(c.Clone());
                File.Delete(result);
            }
        }

        private static IEnumerable<JsonElement> Items(JsonElement root, string name)
        {
            if (!root.TryGetProperty(name, out var v)) yield break;
            if (v.ValueKind == JsonValueKind.Array) foreach (var e in v.EnumerateArray()) yield return e;
            else if (v.ValueKind == JsonValueKind.Object) yield return v;
        }

        public Task DisposeAsync() => Task.CompletedTask;
    }

    public class PesterSuiteTests : IClassFixture<PesterRun>
    {
        private readonly PesterRun _run;
        private readonly ITestOutputHelper _out;
        public PesterSuiteTests(PesterRun run, ITestOutputHelper output) { _run = run; _out = output; }

        /// <summary>Every `It` of every suite, found by parsing (file, line of its script block, name).</summary>
        public static IEnumerable<object[]> Its()
        {
            foreach (var file in Directory.GetFiles(Path.Combine(HostedShell.RepoRoot, "tests", "Pester"), "*.Tests.ps1").OrderBy(f => f))
            {
                var ast = Parser.ParseFile(file, out _, out _);
                foreach (var it in ast.FindAll(a => a is CommandAst c && string.Equals(c.GetCommandName(), "It", StringComparison.OrdinalIgnoreCase), true).Cast<CommandAst>())
                {
                    var name = it.CommandElements.Skip(1).OfType<StringConstantExpressionAst>().FirstOrDefault()?.Value
                        ?? it.CommandElements.Skip(1).OfType<ExpandableStringExpressionAst>().FirstOrDefault()?.Value ?? "?";
                    var block = it.CommandElements.OfType<ScriptBlockExpressionAst>().FirstOrDefault();
                    yield return new object[] { Path.GetFileName(file), block?.Extent.StartLineNumber ?? it.Extent.StartLineNumber, name };
                }
            }
        }

        [Theory]
        [MemberData(nameof(Its))]
        public void Pester(string file, int line, string name)
        {
            _run.Ensure();
            var mine = _run.Tests.Where(t => Path.GetFileName(t.GetProperty("File").GetString() ?? "") == file && t.GetProperty("Line").GetInt32() == line).ToList();
            if (mine.Count == 0)
            {
                var container = _run.Containers.FirstOrDefault(c => (c.GetProperty("File").GetString() ?? "").EndsWith(file));
                Assert.Fail($"'{name}' ({file}:{line}) did not run. Container: {container}\n{_run.Process}");
            }
            foreach (var t in mine)
            {
                var result = t.GetProperty("Result").GetString();
                _out.WriteLine($"{t.GetProperty("Name").GetString()}: {result}");
                Assert.True(result == "Passed", $"{t.GetProperty("Name").GetString()} ({file}:{line}): {result}\n{t.GetProperty("Error").GetString()}");
            }
        }

        [Fact]
        public void The_Pester_process_exits_zero_and_every_result_maps_to_an_It()
        {
            _run.Ensure();
            var known = Its().Select(r => ((string)r[0], (int)r[1])).ToHashSet();
            var unmapped = _run.Tests.Where(t => !known.Contains((Path.GetFileName(t.GetProperty("File").GetString() ?? ""), t.GetProperty("Line").GetInt32()))).ToList();
            Assert.True(unmapped.Count == 0, "results with no parsed It: " + string.Join(", ", unmapped.Select(u => u.GetProperty("Name").GetString())));
            Assert.True(_run.Tests.Count >= known.Count, $"{_run.Tests.Count} results for {known.Count} Its\n{_run.Process}");
            Assert.True(_run.Process.ExitCode == 0, _run.Process.ToString());
        }
    }
}
