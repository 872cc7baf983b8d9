using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Net.Http;
using System.Threading;
using System.Threading.Tasks;
using KeyServiceOps.Core;
using KeyServiceOps.Core.Health;
using KeyServiceOps.Core.RingBalancer;
using KeyServiceOps.Core.Runbook;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using KeyServiceOps.Core.Audit;
using KeyServiceOps.TestHost;

namespace KeyServiceOps.Benchmarks
{
    /// <summary>Health fan-out, import time, self-healing reaction and ring-balancer paging.</summary>
    public static class FleetBenchmarks
    {
        private static double Median(IEnumerable<double> xs) { var a = xs.OrderBy(x => x).ToArray(); return a.Length == 0 ? double.NaN : a[a.Length / 2]; }

        /// <summary>1. Test-KeyServiceHealth over 200 instances (20 Hung, timeout 2 s) vs xargs -P 64 curl -m 2, and vs one timeout.</summary>
        public static async Task<List<Row>> HealthFanOutAsync()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 200 });
            foreach (var i in lab.Instances.Take(20)) await i.SetModeAsync(InstanceMode.Hung);
            var urls = lab.Instances.Select(i => i.HealthUrl).ToList();
            var list = Path.GetTempFileName();
            File.WriteAllLines(list, urls);
            using var sh = new HostedShell();
            sh.Run($"Set-KeyServiceOpsContext -KongAdminUri '{lab.KongUri}' -HealthTimeoutSec 2 -ThrottleLimit 64");
            sh.Run($"Test-KeyServiceHealth {lab[30].Address} | Out-Null"); // JIT outside the timing
            var ours = new List<double>(); var curl = new List<double>();
            for (int rep = 0; rep < 3; rep++)
            {
                var sw = Stopwatch.StartNew();
                var r = sh.Run("Get-RingBalancerTarget -NoHealth | Test-KeyServiceHealth");
                ours.Add(sw.Elapsed.TotalSeconds);
                if (r.Output.Count != 200 || r.Output.Count(o => o.Properties["Status"].Value.ToString() == "Timeout") != 20)
                    throw new InvalidOperationException($"fan-out: {r.Output.Count} results");
                sw.Restart();
                var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
                psi.ArgumentList.Add("-c");
                psi.ArgumentList.Add($"xargs -P 64 -n 1 curl -s -o /dev/null -m 2 < '{list}'");
                using (var p = Process.Start(psi)) { p.StandardOutput.ReadToEnd(); p.WaitForExit(); }
                curl.Add(sw.Elapsed.TotalSeconds);
            }
            var o = Median(ours); var c = Median(curl);
            return new List<Row>
            {
                new Row("Health fan-out", "200 instances, 20 Hung, timeout 2 s: Test-KeyServiceHealth vs xargs -P 64 curl -m 2 (median of 3)", o, c, "s", "≤ 1.2× curl", o <= 1.2 * c),
                new Row("Health fan-out", "same run vs one timeout (the floor: the Hung ones must be waited for)", o, 2.0, "s", "< 1.5× timeout", o < 3.0),
            };
        }

        /// <summary>4. Import-Module of the staged module in a fresh runspace vs the runspace alone.</summary>
        public static Task<List<Row>> ImportAsync()
        {
            var alone = new List<double>(); var import = new List<double>();
            for (int i = 0; i < 5; i++)
            {
                var sw = Stopwatch.StartNew();
                using (var sh = new HostedShell(importModule: false))
                {
                    alone.Add(sw.Elapsed.TotalMilliseconds);
                    sw.Restart();
                    var r = sh.Run($"Import-Module '{HostedShell.ModuleManifest}'");
                    import.Add(sw.Elapsed.TotalMilliseconds);
                    if (r.Errors.Count > 0) throw new InvalidOperationException(r.Errors[0].ToString());
                }
            }
            return Task.FromResult(new List<Row>
            {
                new Row("Import", "Import-Module, first in the process (cold: assembly load + JIT) vs the runspace alone (first)", import[0], alone[0], "ms", "no network, no eager loading", null),
                new Row("Import", "Import-Module, warm (median of the next 4) vs the runspace alone (median)", Median(import.Skip(1)), Median(alone.Skip(1)), "ms", "–", null),
            });
        }

        /// <summary>5. Self-healing reaction at interval 1 s with the default thresholds, vs interval × threshold.</summary>
        public static async Task<List<Row>> SelfHealingReactionAsync()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 4 });
            var ctx = new OpsContext { Kong = { AdminUri = lab.KongUri, Upstream = lab.Upstream }, Health = { Timeout = TimeSpan.FromSeconds(1) }, Safety = { AuditLogPath = Path.GetTempFileName() } };
            var health = HealthChecker.FromContext(ctx, null);
            var rb = new RingBalancerService(ctx, new KongClient(ctx.ForKong(), null), health, new AuditLog(ctx.Safety.AuditLogPath), null);
            var healer = new SelfHealer(ctx, rb, health, null, null, null);
            var o = new SelfHealingOptions { StatePath = Path.GetTempFileName() + ".json" };
            File.Delete(o.StatePath);
            using var cts = new CancellationTokenSource();
            var loop = Task.Run(async () =>
            {
                while (!cts.IsCancellationRequested)
                {
                    await healer.PassAsync(o, (t, a) => Task.FromResult(true), null, CancellationToken.None);
                    try { await Task.Delay(1000, cts.Token); } catch (OperationCanceledException) { }
                }
            });
            bool In() => lab.Kong.Targets(lab.Upstream).Any(t => t.Target == lab[0].Target && t.Weight > 0);
            async Task<double> Until(Func<bool> cond)
            {
                var sw = Stopwatch.StartNew();
                while (!cond()) { await Task.Delay(20); if (sw.Elapsed > TimeSpan.FromSeconds(60)) throw new TimeoutException(); }
                return sw.Elapsed.TotalSeconds;
            }
            await Task.Delay(1500);
            await lab[0].SetModeAsync(InstanceMode.Down);
            var removal = await Until(() => !In());
            await lab[0].SetModeAsync(InstanceMode.Up);
            var readd = await Until(In);
            cts.Cancel(); await loop;
            return new List<Row>
            {
                new Row("Self-healing reaction", "death → removal (interval 1 s, 3 failed checks) vs floor interval × 3", removal, 3.0, "s", "between (N-1)×interval and N×interval + pass time", removal >= 1.9 && removal <= 4.0),
                new Row("Self-healing reaction", "recovery → re-add (2 passing checks) vs floor interval × 2", readd, 2.0, "s", "between (M-1)×interval and M×interval + pass time", readd >= 0.9 && readd <= 3.0),
            };
        }

        /// <summary>6. Get-RingBalancerTarget on 5,000 targets: time and requests vs the minimum pages, and vs a raw page loop.</summary>
        public static async Task<List<Row>> RingBalancerScaleAsync()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 1, ExtraTargets = 4999 });
            using var sh = new HostedShell();
            sh.Run($"Set-KeyServiceOpsContext -KongAdminUri '{lab.KongUri}'");
            sh.Run("Get-RingBalancerTarget -NoHealth | Out-Null"); // JIT
            lab.Kong.ClearRequests();
            var sw = Stopwatch.StartNew();
            var r = sh.Run("Get-RingBalancerTarget -NoHealth");
            var ours = sw.Elapsed.TotalMilliseconds;
            if (r.Output.Count != 5000) throw new InvalidOperationException($"{r.Output.Count} targets");
            var requests = lab.Kong.RequestCount;
            const int pageSize = 1000;
            var minPages = (int)Math.Ceiling(5000 / (double)pageSize);
            // Baseline: the same pages fetched with a bare HttpClient loop (no parsing into objects, no pipeline).
            using var http = new HttpClient { BaseAddress = lab.KongUri };
            sw.Restart();
            string next = $"upstreams/{lab.Upstream}/targets?size={pageSize}";
            int pages = 0;
            while (next != null)
            {
                var body = await http.GetStringAsync(next);
                pages++;
                var j = System.Text.Json.Nodes.JsonNode.Parse(body);
                var offset = j?["offset"]?.ToString();
                next = string.IsNullOrEmpty(offset) ? null : $"upstreams/{lab.Upstream}/targets?size={pageSize}&offset={Uri.EscapeDataString(offset)}";
            }
            var raw = sw.Elapsed.TotalMilliseconds;
            return new List<Row>
            {
                new Row("Ring-balancer at scale", "5,000 targets: requests made vs the minimum pages (size 1000)", requests, minPages, "requests", "= minimum + upstream lookup", requests <= minPages + 1, $"raw loop needed {pages} pages"),
                new Row("Ring-balancer at scale", "5,000 targets: Get-RingBalancerTarget -NoHealth vs a bare HttpClient page loop", ours, raw, "ms", "–", null),
            };
        }
    }
}
