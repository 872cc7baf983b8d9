using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace KeyServiceOps.Core.Remote
{
    public enum HostKeyVerdict { Trusted, Unknown, Changed, Revoked }

    /// <summary>What the known_hosts file says about the key a server presented.</summary>
    public sealed class HostKeyCheck
    {
        public HostKeyVerdict Verdict { get; set; }
        public string HostToken { get; set; }
        public string KeyType { get; set; }
        public string PresentedFingerprint { get; set; }
        public List<string> ExpectedFingerprints { get; } = new List<string>();
        /// <summary>1-based lines of the file that matched the host.</summary>
        public List<int> Lines { get; } = new List<int>();
        /// <summary>Key types known for the host other than the one presented (an "Unknown" with these is not a key change).</summary>
        public List<string> OtherKnownTypes { get; } = new List<string>();
    }

    /// <summary>
    /// An OpenSSH known_hosts file: plain and hashed (|1|salt|hash) host fields, comma lists, wildcards,
    /// negation, the [host]:port form, and @revoked markers (@cert-authority lines are ignored).
    /// </summary>
    public sealed class KnownHostsFile
    {
        private static readonly object WriteGate = new object();
        public KnownHostsFile(string path) { Path = path; }
        public string Path { get; }

        public static string DefaultPath()
        {
            var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            return System.IO.Path.Combine(string.IsNullOrEmpty(home) ? "." : home, ".ssh", "known_hosts");
        }

        /// <summary>How OpenSSH names a host in known_hosts: "host" on port 22, "[host]:port" otherwise.</summary>
        public static string HostToken(string host, int port) => port == 22 ? host : $"[{host}]:{port}"; // OpenSSH's own form: brackets for any host on a non-default port

        public static string Fingerprint(byte[] blob)
        {
            using (var sha = SHA256.Create()) return "SHA256:" + Convert.ToBase64String(sha.ComputeHash(blob)).TrimEnd('=');
        }

        /// <summary>The key type named inside an SSH public-key blob (its first string).</summary>
        public static string KeyTypeOf(byte[] blob)
        {
            if (blob == null || blob.Length < 4) return null;
            var len = (blob[0] << 24) | (blob[1] << 16) | (blob[2] << 8) | blob[3];
            if (len <= 0 || len > blob.Length - 4 || len > 64) return null;
            return Encoding.ASCII.GetString(blob, 4, len);
        }

        public HostKeyCheck Check(string host, int port, byte[] blob)
        {
            var token = HostToken(host, port);
            var type = KeyTypeOf(blob);
            var check = new HostKeyCheck { HostToken = token, KeyType = type, PresentedFingerprint = Fingerprint(blob), Verdict = HostKeyVerdict.Unknown };
            if (!File.Exists(Path)) return check;
            var presented = Convert.ToBase64String(blob);
            bool match = false, mismatch = false, revoked = false;
            int n = 0;
            foreach (var raw in ReadLines())
            {
                n++;
                var line = raw.Trim();
                if (line.Length == 0 || line[0] == '#') continue;
                var parts = Regex.Split(line, @"\s+");
                string marker = null;
                if (parts[0].StartsWith("@")) { marker = parts[0]; parts = parts.Skip(1).ToArray(); }
                if (parts.Length < 3) continue;
                if (marker == "@cert-authority") continue;
                if (marker == "@revoked")
                {
                    if (parts[2] == presented) revoked = true;
                    continue;
                }
                if (!HostMatches(parts[0], token)) continue;
                if (!string.Equals(parts[1], type, StringComparison.Ordinal))
                {
                    if (!check.OtherKnownTypes.Contains(parts[1])) check.OtherKnownTypes.Add(parts[1]);
                    continue;
                }
                check.Lines.Add(n);
                if (parts[2] == presented) match = true;
                else
                {
                    mismatch = true;
                    try { check.ExpectedFingerprints.Add(Fingerprint(Convert.FromBase64String(parts[2]))); }
                    catch (FormatException) { check.ExpectedFingerprints.Add("(unreadable key on line " + n + ")"); }
                }
            }
            check.Verdict = revoked ? HostKeyVerdict.Revoked : match ? HostKeyVerdict.Trusted : mismatch ? HostKeyVerdict.Changed : HostKeyVerdict.Unknown;
            return check;
        }

        /// <summary>Records a key for a host (what `ssh -o StrictHostKeyChecking=accept-new` does).</summary>
        public void Add(string host, int port, byte[] blob)
        {
            var line = $"{HostToken(host, port)} {KeyTypeOf(blob)} {Convert.ToBase64String(blob)}";
            lock (WriteGate)
            {
                var dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(Path));
                if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
                var needsNewline = File.Exists(Path) && new FileInfo(Path).Length > 0 && !EndsWithNewline();
                File.AppendAllText(Path, (needsNewline ? "\n" : "") + line + "\n");
            }
        }

        private bool EndsWithNewline()
        {
            using (var fs = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
            {
                fs.Seek(-1, SeekOrigin.End);
                return fs.ReadByte() == '\n';
            }
        }

        private IEnumerable<string> ReadLines()
        {
            using (var fs = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
            using (var r = new StreamReader(fs))
            {
                string l;
                while ((l = r.ReadLine()) != null) yield return l;
            }
        }

        /// <summary>OpenSSH host-field matching: a hashed entry, or a comma list of patterns where a negated match wins.</summary>
        internal static bool HostMatches(string field, string token)
        {
            if (field.StartsWith("|1|"))
            {
                var p = field.Split('|');
                if (p.Length != 4) return false;
                try
                {
                    using (var h = new HMACSHA1(Convert.FromBase64String(p[2])))
                        return Convert.ToBase64String(h.ComputeHash(Encoding.ASCII.GetBytes(token))) == p[3];
                }
                catch (FormatException) { return false; }
            }
            bool positive = false;
            foreach (var pat in field.Split(','))
            {
                if (pat.Length == 0) continue;
                var negated = pat[0] == '!';
                var glob = negated ? pat.Substring(1) : pat;
                if (!Glob(glob, token)) continue;
                if (negated) return false;
                positive = true;
            }
            return positive;
        }

        private static bool Glob(string pattern, string text)
        {
            var rx = "^" + Regex.Escape(pattern).Replace(@"\*", ".*").Replace(@"\?", ".") + "$";
            return Regex.IsMatch(text, rx, RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);
        }
    }
}
