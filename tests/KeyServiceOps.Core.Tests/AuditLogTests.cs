using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using Newtonsoft.Json.Linq;
using Xunit;
using KeyServiceOps.Core.Audit;
using KeyServiceOps.TestHost;

namespace KeyServiceOps.Core.Tests
{
    public class AuditLogTests
    {
        private static readonly CancellationToken None = CancellationToken.None;
        private static string TempLog() => Path.Combine(Path.GetTempPath(), $"kso-audit-{Guid.NewGuid():N}.jsonl");

        [Fact]
        public async Task Four_processes_times_500_appends_lose_and_tear_nothing()
        {
            var path = TempLog();
            var core = Path.Combine(HostedShell.RepoRoot, "out", "KeyServiceOps", "Dependencies", "KeyServiceOps.Core.dll");
            // Four real pwsh processes, each appending 500 lines as fast as it can, all at once.
            var script = $@"Add-Type -LiteralPath '{core}'
$log = [KeyServiceOps.Core.Audit.AuditLog]::new('{path}')
$w = $env:KSO_WRITER
for ($i = 0; $i -lt 500; $i++) {{ $e = [KeyServiceOps.Core.Audit.AuditEntry]::new(); $e.Action = 'Concurrent'; $e.Target = ""$w/$i""; $e.Outcome = 'Done'; $log.Append($e) }}
'done'";
            var runs = Enumerable.Range(0, 4).Select(w => RealPwsh.RunAsync(script, new Dictionary<string, string> { ["KSO_WRITER"] = "w" + w })).ToList();
            var results = await Task.WhenAll(runs);
            foreach (var r in results) Assert.True(r.ExitCode == 0 && r.StdOut.Contains("done"), r.ToString());
            var lines = File.ReadAllText(path).Split('\n');
            Assert.Equal("", lines.Last()); // ends with a newline: no torn last line
            var parsed = lines.Take(lines.Length - 1).Select(JObject.Parse).ToList(); // throws on a torn line
            Assert.Equal(2000, parsed.Count);
            var targets = parsed.Select(j => (string)j["target"]).ToList();
            Assert.Equal(2000, targets.Distinct().Count());
            for (int w = 0; w < 4; w++) for (int i = 0; i < 500; i++) Assert.Contains($"w{w}/{i}", targets);
            Assert.Equal(2000, new AuditLog(path).Read(action: "Concurrent").Count());
            File.Delete(path);
        }

        [Fact]
        public void A_line_torn_by_a_killed_writer_is_skipped_and_the_next_append_starts_on_its_own_line()
        {
            var path = TempLog();
            var log = new AuditLog(path);
            log.Append(new AuditEntry { Action = "First", Target = "a", Outcome = "Done" });
            File.AppendAllText(path, "{\"time\":\"2026-01-01T00:00:00Z\",\"action\":\"Tor"); // killed mid-write
            Assert.Single(log.Read()); // the half line is not read
            log.Append(new AuditEntry { Action = "Second", Target = "b", Outcome = "Done" });
            Assert.Equal(new[] { "First", "Second" }, log.Read().Select(e => e.Action));
            File.Delete(path);
        }

        [Fact]
        public void A_line_with_an_unreadable_time_does_not_stop_the_read()
        {
            var path = TempLog();
            File.WriteAllText(path, "{\"time\":\"yesterday\",\"action\":\"Odd\",\"outcome\":\"Done\"}\n");
            var log = new AuditLog(path);
            log.Append(new AuditEntry { Action = "Next", Target = "b", Outcome = "Done" });
            Assert.Equal(new[] { "Odd", "Next" }, log.Read().Select(e => e.Action));
            File.Delete(path);
        }

        [Fact]
        public async Task Write_ahead_refuses_the_change_when_the_intent_cannot_be_written()
        {
            var notAFolder = Path.GetTempFileName(); // a file where the log's folder should be
            var log = new AuditLog(Path.Combine(notAFolder, "audit.jsonl"));
            var changed = false;
            var e = await Assert.ThrowsAsync<OpsException>(() => log.RecordAsync(new AuditEntry { Action = "RemoveTarget", Target = "10.0.0.5:8888" },
                () => { changed = true; return Task.FromResult(1); }, _ => new AuditEntry { Outcome = "Removed" }));
            Assert.Equal("AuditLogUnwritable", e.ErrorId);
            Assert.False(changed);
            Assert.Contains(notAFolder, e.Message);
            Assert.Contains("-AuditLogPath", e.RecommendedAction);
            var dir = Directory.CreateTempSubdirectory().FullName; // the log path is a folder
            e = await Assert.ThrowsAsync<OpsException>(() => new AuditLog(dir).RecordAsync(new AuditEntry { Action = "X" }, () => { changed = true; return Task.FromResult(1); }, _ => new AuditEntry()));
            Assert.Equal("AuditLogUnwritable", e.ErrorId);
            Assert.False(changed);
        }

        [Fact]
        public async Task Intent_then_outcome_fold_into_one_entry_and_an_intent_without_outcome_reads_Unfinished()
        {
            var path = TempLog();
            var log = new AuditLog(path);
            await log.RecordAsync(new AuditEntry { Action = "RemoveTarget", Target = "t1" }, () => Task.FromResult("ok"), r => new AuditEntry { Outcome = "Removed" });
            await Assert.ThrowsAsync<InvalidOperationException>(() => log.RecordAsync<string>(new AuditEntry { Action = "RemoveTarget", Target = "t2" },
                () => throw new InvalidOperationException("Kong said no"), r => new AuditEntry { Outcome = "Removed" }));
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => log.RecordAsync<string>(new AuditEntry { Action = "RestartContainer", Target = "t3" },
                () => throw new OperationCanceledException(), r => new AuditEntry { Outcome = "Restarted" }));
            // A process killed between intent and outcome: only the intent line is there.
            log.Append(new AuditEntry { Action = "RestartContainer", Target = "t4", Outcome = AuditLog.Started, Operation = "killed-op" });
            Assert.Equal(8 - 1, File.ReadAllLines(path).Length); // 2 + 2 + 2 + 1
            var read = log.Read().ToDictionary(e => e.Target);
            Assert.Equal(4, read.Count);
            Assert.Equal("Removed", read["t1"].Outcome);
            Assert.Equal("Failed", read["t2"].Outcome);
            Assert.Contains("Kong said no", read["t2"].Detail);
            Assert.Equal("Interrupted", read["t3"].Outcome);
            Assert.Equal("Unfinished", read["t4"].Outcome);
            File.Delete(path);
        }
    }
}
