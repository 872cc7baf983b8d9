using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using KeyServiceOps.TestHost;

namespace KeyServiceOps.Benchmarks
{
    /// <summary>
    /// Fleet-scale figures measured in the process an operator runs: a real pwsh (the pinned tool) as its own process,
    /// the lab in this one, so a memory figure is the module's own.
    /// </summary>
    public static class PwshBenchmarks
    {
        private static double Median(IEnumerable<double> xs) { var a = xs.OrderBy(x => x).ToArray(); return a[a.Length / 2]; }
        private static string Module => Path.Combine(HostedShell.RepoRoot, "out", "KeyServiceOps", "KeyServiceOps.psd1");

        /// <summary>What one measured pwsh run reported, and its memory: resident set of the whole process tree.</summary>
        private sealed class Run
        {
            public double Seconds; public long Count; public double BaselineMb; public double PeakMb; public string Output;
            public double GrowthMb => PeakMb - BaselineMb;
        }

        private static long TreeRss(int root) => RealVm.ProcessTree(root).Sum(RealVm.Rss);

        /// <summary>
        /// Runs SETUP, prints READY, sleeps a second (the baseline is sampled then), prints GO, runs WORK (an expression
        /// whose value is a count), prints "RESULT seconds count". Memory is sampled every 20 ms.
        /// </summary>
        private static async Task<Run> MeasureAsync(string setup, string work)
        {
            var script = $"$ErrorActionPreference = 'Stop'\n$ProgressPreference = 'SilentlyContinue'\n{setup}\n" +
                         "[Console]::Out.WriteLine('READY'); [Console]::Out.Flush(); Start-Sleep -Milliseconds 1500\n" +
                         "[Console]::Out.WriteLine('GO'); [Console]::Out.Flush()\n" +
                         $"$sw = [Diagnostics.Stopwatch]::StartNew(); $count = $({work}); $sw.Stop()\n" +
                         "[Console]::Out.WriteLine(\"RESULT $($sw.Elapsed.TotalSeconds.ToString([Globalization.CultureInfo]::InvariantCulture)) $count\")\n";
            using var p = Process.Start(RealPwsh.StartInfo(script));
            var run = new Run();
            var phase = 0; // 0 setup, 1 baseline, 2 work
            var baseline = new List<long>(); long peak = 0;
            var lines = new List<string>();
            var reader = Task.Run(async () =>
            {
                string l;
                while ((l = await p.StandardOutput.ReadLineAsync()) != null)
                {
                    lock (lines) lines.Add(l);
                    if (l == "READY") Volatile.Write(ref phase, 1);
                    else if (l == "GO") Volatile.Write(ref phase, 2);
                }
            });
            var err = p.StandardError.ReadToEndAsync();
            await p.StandardInput.WriteAsync(script);
            p.StandardInput.Close();
            while (!p.HasExited)
            {
                var ph = Volatile.Read(ref phase);
                var rss = TreeRss(p.Id);
                if (ph == 1) baseline.Add(rss);
                else if (ph == 2) peak = Math.Max(peak, rss);
                await Task.Delay(20);
            }
            await reader;
            run.Output = string.Join("\n", lines) + "\n" + await err;
            var result = lines.LastOrDefault(x => x.StartsWith("RESULT "));
            if (result == null || p.ExitCode != 0) throw new InvalidOperationException("pwsh run failed: " + run.Output);
            var parts = result.Split(' ');
            run.Seconds = double.Parse(parts[1], CultureInfo.InvariantCulture);
            run.Count = long.Parse(parts[2], CultureInfo.InvariantCulture);
            // The settled baseline: the last half of the samples taken while it slept.
            run.BaselineMb = baseline.Count == 0 ? 0 : baseline.Skip(baseline.Count / 2).Average() / 1048576.0;
            run.PeakMb = peak / 1048576.0;
            return run;
        }

