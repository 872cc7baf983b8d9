using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using Renci.SshNet;
using Renci.SshNet.Common;

namespace KeyServiceOps.Core.Remote
{
    /// <summary>One open SSH connection (possibly through a jump host) that commands run on, each in its own channel.</summary>
    public sealed class SshSession : IDisposable
    {
        internal SshSession(SshTarget target, SshClient client, SshClient jump, ForwardedPortLocal forward)
        {
            Target = target; Client = client; Jump = jump; Forward = forward;
        }

        public SshTarget Target { get; }
        internal SshClient Client { get; }
        internal SshClient Jump { get; }
        internal ForwardedPortLocal Forward { get; }
        public DateTimeOffset OpenedAt { get; } = DateTimeOffset.UtcNow;
        public int Commands;
        public bool IsConnected => Client.IsConnected && (Jump == null || Jump.IsConnected);

        public void Dispose()
        {
            try { Client.Dispose(); } catch (Exception) { }
            if (Forward != null) try { Forward.Dispose(); } catch (Exception) { }
            if (Jump != null) try { Jump.Dispose(); } catch (Exception) { }
        }
    }

    /// <summary>
    /// SSH sessions pooled per (host, port, user, jump host): opened on first use, reused by later commands and
    /// cmdlets, replaced when found dead, closed on <see cref="Dispose"/> (the module's removal).
    /// Host keys are checked against known_hosts on every connect.
    /// </summary>
    public sealed class SshSessionPool : IDisposable
    {
        private readonly Dictionary<string, SshSession> _sessions = new Dictionary<string, SshSession>();
        private readonly Dictionary<string, SemaphoreSlim> _locks = new Dictionary<string, SemaphoreSlim>();
        private readonly object _gate = new object();
        private bool _disposed;
        private int _connects;

        /// <summary>Connections opened since the pool was made (jump-host connections included).</summary>
        public int Connects => _connects;
        public int Count { get { lock (_gate) return _sessions.Count; } }

        public async Task<SshSession> GetAsync(SshTarget target, IOpsLog log, CancellationToken ct)
        {
            var key = target.PoolKey;
            SemaphoreSlim l;
            lock (_gate)
            {
                if (_disposed) throw new ObjectDisposedException(nameof(SshSessionPool));
                if (!_locks.TryGetValue(key, out l)) _locks[key] = l = new SemaphoreSlim(1, 1);
            }
            await l.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                SshSession s;
                lock (_gate) _sessions.TryGetValue(key, out s);
                if (s != null && s.IsConnected)
                {
                    log.Debug($"SSH: reusing the session to {target.Display} (opened {s.OpenedAt:HH:mm:ss}, {s.Commands} commands so far)");
                    return s;
                }
                if (s != null)
                {
                    log.Verbose($"SSH: the pooled session to {target.Display} is closed; reconnecting.");
                    Remove(key, s);
                }
                s = await ConnectAsync(target, log, ct).ConfigureAwait(false);
                lock (_gate)
                {
                    if (_disposed) { s.Dispose(); throw new ObjectDisposedException(nameof(SshSessionPool)); }
                    _sessions[key] = s;
                    // accept-new may have just recorded the host key: the same verified session also serves the
                    // settings as they are now (the known_hosts content is part of the key).
                    var now = target.PoolKey;
                    if (now != key) _sessions[now] = s;
                }
                return s;
            }
            finally { l.Release(); }
        }

        /// <summary>Drops a session that failed (the next Get reconnects).</summary>
        public void Invalidate(SshSession s)
        {
            if (s == null) return;
            // By identity: the pool key holds the known_hosts content, which may have changed since (accept-new).
            string key;
            lock (_gate) key = _sessions.FirstOrDefault(kv => ReferenceEquals(kv.Value, s)).Key;
            if (key != null) Remove(key, s); else s.Dispose();
        }

