using System;
using System.Text;

namespace KeyServiceOps.Core.Diagnosis
{
    /// <summary>
    /// The part of a log line an operator reads first (#27 row 5): a logrus/logfmt line
    /// (<c>time="…" level=error msg="failed …" err="…"</c>) becomes its msg, then the other fields but time and level
    /// (the view has those columns); a line that starts with an RFC 3339 time loses it. Other text is returned as is.
    /// Display only: Message keeps the line as written.
    /// </summary>
    public static class LogText
    {
        public static string Readable(string line)
        {
            if (string.IsNullOrEmpty(line)) return line;
            var text = line;
            if (LogEntry.TryParseTimestamp(text, out _, out var end)) text = text.Substring(Math.Min(text.Length, end)).TrimStart();
            // A fault's evidence carries its stream as "[stderr] " (after the time): kept in front, the line after it made readable.
            if (text.StartsWith("[stderr] ", StringComparison.Ordinal) || text.StartsWith("[stdout] ", StringComparison.Ordinal))
                return text.Substring(0, 9) + Readable(text.Substring(9));
            if (text.IndexOf("msg=", StringComparison.Ordinal) < 0) return text;
            string msg = null;
            var rest = new StringBuilder();
            int i = 0;
            while (i < text.Length)
            {
                while (i < text.Length && text[i] == ' ') i++;
                var ks = i;
                while (i < text.Length && text[i] != '=' && text[i] != ' ') i++;
                if (i >= text.Length || text[i] != '=' || i == ks) return text; // not key=value all the way: leave it alone
                var key = text.Substring(ks, i - ks);
                i++;
                string value;
                if (i < text.Length && text[i] == '"')
                {
                    var sb = new StringBuilder();
                    i++;
                    while (i < text.Length && text[i] != '"')
                    {
                        if (text[i] == '\\' && i + 1 < text.Length)
                        {
                            // logrus/Go quoting: \n and \t are whitespace in the line as written, not the letters n and t.
                            var c = text[i + 1];
                            sb.Append(c == 'n' || c == 't' || c == 'r' ? ' ' : c);
                            i += 2; continue;
                        }
                        sb.Append(text[i++]);
                    }
                    if (i >= text.Length) return text; // unterminated quote
                    i++;
                    value = sb.ToString();
                    if (key != "msg") value = "\"" + value + "\"";
                }
                else
                {
                    var vs = i;
                    while (i < text.Length && text[i] != ' ') i++;
                    value = text.Substring(vs, i - vs);
                }
                if (key == "msg") msg = value;
                else if (key != "time" && key != "level") rest.Append(rest.Length == 0 ? "" : " ").Append(key).Append('=').Append(value);
            }
            if (msg == null) return text;
            return rest.Length == 0 ? msg : msg + " (" + rest + ")";
        }
    }
}