        private static string SshContext(Lab.Estate.Lab lab, string known)
            => $"Import-Module '{Module}'\nSet-KeyServiceOpsContext -KongAdminUri '{lab.KongUri}' -SshUser '{lab.Ssh.User}' -SshPort {lab.Ssh.Port} -SshKeyPath '{lab.Ssh.KeyPath}' -KnownHostsPath '{known}'";

        private static (long lines, double seconds) RawSsh(Lab.Estate.Lab lab, string known, string address)
        {
            var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add($"ssh -q -p {lab.Ssh.Port} -i '{lab.Ssh.KeyPath}' -o UserKnownHostsFile='{known}' -o StrictHostKeyChecking=yes -o BatchMode=yes {lab.Ssh.User}@{address} docker logs api_key_service 2>&1 | wc -l");
            var sw = Stopwatch.StartNew();
            using var p = Process.Start(psi);
            var o = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            return (long.Parse(o.Trim(), CultureInfo.InvariantCulture), sw.Elapsed.TotalSeconds);
        }

        /// <summary>3M lines through Get-KeyServiceLog | Measure-Object in real pwsh vs ssh | wc -l; and 1M lines into a 20 µs/line consumer.</summary>
        public static async Task<List<Row>> LogStreamingAsync(int lines)
        {
            var rows = new List<Row>();
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 1, Ssh = true });
            var known = lab.WriteKnownHosts();
            var inst = lab[0];
            inst.GeneratedLogLines = lines;
            var (rawLines, rawSec) = RawSsh(lab, known, inst.Address);
            if (rawLines != lines) throw new InvalidOperationException($"ssh|wc counted {rawLines}, expected {lines}");
            // Warm-up inside the measured process (JIT, the SSH session) before the baseline.
            var setup = SshContext(lab, known) + $"\nGet-KeyServiceLog {inst.Address} -Tail 1000 | Out-Null";
            var ours = await MeasureAsync(setup, $"(Get-KeyServiceLog {inst.Address} | Measure-Object).Count");
            if (ours.Count != lines) throw new InvalidOperationException($"Measure-Object counted {ours.Count}, expected {lines}");
            var oursRate = lines / ours.Seconds; var rawRate = lines / rawSec;
            rows.Add(new Row("Log streaming (real pwsh)", $"{lines:#,0} lines: Get-KeyServiceLog \\| Measure-Object vs ssh \\| wc -l", oursRate, rawRate, "lines/s", "≥ 0.6× raw", oursRate >= 0.6 * rawRate));
            rows.Add(new Row("Log streaming (real pwsh)", $"{lines:#,0} lines: pwsh process resident memory, peak during the run vs settled before it", ours.PeakMb, ours.BaselineMb, "MB", "growth ≤ 40 MB", ours.GrowthMb <= 40, $"+{ours.GrowthMb:0} MB"));