        private void Remove(string key, SshSession s)
        {
            lock (_gate)
            {
                foreach (var k in _sessions.Where(kv => ReferenceEquals(kv.Value, s)).Select(kv => kv.Key).ToList()) _sessions.Remove(k);
            }
            s.Dispose();
        }

        private async Task<SshSession> ConnectAsync(SshTarget target, IOpsLog log, CancellationToken ct)
        {
            SshClient jump = null; ForwardedPortLocal fwd = null;
            string host = target.Host; int port = target.Port;
            try
            {
                if (!string.IsNullOrEmpty(target.JumpHost))
                {
                    var jt = target.JumpTarget();
                    log.Verbose($"SSH: connecting to jump host {jt.Display}");
                    jump = await OpenAsync(jt, jt.Host, jt.Port, log, ct).ConfigureAwait(false);
                    fwd = new ForwardedPortLocal("127.0.0.1", 0, target.Host, (uint)target.Port);
                    jump.AddForwardedPort(fwd);
                    fwd.Start();
                    host = "127.0.0.1"; port = (int)fwd.BoundPort;
                    log.Debug($"SSH: forwarding 127.0.0.1:{port} to {target.HostToken} through {jt.Display}");
                }
                log.Verbose($"SSH: connecting to {target.Display}");
                var client = await OpenAsync(target, host, port, log, ct).ConfigureAwait(false);
                return new SshSession(target, client, jump, fwd);
            }
            catch
            {
                fwd?.Dispose(); jump?.Dispose();
                throw;
            }
        }

        /// <summary>Connects and authenticates one client; the host key is judged for <paramref name="target"/>'s name, whatever socket is used.</summary>
        private async Task<SshClient> OpenAsync(SshTarget target, string host, int port, IOpsLog log, CancellationToken ct)
        {
            var auth = Authentication(target, log);
            var info = new ConnectionInfo(host, port, target.User, auth.ToArray()) { Timeout = target.ConnectTimeout };
            var client = new SshClient(info);
            var known = new KnownHostsFile(target.KnownHostsPath);
            HostKeyCheck check = null;
            OpsException recordFailed = null;
            client.HostKeyReceived += (s, e) =>
            {
                check = known.Check(target.Host, target.Port, e.HostKey);
                if (check.Verdict == HostKeyVerdict.Unknown && target.AcceptNewHostKey)
                {
                    try { known.Add(target.Host, target.Port, e.HostKey); }
                    catch (Exception x) when (x is IOException || x is UnauthorizedAccessException)
                    {
                        // Not "unknown, use -AcceptNewHostKey": it was asked for and the file could not take the key.
                        recordFailed = new OpsException("SshKnownHostsUnwritable", OpsErrorCategory.PermissionDenied,
                            $"-AcceptNewHostKey could not record the host key of {check.HostToken} ({check.KeyType} {check.PresentedFingerprint}) in {known.Path}: {x.Message}. Nothing was run.",
                            known.Path, recommendedAction: "Make the known_hosts file (and its folder) writable, or point -KnownHostsPath at one that is.", inner: x);
                        e.CanTrust = false;
                        return;
                    }
                    log.Warning($"SSH: recorded the new host key of {check.HostToken} ({check.KeyType} {check.PresentedFingerprint}) in {known.Path}.");
                    check.Verdict = HostKeyVerdict.Trusted;
                }
                e.CanTrust = check.Verdict == HostKeyVerdict.Trusted;
            };
            using (var cts = CancellationTokenSource.CreateLinkedTokenSource(ct))
            {
                cts.CancelAfter(target.ConnectTimeout);
                try
                {
                    await client.ConnectAsync(cts.Token).ConfigureAwait(false);
                    Interlocked.Increment(ref _connects);
                    log.Verbose($"SSH: connected to {target.Display} ({check?.KeyType} {check?.PresentedFingerprint})");
                    return client;
                }
                catch (Exception e)
                {
                    client.Dispose();
                    if (recordFailed != null) throw recordFailed;
                    if (check != null && check.Verdict != HostKeyVerdict.Trusted) throw HostKeyError(target, check, known.Path);
                    if (ct.IsCancellationRequested) throw new OperationCanceledException(ct);
                    throw ConnectError(target, e, cts.IsCancellationRequested);
                }
            }
        }

