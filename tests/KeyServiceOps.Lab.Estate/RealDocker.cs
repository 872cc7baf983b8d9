using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Tasks;

namespace KeyServiceOps.Lab.Estate
{
    /// <summary>
    /// Simulated VMs that run a real Docker Engine: one dockerd per VM (its own socket, data and exec folders, no
    /// networking of its own), and on each one container literally named <c>api_key_service</c> that serves
    /// <c>/api/auth/healthz</c> on the VM's loopback address (host network) and writes the service's log lines.
    /// The container is busybox (Debian's static build) plus an entrypoint the lab writes: busybox httpd for the
    /// health endpoint, and a shell that plays each <see cref="FaultScenario"/> for real (exit codes, a real memory
    /// limit for out-of-memory, a real bind failure for port-in-use, a stopped process for hung).
    /// </summary>
    public sealed class RealDockerEstate : IAsyncDisposable
    {
        public const string Image = "kso/api_key_service:lab";
        public const string Container = "api_key_service";
        /// <summary>The user without docker rights (sudo allowed) for the socket-permission path.</summary>
        public const string UnprivilegedUser = "ksolab";

        public string Dir { get; private set; }
        public List<RealVm> Vms { get; } = new List<RealVm>();
        /// <summary>How long the estate took to come up (daemons, images, containers, healthy).</summary>
        public TimeSpan StartUp { get; private set; }

        /// <summary>Why the real engine cannot run here, or null when it can.</summary>
        public static string Missing()
        {
            if (!OperatingSystem.IsLinux()) return "real Docker needs Linux";
            if (Environment.UserName != "root") return "real Docker in the lab needs root (one dockerd per simulated VM)";
            if (!File.Exists("/usr/sbin/dockerd")) return "dockerd is not installed (apt-get install -y --no-install-recommends docker.io containerd runc; .ci/run does it)";
            if (BusyBox() == null) return "a static busybox is not installed (apt-get install -y busybox-static; .ci/run does it)";
            if (Which("docker") == null) return "the docker CLI is not on PATH";
            return null;
        }

        /// <summary>A statically linked busybox (the container has no libraries): $KSO_BUSYBOX or /bin/busybox.</summary>
        public static string BusyBox()
        {
            foreach (var p in new[] { Environment.GetEnvironmentVariable("KSO_BUSYBOX"), "/bin/busybox", "/usr/bin/busybox" })
            {
                if (string.IsNullOrEmpty(p) || !File.Exists(p)) continue;
                if (IsStatic(p)) return p;
            }
            return null;
        }

        /// <summary>An ELF file without a PT_INTERP program header needs no dynamic loader.</summary>
        private static bool IsStatic(string path)
        {
            var b = File.ReadAllBytes(path);
            if (b.Length < 64 || b[0] != 0x7f || b[1] != 'E' || b[4] != 2) return false;
            var phoff = BitConverter.ToInt64(b, 32);
            var phentsize = BitConverter.ToUInt16(b, 54);
            var phnum = BitConverter.ToUInt16(b, 56);
            for (int i = 0; i < phnum; i++)
                if (BitConverter.ToUInt32(b, (int)phoff + i * phentsize) == 3) return false;
            return true;
        }

        internal static string Which(string name)
            => (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);

        public static async Task<RealDockerEstate> StartAsync(IReadOnlyList<string> addresses)
        {
            var missing = Missing();
            if (missing != null) throw new InvalidOperationException("The real-Docker lab cannot start: " + missing + ".");
            var sw = Stopwatch.StartNew();
            var e = new RealDockerEstate { Dir = Path.Combine("/tmp", "kso-dk-" + Guid.NewGuid().ToString("N").Substring(0, 8)) };
            Directory.CreateDirectory(e.Dir);
            var root = e.WriteImageRoot();
            try
            {
                for (int i = 0; i < addresses.Count; i++) e.Vms.Add(new RealVm(addresses[i], Path.Combine(e.Dir, "vm" + i), root));
                // Two at a time: dockerd start-up is mostly CPU on a 2-core machine.
                foreach (var pair in e.Vms.Chunk(2)) await Task.WhenAll(pair.Select(v => v.StartAsync()));
            }
            catch (Exception)
            {
                await e.DisposeAsync();
                throw;
            }
            e.StartUp = sw.Elapsed;
            return e;
        }

