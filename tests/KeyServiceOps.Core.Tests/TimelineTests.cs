using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using KeyServiceOps.Core.Runbook;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using Xunit;

namespace KeyServiceOps.Core.Tests
{
    /// <summary>Issue #31: the incident's story from every source, against the lab's own records.</summary>
    public class TimelineTests
    {
        private static readonly CancellationToken None = CancellationToken.None;

        private static async Task<(Lab.Estate.Lab lab, OpsRig rig, string incident, RunbookSummary summary, DateTimeOffset before, DateTimeOffset after)> CrashAndRecover(string hostileLine = null)
        {
            var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true, PagerDuty = true });
            var rig = new OpsRig(lab);
            await lab[0].ApplyScenarioAsync(FaultScenario.CleanCrash);
            if (hostileLine != null) lab[0].AppendLog(hostileLine, true);
            var before = DateTimeOffset.UtcNow;
            var inc = lab.PagerDuty.AddAlert(lab[0].Address);
            var s = await rig.Runner().RunAsync(Endpoint.Parse(lab[0].Address, 8888),
                new RunbookOptions { IncidentId = inc.Id, RestartTimeout = TimeSpan.FromSeconds(20), PollInterval = TimeSpan.FromMilliseconds(100), EscalationLogLines = 5 },
                (t, a) => Task.FromResult(true), _ => { }, None);
            return (lab, rig, inc.Id, s, before, DateTimeOffset.UtcNow);
        }

        [Fact]
        public async Task A_crash_the_runbook_recovered_is_told_in_time_order_and_the_figures_match_the_lab()
        {
            var (lab, rig, incident, summary, before, after) = await CrashAndRecover();
            await using var _ = lab; using var __ = rig;
            Assert.Equal("Recovered", summary.FinalState);
            var tl = await new IncidentTimelineBuilder(rig.Ctx, rig.Pd, rig.Audit, rig.Docker, null, rig.Rb).BuildAsync(incident, null, null, null, None);
            var ev = tl.Events;
            Assert.Equal(ev.OrderBy(e => e.Time).Select(e => e.Time), ev.Select(e => e.Time));
            // Kong's own word: the target was created again when the runbook added it back (between the audit's intent
            // and outcome of that add), and it is in rotation now.
            var listed = Assert.Single(ev, e => e.Source == "Kong" && e.Kind == "Listed");
            var addLines = rig.Audit.Read(null, lab[0].Target, "AddTarget").ToList();
            Assert.InRange(listed.Time, addLines.Min(a => a.Time).AddSeconds(-1), addLines.Max(a => a.Time).AddSeconds(1));
            Assert.Contains(ev, e => e.Source == "Kong" && e.Kind == "InRotation");
            Assert.Empty(tl.Summary.Missing);
            Assert.Equal(lab[0].Address, tl.Summary.Address);
            // Every source the lab wrote to is there.
            Assert.Contains(ev, e => e.Source == "PagerDuty" && e.Kind == "Triggered");
            Assert.Contains(ev, e => e.Source == "PagerDuty" && e.Kind == "Annotated");
            Assert.Contains(ev, e => e.Source == "PagerDuty" && e.Kind == "Note" && e.Detail.Contains("manually removed target"));
            Assert.Contains(ev, e => e.Source == "Audit" && e.Kind == "Removed");
            Assert.Contains(ev, e => e.Source == "Audit" && e.Kind == "Restarted");
            Assert.Contains(ev, e => e.Source == "Journal" && e.Kind == "Restarted");
            Assert.Contains(ev, e => e.Source == "Container" && e.Kind == "Started");
            Assert.Contains(ev, e => e.Source == "Logs" && e.Kind == "Fault");
            // The figures against the lab's ground truth: one restart (audit and journal counted once), removed then added
            // within the run, recovered after the alert.
            var s = tl.Summary;
            Assert.Equal(lab[0].Restarts, s.Restarts);
            Assert.Equal(1, s.Restarts);
            var removed = ev.First(e => e.Source == "Audit" && e.Kind == "Removed").Time;
            var added = ev.First(e => e.Source == "Audit" && e.Kind == "Added").Time;
            Assert.Equal(Math.Round((added - removed).TotalSeconds, 1), s.OutOfRotationSeconds);
            Assert.InRange(s.OutOfRotationSeconds.Value, 0, (after - before).TotalSeconds + 1);
            Assert.NotNull(s.TimeToRecoverSeconds);
            Assert.True(s.TimeToRecoverSeconds >= s.OutOfRotationSeconds - 2);
            Assert.Equal(0, s.Escalations);
            Assert.NotEmpty(s.Responders);
        }

        [Fact]
        public async Task A_self_healing_incident_is_told_with_the_healers_removal_restart_and_add_and_the_figures_match_the_lab()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 4, Ssh = true, PagerDuty = true });
            using var rig = new OpsRig(lab);
            await lab[1].ApplyScenarioAsync(FaultScenario.CleanCrash);
            var inc = lab.PagerDuty.AddAlert(lab[1].Address);
            var o = new SelfHealingOptions { StatePath = Path.Combine(Path.GetTempPath(), $"kso-tl-heal-{Guid.NewGuid():N}.json"), FailuresToRemove = 1, PassesToAdd = 1, Restart = true, RestartBackoff = TimeSpan.Zero };
            var healer = rig.Healer();
            var passes = 0;
            while (passes < 30 && !(lab[1].Restarts == 1 && lab.Kong.Targets(lab.Upstream).Any(t => t.Target == lab[1].Target && t.Weight > 0)))
            {
                await healer.PassAsync(o, (t, a) => Task.FromResult(true), null, None);
                passes++;
                await Task.Delay(200);
            }
            Assert.Equal(1, lab[1].Restarts);

            var tl = await new IncidentTimelineBuilder(rig.Ctx, rig.Pd, rig.Audit, rig.Docker, null, rig.Rb).BuildAsync(inc.Id, null, null, null, None);
            var ev = tl.Events;
            Assert.Empty(tl.Summary.Missing);
            var removed = Assert.Single(ev, e => e.Source == "Audit" && e.Kind == "Removed");
            var added = Assert.Single(ev, e => e.Source == "Audit" && e.Kind == "Added");
            Assert.StartsWith("self-healing", removed.Actor);
            Assert.Contains(ev, e => e.Source == "Audit" && e.Kind == "Restarted" && e.Actor.StartsWith("self-healing"));
            Assert.Contains(ev, e => e.Source == "Journal" && e.Kind == "Restarted");
            Assert.Contains(ev, e => e.Source == "Container" && e.Kind == "Started");
            Assert.Contains(ev, e => e.Source == "Kong" && e.Kind == "Listed" && e.Time >= removed.Time);
            Assert.Contains(ev, e => e.Source == "Kong" && e.Kind == "InRotation");
            Assert.Contains(ev, e => e.Source == "PagerDuty" && e.Kind == "Note" && e.Detail.Contains("self-healing"));
            // The figures against the lab: one restart; out of rotation from the healer's removal to its add.
            Assert.Equal(lab[1].Restarts, tl.Summary.Restarts);
            Assert.Equal(Math.Round((added.Time - removed.Time).TotalSeconds, 1), tl.Summary.OutOfRotationSeconds);
            Assert.Contains(tl.Summary.Responders, r => r.StartsWith("self-healing"));
        }

        [Fact]
        public void Markdown_cells_are_inert_no_link_image_heading_or_html_from_outside_text()
        {
            // Found by a hostile review: an image in a note (a request when the document is viewed) and a javascript:
            // link went through to the Markdown verbatim.
            var tl = new IncidentTimeline();
            var t0 = DateTimeOffset.Parse("2026-12-06T04:00:00Z");
            tl.Events.Add(new TimelineEvent { Time = t0, Source = "PagerDuty", Kind = "Note", Actor = "@channel", Detail = "see ![t](http://127.0.0.1:9/track.png) and [x](javascript:alert(1)) `code` <b>b</b> # H1 **bold** | pipe https://evil.example" });
            var md = IncidentReport.Markdown(tl);
            // Every character Markdown acts on is escaped where it came from outside (none stands without its backslash).
            foreach (var live in new[] { @"!\[t\]\(", @"\[x\]\(", "<b>", @"\*\*bold", "`code`", "https://evil", @"\| pipe" })
                Assert.DoesNotMatch(@"(?<!\\)" + live, md);
            Assert.Contains("\\!\\[t\\]\\(", md);                                  // escaped, still readable
            Assert.Contains("\\@channel", md);
        }

        [Fact]
        public void Figures_never_call_an_instance_recovered_that_Kong_shows_out_of_rotation_now()
        {
            // Found by a hostile review: removed, added, removed again by another runner and escalated: "recovered in 6 s".
            var tl = new IncidentTimeline();
            var t0 = DateTimeOffset.Parse("2026-12-06T04:00:00Z");
            tl.Summary.Start = t0;
            tl.Events.Add(new TimelineEvent { Time = t0.AddSeconds(2), Source = "Audit", Kind = "Removed" });
            tl.Events.Add(new TimelineEvent { Time = t0.AddSeconds(5), Source = "Audit", Kind = "Added" });
            tl.Events.Add(new TimelineEvent { Time = t0.AddSeconds(60), Source = "Audit", Kind = "Removed" });
            tl.Events.Add(new TimelineEvent { Time = t0.AddSeconds(90), Source = "Kong", Kind = "Absent" });
            IncidentTimelineBuilder.Figures(tl);
            Assert.Null(tl.Summary.TimeToRecoverSeconds);
            Assert.True(tl.Summary.OutOfRotationSeconds > 60, $"out of rotation {tl.Summary.OutOfRotationSeconds} s: still out");
        }

        [Fact]
        public async Task A_restart_for_an_earlier_incident_is_not_counted_in_this_incidents_timeline()
        {
            // Found by a hostile review: the journal line and audit line of the previous incident's restart were counted (2).
            var (lab, rig, first, s1, _, _) = await CrashAndRecover();
            await using var _ = lab; using var __ = rig;
            Assert.Equal("Recovered", s1.FinalState);
            await lab[0].ApplyScenarioAsync(FaultScenario.CleanCrash);
            await Task.Delay(1100);
            var second = lab.PagerDuty.AddAlert(lab[0].Address);
            var s2 = await rig.Runner().RunAsync(Endpoint.Parse(lab[0].Address, 8888),
                new RunbookOptions { IncidentId = second.Id, RestartTimeout = TimeSpan.FromSeconds(20), PollInterval = TimeSpan.FromMilliseconds(100), EscalationLogLines = 5, IncidentClockSlack = TimeSpan.Zero },
                (t, a) => Task.FromResult(true), _ => { }, None);
            Assert.Equal("Recovered", s2.FinalState);
            Assert.Equal(2, lab[0].Restarts);
            var tl = await new IncidentTimelineBuilder(rig.Ctx, rig.Pd, rig.Audit, rig.Docker, null, rig.Rb).BuildAsync(second.Id, null, null, null, None);
            Assert.Equal(1, tl.Summary.Restarts);
            Assert.DoesNotContain(tl.Events, e => e.Detail != null && e.Detail.Contains(first));
        }

        [Fact]
        public async Task A_source_that_cannot_be_read_is_listed_missing_not_left_out()
        {
            var (lab, rig, incident, _, _, _) = await CrashAndRecover();
            await using var _ = lab; using var __ = rig;
            lab.PagerDuty.Outage = true;
            var tl = await new IncidentTimelineBuilder(rig.Ctx, rig.Pd, rig.Audit, rig.Docker, null).BuildAsync(incident, lab[0].Address, null, null, None);
            Assert.Contains(tl.Summary.Missing, m => m.StartsWith("PagerDuty"));
            Assert.Contains(tl.Events, e => e.Source == "Audit"); // the others still are
            // Without -Address, PagerDuty down leaves the instance unknown: said, not silently left out (a hostile review).
            var blind = await new IncidentTimelineBuilder(rig.Ctx, rig.Pd, rig.Audit, rig.Docker, null).BuildAsync(incident, null, null, null, None);
            Assert.Contains(blind.Summary.Missing, m => m.Contains("give -Address"));
            // A mistyped incident is the caller's error, not a source that is down.
            lab.PagerDuty.Outage = false;
            var e = await Assert.ThrowsAsync<OpsException>(() => new IncidentTimelineBuilder(rig.Ctx, rig.Pd, rig.Audit, rig.Docker, null).BuildAsync("PNOPE12", null, null, null, None));
            Assert.Equal("PagerDutyNotFound", e.ErrorId);
        }

        [Fact]
        public async Task The_report_is_one_page_with_no_script_and_a_hostile_log_line_stays_text_in_headless_Chromium()
        {
            const string hostile = "panic: <script>document.title='owned'</script><img src=x onerror=alert(1)>";
            var (lab, rig, incident, _, _, _) = await CrashAndRecover(hostile);
            await using var _ = lab; using var __ = rig;
            var tl = await new IncidentTimelineBuilder(rig.Ctx, rig.Pd, rig.Audit, rig.Docker, null).BuildAsync(incident, null, null, null, None);
            var html = IncidentReport.Html(tl);
            Assert.DoesNotContain("<script", html);
            Assert.DoesNotContain("<img", html);
            Assert.DoesNotContain("http://", html.Replace("http://" + lab[0].Address, "")); // nothing to fetch
            var md = IncidentReport.Markdown(tl);
            Assert.DoesNotMatch(@"(?<!\\)<script", md);                        // escaped: \<script, shown as text

            if (!File.Exists("/usr/bin/chromium")) throw new InvalidOperationException("Debian's chromium is not installed (.ci/run installs it)");
            var dir = Directory.CreateTempSubdirectory("kso-report-").FullName;
            var page = Path.Combine(dir, "report.html");
            File.WriteAllText(page, html);
            foreach (var width in new[] { 1366, 1920 })
            {
                var (dom, _) = await Chromium(dir, page, $"--window-size={width},900", "--dump-dom");
                Assert.Contains($"Incident {incident}", dom);
                Assert.DoesNotContain("owned</title>", dom);               // the hostile script never ran
                Assert.Contains("&lt;script&gt;", dom);                     // it is shown as text
                foreach (var lane in new[] { "PagerDuty", "Audit", "Journal", "Container", "Logs" }) Assert.Contains($"data-lane=\"{lane}\"", dom);
                // The intervals as bars on the shared axis: down, out of rotation, restarting (the restart inside the time out).
                foreach (var kind in new[] { "down", "out-of-rotation", "restarting" }) Assert.Contains($"data-kind=\"{kind}\"", dom);
                var bars = System.Text.RegularExpressions.Regex.Matches(dom, "data-kind=\"([a-z-]+)\" data-from=\"([^\"]+)\" data-to=\"([^\"]+)\"")
                    .ToDictionary(m => m.Groups[1].Value, m => (from: DateTimeOffset.Parse(m.Groups[2].Value), to: DateTimeOffset.Parse(m.Groups[3].Value)));
                Assert.True(bars["down"].from <= bars["out-of-rotation"].from && bars["out-of-rotation"].from <= bars["restarting"].from && bars["restarting"].to <= bars["out-of-rotation"].to,
                    string.Join("; ", bars.Select(b => $"{b.Key} {b.Value.from:HH:mm:ss.fff}-{b.Value.to:HH:mm:ss.fff}")));
                Assert.Matches("<div class=\"axis\"><span[^>]*>\\d\\d:\\d\\d:\\d\\d</span>", dom);
                Assert.Contains($"<b>{tl.Summary.Restarts}</b>", dom.Substring(dom.IndexOf("id=\"fig-restarts\"", StringComparison.Ordinal)));
                // The dots of each lane are in time order from left to right.
                var lefts = System.Text.RegularExpressions.Regex.Matches(dom, "data-time=\"([^\"]+)\" style=\"left:([0-9.]+)%").Select(m => (DateTimeOffset.Parse(m.Groups[1].Value), double.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture))).ToList();
                Assert.Equal(tl.Events.Count, lefts.Count);
                Assert.All(lefts, a => Assert.All(lefts.Where(b => b.Item1 > a.Item1), b => Assert.True(b.Item2 >= a.Item2)));
                var shot = Path.Combine(dir, $"report-{width}.png");
                var (_, err) = await Chromium(dir, page, $"--window-size={width},900", $"--screenshot={shot}");
                Assert.True(File.Exists(shot) && new FileInfo(shot).Length > 1000, "no screenshot: " + err);
            }
        }

        private static async Task<(string stdout, string stderr)> Chromium(string dir, string page, params string[] extra)
        {
            var psi = new ProcessStartInfo("/usr/bin/chromium") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                                      "--disable-component-update", "--disable-sync", $"--user-data-dir={Path.Combine(dir, "profile-" + Guid.NewGuid().ToString("N"))}" })
                psi.ArgumentList.Add(a);
            foreach (var a in extra) psi.ArgumentList.Add(a);
            psi.ArgumentList.Add("file://" + page);
            using var p = Process.Start(psi)!;
            var o = p.StandardOutput.ReadToEndAsync(); var e = p.StandardError.ReadToEndAsync();
            using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
            await p.WaitForExitAsync(cts.Token);
            return (await o, await e);
        }
    }
}