        private static List<AuthenticationMethod> Authentication(SshTarget t, IOpsLog log)
        {
            var methods = new List<AuthenticationMethod>();
            var keyFiles = new List<IPrivateKeySource>();
            var paths = !string.IsNullOrEmpty(t.KeyPath) ? new[] { t.KeyPath } : DefaultKeyPaths();
            foreach (var p in paths)
            {
                if (!File.Exists(p))
                {
                    if (!string.IsNullOrEmpty(t.KeyPath))
                        throw new OpsException("SshKeyNotFound", OpsErrorCategory.ObjectNotFound, $"The SSH private key '{p}' does not exist.", p,
                            recommendedAction: "Pass -SshKeyPath with the key you log in to the VM with, or set it with Set-KeyServiceOpsContext -SshKeyPath.");
                    continue;
                }
                try
                {
                    var pass = t.KeyPassphrase?.Reveal();
                    keyFiles.Add(string.IsNullOrEmpty(pass) ? new PrivateKeyFile(p) : new PrivateKeyFile(p, pass));
                    log.Debug($"SSH: using key {p}" + (t.KeyPassphrase != null ? " (passphrase given)" : ""));
                }
                catch (SshPassPhraseNullOrEmptyException)
                {
                    if (!string.IsNullOrEmpty(t.KeyPath))
                        throw new OpsException("SshKeyPassphraseRequired", OpsErrorCategory.AuthenticationError, $"The SSH key '{p}' is protected by a passphrase and none was given.", p,
                            recommendedAction: "Pass -SshKeyPassphrase (Read-Host -AsSecureString), or set it once with Set-KeyServiceOpsContext -SshKeyPassphrase.");
                }
                catch (Exception e) when (!(e is OutOfMemoryException) && !(e is OpsException))
                {
                    if (!string.IsNullOrEmpty(t.KeyPath))
                        throw new OpsException("SshKeyInvalid", OpsErrorCategory.AuthenticationError,
                            $"Cannot load the SSH key '{p}': {(t.KeyPassphrase != null ? "the passphrase is wrong or " : "")}the file is not a supported private key ({e.GetType().Name}).", p,
                            recommendedAction: "Check the passphrase; keys in OpenSSH and PEM formats (RSA, ECDSA, Ed25519) are supported.");
                }
            }
            if (keyFiles.Count > 0) methods.Add(new PrivateKeyAuthenticationMethod(t.User, keyFiles.ToArray()));
            if (t.Password != null)
            {
                methods.Add(new PasswordAuthenticationMethod(t.User, t.Password.Reveal()));
                var kbd = new KeyboardInteractiveAuthenticationMethod(t.User);
                var pw = t.Password;
                kbd.AuthenticationPrompt += (s, e) =>
                {
                    foreach (var prompt in e.Prompts)
                        if (!prompt.IsEchoed || prompt.Request.IndexOf("password", StringComparison.OrdinalIgnoreCase) >= 0) prompt.Response = pw.Reveal();
                };
                methods.Add(kbd);
            }
            if (methods.Count == 0)
                throw new OpsException("SshNoCredentials", OpsErrorCategory.AuthenticationError,
                    $"No SSH credentials for {t.Display}: no key file (~/.ssh/id_ed25519, id_ecdsa, id_rsa) and no password.", t.Host,
                    recommendedAction: "Pass -SshKeyPath or -Credential, or set them with Set-KeyServiceOpsContext.");
            return methods;
        }

        private static IEnumerable<string> DefaultKeyPaths()
        {
            var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            if (string.IsNullOrEmpty(home)) return new string[0];
            return new[] { "id_ed25519", "id_ecdsa", "id_rsa" }.Select(n => Path.Combine(home, ".ssh", n));
        }