        /// <summary>The image's files: busybox and its applets, the health body, the entrypoint.</summary>
        private string WriteImageRoot()
        {
            var root = Path.Combine(Dir, "image");
            foreach (var d in new[] { "bin", "ctl", "tmp", "www/api/auth" }) Directory.CreateDirectory(Path.Combine(root, d));
            File.Copy(BusyBox(), Path.Combine(root, "bin/busybox"));
            foreach (var applet in new[] { "sh", "httpd", "sleep", "date", "cat", "rm", "kill", "head", "tr", "pidof", "ps", "ls" })
                File.CreateSymbolicLink(Path.Combine(root, "bin", applet), "busybox");
            File.WriteAllText(Path.Combine(root, "www/api/auth/healthz"), SimInstance.HealthyBody);
            File.WriteAllText(Path.Combine(root, "entrypoint.sh"), EntryPoint());
            return root;
        }

        private static string Sh(string s) => "'" + s.Replace("'", "'\\''") + "'";

        /// <summary>
        /// The container's program: the service's start-up lines, then busybox httpd on $LISTEN, watched; SIGTERM
        /// stops it at once; SIGUSR1 plays the fault named in /ctl/fault (the lab's way to make it fail at run
        /// time); /ctl/scenario is played at every start (a fault a restart does not cure); /ctl/startfault once.
        /// The fault lines are <see cref="FaultScenarios"/>' own, with the time of writing.
        /// </summary>
        private static string EntryPoint()
        {
            var t0 = new DateTimeOffset(2000, 1, 1, 0, 0, 0, TimeSpan.Zero);
            string Lines(IEnumerable<LogLine> lines)
                => string.Concat(lines.Select(l => $"  say {(l.Stderr ? 2 : 1)} {Sh(System.Text.RegularExpressions.Regex.Replace(l.Text, "time=\"[^\"]*\"", "time=\"@T@\""))}\n"));
            var sb = new StringBuilder();
            sb.Append("#!/bin/sh\n# api_key_service as the KeyServiceOps lab plays it (busybox httpd + the service's log lines).\n");
            sb.Append("say() { t=$(date -u +%Y-%m-%dT%H:%M:%SZ); if [ \"$1\" = 2 ]; then printf '%s\\n' \"${2//@T@/$t}\" >&2; else printf '%s\\n' \"${2//@T@/$t}\"; fi; }\n");
            sb.Append("H=\n");
            sb.Append("stop() { say 1 'time=\"@T@\" level=info msg=\"shutting down\" signal=SIGTERM'; if [ -n \"$H\" ]; then kill -CONT $H; kill $H; fi 2>/dev/null; exit 0; }\n");
            sb.Append("play() {\n  case \"$1\" in\n");
            foreach (FaultScenario s in Enum.GetValues(typeof(FaultScenario)))
            {
                var (lines, exit, oom) = FaultScenarios.Lines(s, t0, withStartup: false);
                sb.Append($"  {s})\n");
                if (oom)
                {
                    // Only what the service writes before the kernel kills it: the warning. The allocation is real.
                    sb.Append(Lines(lines.Where(l => l.Text.Contains("level=")).ToList()));
                    sb.Append("  x=$(head -c 1000000000 /dev/zero | tr '\\0' a)\n  exit 3;;\n");
                }
                else sb.Append(Lines(lines)).Append($"  exit {exit};;\n");
            }
            sb.Append("  esac\n}\n");
            sb.Append("fault() { f=$(cat /ctl/fault 2>/dev/null); rm -f /ctl/fault; [ -z \"$f\" ] && f=$(cat /ctl/scenario 2>/dev/null); [ -n \"$f\" ] && play \"$f\"; }\n");
            sb.Append("trap stop TERM INT\ntrap fault USR1\n");
            sb.Append(Lines(FaultScenarios.Startup(t0)));
            sb.Append("s=$(cat /ctl/scenario 2>/dev/null); [ -n \"$s\" ] && play \"$s\"\n");
            sb.Append("f=$(cat /ctl/startfault 2>/dev/null); if [ -n \"$f\" ]; then rm -f /ctl/startfault; play \"$f\"; fi\n");
            sb.Append("httpd -f -p \"$LISTEN\" -h /www 2>/dev/null &\nH=$!\nsleep 0.3\n");
            sb.Append("kill -0 $H 2>/dev/null || play PortInUse\n");
            sb.Append("say 1 'time=\"@T@\" level=info msg=\"http server listening\" addr=\"'\"$LISTEN\"'\"'\n");
            sb.Append("while :; do sleep 0.2; kill -0 $H 2>/dev/null || play CleanCrash; done\n");
            return sb.ToString();
        }

