using System;
using System.Globalization;
using System.Text.RegularExpressions;

namespace KeyServiceOps.Core.Remote
{
    /// <summary>
    /// The only way text reaches a remote shell: each value is checked against a strict pattern, then
    /// single-quoted. Anything that fails is refused before a connection is opened.
    /// </summary>
    public static class ShellText
    {
        /// <summary>Docker's own container-name rule (shared/contracts/docker-cli.md).</summary>
        public static readonly Regex ContainerName = ContainerNames.Pattern;
        // RFC 3339 (docker's --since/--until), a Unix timestamp, or a Go duration such as 10m or 1h30m.
        // [0-9], not \d: .NET's \d also matches other scripts' digits (１２３), which docker does not read.
        private static readonly Regex Rfc3339 = new Regex(@"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$", RegexOptions.CultureInvariant);
        private static readonly Regex UnixTime = new Regex(@"^[0-9]{1,12}(\.[0-9]{1,9})?$", RegexOptions.CultureInvariant);
        private static readonly Regex Duration = new Regex(@"^([0-9]{1,6}(\.[0-9]{1,3})?(h|m|s|ms)){1,4}$", RegexOptions.CultureInvariant);
        /// <summary>The furthest back a log query may reach: ten years.</summary>
        private static readonly TimeSpan LongestSpan = TimeSpan.FromDays(3653);

        public static string ValidContainer(string name)
        {
            if (string.IsNullOrEmpty(name) || name.Length > 128 || !ContainerName.IsMatch(name))
                throw new OpsException("InvalidContainerName", OpsErrorCategory.InvalidArgument,
                    $"'{name}' is not a valid container name: it must match {ContainerName} (Docker's rule). Nothing was run.",
                    name, recommendedAction: "Pass the container's name as `docker ps -a` shows it, e.g. -Container api_key_service.");
            return name;
        }

        /// <summary>A --since/--until value: RFC 3339, Unix time or a duration; DateTime(Offset) and TimeSpan are converted.</summary>
        public static string ValidTime(object value, string parameter)
        {
            switch (value)
            {
                case null: return null;
                case DateTimeOffset dto: return dto.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);
                case DateTime dt: return (dt.Kind == DateTimeKind.Unspecified ? DateTime.SpecifyKind(dt, DateTimeKind.Local) : dt).ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);
                case TimeSpan ts when ts > TimeSpan.Zero && ts <= LongestSpan:
                    // Go's duration form (docker's): hours, minutes, seconds, each within the pattern below.
                    return $"{(long)ts.TotalHours}h{ts.Minutes}m{(int)Math.Ceiling(ts.Seconds + ts.Milliseconds / 1000.0)}s";
            }
            var s = Convert.ToString(value, CultureInfo.InvariantCulture)?.Trim();
            if (!string.IsNullOrEmpty(s) && (Rfc3339.IsMatch(s) || UnixTime.IsMatch(s) || Duration.IsMatch(s)))
            {
                if (!Duration.IsMatch(s) || SpanOf(s) <= LongestSpan)
                {
                    try { ResolveTime(s, DateTimeOffset.UtcNow); return s; }
                    catch (Exception e) when (e is FormatException || e is ArgumentException || e is OverflowException) { /* falls through to the typed error */ }
                }
            }
            var shown = s == null ? "" : s.Length > 60 ? s.Substring(0, 60) + "…" : s;
            throw new OpsException("InvalidTime", OpsErrorCategory.InvalidArgument,
                $"-{parameter} '{shown}' is not a time docker understands (or reaches back more than ten years). Nothing was run.", shown,
                recommendedAction: "Give a [datetime], a [timespan] of up to ten years, an RFC 3339 time (2026-11-24T09:00:00Z), a Unix timestamp or a duration such as 10m or 1h30m.");
        }

        private static TimeSpan SpanOf(string duration)
        {
            double seconds = 0;
            foreach (Match m in DurationPart.Matches(duration))
            {
                var v = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
                seconds += m.Groups[2].Value == "h" ? v * 3600 : m.Groups[2].Value == "m" ? v * 60 : m.Groups[2].Value == "s" ? v : v / 1000;
            }
            return TimeSpan.FromSeconds(seconds);
        }

        private static readonly Regex DurationPart = new Regex(@"([0-9]{1,6}(?:\.[0-9]{1,3})?)(ms|h|m|s)", RegexOptions.CultureInvariant);

        /// <summary>A value accepted by <see cref="ValidTime"/> as an absolute time (durations count back from <paramref name="now"/>).</summary>
        public static DateTimeOffset ResolveTime(string valid, DateTimeOffset now)
        {
            if (Duration.IsMatch(valid))
            {
                var total = TimeSpan.Zero;
                foreach (Match m in DurationPart.Matches(valid))
                {
                    var v = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
                    switch (m.Groups[2].Value)
                    {
                        case "h": total += TimeSpan.FromHours(v); break;
                        case "m": total += TimeSpan.FromMinutes(v); break;
                        case "s": total += TimeSpan.FromSeconds(v); break;
                        default: total += TimeSpan.FromMilliseconds(v); break;
                    }
                }
                return now - total;
            }
            if (UnixTime.IsMatch(valid))
                return DateTimeOffset.FromUnixTimeMilliseconds((long)(double.Parse(valid, CultureInfo.InvariantCulture) * 1000));
            var trimmed = Regex.Replace(valid, @"(\.\d{7})\d+", "$1");
            return DateTimeOffset.Parse(trimmed, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);
        }

        /// <summary>POSIX single quoting: the value is one word and nothing in it is expanded.</summary>
        public static string Quote(string value) => "'" + (value ?? "").Replace("'", "'\\''") + "'";
    }
}