        internal static OpsException HostKeyError(SshTarget t, HostKeyCheck c, string file)
        {
            switch (c.Verdict)
            {
                case HostKeyVerdict.Changed:
                    return new OpsException("SshHostKeyChanged", OpsErrorCategory.SecurityError,
                        $"The SSH host key of {c.HostToken} has CHANGED. {file} (line {string.Join(", ", c.Lines)}) expects {string.Join(" or ", c.ExpectedFingerprints)}; " +
                        $"the server presented {c.KeyType} {c.PresentedFingerprint}. Either the VM was rebuilt or someone is intercepting the connection. Nothing was run.",
                        t.Host, recommendedAction: $"Confirm the new fingerprint with the VM's owner. If the change is expected, remove the old entry (ssh-keygen -R '{c.HostToken}' -f '{file}') and connect once with -AcceptNewHostKey.");
                case HostKeyVerdict.Revoked:
                    return new OpsException("SshHostKeyRevoked", OpsErrorCategory.SecurityError,
                        $"The SSH host key {c.KeyType} {c.PresentedFingerprint} presented by {c.HostToken} is marked @revoked in {file}. Nothing was run.", t.Host,
                        recommendedAction: "Do not connect; ask the VM's owner which key it should have.");
                default:
                    return new OpsException("SshHostKeyUnknown", OpsErrorCategory.SecurityError,
                        $"The SSH host key of {c.HostToken} ({c.KeyType} {c.PresentedFingerprint}) is not in {file}" +
                        (c.OtherKnownTypes.Count > 0 ? $" (keys of other types are: {string.Join(", ", c.OtherKnownTypes)})" : "") + ". Nothing was run.",
                        t.Host, recommendedAction: "Check the fingerprint with the VM's owner, then connect once with -AcceptNewHostKey to record it (or add it with ssh-keyscan).");
            }
        }

        private static OpsException ConnectError(SshTarget t, Exception e, bool timedOut)
        {
            for (var x = e; x != null; x = x.InnerException)
            {
                if (x is SshAuthenticationException)
                    return new OpsException("SshAuthenticationFailed", OpsErrorCategory.AuthenticationError,
                        $"SSH login to {t.Display} was refused: {x.Message}", t.Host,
                        recommendedAction: "Check -SshUser and the key (or -Credential); the key's public half must be in the user's authorized_keys on the VM.", inner: e);
                if (x is SocketException se && se.SocketErrorCode == SocketError.ConnectionRefused)
                    return new OpsException("SshConnectionRefused", OpsErrorCategory.ConnectionError,
                        $"Nothing accepts SSH connections on {t.HostToken} (connection refused).", t.Host,
                        recommendedAction: "Check the address and -SshPort, and that sshd runs on the VM; use -JumpHost if the VM is only reachable through a bastion.", inner: e);
            }
            if (timedOut || e is SshOperationTimeoutException || e is OperationCanceledException)
                return new OpsException("SshConnectTimeout", OpsErrorCategory.OperationTimeout,
                    $"No SSH connection to {t.Display} within {t.ConnectTimeout.TotalSeconds:0.#} s.", t.Host,
                    recommendedAction: "Check that the VM is reachable (network, firewall, -JumpHost), or raise -ConnectTimeoutSec.", inner: e);
            return new OpsException("SshConnectionFailed", OpsErrorCategory.ConnectionError,
                $"SSH connection to {t.Display} failed: {e.Message}", t.Host,
                recommendedAction: "Check the address, port and credentials; -Verbose shows each step.", inner: e);
        }

        public void Dispose()
        {
            List<SshSession> all;
            lock (_gate)
            {
                _disposed = true;
                all = _sessions.Values.ToList();
                _sessions.Clear();
            }
            foreach (var s in all) s.Dispose();
        }
    }
}