        /// <summary>The sshd lines that route each VM address's logins to that VM's daemon.</summary>
        public IReadOnlyDictionary<string, string> DockerHosts => Vms.ToDictionary(v => v.Address, v => v.DockerHost);

        /// <summary>Creates <see cref="UnprivilegedUser"/> (no docker group, key login) and lets it run docker through `sudo -n`.</summary>
        public static async Task EnsureUnprivilegedUserAsync()
        {
            if (Which("sudo") == null && !File.Exists("/usr/bin/sudo"))
                throw new InvalidOperationException("sudo is not installed (apt-get install -y sudo; .ci/run does it).");
            var (code, _, _) = await RunAsync("id", new[] { "-u", UnprivilegedUser }, null);
            if (code != 0)
            {
                var (c2, _, err) = await RunAsync("useradd", new[] { "-M", "-s", "/bin/sh", UnprivilegedUser }, null);
                if (c2 != 0 && !err.Contains("already exists")) throw new InvalidOperationException("useradd failed: " + err);
            }
            // useradd leaves the account locked ('!'): OpenSSH refuses key logins to locked accounts.
            await RunAsync("usermod", new[] { "-p", "*", UnprivilegedUser }, null);
            var rule = $"Defaults:{UnprivilegedUser} env_keep += \"DOCKER_HOST\"\n{UnprivilegedUser} ALL=(root) NOPASSWD: ALL\n";
            Directory.CreateDirectory("/etc/sudoers.d");
            File.WriteAllText("/etc/sudoers.d/kso-lab", rule);
            if (OperatingSystem.IsLinux()) File.SetUnixFileMode("/etc/sudoers.d/kso-lab", UnixFileMode.UserRead | UnixFileMode.GroupRead);
        }

