using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using KeyServiceOps.TestHost;

namespace KeyServiceOps.Benchmarks
{
    /// <summary>Figures for the SSH side: streaming a long container log, and the cost of a pooled session.</summary>
    public static class SshBenchmarks
    {
        private static HostedShell Shell(Lab.Estate.Lab lab, string known)
        {
            var sh = new HostedShell();
            var r = sh.Run($"Set-KeyServiceOpsContext -KongAdminUri '{lab.KongUri}' -SshUser '{lab.Ssh.User}' -SshPort {lab.Ssh.Port} -SshKeyPath '{lab.Ssh.KeyPath}' -KnownHostsPath '{known}'");
            if (r.Errors.Count > 0) throw new InvalidOperationException(r.Errors[0].ToString());
            return sh;
        }

        /// <summary>The system OpenSSH client: `ssh HOST docker logs NAME | wc -l`; returns (stdout lines, seconds).</summary>
        private static (long lines, double seconds) RawSsh(Lab.Estate.Lab lab, string known, string address)
        {
            var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add($"ssh -q -p {lab.Ssh.Port} -i '{lab.Ssh.KeyPath}' -o UserKnownHostsFile='{known}' -o StrictHostKeyChecking=yes -o BatchMode=yes {lab.Ssh.User}@{address} docker logs api_key_service 2>/dev/null | wc -l");
            var sw = Stopwatch.StartNew();
            using var p = Process.Start(psi);
            var o = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            return (long.Parse(o.Trim(), CultureInfo.InvariantCulture), sw.Elapsed.TotalSeconds);
        }

        /// <summary>Get-KeyServiceLog | Out-Null in a hosted runspace; returns (seconds, peak working set MB after).</summary>
        private static double Ours(HostedShell sh, string address, out long count)
        {
            var sw = Stopwatch.StartNew();
            var r = sh.Run($"Get-KeyServiceLog {address} -Verbose | Out-Null");
            var s = sw.Elapsed.TotalSeconds;
            if (r.Errors.Count > 0) throw new InvalidOperationException(r.Errors[0].ToString());
            // The cmdlet's own count ("ADDRESS: N log lines from CONTAINER.").
            var v = r.Verbose.Last(l => l.Contains(" log lines from "));
            count = long.Parse(v.Split(':')[1].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
            return s;
        }

        private static double WorkingSetMb() { using var p = Process.GetCurrentProcess(); return p.WorkingSet64 / 1048576.0; }

        /// <summary>Runs <paramref name="work"/> while sampling the process's working set every 20 ms; returns the highest sample.</summary>
        private static double PeakDuring(Action work)
        {
            var peak = WorkingSetMb();
            using var stop = new CancellationTokenSource();
            var sampler = Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested) { peak = Math.Max(peak, WorkingSetMb()); try { await Task.Delay(20, stop.Token); } catch (OperationCanceledException) { } }
            });
            work();
            peak = Math.Max(peak, WorkingSetMb());
            stop.Cancel(); sampler.Wait();
            return peak;
        }

        private static double Settled() { GC.Collect(); GC.WaitForPendingFinalizers(); GC.Collect(); return WorkingSetMb(); }

        public static async Task<List<Row>> LogStreamingAsync(int lines)
        {
            var rows = new List<Row>();
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 1, Ssh = true });
            var known = lab.WriteKnownHosts();
            var inst = lab[0];
            using var sh = Shell(lab, known);

            // Warm-up (JIT, session): 20k lines.
            inst.GeneratedLogLines = 20_000;
            Ours(sh, inst.Address, out _);

            // Where the time goes: the core reader alone (no PowerShell pipeline).
            inst.GeneratedLogLines = lines;
            using (var pool = new KeyServiceOps.Core.Remote.SshSessionPool())
            {
                var ctx = new KeyServiceOps.Core.OpsContext { Ssh = { User = lab.Ssh.User, Port = lab.Ssh.Port, KeyPath = lab.Ssh.KeyPath, KnownHostsPath = known } };
                var docker = new KeyServiceOps.Core.Remote.DockerClient(new KeyServiceOps.Core.Remote.RemoteShell(pool, null), null);
                var t = KeyServiceOps.Core.Remote.SshTarget.For(ctx, inst.Address);
                long c = 0;
                var before = Settled();
                var sw = Stopwatch.StartNew();
                var peak = PeakDuring(() => docker.LogsAsync(t, new KeyServiceOps.Core.Remote.LogQuery(), _ => c++, CancellationToken.None).GetAwaiter().GetResult());
                var coreRate = c / sw.Elapsed.TotalSeconds;
                var (_, rawSec) = RawSsh(lab, known, inst.Address);
                rows.Add(new Row("Log streaming", $"{lines:#,0} lines: core reader alone (DockerClient.LogsAsync, no PowerShell) vs ssh \\| wc -l", coreRate, lines / rawSec, "lines/s", "–", null, "the PowerShell pipeline's share"));
                rows.Add(new Row("Log streaming", $"{lines:#,0} lines: core reader alone: highest working set during the read vs just before", peak, before, "MB", "flat", peak - before < 100, $"+{peak - before:0} MB"));
            }
            foreach (var n in new[] { lines / 10, lines })
            {
                inst.GeneratedLogLines = n;
                var (rawLines, rawSec) = RawSsh(lab, known, inst.Address);
                var before = Settled();
                double sec = 0; long count = 0;
                var peak = PeakDuring(() => sec = Ours(sh, inst.Address, out count));
                if (count != n) throw new InvalidOperationException($"expected {n} entries, got {count}");
                var stdoutOnly = n - n / 1000; // the lab writes one stderr line per 1000; wc -l counts stdout only
                if (rawLines != stdoutOnly) throw new InvalidOperationException($"ssh|wc counted {rawLines}, expected {stdoutOnly}");
                var oursRate = count / sec; var rawRate = n / rawSec;
                rows.Add(new Row("Log streaming", $"{n:#,0} lines: lines/s (Get-KeyServiceLog \\| Out-Null vs ssh \\| wc -l)", oursRate, rawRate, "lines/s", "≥ 0.5× raw", oursRate >= 0.5 * rawRate));
                rows.Add(new Row("Log streaming", $"{n:#,0} lines: highest working set of the process (runspace and lab included) during the run vs just before", peak, before, "MB", "< 200 MB, flat", peak < 200, $"+{peak - before:0} MB"));
            }

            return rows;
        }

        public static async Task<List<Row>> SessionReuseAsync()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 1, Ssh = true });
            var known = lab.WriteKnownHosts();
            using var sh = Shell(lab, known);
            sh.Run("Get-Command Get-KeyServiceContainer | Out-Null"); // cmdlet JIT outside the timing as far as possible
            var times = new List<double>();
            for (int i = 0; i < 10; i++)
            {
                var sw = Stopwatch.StartNew();
                var r = sh.Run($"Get-KeyServiceContainer {lab[0].Address}");
                times.Add(sw.Elapsed.TotalMilliseconds);
                if (r.Errors.Count > 0) throw new InvalidOperationException(r.Errors[0].ToString());
            }
            var accepted = lab.Ssh.AcceptedConnections();
            return new List<Row>
            {
                new Row("Session reuse", "Get-KeyServiceContainer: 1st call (connect + 2 commands) vs 10th call (pooled)", times[0], times[9], "ms", "connect paid once", accepted == 1, $"sshd accepted {accepted} connection(s) for 10 calls"),
            };
        }
    }
}
