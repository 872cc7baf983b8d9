using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Threading.Tasks;

namespace KeyServiceOps.Benchmarks
{
    /// <summary>One figure: ours against a baseline measured in the same run.</summary>
    public sealed record Row(string Benchmark, string Measure, double Ours, double Baseline, string Unit, string Target, bool? Met, string Note = "")
    {
        public double Ratio => Baseline == 0 ? double.NaN : Ours / Baseline;
    }

    public static class Program
    {
        public static async Task<int> Main(string[] args)
        {
            var only = args.SkipWhile(a => a != "--only").Skip(1).FirstOrDefault()?.Split(',');
            var outFile = args.SkipWhile(a => a != "--out").Skip(1).FirstOrDefault();
            var lines = int.Parse(args.SkipWhile(a => a != "--lines").Skip(1).FirstOrDefault() ?? "1000000", CultureInfo.InvariantCulture);
            var all = new (string name, Func<Task<List<Row>>> run)[]
            {
                ("import", () => FleetBenchmarks.ImportAsync()), // first: "cold" means first in the process
                ("logs", () => SshBenchmarks.LogStreamingAsync(lines)),
                ("session", () => SshBenchmarks.SessionReuseAsync()),
                ("health", () => FleetBenchmarks.HealthFanOutAsync()),
                ("selfhealing", () => FleetBenchmarks.SelfHealingReactionAsync()),
                ("ringbalancer", () => FleetBenchmarks.RingBalancerScaleAsync()),
                ("docker", () => DockerBenchmarks.RecoveryAsync()),
                ("pwsh-import", () => PwshBenchmarks.ImportAsync()),
                ("pwsh-health", () => PwshBenchmarks.HealthFanOutAsync()),
                ("pwsh-selfhealing", () => PwshBenchmarks.SelfHealingPassAsync()),
                ("pwsh-runbook", () => PwshBenchmarks.RunbookAsync()),
                ("pwsh-logs", () => PwshBenchmarks.LogStreamingAsync(Math.Max(lines, 3_000_000))),
            };
            var rows = new List<Row>();
            foreach (var (name, run) in all)
            {
                if (only != null && !only.Contains(name)) continue;
                Console.Error.WriteLine($"== {name}");
                rows.AddRange(await run());
            }
            var md = Markdown(rows);
            Console.WriteLine(md);
            if (outFile != null) File.WriteAllText(outFile, md);
            return 0;
        }

        public static string Markdown(IEnumerable<Row> rows)
        {
            var sb = new System.Text.StringBuilder();
            sb.AppendLine("| Benchmark | Measure | Ours | Baseline | Ours / baseline | Target | Met |");
            sb.AppendLine("| --- | --- | ---: | ---: | ---: | --- | --- |");
            foreach (var r in rows)
                sb.AppendLine($"| {r.Benchmark} | {r.Measure} | {Fmt(r.Ours)} {r.Unit} | {Fmt(r.Baseline)} {r.Unit} | {(double.IsNaN(r.Ratio) ? "–" : r.Ratio.ToString("0.00", CultureInfo.InvariantCulture))} | {r.Target} | {(r.Met == null ? "–" : r.Met.Value ? "yes" : "**no**")}{(r.Note.Length > 0 ? " (" + r.Note + ")" : "")} |");
            return sb.ToString();
        }

        private static string Fmt(double v) => v >= 1000 ? v.ToString("#,0", CultureInfo.InvariantCulture) : v.ToString("0.###", CultureInfo.InvariantCulture);
    }
}
