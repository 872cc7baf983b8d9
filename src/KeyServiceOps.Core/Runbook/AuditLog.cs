using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace KeyServiceOps.Core.Runbook
{
    /// <summary>One line of the audit log.</summary>
    public sealed class AuditEntry
    {
        public DateTimeOffset Time { get; set; } = DateTimeOffset.UtcNow;
        public string Actor { get; set; }
        public string Host { get; set; } = Environment.MachineName;
        public string Action { get; set; }
        public string Target { get; set; }
        public string Upstream { get; set; }
        public JToken Before { get; set; }
        public JToken After { get; set; }
        public string Outcome { get; set; }
        public string Incident { get; set; }
        public bool Forced { get; set; }
        public string Detail { get; set; }
        public override string ToString() => $"{Time:u} {Action} {Target} {Outcome}";
    }

    /// <summary>
    /// Append-only JSON-lines log of every change to Kong, a container or an incident. Appends are
    /// serialised within the process and retried across processes (the file is opened exclusively).
    /// Callers pass no secrets; the serializer never sees a Secret's text.
    /// </summary>
    public sealed class AuditLog
    {
        private static readonly object Gate = new object();
        private static readonly JsonSerializerSettings Settings = new JsonSerializerSettings
        {
            NullValueHandling = NullValueHandling.Ignore, DateFormatString = "yyyy-MM-ddTHH:mm:ss.fffZ",
            DateTimeZoneHandling = DateTimeZoneHandling.Utc,
        };

        public AuditLog(string path) { Path = path; }
        public string Path { get; }

        public static string DefaultActor() => Environment.UserName + "@" + Environment.MachineName;

        public void Append(AuditEntry entry)
        {
            if (string.IsNullOrEmpty(Path)) return;
            entry.Actor = entry.Actor ?? DefaultActor();
            var line = JsonConvert.SerializeObject(new
            {
                time = entry.Time.UtcDateTime, actor = entry.Actor, host = entry.Host, action = entry.Action,
                target = entry.Target, upstream = entry.Upstream, before = entry.Before, after = entry.After,
                outcome = entry.Outcome, incident = entry.Incident, forced = entry.Forced ? (bool?)true : null, detail = entry.Detail,
            }, Settings) + "\n";
            var bytes = new System.Text.UTF8Encoding(false).GetBytes(line);
            lock (Gate)
            {
                var dir = System.IO.Path.GetDirectoryName(Path);
                if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
                for (int attempt = 0; ; attempt++)
                {
                    try
                    {
                        using (var fs = new FileStream(Path, FileMode.Append, FileAccess.Write, FileShare.Read))
                        {
                            fs.Write(bytes, 0, bytes.Length);
                            fs.Flush(true);
                        }
                        return;
                    }
                    catch (IOException e) when (attempt < 50 && !(e is DirectoryNotFoundException))
                    {
                        Thread.Sleep(20);
                    }
                    catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
                    {
                        throw new OpsException("AuditLogWriteFailed", OpsErrorCategory.ResourceUnavailable,
                            $"Could not append to the audit log '{Path}': {e.Message}. The change was made; record it by hand.",
                            Path, recommendedAction: "Fix the permissions of the audit log path or set another with Set-KeyServiceOpsContext -AuditLogPath.", inner: e);
                    }
                }
            }
        }

        public IEnumerable<AuditEntry> Read(DateTimeOffset? since = null, string target = null, string action = null)
        {
            if (string.IsNullOrEmpty(Path) || !File.Exists(Path)) yield break;
            using (var fs = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete))
            using (var sr = new StreamReader(fs))
            {
                string line;
                while ((line = sr.ReadLine()) != null)
                {
                    if (string.IsNullOrWhiteSpace(line)) continue;
                    JObject j;
                    try { j = JObject.Parse(line); } catch (JsonException) { continue; }
                    var e = new AuditEntry
                    {
                        Time = j["time"] != null ? new DateTimeOffset(((DateTime)j["time"]).ToUniversalTime()) : DateTimeOffset.MinValue,
                        Actor = (string)j["actor"], Host = (string)j["host"], Action = (string)j["action"], Target = (string)j["target"],
                        Upstream = (string)j["upstream"], Before = j["before"], After = j["after"], Outcome = (string)j["outcome"],
                        Incident = (string)j["incident"], Forced = (bool?)j["forced"] ?? false, Detail = (string)j["detail"],
                    };
                    if (since.HasValue && e.Time < since.Value) continue;
                    if (target != null && !Like(e.Target, target)) continue;
                    if (action != null && !Like(e.Action, action)) continue;
                    yield return e;
                }
            }
        }

        private static bool Like(string value, string pattern)
        {
            if (value == null) return false;
            var rx = "^" + System.Text.RegularExpressions.Regex.Escape(pattern).Replace(@"\*", ".*").Replace(@"\?", ".") + "$";
            return System.Text.RegularExpressions.Regex.IsMatch(value, rx, System.Text.RegularExpressions.RegexOptions.IgnoreCase);
        }
    }
}
