using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Newtonsoft.Json;

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
            => string.IsNullOrEmpty(c?.Safety.AuditLogPath) ? null
             : new NoteOutbox(System.IO.Path.Combine(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(c.Safety.AuditLogPath)) ?? ".",
                   System.IO.Path.GetFileNameWithoutExtension(c.Safety.AuditLogPath) + ".pending-notes.jsonl"));

        private static readonly TimeSpan LockTimeout = TimeSpan.FromSeconds(15);

        public void Add(PendingNote n)
        {
            try { lock (Gate) LockedFile.AppendLine(Path, JsonConvert.SerializeObject(n), LockTimeout); }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
            {
                throw new OpsException("NoteOutboxUnwritable", OpsErrorCategory.PermissionDenied, $"Could not keep the note in the outbox '{Path}': {e.Message}.", Path,
                    recommendedAction: "Add the note by hand with Add-PagerDutyIncidentNote, and point -AuditLogPath at a folder of your own (the outbox lives beside the audit log).", inner: e);
            }
        }

        private static string Key(string line)
        {
            try { var x = JsonConvert.DeserializeObject<PendingNote>(line); return x?.IncidentId == null ? null : x.IncidentId + "\n" + x.Content; }
            catch (JsonException) { return null; } // a torn line from a killed writer: dropped on the next rewrite
        }

        public IReadOnlyList<PendingNote> Pending()
        {
            lock (Gate)
            {
                if (!File.Exists(Path)) return new List<PendingNote>();
                // Notes planted by another user of a folder every user can write to are never sent (issue #26); Add refuses that folder, typed.
                if (SafeFile.IsLink(Path) || SafeFile.FolderProblem(Path) != null) return new List<PendingNote>();
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
            // One flusher at a time (two commands of this machine ending together would both find a note missing on the
            // incident and both add it): a second flusher leaves the notes to the first. Its own lock file, so a runbook
            // adding a note never waits on a flush that waits on PagerDuty.
            FileStream flushing;
            try { flushing = SafeFile.OpenExclusive(Path + ".flush", TimeSpan.Zero); }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException) { return (0, pending.Count); }
            using (flushing) return await FlushLockedAsync(pd, log, ct).ConfigureAwait(false);
        }

        private async Task<(int written, int pending)> FlushLockedAsync(PagerDutyClient pd, IOpsLog log, CancellationToken ct)
        {
            var pending = Pending(); // again, inside the flush lock: what another flusher wrote meanwhile is gone
            if (pending.Count == 0) return (0, 0);
            var left = new List<PendingNote>();
            var written = 0;
            foreach (var n in pending)
            {
                try
                {
                    var notes = await pd.GetNotesAsync(n.IncidentId, ct).ConfigureAwait(false);
                    if (!notes.Any(x => x.Content == n.Content)) { await pd.AddNoteAsync(n.IncidentId, n.Content, ct).ConfigureAwait(false); written++; }
                }
                catch (OpsException e) when (!e.IsCancellation)
                {
                    n.LastError = e.ErrorId;
                    left.Add(n);
                }
            }
            // Under the file's lock: a note another command added meanwhile (after the ones read above) stays too.
            var done = new HashSet<string>(pending.Except(left).Select(x => x.IncidentId + "\n" + x.Content));
            lock (Gate) LockedFile.Rewrite(Path, lines => lines.Where(l => Key(l) is string k && !done.Contains(k)), LockTimeout);
            if (written > 0) log?.Verbose($"Wrote {written} pending note(s) to PagerDuty; {left.Count} still pending.");
            return (written, left.Count);
        }
    }
}
