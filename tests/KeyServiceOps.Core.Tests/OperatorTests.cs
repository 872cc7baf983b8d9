using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using KeyServiceOps.Core.Runbook;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using Xunit;

namespace KeyServiceOps.Core.Tests
{
    /// <summary>Issue #27: the operator at 3 a.m. — no silent wait, the current step and its countdown on the progress bar.</summary>
    public class OperatorTests
    {
        private static readonly CancellationToken None = CancellationToken.None;
        private static Task<bool> Yes(string t, string a) => Task.FromResult(true);
        private static Task<bool> No(string t, string a) => Task.FromResult(false);

        private static Task<RunbookSummary> Runbook(OpsRig rig, SimInstance inst, string incident, List<RunbookStepResult> steps, List<RunbookProgress> progress,
            double restartTimeoutSec, bool whatIf = false)
            => rig.Runner().RunAsync(Endpoint.Parse(inst.Address, 8888),
                new RunbookOptions
                {
                    IncidentId = incident, RestartTimeout = TimeSpan.FromSeconds(restartTimeoutSec), PollInterval = TimeSpan.FromMilliseconds(100),
                    EscalationLogLines = 5, WhatIf = whatIf, Progress = p => { lock (progress) progress.Add(p); },
                },
                whatIf ? No : Yes, steps.Add, None);

