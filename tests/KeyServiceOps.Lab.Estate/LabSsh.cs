using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Threading.Tasks;
using Microsoft.AspNetCore.Builder;

namespace KeyServiceOps.Lab.Estate
{
    /// <summary>
    /// A real OpenSSH sshd on loopback, listening on every instance address at one high port, with a generated
    /// host key and user keys. Its sessions get a PATH whose first entry holds the lab's `docker`, `sudo` and
    /// `curl` shims; the docker shim calls <see cref="DockerSim"/> through the control endpoint and uses
    /// SSH_CONNECTION to know which instance it is "on".
    /// </summary>
    public sealed class LabSsh : IAsyncDisposable
    {
        public const string RsaPassphrase = "lab-pem-passphrase";
        private readonly List<string> _addresses;
        // sshd listens on at most 16 addresses (MAX_LISTEN_SOCKS): one process per 16 instances.
        private readonly List<Process> _sshd = new List<Process>();
        private WebApplication _control;

        // Real-Docker mode: each VM address's logins get that VM's DOCKER_HOST and the real docker CLI (no shims).
        private readonly IReadOnlyDictionary<string, string> _dockerHosts;

        private LabSsh(IEnumerable<string> addresses, IReadOnlyDictionary<string, string> dockerHosts = null)
        {
            _addresses = addresses.ToList();
            _dockerHosts = dockerHosts;
        }

        public string Dir { get; private set; }
        public int Port { get; private set; }
        public string User => Environment.UserName;
        /// <summary>ed25519 user key, OpenSSH format, no passphrase.</summary>
        public string KeyPath => Path.Combine(Dir, "id_ed25519");
        /// <summary>RSA user key, PEM format, protected by <see cref="RsaPassphrase"/>.</summary>
        public string RsaPemKeyPath => Path.Combine(Dir, "id_rsa_pem");
        public string HostKeyPath => Path.Combine(Dir, "ssh_host_ed25519_key");
        /// <summary>The first sshd's log (the one serving the first 16 instances).</summary>
        public string LogPath => LogPathOf(0);
        private string LogPathOf(int group) => Path.Combine(Dir, $"sshd-{group}.log");
        public string ShimDir => Path.Combine(Dir, "shim");
        /// <summary>Real-Docker mode's shims: only curl (localhost is the VM's own address).</summary>
        private string VmShimDir => Path.Combine(Dir, "vmshim");
        public Uri ControlUri { get; private set; }
        /// <summary>Where the module keeps its per-VM state on the "VMs" (leases, the restart journal): KEYSERVICEOPS_VM_DIR in every login.</summary>
        public string VmStateDir => Path.Combine(Dir, "vmstate");
        public DockerSim Docker { get; private set; }
        /// <summary>
        /// Sourced before every command, in the shell that runs it, as a VM's start-up files are (sshd's ForceCommand runs
        /// <see cref="LoginWrapperPath"/>; bash run by sshd reads ~/.bashrc, never BASH_ENV). Empty by default: the command
        /// then runs exactly as sshd would run it.
        /// </summary>
        public string ShellPreludePath => Path.Combine(Dir, "vm_prelude.sh");
        private string LoginWrapperPath => Path.Combine(Dir, "vm_login.sh");
        /// <summary>Lab switch: what the VMs' shells do before each command (print a banner, hide flock, point KEYSERVICEOPS_VM_DIR elsewhere).</summary>
        public string ShellPrelude { set => File.WriteAllText(ShellPreludePath, (value ?? "").Replace("\r\n", "\n") + "\n"); }

        /// <summary>The host key as a known_hosts key field ("ssh-ed25519 AAAA...").</summary>
        public string HostKeyLine => File.ReadAllText(HostKeyPath + ".pub").Trim().Split(' ').Take(2).Aggregate((a, b) => a + " " + b);

        /// <summary>OpenSSH-style fingerprint of the current host key: SHA256:base64-without-padding.</summary>
        public string HostKeyFingerprint
        {
            get
            {
                var blob = Convert.FromBase64String(HostKeyLine.Split(' ')[1]);
                return "SHA256:" + Convert.ToBase64String(SHA256.HashData(blob)).TrimEnd('=');
            }
        }

        /// <summary>A known_hosts line for one address ("[addr]:port ssh-ed25519 AAAA...").</summary>
        public string KnownHostsEntry(string address) => $"[{address}]:{Port} {HostKeyLine}";

