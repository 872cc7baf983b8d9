using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;

namespace KeyServiceOps.Core
{
    /// <summary>
    /// The one redactor: every secret the context holds (tokens, API keys, passwords, passphrases), in the forms a
    /// server may echo it back (as sent, URL-encoded, inside a Basic header), is replaced by *** in any text that
    /// leaves the core — error messages, remote answers, exception text, verbose/debug/warning lines.
    /// </summary>
    public sealed class Redactor
    {
        public static readonly Redactor None = new Redactor(new string[0]);
        private readonly string[] _secrets;

        private Redactor(IEnumerable<string> secrets)
        {
            _secrets = secrets.Where(s => !string.IsNullOrEmpty(s) && s.Length >= 3).Distinct().OrderByDescending(s => s.Length).ToArray();
        }

        public static Redactor For(OpsContext c)
        {
            if (c == null) return None;
            var raw = new[] { c.Kong.Token, c.PagerDuty.Token, c.CentralLogs.ApiKey, c.CentralLogs.Password, c.Ssh.KeyPassphrase, c.Ssh.Password }
                .Where(s => s != null).Select(s => s.Reveal()).ToList();
            // What a secret becomes on the wire (issue #26): as sent, URL-encoded, JSON-escaped, base64 (with and
            // without padding), the key half of an "id:key" API key, and the base64 of "id:key" / "user:pass" that the
            // ApiKey and Basic headers carry. A server that echoes our headers gives back one of these.
            if (c.CentralLogs.Password != null) raw.Add(c.CentralLogs.User + ":" + c.CentralLogs.Password.Reveal());
            return Of(raw);
        }

        /// <summary>
        /// A redactor for the secrets one client sends (its token, key, password, or the whole header value), in every
        /// wire form <see cref="For"/> knows: what a client scrubs from a server's answer before any of it is cut, quoted
        /// in an error or written to the audit log (a secret cut in half is no longer recognised).
        /// </summary>
        public static Redactor Of(IEnumerable<string> raw)
        {
            var list = (raw ?? Enumerable.Empty<string>()).Where(s => !string.IsNullOrEmpty(s)).ToList();
            var forms = new List<string>();
            foreach (var s in list) forms.AddRange(WireForms(s));
            foreach (var s in list.Where(x => x.IndexOf(':') > 0)) forms.AddRange(WireForms(s.Substring(s.IndexOf(':') + 1)));
            return new Redactor(forms);
        }

        private static IEnumerable<string> WireForms(string s)
        {
            yield return s;
            yield return Uri.EscapeDataString(s);
            var json = Newtonsoft.Json.JsonConvert.ToString(s).Trim('"');
            yield return json;
            yield return Newtonsoft.Json.JsonConvert.ToString(json).Trim('"'); // JSON inside a JSON error string
            var b64 = Convert.ToBase64String(Encoding.UTF8.GetBytes(s));
            yield return b64;
            yield return b64.TrimEnd('=');
            yield return Uri.EscapeDataString(b64);
        }

        public bool IsEmpty => _secrets.Length == 0;

        public string Scrub(string text)
        {
            if (string.IsNullOrEmpty(text) || _secrets.Length == 0) return text;
            foreach (var s in _secrets)
                if (text.IndexOf(s, StringComparison.Ordinal) >= 0) text = text.Replace(s, "***");
            return text;
        }

        /// <summary>The same error with every text scrubbed; an inner exception that holds a secret is dropped.</summary>
        public OpsException Scrub(OpsException e)
        {
            if (e == null || _secrets.Length == 0) return e;
            var inner = e.InnerException;
            if (inner != null && Scrub(inner.ToString()) != inner.ToString()) inner = null;
            var target = e.TargetObject is string t ? Scrub(t) : e.TargetObject;
            var scrubbed = new OpsException(e.ErrorId, e.Category, Scrub(e.Message), target, Scrub(e.Details), Scrub(e.RecommendedAction), inner);
            return scrubbed;
        }
    }
}