        [Fact]
        public async Task Docker_logs_come_back_in_time_order_across_stdout_and_stderr()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 1, Ssh = true });
            var t0 = DateTimeOffset.UtcNow.AddMinutes(-5);
            // ooooeeee in time, interleaved: o e o e ...; and a panic on stderr after the info lines before it.
            for (int i = 0; i < 30; i++) lab[0].AppendLog($"level=info msg=\"line {i}\"", i % 3 == 1, t0.AddMilliseconds(10 * i));
            lab[0].AppendLog("panic: boom", true, t0.AddMilliseconds(400));
            var ctx = TestCtx.ForSsh(lab, TestCtx.KnownHostsFor(lab));
            using var pool = new KeyServiceOps.Core.Remote.SshSessionPool();
            var docker = new KeyServiceOps.Core.Remote.DockerClient(new KeyServiceOps.Core.Remote.RemoteShell(pool, null), null);
            for (int round = 0; round < 3; round++)
            {
                var got = new List<KeyServiceOps.Core.Diagnosis.LogEntry>();
                await docker.LogsAsync(KeyServiceOps.Core.Remote.SshTarget.For(ctx, lab[0].Address), new KeyServiceOps.Core.Remote.LogQuery { Tail = 20 }, got.Add, None);
                Assert.Equal(20, got.Count);
                Assert.Equal(got.Select(e => e.Timestamp).OrderBy(x => x), got.Select(e => e.Timestamp)); // time order, every time
                Assert.Equal(Enumerable.Range(1, 20).Select(i => (long)i), got.Select(e => e.Sequence));
                Assert.Equal("panic: boom", got.Last().Message);
                Assert.Contains(got, e => e.Stream == "Stderr");
                Assert.Contains(got, e => e.Stream == "Stdout");
            }
        }

        [Theory]
        [InlineData("time=\"2026-12-05T08:27:01Z\" level=error msg=\"failed\\nagain \\\"x\\\"\" err=\"503\"", "failed again \"x\" (err=\"503\")")]
        [InlineData("2026-12-05T08:27:01.123456789Z [stderr] time=\"t\" level=info msg=\"ok\"", "[stderr] ok")]
        [InlineData("panic: boom", "panic: boom")]
        [InlineData("msg=\"unterminated", "msg=\"unterminated")]
        public void A_log_line_reads_message_first_with_logrus_escapes_as_whitespace(string line, string expected)
            => Assert.Equal(expected, KeyServiceOps.Core.Diagnosis.LogText.Readable(line));

        [Fact]
        public void The_merge_holds_one_stream_back_only_until_the_other_shows_a_later_line_and_is_bounded()
        {
            var t0 = DateTimeOffset.UtcNow;
            KeyServiceOps.Core.Diagnosis.LogEntry E(int ms, bool err) => new KeyServiceOps.Core.Diagnosis.LogEntry { Timestamp = t0.AddMilliseconds(ms), StreamValue = err ? KeyServiceOps.Core.Diagnosis.LogStream.Stderr : KeyServiceOps.Core.Diagnosis.LogStream.Stdout, Message = ms.ToString() };
            var got = new List<string>();
            var m = new KeyServiceOps.Core.Remote.StreamMerger(e => got.Add(e.Message)) { MaxHeld = 3 };
            foreach (var ms in new[] { 1, 2, 5, 6 }) m.Add(E(ms, false));  // stdout runs ahead: held (the cap lets the oldest go)
            Assert.Equal(new[] { "1" }, got);
            m.Add(E(3, true));                                            // stderr shows 3: stdout's 2 can go, then 3 (before 5)
            Assert.Equal(new[] { "1", "2", "3" }, got);
            m.Finish();
            Assert.Equal(new[] { "1", "2", "3", "5", "6" }, got);
        }

        [Fact]
        public async Task Every_step_and_every_wait_is_on_the_progress_bar_with_a_countdown()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true, PagerDuty = true });
            var inc = lab.PagerDuty.AddAlert(lab[0].Address);
            using var rig = new OpsRig(lab);
            await lab[0].SetModeAsync(InstanceMode.Down);
            lab[0].RestartDelay = TimeSpan.FromSeconds(1.5);
            var steps = new List<RunbookStepResult>();
            var progress = new List<RunbookProgress>();
            var s = await Runbook(rig, lab[0], inc.Id, steps, progress, 20);
            Assert.Equal("Recovered", s.FinalState);
            // Each step that ran said so when it started, in order, and step 3's waits counted down.
            Assert.Equal(new[] { 1, 2, 3, 4 }, progress.Where(p => p.Status == "running").Select(p => p.Step).ToArray());
            var waits = progress.Where(p => p.Step == 3 && p.SecondsRemaining >= 0).ToList();
            Assert.NotEmpty(waits);
            Assert.All(waits, p => Assert.Contains("s left", p.Status));
            Assert.Contains(progress, p => p.Step == 3 && p.Status.StartsWith("reading the logs"));
            Assert.All(progress, p => Assert.Equal(new[] { "", "Verify health", "Remove from ring-balancer", "Diagnose and restart", "Add back to ring-balancer", "Escalate" }[p.Step], p.Name));
        }

        [Fact]
        public async Task An_instance_that_died_again_after_this_incidents_restart_is_said_so_and_never_waited_on_silently()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true, PagerDuty = true });
            var inc = lab.PagerDuty.AddAlert(lab[0].Address);
            using var rig = new OpsRig(lab);
            await lab[0].SetModeAsync(InstanceMode.Down);
            var first = await Runbook(rig, lab[0], inc.Id, new List<RunbookStepResult>(), new List<RunbookProgress>(), 20);
            Assert.Equal("Recovered", first.FinalState);
            Assert.Equal(1, lab[0].Restarts);
            await Task.Delay(1500); // the earlier restart's time to recover (the next runs' timeout: 1 s) is spent

            // 1. It died again (out of memory): docker says it exited after that restart; the runbook says so and does not wait.
            await lab[0].SetModeAsync(InstanceMode.Down);
            lab[0].ContainerStatus = "exited";
            var steps = new List<RunbookStepResult>();
            var progress = new List<RunbookProgress>();
            var s = await Runbook(rig, lab[0], inc.Id, steps, progress, 1);
            var step3 = steps.Single(x => x.Step == 3);
            Assert.Contains("not restarted twice", step3.Detail);
            Assert.Contains("stopped again since (exited", step3.Detail);
            Assert.DoesNotContain(progress, p => p.Status.StartsWith("waiting for"));
            Assert.Equal(1, lab[0].Restarts);

            // 2. Running but down, long after that restart: its time to recover is spent; not waited for again (it was
            //    waited for the whole restart timeout, silently, before).
            lab[0].ContainerStatus = "running";
            steps.Clear(); progress.Clear();
            s = await Runbook(rig, lab[0], inc.Id, steps, progress, 1);
            step3 = steps.Single(x => x.Step == 3);
            Assert.Contains("still not operational", step3.Detail);
            Assert.Contains("not waited for again", step3.Detail);
            Assert.DoesNotContain(progress, p => p.Status.StartsWith("waiting for"));
            Assert.Equal("Escalated", s.FinalState);

            // 3. -WhatIf never waits either, and says what it would do.
            steps.Clear(); progress.Clear();
            await Runbook(rig, lab[0], inc.Id, steps, progress, 600, whatIf: true);
            step3 = steps.Single(x => x.Step == 3);
            Assert.Contains("not restarted twice", step3.Detail);
            Assert.Contains("would wait up to", step3.Detail);
            Assert.DoesNotContain(progress, p => p.Status.StartsWith("waiting for"));
            Assert.Equal(1, lab[0].Restarts);
        }
    }
}
