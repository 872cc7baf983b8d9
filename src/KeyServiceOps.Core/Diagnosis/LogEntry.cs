using System;

namespace KeyServiceOps.Core.Diagnosis
{
    public enum LogStream { Stdout, Stderr }
    public enum LogLevel { Unknown, Trace, Debug, Info, Warning, Error, Fatal }

    /// <summary>One line of a container's log.</summary>
    public sealed class LogEntry
    {
        public string Address { get; set; }
        public string Container { get; set; }
        /// <summary>Position in the stream as read (1-based, per command).</summary>
        public long Sequence { get; set; }
        public DateTimeOffset? Timestamp { get; set; }
        /// <summary>stdout or stderr for docker logs; null for the central log service (it does not keep the stream).</summary>
        /// <summary>The typed value for code; PowerShell sees <see cref="Stream"/> (its name), so JSON and CSV read the same as the views.</summary>
        internal LogStream? StreamValue { get; set; }
        public string Stream => StreamValue?.ToString();
        /// <summary>Docker (docker logs over SSH) or Central (the central log service).</summary>
        public string Source { get; set; } = "Docker";
        /// <summary>The typed value for code; PowerShell sees <see cref="Level"/> (its name), so JSON and CSV read the same as the views.</summary>
        internal LogLevel LevelValue { get; set; }
        public string Level => LevelValue.ToString();
        /// <summary>The line's text with control characters shown escaped (<see cref="SafeText"/>): safe on any terminal.</summary>
        public string Message { get; set; }
        /// <summary>What to read first: a logrus line's msg, then its other fields (not time and level); the views show it.</summary>
        public string Summary => LogText.Readable(Message);
        /// <summary>The text exactly as the container wrote it, escape sequences and all: for scripts that need the bytes (Get-KeyServiceLog -Raw puts it in Message).</summary>
        public string GetRawMessage() => _raw ?? Message;
        private string _raw;

        /// <summary>Sets the message from outside text: neutralized for display, the raw text kept when it differs.</summary>
        public void SetMessage(string raw)
        {
            Message = SafeText.Neutralize(raw);
            _raw = ReferenceEquals(Message, raw) ? null : raw;
        }
        public override string ToString() => $"{Timestamp:yyyy-MM-ddTHH:mm:ss.fffZ} {Stream} {Message}";

        /// <summary>
        /// Parses a `docker logs --timestamps` line ("2026-11-24T09:41:59.987654321Z message"); a line without
        /// the prefix keeps its whole text as the message. Written for speed: a log may have millions of lines.
        /// </summary>
        public static LogEntry Parse(string line, LogStream stream)
        {
            var e = new LogEntry { StreamValue = stream };
            var msgStart = 0;
            if (TryParseTimestamp(line, out var ts, out var end))
            {
                e.Timestamp = ts;
                msgStart = end < line.Length && line[end] == ' ' ? end + 1 : end;
            }
            var raw = msgStart == 0 ? line : line.Substring(msgStart);
            e.LevelValue = DetectLevel(raw);
            e.SetMessage(raw);
            return e;
        }

        /// <summary>RFC 3339 in UTC with 0-9 fractional digits: yyyy-MM-ddTHH:mm:ss[.f…]Z.</summary>
        public static bool TryParseTimestamp(string s, out DateTimeOffset value, out int end)
        {
            value = default; end = 0;
            if (s == null || s.Length < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':') return false;
            if (!Digits(s, 0, 4, out var y) || !Digits(s, 5, 2, out var mo) || !Digits(s, 8, 2, out var d)
                || !Digits(s, 11, 2, out var h) || !Digits(s, 14, 2, out var mi) || !Digits(s, 17, 2, out var sec)) return false;
            int i = 19; long ticks = 0;
            if (i < s.Length && s[i] == '.')
            {
                i++;
                int n = 0; long frac = 0;
                while (i < s.Length && s[i] >= '0' && s[i] <= '9')
                {
                    if (n < 7) { frac = frac * 10 + (s[i] - '0'); n++; }
                    i++;
                }
                for (; n < 7; n++) frac *= 10;
                ticks = frac;
            }
            if (i >= s.Length || s[i] != 'Z') return false;
            try
            {
                value = new DateTimeOffset(y, mo, d, h, mi, sec, TimeSpan.Zero).AddTicks(ticks);
            }
            catch (ArgumentOutOfRangeException) { return false; }
            end = i + 1;
            return true;
        }

        private static bool Digits(string s, int start, int count, out int v)
        {
            v = 0;
            for (int i = start; i < start + count; i++)
            {
                var c = s[i];
                if (c < '0' || c > '9') return false;
                v = v * 10 + (c - '0');
            }
            return true;
        }

        /// <summary>logrus text (level=error), JSON ("level":"error"), a leading [ERROR]/ERROR:, Go's panic/fatal error.</summary>
        public static LogLevel DetectLevel(string m)
        {
            if (string.IsNullOrEmpty(m)) return LogLevel.Unknown;
            var i = m.IndexOf("level=", StringComparison.Ordinal);
            if (i >= 0) return Word(m, i + 6);
            i = m.IndexOf("\"level\":", StringComparison.Ordinal);
            if (i >= 0)
            {
                var j = i + 8;
                while (j < m.Length && (m[j] == ' ' || m[j] == '"')) j++;
                return Word(m, j);
            }
            if (m.StartsWith("panic:", StringComparison.Ordinal) || m.StartsWith("fatal error:", StringComparison.Ordinal)) return LogLevel.Fatal;
            var k = m[0] == '[' ? 1 : 0;
            var lv = Word(m, k);
            if (lv == LogLevel.Unknown) return lv;
            // Only a level word followed by ], :, space or end counts (not "INFORMATION").
            var wEnd = k;
            while (wEnd < m.Length && char.IsLetter(m[wEnd])) wEnd++;
            return wEnd == m.Length || m[wEnd] == ']' || m[wEnd] == ':' || m[wEnd] == ' ' ? lv : LogLevel.Unknown;
        }

        /// <summary>A level name as a log pipeline stores it (ERROR, warn, Information...).</summary>
        public static LogLevel LevelFromName(string name)
        {
            if (string.IsNullOrEmpty(name)) return LogLevel.Unknown;
            var lv = Word(name, 0);
            if (lv != LogLevel.Unknown) return lv;
            switch (name.Trim().ToLowerInvariant())
            {
                case "information": return LogLevel.Info;
                case "verbose": return LogLevel.Debug;
                case "emergency": case "alert": return LogLevel.Fatal;
                default: return LogLevel.Unknown;
            }
        }

        private static LogLevel Word(string m, int start)
        {
            if (start < m.Length && m[start] == '"') start++;
            int end = start;
            while (end < m.Length && char.IsLetter(m[end])) end++;
            if (end == start || end - start > 8) return LogLevel.Unknown;
            switch (m.Substring(start, end - start).ToLowerInvariant())
            {
                case "trace": return LogLevel.Trace;
                case "debug": return LogLevel.Debug;
                case "info": return LogLevel.Info;
                case "warn": case "warning": return LogLevel.Warning;
                case "error": case "err": return LogLevel.Error;
                case "fatal": case "panic": case "critical": case "crit": return LogLevel.Fatal;
                default: return LogLevel.Unknown;
            }
        }
    }
}
