using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace KeyServiceOps.Core.PagerDuty
{
    /// <summary>A note that PagerDuty did not take, kept until it is written.</summary>
    public sealed class PendingNote
    {
        public string IncidentId { get; set; }
        public string Content { get; set; }
        public DateTimeOffset Since { get; set; }
        public string LastError { get; set; }
    }

    /// <summary>
    /// The durable outbox of notes (a JSON-lines file beside the audit log): the runbook puts a note here when PagerDuty
    /// still refuses it after the retries, and the next command that talks to PagerDuty — a runbook, a note, or
    /// Add-PagerDutyIncidentNote -RetryPendingNotes — writes it (never twice: a note already on the incident is dropped).
    /// </summary>
    public sealed class NoteOutbox
    {
        private static readonly object Gate = new object();
        public NoteOutbox(string path) { Path = path; }
        public string Path { get; }

        /// <summary>Beside the audit log: audit.jsonl → audit.pending-notes.jsonl.</summary>
        public static NoteOutbox For(OpsContext c)
            => string.IsNullOrEmpty(c?.AuditLogPath) ? null
             : new NoteOutbox(System.IO.Path.Combine(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(c.AuditLogPath)) ?? ".",
                   System.IO.Path.GetFileNameWithoutExtension(c.AuditLogPath) + ".pending-notes.jsonl"));

        public void Add(PendingNote n)
        {
            lock (Gate)
            {
                var dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(Path));
                if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
                using (var fs = new FileStream(Path, FileMode.Append, FileAccess.Write, FileShare.None))
                using (var w = new StreamWriter(fs)) w.Write(JsonConvert.SerializeObject(n) + "\n");
            }
        }

        public IReadOnlyList<PendingNote> Pending()
        {
            lock (Gate)
            {
                if (!File.Exists(Path)) return new List<PendingNote>();
                var list = new List<PendingNote>();
                foreach (var line in File.ReadAllLines(Path))
                {
                    if (string.IsNullOrWhiteSpace(line)) continue;
                    try { var n = JsonConvert.DeserializeObject<PendingNote>(line); if (n?.IncidentId != null && n.Content != null) list.Add(n); }
                    catch (JsonException) { /* a torn line from a killed writer */ }
                }
                return list;
            }
        }

        /// <summary>Writes every pending note it can; returns (written, still pending). Notes already on the incident are dropped.</summary>
        public async Task<(int written, int pending)> FlushAsync(PagerDutyClient pd, IOpsLog log, CancellationToken ct)
        {
            var pending = Pending();
            if (pending.Count == 0 || pd == null) return (0, pending.Count);
            var left = new List<PendingNote>();
            var written = 0;
            foreach (var n in pending)
            {
                try
                {
                    var notes = await pd.GetNotesAsync(n.IncidentId, ct).ConfigureAwait(false);
                    if (!notes.Any(x => x.Content == n.Content)) { await pd.AddNoteAsync(n.IncidentId, n.Content, ct).ConfigureAwait(false); written++; }
                }
                catch (OpsException e) when (!e.ErrorId.EndsWith("Cancelled", StringComparison.Ordinal))
                {
                    n.LastError = e.ErrorId;
                    left.Add(n);
                }
            }
            lock (Gate)
            {
                // Notes added meanwhile by another command stay too.
                var added = Pending().Skip(pending.Count).ToList();
                var tmp = Path + ".tmp";
                File.WriteAllLines(tmp, left.Concat(added).Select(x => JsonConvert.SerializeObject(x)));
                if (File.Exists(Path)) File.Replace(tmp, Path, null); else File.Move(tmp, Path);
            }
            if (written > 0) log?.Verbose($"Wrote {written} pending note(s) to PagerDuty; {left.Count} still pending.");
            return (written, left.Count);
        }
    }
}