        /// <summary>The same entry hashed the way `ssh-keygen -H` writes it: |1|salt|HMAC-SHA1(salt, "[addr]:port").</summary>
        public string HashedKnownHostsEntry(string address)
        {
            var salt = RandomNumberGenerator.GetBytes(20);
            using var h = new HMACSHA1(salt);
            var hash = h.ComputeHash(Encoding.ASCII.GetBytes($"[{address}]:{Port}"));
            return $"|1|{Convert.ToBase64String(salt)}|{Convert.ToBase64String(hash)} {HostKeyLine}";
        }

        /// <summary>Connections sshd accepted (one "Accepted publickey" line each) from its log.</summary>
        public int AcceptedConnections() => CountLogLines("Accepted publickey");

        /// <summary>Lines of the sshd logs containing <paramref name="needle"/> (e.g. "Disconnected from user").</summary>
        public int CountLogLines(string needle)
        {
            int n = 0;
            foreach (var log in Directory.GetFiles(Dir, "sshd-*.log"))
            {
                using var fs = new FileStream(log, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
                using var r = new StreamReader(fs);
                string line;
                while ((line = r.ReadLine()) != null) if (line.Contains(needle)) n++;
            }
            return n;
        }

        /// <summary>
        /// An sshd for VMs that run a real Docker Engine: a login on a VM's address runs the real docker CLI
        /// against that VM's daemon (sshd's <c>Match LocalAddress</c> + <c>SetEnv DOCKER_HOST</c>).
        /// </summary>
        public static Task<LabSsh> StartForRealDockerAsync(IReadOnlyDictionary<string, string> dockerHosts)
            => StartAsync(dockerHosts.Keys, _ => null, dockerHosts);

        public static async Task<LabSsh> StartAsync(IEnumerable<string> addresses, Func<string, SimInstance> byAddress, IReadOnlyDictionary<string, string> dockerHosts = null)
        {
            if (!File.Exists("/usr/sbin/sshd"))
                throw new InvalidOperationException("The SSH lab needs OpenSSH's sshd at /usr/sbin/sshd (apt-get install -y openssh-server; .ci/run does it).");
            var s = new LabSsh(addresses, dockerHosts);
            s.Dir = Path.Combine(Path.GetTempPath(), "kso-lab-ssh-" + Guid.NewGuid().ToString("N").Substring(0, 10));
            Directory.CreateDirectory(s.Dir);
            Directory.CreateDirectory(s.ShimDir);
            Directory.CreateDirectory(s.VmShimDir);
            File.WriteAllText(s.ShellPreludePath, "");
            File.WriteAllText(s.LoginWrapperPath,
                "#!/bin/bash\n" +
                $"if [ -s '{s.ShellPreludePath}' ]; then . '{s.ShellPreludePath}'; eval \"$SSH_ORIGINAL_COMMAND\"; exit $?; fi\n" +
                "if [ -z \"$SSH_ORIGINAL_COMMAND\" ]; then exec /bin/bash -l; fi\n" +
                "exec /bin/bash -c \"$SSH_ORIGINAL_COMMAND\"\n");
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(s.LoginWrapperPath, (UnixFileMode)Convert.ToInt32("755", 8));
            Directory.CreateDirectory("/run/sshd");
            s.Docker = new DockerSim(byAddress);
            (s._control, s.ControlUri) = await LabHost.StartAsync(s.Docker.HandleAsync);
            await Task.WhenAll(
                KeygenAsync("-t", "ed25519", "-N", "", "-f", s.HostKeyPath),
                KeygenAsync("-t", "ed25519", "-N", "", "-C", "kso-lab", "-f", s.KeyPath),
                KeygenAsync("-t", "rsa", "-b", "2048", "-m", "PEM", "-N", RsaPassphrase, "-C", "kso-lab-pem", "-f", s.RsaPemKeyPath));
            File.WriteAllText(Path.Combine(s.Dir, "authorized_keys"),
                File.ReadAllText(s.KeyPath + ".pub") + File.ReadAllText(s.RsaPemKeyPath + ".pub"));
            s.WriteShims();
            await s.StartSshdAsync();
            return s;
        }

        private static async Task KeygenAsync(params string[] args)
        {
            var psi = new ProcessStartInfo("ssh-keygen") { RedirectStandardOutput = true, RedirectStandardError = true };
            psi.ArgumentList.Add("-q");
            foreach (var a in args) psi.ArgumentList.Add(a);
            using var p = Process.Start(psi);
            var err = p.StandardError.ReadToEndAsync();
            await p.WaitForExitAsync();
            if (p.ExitCode != 0) throw new InvalidOperationException($"ssh-keygen {string.Join(' ', args)} failed: {await err}");
        }

        private void WriteShims()
        {
            // docker: forwards its argv to the lab and replays the answer: "1 line" -> stdout, "2 line" -> stderr, "X n" -> exit n,
            // "F path" -> the file's bytes as they are, to stdout (a giant or invalid-UTF-8 line), "D" -> drop the connection.
            WriteShim("docker", @"#!/bin/bash
# KeyServiceOps lab shim: `docker` on a simulated instance VM (see shared/contracts/docker-cli.md).
read -r _ _ sip _ <<<""$SSH_CONNECTION""
args=(--data-urlencode ""ip=$sip"" --data-urlencode ""sudo=${KSO_LAB_SUDO:-0}"")
follow=0
for a in ""$@""; do args+=(--data-urlencode ""a=$a""); case ""$a"" in -f|--follow) follow=1;; esac; done
if [ $follow = 1 ]; then
  # mawk reads its input in blocks: for --follow relay line by line in bash instead.
  /usr/bin/curl -sS -N -G ""${args[@]}"" ""$KSO_LAB_CONTROL/docker"" | {
    code=125
    while IFS= read -r line; do
      case ""$line"" in
        ""1 ""*) printf '%s\n' ""${line:2}"";;
        ""2 ""*) printf '%s\n' ""${line:2}"" >&2;;
        ""X ""*) code=${line:2};;
      esac
    done
    exit $code
  }
  exit $?
fi
/usr/bin/curl -sS -N -G ""${args[@]}"" ""$KSO_LAB_CONTROL/docker"" | /usr/bin/awk '
  substr($0,1,2)==""1 "" { print substr($0,3); next }
  substr($0,1,2)==""2 "" { print substr($0,3) > ""/dev/stderr""; next }
  substr($0,1,2)==""X "" { code=substr($0,3)+0; seen=1; next }
  substr($0,1,2)==""D "" { drop=1; next }
  substr($0,1,2)==""F "" { fflush(); system(""/bin/cat -- \047"" substr($0,3) ""\047""); next }
  END { if (drop) exit 99; if (!seen) { print ""lab: no answer from the docker simulation"" > ""/dev/stderr""; exit 125 } exit code }'
code=$?
if [ $code = 99 ]; then
  # The lab asked for a dropped connection: kill this login's sshd process (the client's connection dies mid-command).
  p=$PPID
  while [ -n ""$p"" ] && [ ""$p"" -gt 1 ]; do
    case ""$(ps -o comm= -p ""$p"")"" in sshd*) kill -9 ""$p""; exit 255;; esac
    p=$(ps -o ppid= -p ""$p"" | tr -d ' ')
  done
