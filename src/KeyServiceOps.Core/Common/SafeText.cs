using System.Text;

namespace KeyServiceOps.Core
{
    /// <summary>
    /// Text from outside (container logs, docker's and servers' error strings, alert text) made safe to show and to send
    /// (issue #26): C0 and C1 control characters, DEL and the Unicode bidirectional overrides are shown visibly escaped
    /// (<c>\x1b]52;…</c>), so an escape sequence in a log line cannot set the clipboard, clear the screen or retitle the
    /// window of the operator's terminal, nor reach responders' PagerDuty views. Tabs stay; line breaks stay only where
    /// <see cref="Lines"/> is asked to keep the line structure.
    /// </summary>
    public static class SafeText
    {
        public static string Neutralize(string s)
        {
            if (string.IsNullOrEmpty(s) || !NeedsEscaping(s, false)) return s;
            var b = new StringBuilder(s.Length + 16);
            foreach (var c in s) Append(b, c, false);
            return b.ToString();
        }

        /// <summary>The same, keeping line breaks (\n; \r\n becomes \n): for a note or a message of several lines.</summary>
        public static string Lines(string s)
        {
            if (string.IsNullOrEmpty(s)) return s;
            s = s.Replace("\r\n", "\n");
            if (!NeedsEscaping(s, true)) return s;
            var b = new StringBuilder(s.Length + 16);
            foreach (var c in s) Append(b, c, true);
            return b.ToString();
        }

        private static bool Dangerous(char c)
            => (c < 0x20 && c != '\t') || (c >= 0x7f && c <= 0x9f) || (c >= '\u202a' && c <= '\u202e') || (c >= '\u2066' && c <= '\u2069');

        private static bool NeedsEscaping(string s, bool keepNewlines)
        {
            foreach (var c in s) if (Dangerous(c) && !(keepNewlines && c == '\n')) return true;
            return false;
        }

        private static void Append(StringBuilder b, char c, bool keepNewlines)
        {
            if (!Dangerous(c) || (keepNewlines && c == '\n')) { b.Append(c); return; }
            if (c <= 0xff) b.Append("\\x").Append(((int)c).ToString("x2"));
            else b.Append("\\u").Append(((int)c).ToString("x4"));
        }
    }
}
