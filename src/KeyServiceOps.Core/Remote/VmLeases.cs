using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace KeyServiceOps.Core.Remote
{
    /// <summary>
    /// The instance's lease on its VM (issue #25): whoever restarts the container must SSH to the VM, so the lease lives
    /// there, in a file under <c>$KEYSERVICEOPS_VM_DIR</c> (default <c>~/.keyserviceops</c>, mode 700) of the SSH user.
    /// Every read-and-set runs under <c>flock</c> on that folder's lock file, so two actors on two machines never both
    /// hold it. The holder file says who, from where, since when, for what, and until when (the VM's own clock); a holder
    /// that stops renewing (killed, partitioned) lapses after <see cref="Ttl"/> and is taken over, with a warning.
    /// When the VM cannot be reached or has no flock, the change goes ahead under this machine's lock only, and a warning
    /// says so: the VM being down is the very case the runbook exists for. Without SSH settings it is not tried
    /// (-Verbose says only the local lock protects the change).
    /// </summary>
    public sealed class VmLeases : IInstanceLeases
    {
        private readonly OpsContext _ctx;
        private readonly RemoteShell _shell;
        private readonly IOpsLog _log;

        /// <summary>How long a lease stands without renewal; held leases are renewed every quarter of it.</summary>
        public static TimeSpan Ttl = TimeSpan.FromSeconds(90);

        public VmLeases(OpsContext ctx, RemoteShell shell, IOpsLog log)
        {
            _ctx = ctx; _shell = shell; _log = log ?? NullOpsLog.Instance;
        }

        /// <summary>The VM-side state folder, as a shell expression (the lab points it elsewhere with KEYSERVICEOPS_VM_DIR).</summary>
        internal const string VmDir = "${KEYSERVICEOPS_VM_DIR:-$HOME/.keyserviceops}";

        internal static string SafeName(string s)
        {
            var b = new StringBuilder();
            foreach (var c in s ?? "") b.Append(char.IsLetterOrDigit(c) || c == '.' || c == '-' || c == '_' ? c : '_');
            return b.ToString();
        }

        public async Task<IDisposable> AcquireAsync(string address, string purpose, TimeSpan timeout, CancellationToken ct)
        {
            if (!_ctx.SshConfiguredFor(address))
            {
                _log.Verbose($"{address}: no SSH settings, so no lease on the VM: only this machine's lock protects this change from other operators.");
                return Released.Instance;
            }
            SshTarget t;
            try { t = SshTarget.For(_ctx, address); }
            catch (OpsException e) { _log.Warning($"{address}: no lease on the VM ({e.Message}); only this machine's lock protects this change."); return Released.Instance; }
            var token = Guid.NewGuid().ToString("N");
            var who = Clean($"{Environment.UserName}@{Environment.MachineName} pid {Process.GetCurrentProcess().Id} since {DateTimeOffset.UtcNow:yyyy-MM-ddTHH:mm:ssZ}: {purpose}");
            string dead = null; // the token of a holder on this machine whose process is gone: taken over at once
            var file = $"lease-{SafeName(t.Host)}-{SafeName(t.Container)}";
            var sw = Stopwatch.StartNew();
            var random = new Random();
            while (true)
            {
                LeaseAnswer a;
                try { a = await RunAsync(t, AcquireScript(file, token, who, dead), ct).ConfigureAwait(false); }
                catch (OpsException e) when (!e.IsCancellation)
                {
                    _log.Warning($"{address}: could not take the lease on the VM ({e.ErrorId}: {e.Message}); only this machine's lock protects this change from other operators.");
                    return Released.Instance;
                }
                switch (a.State)
                {
                    case "HELD":
                        WaitProgress.Over(_log, $"Waiting for {address}");
                        if (a.Previous != null) _log.Warning($"{address}: took over a lapsed lease on the VM (its holder stopped renewing it): {a.Previous}");
                        _log.Verbose($"{address}: lease taken on the VM ({file}).");
                        return new HeldLease(this, t, file, token, who);
                    case "BUSY":
                        if (dead == null && HolderIsDeadHere(a.HolderLines))
                        {
                            dead = a.HolderLines[0];
                            _log.Warning($"{address}: the lease on the VM is held by a process of this machine that is gone ({a.Holder}): taking it over.");
                            continue;
                        }
                        if (sw.Elapsed >= timeout) { WaitProgress.Over(_log, $"Waiting for {address}"); throw InstanceLock.Busy(address, a.Holder + " (its lease on the VM)", timeout); }
                        WaitProgress.Waiting(_log, $"Waiting for {address}", $"held on the VM by {SafeText.Neutralize(a.Holder)}", timeout - sw.Elapsed);
                        await Task.Delay(TimeSpan.FromMilliseconds(300 + random.Next(300)), ct).ConfigureAwait(false);
                        continue;
                    case "UNREADABLE":
                        throw Unreadable(address, a.Holder);
                    default:
                        _log.Warning($"{address}: the VM could not keep a lease ({a.Holder}); only this machine's lock protects this change from other operators.");
                        return Released.Instance;
                }
            }
        }

        private static string Clean(string s)
        {
            var b = new StringBuilder();
            foreach (var c in s) b.Append(char.IsControl(c) ? ' ' : c);
            return b.ToString();
        }

        private sealed class LeaseAnswer
        {
            public string State;
            public string Holder;
            public string Previous;
            public List<string> HolderLines = new List<string>();
        }

        /// <summary>The holder file names this machine and a process id that no longer runs (a killed pwsh): no need to wait for its lease to lapse.</summary>
        private static bool HolderIsDeadHere(List<string> holder)
        {
            if (holder.Count < 3 || string.IsNullOrEmpty(holder[0])) return false;
            var m = System.Text.RegularExpressions.Regex.Match(holder[2], @"^\S+@(?<host>\S+) pid (?<pid>\d+) ");
            if (!m.Success || !string.Equals(m.Groups["host"].Value, Environment.MachineName, StringComparison.OrdinalIgnoreCase)) return false;
            if (!int.TryParse(m.Groups["pid"].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid == Process.GetCurrentProcess().Id) return false;
            try { using (var p = Process.GetProcessById(pid)) return p.HasExited; }
            catch (ArgumentException) { return true; }      // no such process
            catch (InvalidOperationException) { return true; }
        }

        /// <summary>The tag every answer line of the lease scripts starts with: what a login shell prints before it is skipped.</summary>
        internal const string Tag = "KSOLEASE ";

        private async Task<LeaseAnswer> RunAsync(SshTarget t, string script, CancellationToken ct)
        {
            var all = new List<string>();
            var err = new List<string>();
            var status = await _shell.RunAsync(t, script, all.Add, err.Add, t.CommandTimeout, ct).ConfigureAwait(false);
            // A VM whose shell start-up prints (a banner, "Last login", a .bashrc echo) puts lines before the answer:
            // the answer starts at the first tagged line, whatever came before it.
            var at = all.FindIndex(l => l.StartsWith(Tag, StringComparison.Ordinal));
            var lines = at < 0 ? new List<string>() : all.Skip(at).Select((l, i) => i == 0 || l.StartsWith(Tag, StringComparison.Ordinal) ? l.Substring(Tag.Length) : l).ToList();
            var first = lines.FirstOrDefault() ?? "";
            var a = new LeaseAnswer { State = first.Split(' ')[0] };
            if (status != 0) { a.State = "ERR"; a.Holder = $"exit {status}: {SafeText.Neutralize(string.Join(" ", err.Concat(all)).Trim())}"; return a; }
            if (at < 0) { a.State = "UNREADABLE"; a.Holder = SafeText.Neutralize(string.Join(" ", all.Concat(err)).Trim()); return a; }
            if (a.State == "BUSY") { a.HolderLines = lines.Skip(1).ToList(); a.Holder = Describe(a.HolderLines, first); }
            if (a.State == "ERR") a.Holder = first.Substring(3).Trim();
            if (a.State == "HELD" && lines.Count > 1 && lines[1].StartsWith("STALE ")) a.Previous = Describe(lines.Skip(2).ToList(), lines[1]);
            return a;
        }

        /// <summary>
        /// The VM ran the lease script and answered, but not with its answer (a shell that rewrites output, a wrapper):
        /// whether the lease is held cannot be told, so nothing is changed (fail closed, as a contended lease folder is).
        /// </summary>
        private static OpsException Unreadable(string address, string answer)
            => new OpsException("VmLeaseUnreadable", OpsErrorCategory.InvalidResult,
                $"{address}: the VM answered the lease request without the lease's answer (it printed: '{(answer.Length > 200 ? answer.Substring(0, 200) + "…" : answer)}'), so whether another operator holds the instance cannot be told. Nothing was changed.", address,
                recommendedAction: "Check what the SSH user's shell does with a command (ssh user@vm 'echo KSOLEASE ok' must print 'KSOLEASE ok'): a ForceCommand or a start-up file that rewrites output hides the lease. A banner or message printed before the command is fine.");

        /// <summary>"who ... until HH:mm:ss on the VM" from a holder file's lines (token, expiry in epoch seconds, description).</summary>
        private static string Describe(List<string> holder, string header)
        {
            var desc = holder.Count > 2 ? holder[2] : "another operator";
            var now = header.Split(' ').Skip(1).FirstOrDefault();
            if (holder.Count > 1 && long.TryParse(holder[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var exp)
                && long.TryParse(now, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n))
                return $"{desc}; lease renewed until {Math.Max(0, exp - n)} s from now";
            return desc;
        }

        /// <summary>
        /// Under flock on the VM: free, lapsed or already ours → write ours (expiry on the VM's clock) and print HELD;
        /// held by someone else and not lapsed → BUSY with the holder file; no flock or no folder → ERR.
        /// </summary>
        internal static string AcquireScript(string file, string token, string who, string deadToken = null)
            => Prelude + $"f=\"$d/{file}\"; now=$(date +%s); tok=''; exp=0; prev=''\n" +
               "if [ -L \"$f\" ]; then echo \"KSOLEASE ERR $f is a symbolic link\"; exit 0; fi\n" +
               "if [ -f \"$f\" ]; then prev=$(head -c 2048 \"$f\"); tok=$(sed -n 1p \"$f\"); exp=$(sed -n 2p \"$f\"); case \"$exp\" in ''|*[!0-9]*) exp=0;; esac; fi\n" +
               // An expiry further ahead than one Ttl was never written by a holder renewing on this clock (a clock that
               // stepped back, a planted file): lapsed, and taken over with the warning that names the old holder.
               $"if [ \"$exp\" -gt $((now + {(long)Ttl.TotalSeconds + 5})) ]; then exp=0; fi\n" +
               $"if [ -n \"$tok\" ] && [ \"$tok\" != {ShellText.Quote(token)} ] && [ \"$tok\" != {ShellText.Quote(deadToken ?? "-")} ] && [ \"$exp\" -ge \"$now\" ]; then echo \"KSOLEASE BUSY $now\"; cat \"$f\"; exit 0; fi\n" +
               $"printf '%s\\n%s\\n%s\\n' {ShellText.Quote(token)} \"$((now + {(long)Ttl.TotalSeconds}))\" {ShellText.Quote(who)} > \"$f.$$\" && mv -f \"$f.$$\" \"$f\" || {{ echo \"KSOLEASE ERR cannot write $f\"; exit 0; }}\n" +
               "echo \"KSOLEASE HELD $now\"\n" +
               $"if [ -n \"$tok\" ] && [ \"$tok\" != {ShellText.Quote(token)} ]; then echo \"KSOLEASE STALE $now\"; printf '%s\\n' \"$prev\"; fi\n";

        internal static string ReleaseScript(string file, string token)
            => Prelude + $"f=\"$d/{file}\"\n" +
               $"if [ -f \"$f\" ] && [ ! -L \"$f\" ] && [ \"$(sed -n 1p \"$f\")\" = {ShellText.Quote(token)} ]; then rm -f \"$f\"; fi\necho KSOLEASE RELEASED\n";

        /// <summary>Makes the folder owner-only, refuses a symlinked one, and takes flock on its lock file for the rest of the script.</summary>
        private const string Prelude =
            "umask 077; d=\"" + VmDir + "\"\n" +
            "mkdir -p \"$d\" 2>/dev/null; if [ -L \"$d\" ] || [ ! -d \"$d\" ] || [ ! -O \"$d\" ]; then echo \"KSOLEASE ERR $d is not a folder of this user\"; exit 0; fi\n" +
            "command -v flock >/dev/null 2>&1 || { echo 'KSOLEASE ERR flock is not installed on the VM'; exit 0; }\n" +
            "exec 9>>\"$d/.lock\" || { echo 'KSOLEASE ERR cannot open the lease folder lock'; exit 0; }\n" +
            // Another actor is inside the lock right now: that is "busy", never "no lease" (fail closed).
            "flock -w 10 9 || { echo 'KSOLEASE BUSY 0'; printf '%s\\n%s\\n%s\\n' '-' '0' 'another actor holding the lease folder lock on the VM'; exit 0; }\n";

        internal sealed class HeldLease : IDisposable
        {
            private readonly VmLeases _owner;
            private readonly SshTarget _t;
            private readonly string _file, _token, _who;
            private readonly Timer _renew;
            private int _disposed;
            /// <summary>Another actor took the lease over (seen by a renewal).</summary>
            internal bool Lost { get; private set; }
            /// <summary>A renewal now (tests; the timer does it every Ttl/4).</summary>
            internal void RenewNow() => Renew();

            public HeldLease(VmLeases owner, SshTarget t, string file, string token, string who)
            {
                _owner = owner; _t = t; _file = file; _token = token; _who = who;
                var every = TimeSpan.FromTicks(Ttl.Ticks / 4);
                _renew = new Timer(_ => Renew(), null, every, every);
            }

            private readonly object _gate = new object();

            // Renewal and release are serialised: a renewal in flight when the lease is released finishes first, so it
            // can never write the lease back after the release.
            private void Renew()
            {
                lock (_gate)
                {
                    if (_disposed != 0) return;
                    LeaseAnswer a;
                    try { a = _owner.RunAsync(_t, AcquireScript(_file, _token, _who), CancellationToken.None).GetAwaiter().GetResult(); }
                    catch (Exception) { return; /* the next renewal tries again; a lease that lapses is taken over with a warning */ }
                    // Our renewals failed for a whole Ttl and another actor took the lease over: say so, once, loudly.
                    if (a.State == "BUSY" && !Lost)
                    {
                        Lost = true;
                        _owner._log.Warning($"{_t.Host}: the lease on the VM was taken over by {a.Holder} after this machine's renewals failed for {Ttl.TotalSeconds:0} s: another actor may be changing this instance now. Check Get-KeyServiceAuditLog and the incident's notes before going on.");
                    }
                }
            }

            public void Dispose()
            {
                lock (_gate)
                {
                    if (_disposed != 0) return;
                    _disposed = 1;
                }
                _renew.Dispose();
                try
                {
                    using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
                        _owner.RunAsync(_t, ReleaseScript(_file, _token), cts.Token).GetAwaiter().GetResult();
                }
                catch (Exception e) when (e is OpsException || e is OperationCanceledException)
                {
                    _owner._log.Verbose($"{_t.Host}: could not release the lease on the VM ({e.Message}); it lapses in {Ttl.TotalSeconds:0} s.");
                }
            }
        }

        private sealed class Released : IDisposable
        {
            public static readonly Released Instance = new Released();
            public void Dispose() { }
        }
    }
}