fi
exit $code
");
            // sudo: the lab only supports the module's non-interactive form, `sudo -n CMD...`.
            WriteShim("sudo", @"#!/bin/bash
# KeyServiceOps lab shim: `sudo -n` on a simulated instance VM.
[ ""$1"" = ""-n"" ] && shift
read -r _ _ sip _ <<<""$SSH_CONNECTION""
if [ ""$(/usr/bin/curl -sS -G --data-urlencode ""ip=$sip"" ""$KSO_LAB_CONTROL/sudo"")"" != ""ok"" ]; then
  echo ""sudo: a password is required"" >&2; exit 1
fi
KSO_LAB_SUDO=1 exec ""$@""
");
            // curl: on the VM, localhost:8888 is the instance itself, i.e. this session's server address.
            WriteShim("curl", CurlShim);
            File.Copy(Path.Combine(ShimDir, "curl"), Path.Combine(VmShimDir, "curl"));
        }

        private const string CurlShim = @"#!/bin/bash
# KeyServiceOps lab shim: curl where localhost is the simulated instance's own address.
read -r _ _ sip _ <<<""$SSH_CONNECTION""
args=()
for a in ""$@""; do args+=(""${a//localhost/$sip}""); done
exec /usr/bin/curl ""${args[@]}""
";

        private void WriteShim(string name, string text)
        {
            var p = Path.Combine(ShimDir, name);
            File.WriteAllText(p, text.Replace("\r\n", "\n"));
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(p, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        }

        private string WriteConfig(int group, IEnumerable<string> addresses)
        {
            var cfg = new StringBuilder();
            cfg.AppendLine($"Port {Port}");
            foreach (var a in addresses) cfg.AppendLine($"ListenAddress {a}");
            cfg.AppendLine($"HostKey {HostKeyPath}");
            cfg.AppendLine($"PidFile {Path.Combine(Dir, $"sshd-{group}.pid")}");
            cfg.AppendLine($"AuthorizedKeysFile {Path.Combine(Dir, "authorized_keys")}");
            cfg.AppendLine("PermitRootLogin prohibit-password");
            cfg.AppendLine("StrictModes no");
            cfg.AppendLine("UsePAM no");
            cfg.AppendLine("PasswordAuthentication no");
            cfg.AppendLine("KbdInteractiveAuthentication no");
            cfg.AppendLine("AllowTcpForwarding yes");
            cfg.AppendLine("MaxSessions 100");
            cfg.AppendLine("MaxStartups 100:30:200");
            cfg.AppendLine("LogLevel VERBOSE");
            cfg.AppendLine($"ForceCommand {LoginWrapperPath}");
            if (_dockerHosts == null)
                cfg.AppendLine($"SetEnv PATH={ShimDir}:/usr/local/bin:/usr/bin:/bin KSO_LAB_CONTROL={ControlUri.ToString().TrimEnd('/')} KEYSERVICEOPS_VM_DIR={VmStateDir}");
            else
                foreach (var a in addresses)
                {
                    cfg.AppendLine($"Match LocalAddress {a}");
                    cfg.AppendLine($"    SetEnv PATH={VmShimDir}:/usr/local/bin:/usr/bin:/bin DOCKER_HOST={_dockerHosts[a]} KEYSERVICEOPS_VM_DIR={VmStateDir}");
                }
            var path = Path.Combine(Dir, $"sshd_config-{group}");
            File.WriteAllText(path, cfg.ToString());
            return path;
        }

        private async Task StartSshdAsync()
        {
            Exception last = null;
            for (int attempt = 0; attempt < 8; attempt++)
            {
                Port = Port != 0 && attempt == 0 ? Port : FreePortOnAll();
                var groups = _addresses.Chunk(16).ToList();
                for (int g = 0; g < groups.Count; g++)
                {
                    var config = WriteConfig(g, groups[g]);
                    var psi = new ProcessStartInfo("/usr/sbin/sshd") { RedirectStandardError = true, RedirectStandardOutput = true };
                    foreach (var a in new[] { "-D", "-f", config, "-E", LogPathOf(g) }) psi.ArgumentList.Add(a);
                    _sshd.Add(Process.Start(psi));
                }
                var deadline = DateTime.UtcNow.AddSeconds(10);
                while (DateTime.UtcNow < deadline && _sshd.All(p => !p.HasExited))
                {
                    if (_addresses.All(a => CanConnect(a, Port))) return;
                    await Task.Delay(50);
                }
                last = new InvalidOperationException($"sshd did not start on port {Port}: " + string.Join("\n", Directory.GetFiles(Dir, "sshd-*.log").Select(File.ReadAllText)));
                await StopSshdAsync();
            }
            throw last;
        }

        private int FreePortOnAll()
        {
            var rnd = new Random();
            for (int i = 0; i < 50; i++)
            {
                var port = rnd.Next(20000, 60000);
                var ok = true;
                foreach (var a in _addresses)
                {
                    try { var l = new TcpListener(IPAddress.Parse(a), port); l.Start(); l.Stop(); }
                    catch (SocketException) { ok = false; break; }
                }
                if (ok) return port;
            }
            throw new InvalidOperationException("No free port for the lab sshd.");
        }

        private static bool CanConnect(string address, int port)
        {
            try { using var c = new TcpClient(); c.Connect(IPAddress.Parse(address), port); return true; }
            catch (SocketException) { return false; }
        }

        private async Task StopSshdAsync()
        {
            // Kill the whole tree: connections already accepted are served by child sshd-session processes.
            foreach (var p in _sshd)
            {
                try { if (!p.HasExited) { p.Kill(entireProcessTree: true); await p.WaitForExitAsync(); } } catch (Exception) { }
                p.Dispose();
            }
            _sshd.Clear();
            foreach (var f in Directory.GetFiles(Dir, "sshd-*.pid")) File.Delete(f);
        }

        /// <summary>sshd restarts (same keys, same port): every open connection is cut.</summary>
        public async Task RestartAsync()
        {
            await StopSshdAsync();
            await StartSshdAsync();
        }

        /// <summary>The VM was rebuilt: a new host key, sshd restarted on the same port.</summary>
        public async Task RegenerateHostKeyAsync()
        {
            await StopSshdAsync();
            File.Delete(HostKeyPath); File.Delete(HostKeyPath + ".pub");
            await KeygenAsync("-t", "ed25519", "-N", "", "-f", HostKeyPath);
            await StartSshdAsync();
        }

        public async ValueTask DisposeAsync()
        {
            await StopSshdAsync();
            await LabHost.StopAsync(_control);
            try { Directory.Delete(Dir, true); } catch (Exception) { }
        }
    }
}
