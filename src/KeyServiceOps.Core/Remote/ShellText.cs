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
        public static readonly Regex ContainerName = new Regex(@"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$", RegexOptions.CultureInvariant);
        // RFC 3339 (docker's --since/--until), a Unix timestamp, or a Go duration such as 10m or 1h30m.
        private static readonly Regex Rfc3339 = new Regex(@"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$", RegexOptions.CultureInvariant);
        private static readonly Regex UnixTime = new Regex(@"^\d{1,12}(\.\d{1,9})?$", RegexOptions.CultureInvariant);
        private static readonly Regex Duration = new Regex(@"^(\d{1,6}(\.\d{1,3})?(h|m|s|ms))+$", RegexOptions.CultureInvariant);

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
                case TimeSpan ts when ts > TimeSpan.Zero: return ((long)Math.Ceiling(ts.TotalSeconds)).ToString(CultureInfo.InvariantCulture) + "s";
            }
            var s = Convert.ToString(value, CultureInfo.InvariantCulture)?.Trim();
            if (!string.IsNullOrEmpty(s) && (Rfc3339.IsMatch(s) || UnixTime.IsMatch(s) || Duration.IsMatch(s))) return s;
            throw new OpsException("InvalidTime", OpsErrorCategory.InvalidArgument,
                $"-{parameter} '{value}' is not a time docker understands. Nothing was run.", value,
                recommendedAction: "Give a [datetime], a [timespan], an RFC 3339 time (2026-11-24T09:00:00Z), a Unix timestamp or a duration such as 10m or 1h30m.");
        }

        private static readonly Regex DurationPart = new Regex(@"(\d{1,6}(?:\.\d{1,3})?)(ms|h|m|s)", RegexOptions.CultureInvariant);

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