            // A slow consumer: ~20 µs of work per line (calibrated in the same process), 1M lines.
            var slowLines = Math.Min(lines, 1_000_000);
            inst.GeneratedLogLines = slowLines;
            var spin = "$spin = [Diagnostics.Stopwatch]::Frequency / 50000"; // 20 µs in stopwatch ticks
            var work = "$($n = 0; Get-KeyServiceLog " + inst.Address + " | ForEach-Object { $t = [Diagnostics.Stopwatch]::GetTimestamp(); while ([Diagnostics.Stopwatch]::GetTimestamp() - $t -lt $spin) { }; $n++ }; $n)";
            var slow = await MeasureAsync(setup + "\n" + spin, work);
            if (slow.Count != slowLines) throw new InvalidOperationException($"the slow consumer counted {slow.Count}, expected {slowLines}");
            rows.Add(new Row("Log streaming (real pwsh)", $"{slowLines:#,0} lines into a consumer spending ≥ 20 µs per line ({slow.Seconds / slowLines * 1e6:0} µs/line all told): resident memory, peak vs before", slow.PeakMb, slow.BaselineMb, "MB", "growth ≤ 40 MB", slow.GrowthMb <= 40, $"+{slow.GrowthMb:0} MB"));
            return rows;
        }

        /// <summary>Import-Module cold in a fresh pwsh vs a fresh pwsh that does nothing (whole process, median of 5).</summary>
        public static async Task<List<Row>> ImportAsync()
        {
            async Task<double> Time(string script)
            {
                var sw = Stopwatch.StartNew();
                var r = await RealPwsh.RunAsync(script);
                if (r.ExitCode != 0) throw new InvalidOperationException(r.ToString());
                return sw.Elapsed.TotalSeconds;
            }
            await Time("exit"); // warm the disk cache for both
            var bare = new List<double>(); var import = new List<double>(); var other = new List<double>(); var inside = new List<double>();
            for (int i = 0; i < 5; i++)
            {
                bare.Add(await Time("exit"));
                import.Add(await Time($"Import-Module '{Module}'; exit"));
                other.Add(await Time("Get-Date | Out-Null; exit"));
                var r = await RealPwsh.RunAsync($"$sw = [Diagnostics.Stopwatch]::StartNew(); Import-Module '{Module}'; [Console]::Out.WriteLine('IMPORT ' + $sw.Elapsed.TotalMilliseconds.ToString([Globalization.CultureInfo]::InvariantCulture))");
                inside.Add(double.Parse(r.StdOut.Split('\n').First(l => l.StartsWith("IMPORT ")).Substring(7).Trim(), CultureInfo.InvariantCulture));
            }
            var (b, o, g) = (Median(bare), Median(import), Median(other));
            return new List<Row>
            {
                new Row("Import (real pwsh)", "fresh pwsh: Import-Module KeyServiceOps then exit vs exit alone (whole process, median of 5)", o, b, "s", "≤ 1.15×", o <= 1.15 * b, $"+{(o - b) * 1000:0} ms"),
                new Row("Import (real pwsh)", "same vs a fresh pwsh that runs any first command (Get-Date \\| Out-Null): pwsh's own first-command cost", o, g, "s", "–", null, $"{(o - g) * 1000:+0;-0} ms"),
                new Row("Import (real pwsh)", "Import-Module alone, timed inside the fresh process (median of 5)", Median(inside), double.NaN, "ms", "–", null),
            };
        }

        /// <summary>1,000 instances (100 hung), timeout 2 s: Test-KeyServiceHealth in real pwsh vs xargs -P 64 curl -m 2, and vs one timeout.</summary>
        public static async Task<List<Row>> HealthFanOutAsync()
        {
            using var fleet = new LightFleet(up: 900, hung: 100, down: 0);
            await using var kong = await KongEmulator.StartAsync();
            kong.AddUpstream("api_key_service");
            foreach (var t in fleet.Targets) kong.AddTarget("api_key_service", t);
            var list = Path.GetTempFileName();
            File.WriteAllLines(list, fleet.Targets.Select(t => $"http://{t}/api/auth/healthz"));
            var rows = new List<Row>();
            var curl = new List<double>();
            for (int rep = 0; rep < 3; rep++)
            {
                var sw = Stopwatch.StartNew();
                var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
                psi.ArgumentList.Add("-c");
                psi.ArgumentList.Add($"xargs -P 64 -n 1 curl -s -o /dev/null -m 2 < '{list}'");
                using (var p = Process.Start(psi)) { p.StandardOutput.ReadToEnd(); p.WaitForExit(); }
                curl.Add(sw.Elapsed.TotalSeconds);
            }
            var c = Median(curl);
            foreach (var throttle in new[] { 0, 64 }) // 0: the default (automatic: direct probes sized to the fleet)
            {
                var setup = $"Import-Module '{Module}'\nSet-KeyServiceOpsContext -KongAdminUri '{kong.BaseUri}' -Upstream api_key_service -HealthTimeoutSec 2{(throttle == 0 ? "" : $" -ThrottleLimit {throttle}")}\n" +
                            $"Test-KeyServiceHealth {fleet.Up[0]} | Out-Null";
                var runs = new List<Run>();
                for (int rep = 0; rep < 3; rep++)
                {
                    var r = await MeasureAsync(setup, "$($r = Get-RingBalancerTarget -NoHealth | Test-KeyServiceHealth; if (@($r | Where-Object Status -eq 'Timeout').Count -ne 100) { throw \"expected 100 timeouts: $(($r | Group-Object Status | ForEach-Object { '{0}={1}' -f $_.Name, $_.Count }) -join ', ')\" }; $r.Count)");
                    if (r.Count != 1000) throw new InvalidOperationException($"{r.Count} results");
                    runs.Add(r);
                }
                var o = Median(runs.Select(r => r.Seconds));
                var how = throttle == 0 ? "default settings" : $"-ThrottleLimit {throttle}";
                rows.Add(new Row("Health fan-out (real pwsh)", $"1,000 instances, 100 hung, timeout 2 s, {how}: Get-RingBalancerTarget \\| Test-KeyServiceHealth vs xargs -P 64 curl -m 2 (median of 3)", o, c, "s", "≤ 1.0× curl", o <= c));
                rows.Add(new Row("Health fan-out (real pwsh)", $"same, {how}, vs one timeout", o, 2.0, "s", "≤ 1.15× one timeout", o <= 2.3,
                    throttle == 64 ? "100 hung instances hold 64 slots for 2 s each: at least two rounds" : ""));
            }
            return rows;
        }
    
        /// <summary>Runs a baseline script of tests/KeyServiceOps.Benchmarks/baselines with the given environment; seconds and its stdout.</summary>
        private static (double seconds, string output) Baseline(string script, IDictionary<string, string> env)
        {
            var path = Path.Combine(AppContext.BaseDirectory, "baselines", script);
            var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
            psi.ArgumentList.Add(path);
            foreach (var kv in env) psi.Environment[kv.Key] = kv.Value;
            var sw = Stopwatch.StartNew();
            using var p = Process.Start(psi);
            var err = p.StandardError.ReadToEndAsync();
            var output = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            var seconds = sw.Elapsed.TotalSeconds;
            if (p.ExitCode != 0) throw new InvalidOperationException($"{script} exited {p.ExitCode}: {err.Result}{output}");
            return (seconds, output.Trim());
        }

        private static double MedianRttMs(Uri uri, string path, (string name, string value)? header = null)
        {
            using var http = new System.Net.Http.HttpClient();
            var times = new List<double>();
            for (int i = 0; i < 21; i++)
            {
                var req = new System.Net.Http.HttpRequestMessage(System.Net.Http.HttpMethod.Get, new Uri(uri, path));
                if (header != null) req.Headers.TryAddWithoutValidation(header.Value.name, header.Value.value);
                var sw = Stopwatch.StartNew();
                http.Send(req).Dispose();
                if (i > 0) times.Add(sw.Elapsed.TotalMilliseconds);
            }
            return Median(times);
        }

        /// <summary>One self-healing pass over 1,000 targets (100 dead) vs one health timeout + paging the upstream.</summary>
        public static async Task<List<Row>> SelfHealingPassAsync()
        {
            using var fleet = new LightFleet(up: 900, hung: 0, down: 100);
            await using var kong = await KongEmulator.StartAsync();
            kong.AddUpstream("api_key_service");
            foreach (var t in fleet.Targets) kong.AddTarget("api_key_service", t);
            var state = Path.Combine(Path.GetTempPath(), $"kso-bench-heal-{Guid.NewGuid():N}.json");
            var audit = Path.Combine(Path.GetTempPath(), $"kso-bench-audit-{Guid.NewGuid():N}.jsonl");
            var setup = $"Import-Module '{Module}'\nSet-KeyServiceOpsContext -KongAdminUri '{kong.BaseUri}' -Upstream api_key_service -HealthTimeoutSec 2 -AuditLogPath '{audit}'\n" +
                        "Get-RingBalancerTarget -NoHealth | Select-Object -First 1 | Test-KeyServiceHealth | Out-Null";
            // The baseline: the same pass by curl (page, probe all, DELETE the dead), then the dead put back for ours.
            var byCurl = new List<double>(); var deletes = new List<double>();
            for (int rep = 0; rep < 3; rep++)
            {
                var b = Baseline("selfhealing-removal.sh", new Dictionary<string, string> { ["KONG"] = kong.BaseUri.ToString(), ["UPSTREAM"] = "api_key_service", ["TIMEOUT"] = "2", ["MAX"] = "100" });
                var lines = b.output.Split('\n');
                if (lines[0].Trim() != "100") throw new InvalidOperationException($"the curl pass found {lines[0]} dead");
                byCurl.Add(b.seconds);
                deletes.Add(double.Parse(lines[1].Trim(), CultureInfo.InvariantCulture));
                foreach (var d in fleet.Down) kong.AddTarget("api_key_service", $"{d}:{fleet.Port}");
            }
            var curlPass = Median(byCurl); var curlDeletes = Median(deletes);
            var paging = await MeasureAsync(setup, "@(Get-RingBalancerTarget -NoHealth).Count");
            var hysteresis = await MeasureAsync(setup, $"@(Invoke-KeyServiceSelfHealing -StatePath '{state}' -Confirm:$false).Count");
            var removal = await MeasureAsync(setup, $"$a = @(Invoke-KeyServiceSelfHealing -StatePath '{state}' -FailuresToRemove 1 -Confirm:$false); $a | Group-Object Action, Outcome, Reason | ForEach-Object {{ [Console]::Error.WriteLine('PASS ' + $_.Name + ' x' + $_.Count) }}; @($a | Where-Object {{ $_.Action -eq 'Remove' -and $_.Outcome -eq 'Done' }}).Count");
            Console.Error.WriteLine(string.Join("\n", removal.Output.Split('\n').Where(l => l.StartsWith("PASS ")).Take(10)));
            var floor = 2.0 + paging.Seconds;
            return new List<Row>
            {
                new Row("Self-healing pass (real pwsh)", "1,000 targets, 100 dead (refused), first pass (hysteresis: counts, removes nothing) vs one health timeout (2 s) + paging the upstream", hysteresis.Seconds, floor, "s", "≤ 1.25×", hysteresis.Seconds <= 1.25 * floor, $"paging alone {paging.Seconds:0.00} s"),
                new Row("Self-healing pass (real pwsh)", $"the pass that acts: {removal.Count} removed (max ejection 10 % = 100), the guard read once per batch of 25, vs the same floor", removal.Seconds, floor, "s", "–", null),
                new Row("Self-healing pass (real pwsh)", "same, vs one timeout + paging + the 100 DELETEs by curl (xargs -P 16, timed inside baselines/selfhealing-removal.sh)", removal.Seconds, floor + curlDeletes, "s", "≤ 1.5×", removal.Seconds <= 1.5 * (floor + curlDeletes), $"the DELETEs alone {curlDeletes:0.00} s"),
                new Row("Self-healing pass (real pwsh)", "same, vs the whole pass by curl (baselines/selfhealing-removal.sh: page, probe all 1,000 with -m 2, DELETE the 100; median of 3)", removal.Seconds, curlPass, "s", "≤ 1.0×", removal.Seconds <= curlPass),
            };
        }

        /// <summary>Crash to recovered for one instance: Invoke-KeyServiceRunbook in real pwsh vs the floor (restart time + one poll + the Kong and PagerDuty round trips it needs).</summary>
        public static async Task<List<Row>> RunbookAsync()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true, PagerDuty = true });
            var known = lab.WriteKnownHosts();
            var inst = lab[1];
            await inst.ApplyScenarioAsync(FaultScenario.CleanCrash);
            inst.RestartDelay = TimeSpan.FromSeconds(2);
            var inc = lab.PagerDuty.AddAlert(inst.Address);
            var audit = Path.Combine(Path.GetTempPath(), $"kso-bench-audit-{Guid.NewGuid():N}.jsonl");
            Environment.SetEnvironmentVariable("KSO_BENCH_PD_TOKEN", lab.PagerDuty.Token);
            var setup = SshContext(lab, known) + $" -Upstream '{lab.Upstream}' -PagerDutyUri '{lab.PagerDuty.BaseUri}' -PagerDutyTokenVariable KSO_BENCH_PD_TOKEN -PagerDutyFrom oncall@example.com -RestartPollSec 0.2 -AuditLogPath '{audit}'\n" +
                        $"Get-KeyServiceContainer {lab[0].Address} | Out-Null; Get-PagerDutyIncident -IncidentId {inc.Id} | Out-Null; Test-KeyServiceHealth {lab[0].Address} | Out-Null";
            var kongBefore = lab.Kong.RequestCount; var pdBefore = lab.PagerDuty.Requests.Count; var dockerBefore = lab.Ssh.Docker.Calls.Count;
            var run = await MeasureAsync(setup, $"$s = Invoke-KeyServiceRunbook {inst.Address} -IncidentId {inc.Id} -Confirm:$false | Select-Object -Last 1; if ($s.FinalState -ne 'Recovered') {{ throw \"runbook ended $($s.FinalState)\" }}; 1");
            var kongCalls = lab.Kong.RequestCount - kongBefore; var pdCalls = lab.PagerDuty.Requests.Count - pdBefore; var dockerCalls = lab.Ssh.Docker.Calls.Count - dockerBefore;
            var kongRtt = MedianRttMs(lab.KongUri, $"upstreams/{lab.Upstream}/targets");
            var pdRtt = MedianRttMs(lab.PagerDuty.BaseUri, "incidents/" + inc.Id, ("Authorization", "Token token=" + lab.PagerDuty.Token));
            var floor = 2.0 + 0.2 + (kongCalls * kongRtt + pdCalls * pdRtt) / 1000.0;
            // The baseline: the same calls by curl and ssh (baselines/runbook.sh), on the same instance crashed again.
            var byHand = new List<double>();
            for (int rep = 0; rep < 3; rep++)
            {
                await inst.ApplyScenarioAsync(FaultScenario.CleanCrash);
                var b = Baseline("runbook.sh", new Dictionary<string, string>
                {
                    ["KONG"] = lab.KongUri.ToString(), ["UPSTREAM"] = lab.Upstream, ["ADDR"] = inst.Address, ["PORT"] = "8888",
                    ["SSH"] = $"ssh -q -p {lab.Ssh.Port} -i {lab.Ssh.KeyPath} -o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes -o BatchMode=yes {lab.Ssh.User}",
                    ["PD"] = lab.PagerDuty.BaseUri.ToString(), ["PD_TOKEN"] = lab.PagerDuty.Token, ["PD_FROM"] = "oncall@example.com", ["INCIDENT"] = inc.Id, ["POLL"] = "0.2",
                });
                if (b.output != "recovered") throw new InvalidOperationException("runbook.sh: " + b.output);
                byHand.Add(b.seconds);
            }
            var script = Median(byHand);
            return new List<Row>
            {
                new Row("Runbook (real pwsh)", "crash → recovered, one instance: Invoke-KeyServiceRunbook vs the same calls by curl and ssh (baselines/runbook.sh: verify, Kong DELETE, logs, inspect, restart, 0.2 s polls, Kong POST, 3 notes; median of 3)", run.Seconds, script, "s", "≤ 1.2×", run.Seconds <= 1.2 * script),
                new Row("Runbook (real pwsh)", $"crash → recovered, one instance: Invoke-KeyServiceRunbook vs the floor (restart 2 s + one 0.2 s poll + {kongCalls} Kong × {kongRtt:0.0} ms + {pdCalls} PagerDuty × {pdRtt:0.0} ms)", run.Seconds, floor, "s", "≤ 1.2× the floor", run.Seconds <= 1.2 * floor,
                    $"the floor leaves out the {dockerCalls} docker commands over SSH (logs, inspect, restart) through the lab's docker shim"),
            };
        }
}
}