        internal static async Task<(int code, string stdout, string stderr)> RunAsync(string file, IEnumerable<string> args, IDictionary<string, string> env, string stdin = null)
        {
            var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = stdin != null };
            foreach (var a in args) psi.ArgumentList.Add(a);
            if (env != null) foreach (var kv in env) psi.Environment[kv.Key] = kv.Value;
            using var p = Process.Start(psi);
            var o = p.StandardOutput.ReadToEndAsync();
            var e = p.StandardError.ReadToEndAsync();
            if (stdin != null) { await p.StandardInput.WriteAsync(stdin); p.StandardInput.Close(); }
            await p.WaitForExitAsync();
            return (p.ExitCode, await o, await e);
        }

        /// <summary>Resident memory of every process this estate started (dockerd, containerd, shims, containers), in bytes.</summary>
        public long ResidentBytes()
        {
            long total = 0;
            foreach (var pid in Vms.SelectMany(v => v.ProcessTree())) total += RealVm.Rss(pid);
            return total;
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var pair in Vms.Chunk(4)) await Task.WhenAll(pair.Select(v => v.DisposeAsync().AsTask()));
            try { Directory.Delete(Dir, true); } catch (Exception) { }
        }
    }

    /// <summary>One simulated VM: its own dockerd and the api_key_service container on its loopback address.</summary>
    public sealed class RealVm : IAsyncDisposable
    {
        private readonly string _imageRoot;
        private int _daemonPid;
        private TcpListener _portHolder;

        internal RealVm(string address, string dir, string imageRoot)
        {
            Address = address; Dir = dir; _imageRoot = imageRoot;
            Directory.CreateDirectory(Dir);
            Directory.CreateDirectory(CtlDir);
        }

        public string Address { get; }
        public int Port => 8888;
        public string Target => $"{Address}:{Port}";
        public string HealthUrl => $"http://{Address}:{Port}/api/auth/healthz";
        public string Dir { get; }
        public string Socket => Path.Combine(Dir, "docker.sock");
        public string DockerHost => "unix://" + Socket;
        /// <summary>Mounted at /ctl in the container: how the lab tells it which fault to play.</summary>
        public string CtlDir => Path.Combine(Dir, "ctl");
        public bool DaemonRunning => _daemonPid != 0;

        internal async Task StartAsync()
        {
            await StartDaemonAsync();
            var (c, _, err) = await RealDockerEstate.RunAsync("/bin/sh", new[] { "-c", $"tar -C {Quote(_imageRoot)} -c . | docker import --change 'ENTRYPOINT [\"/bin/sh\",\"/entrypoint.sh\"]' - {RealDockerEstate.Image}" }, Env);
            if (c != 0) throw new InvalidOperationException($"docker import on {Address} failed: {err}");
            await RunContainerAsync();
        }

        private static string Quote(string s) => "'" + s.Replace("'", "'\\''") + "'";
        private Dictionary<string, string> Env => new Dictionary<string, string> { ["DOCKER_HOST"] = DockerHost };

        /// <summary>`docker ARGS` against this VM's daemon, as the lab (root, local socket).</summary>
        public Task<(int code, string stdout, string stderr)> DockerAsync(params string[] args) => RealDockerEstate.RunAsync("docker", args, Env);

        public async Task StartDaemonAsync()
        {
            if (_daemonPid != 0) return;
            var args = new[]
            {
                "-H", DockerHost, "--data-root", Path.Combine(Dir, "data"), "--exec-root", Path.Combine(Dir, "exec"),
                "--pidfile", Path.Combine(Dir, "dockerd.pid"), "--iptables=false", "--ip6tables=false", "--ip-forward=false",
                "--ip-masq=false", "--bridge=none", "--storage-driver=vfs", "--log-driver=json-file", "--userland-proxy=false",
            };
            // Through sh so its output goes to a file (nothing to drain); exec keeps the pid dockerd's.
            var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false, RedirectStandardInput = true };
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add($"exec dockerd \"$@\" >>{Quote(Path.Combine(Dir, "dockerd.log"))} 2>&1");
            psi.ArgumentList.Add("dockerd");
            foreach (var a in args) psi.ArgumentList.Add(a);
            using (var p = Process.Start(psi)) _daemonPid = p.Id;
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (true)
            {
                if (File.Exists(Socket))
                {
                    var (c, _, _) = await DockerAsync("version", "--format", "{{.Server.Version}}");
                    if (c == 0) break;
                }
                if (!Alive(_daemonPid) || DateTime.UtcNow > deadline)
                {
                    var log = File.Exists(Path.Combine(Dir, "dockerd.log")) ? File.ReadAllText(Path.Combine(Dir, "dockerd.log")) : "";
                    throw new InvalidOperationException($"dockerd for {Address} did not come up: {log[Math.Max(0, log.Length - 2000)..]}");
                }
                await Task.Delay(100);
            }
            // The socket is root:docker 0660 when a docker group exists, root-only otherwise: either way not ours to use for others.
        }

        /// <summary>Stops the daemon (SIGTERM, SIGKILL after 15 s) and removes what it leaves mounted.</summary>
        public async Task StopDaemonAsync()
        {
            var pid = _daemonPid;
            if (pid == 0) return;
            _daemonPid = 0;
            var tree = ProcessTree(pid).ToList();
            Signal(pid, "TERM");
            var deadline = DateTime.UtcNow.AddSeconds(15);
            while (Alive(pid) && DateTime.UtcNow < deadline) await Task.Delay(100);
            foreach (var p in tree.Where(Alive)) Signal(p, "KILL");
            while (tree.Any(Alive) && DateTime.UtcNow < deadline.AddSeconds(5)) await Task.Delay(50);
            Unmount();
        }

        private void Unmount()
        {
            var mine = File.ReadAllLines("/proc/self/mounts").Select(l => l.Split(' ')[1].Replace("\\040", " "))
                .Where(m => m.StartsWith(Dir + "/", StringComparison.Ordinal)).OrderByDescending(m => m.Length).ToList();
            foreach (var m in mine) RealDockerEstate.RunAsync("umount", new[] { "-l", m }, null).GetAwaiter().GetResult();
        }

        private static void Signal(int pid, string sig)
        {
            try { RealDockerEstate.RunAsync("kill", new[] { "-" + sig, pid.ToString(CultureInfo.InvariantCulture) }, null).GetAwaiter().GetResult(); } catch (Exception) { }
        }

        private static bool Alive(int pid)
        {
            if (!Directory.Exists("/proc/" + pid)) return false;
            try { return !File.ReadAllText($"/proc/{pid}/stat").Split(' ')[2].Equals("Z"); } catch (IOException) { return false; }
        }

        /// <summary>This daemon and every process below it (containerd, shims, the container).</summary>
        internal IEnumerable<int> ProcessTree() => _daemonPid == 0 ? Enumerable.Empty<int>() : ProcessTree(_daemonPid);

        /// <summary>A process and every process below it (from /proc).</summary>
        public static IEnumerable<int> ProcessTree(int root)
        {
            var children = new Dictionary<int, List<int>>();
            foreach (var d in Directory.GetDirectories("/proc"))
            {
                if (!int.TryParse(Path.GetFileName(d), out var pid)) continue;
                try
                {
                    var stat = File.ReadAllText(Path.Combine(d, "stat"));
                    var ppid = int.Parse(stat.Substring(stat.LastIndexOf(')') + 2).Split(' ')[1], CultureInfo.InvariantCulture);
                    if (!children.TryGetValue(ppid, out var l)) children[ppid] = l = new List<int>();
                    l.Add(pid);
                }
                catch (Exception) { }
            }
            var all = new List<int>();
            var todo = new Stack<int>(); todo.Push(root);
            while (todo.Count > 0)
            {
                var p = todo.Pop(); all.Add(p);
                if (children.TryGetValue(p, out var c)) foreach (var x in c) todo.Push(x);
            }
            return all;
        }

        /// <summary>Resident memory of one process in bytes (0 when it is gone).</summary>
        public static long Rss(int pid)
        {
            try
            {
                foreach (var l in File.ReadLines($"/proc/{pid}/status"))
                    if (l.StartsWith("VmRSS:")) return long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
            }
            catch (Exception) { }
            return 0;
        }

        /// <summary>(Re)creates the container: host network, a real 96 MiB memory limit, /ctl from the lab, healthy before it returns.</summary>
        public async Task RunContainerAsync()
        {
            await DockerAsync("rm", "-f", RealDockerEstate.Container);
            var (c, _, err) = await DockerAsync("run", "-d", "--name", RealDockerEstate.Container, "--network", "host",
                "--memory", "96m", "--memory-swap", "96m", "-v", CtlDir + ":/ctl", "-e", "LISTEN=" + Target, RealDockerEstate.Image);
            if (c != 0) throw new InvalidOperationException($"docker run on {Address} failed: {err}");
            await WaitHealthyAsync(TimeSpan.FromSeconds(60));
            // httpd answers before the service has written its "listening" line: wait for it, so a test's own
            // lines come after the start-up lines.
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (!(await DockerAsync("logs", RealDockerEstate.Container)).stdout.Contains("http server listening"))
            {
                if (DateTime.UtcNow > deadline) throw new InvalidOperationException($"api_key_service on {Address} never logged that it listens");
                await Task.Delay(50);
            }
        }

        private static readonly HttpClient Http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };

        public async Task<bool> IsHealthyAsync()
        {
            try { return (await Http.GetStringAsync(HealthUrl)).Contains("The API is available and operational"); }
            catch (Exception) { return false; }
        }

        public async Task WaitHealthyAsync(TimeSpan timeout)
        {
            var deadline = DateTime.UtcNow + timeout;
            while (!await IsHealthyAsync())
            {
                if (DateTime.UtcNow > deadline) throw new InvalidOperationException($"api_key_service on {Address} is not healthy after {timeout.TotalSeconds} s: {(await DockerAsync("logs", "--tail", "20", RealDockerEstate.Container)).stderr}");
                await Task.Delay(100);
            }
        }

        /// <summary>`docker inspect --format '{{json .State}}'` as the lab reads it.</summary>
        public async Task<JsonNode> StateAsync()
        {
            var (c, o, e) = await DockerAsync("inspect", "--format", "{{json .State}}", RealDockerEstate.Container);
            if (c != 0) throw new InvalidOperationException("docker inspect failed: " + e);
            return JsonNode.Parse(o);
        }

        public async Task<int> RestartCountAsync()
            => int.Parse((await DockerAsync("inspect", "--format", "{{.RestartCount}}", RealDockerEstate.Container)).stdout.Trim(), CultureInfo.InvariantCulture);

        /// <summary>How many times the service started (its start-up line in the container's log): what a test counts restarts by.</summary>
        public async Task<int> StartsAsync()
        {
            var (_, o, e) = await DockerAsync("logs", RealDockerEstate.Container);
            return (o + e).Split('\n').Count(l => l.Contains("api_key_service starting"));
        }

        private async Task WaitExitedAsync()
        {
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while ((string)(await StateAsync())["Status"] != "exited")
            {
                if (DateTime.UtcNow > deadline) throw new InvalidOperationException($"the container on {Address} did not exit");
                await Task.Delay(100);
            }
        }

        /// <summary>
        /// Makes the running container fail the way <paramref name="scenario"/> does. With <paramref name="persists"/>
        /// (the default for the dependency faults) every later start fails the same way, as it would while the
        /// dependency is down; otherwise a restart cures it.
        /// </summary>
        public async Task ApplyScenarioAsync(FaultScenario scenario, bool? persists = null)
        {
            var p = persists ?? (scenario == FaultScenario.CipherDependency || scenario == FaultScenario.IamDependency);
            if (scenario == FaultScenario.PortInUse)
            {
                // A real bind failure: something else holds the address's port 8888 while the service starts.
                await DockerAsync("stop", RealDockerEstate.Container);
                _portHolder = new TcpListener(IPAddress.Parse(Address), Port);
                _portHolder.Start();
                await DockerAsync("start", RealDockerEstate.Container);
                await WaitExitedAsync();
                if (!p) ReleasePort();
                return;
            }
            if (p) File.WriteAllText(Path.Combine(CtlDir, "scenario"), scenario.ToString());
            else File.WriteAllText(Path.Combine(CtlDir, "fault"), scenario.ToString());
            var (c, _, err) = await DockerAsync("kill", "--signal", "USR1", RealDockerEstate.Container);
            if (c != 0) throw new InvalidOperationException("docker kill --signal USR1 failed: " + err);
            await WaitExitedAsync();
            if (scenario == FaultScenario.OutOfMemory)
            {
                // The engine handles the exit and the kernel's OOM event separately: "exited" can be visible a moment before
                // OOMKilled is. Wait for both, so what a test then reads is settled (seen once under load).
                var deadline = DateTime.UtcNow.AddSeconds(10);
                while ((bool?)(await StateAsync())["OOMKilled"] != true)
                {
                    if (DateTime.UtcNow > deadline) throw new InvalidOperationException($"the container on {Address} exited but the engine never reported OOMKilled");
                    await Task.Delay(100);
                }
            }
        }

        /// <summary>The dependency came back (or the port was freed): the next start succeeds.</summary>
        public void ClearScenario()
        {
            File.Delete(Path.Combine(CtlDir, "scenario"));
            ReleasePort();
        }

        private void ReleasePort()
        {
            _portHolder?.Stop();
            _portHolder = null;
        }

        /// <summary>Hung: the HTTP server process is stopped (SIGSTOP): connections are accepted by the kernel and never answered.</summary>
        public async Task HangAsync()
        {
            var (c, _, err) = await DockerAsync("exec", RealDockerEstate.Container, "sh", "-c", "kill -STOP $(pidof httpd)");
            if (c != 0) throw new InvalidOperationException("could not stop httpd: " + err);
        }

        /// <summary>The service writes a line to stdout (1) or stderr (2), as it would while serving.</summary>
        public async Task WriteLogAsync(string text, bool stderr = false)
        {
            var (c, _, err) = await DockerAsync("exec", RealDockerEstate.Container, "sh", "-c", $"printf '%s\\n' {Quote(text)} > /proc/1/fd/{(stderr ? 2 : 1)}");
            if (c != 0) throw new InvalidOperationException("could not write to the container's log: " + err);
            // The shim copies the container's output to the log file on its own time: wait until `docker logs` has it.
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (true)
            {
                var (_, o, e) = await DockerAsync("logs", "--tail", "20", RealDockerEstate.Container);
                if ((stderr ? e : o).Contains(text)) return;
                if (DateTime.UtcNow > deadline) throw new InvalidOperationException($"the line written on {Address} never reached docker logs: {text}");
                await Task.Delay(50);
            }
        }

        public async ValueTask DisposeAsync()
        {
            ReleasePort();
            try { await StopDaemonAsync(); } catch (Exception) { }
        }
    }
}
