using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace KeyServiceOps.Core.Audit
{
    /// <summary>What the remote says of a change whose answer was lost: applied (with the result it implies), not applied, or cannot tell.</summary>
    public sealed class Reconciliation<T>
    {
        public bool Known { get; private set; }
        public bool Applied { get; private set; }
        public T Result { get; private set; }
        /// <summary>What was read, for the audit line and the error ("Kong's listing no longer has it").</summary>
        public string Evidence { get; private set; }
        public static Reconciliation<T> WasApplied(T result, string evidence) => new Reconciliation<T> { Known = true, Applied = true, Result = result, Evidence = evidence };
        public static Reconciliation<T> NotApplied(string evidence) => new Reconciliation<T> { Known = true, Evidence = evidence };
        public static Reconciliation<T> CannotTell(string evidence) => new Reconciliation<T> { Evidence = evidence };
    }

    /// <summary>One line of the audit log.</summary>
    public sealed class AuditEntry
    {
        public DateTimeOffset Time { get; set; } = DateTimeOffset.UtcNow;
        public string Actor { get; set; }
        public string Host { get; set; } = Environment.MachineName;
        public string Action { get; set; }
        public string Target { get; set; }
        public string Upstream { get; set; }
        /// <summary>The state before and after, as data for code; PowerShell sees <see cref="Before"/> and <see cref="After"/>
        /// as one line of JSON each, so ConvertTo-Json and Export-Csv read them as written in the log.</summary>
        internal JToken BeforeData { get; set; }
        internal JToken AfterData { get; set; }
        public string Before => BeforeData == null || BeforeData.Type == JTokenType.Null ? null : BeforeData.ToString(Formatting.None);
        public string After => AfterData == null || AfterData.Type == JTokenType.Null ? null : AfterData.ToString(Formatting.None);
        public string Outcome { get; set; }
        public string Incident { get; set; }
        public bool Forced { get; set; }
        public string Detail { get; set; }
        /// <summary>Ties an intent line (Started) to its outcome line; null on lines written before write-ahead.</summary>
        public string Operation { get; set; }
        public override string ToString() => $"{Time:u} {Action} {Target} {Outcome}";
    }

    /// <summary>
    /// Append-only JSON-lines log of every change to Kong, a container or an incident, safe for any number of
    /// writers (threads, runspaces, processes): each append takes an exclusive lock on the file itself (flock on
    /// Unix, a share-none open on Windows) with a bounded retry, seeks to the real end, repairs a line torn by a
    /// killed writer, writes the whole line in one write and flushes it to disk before the lock is released.
    /// Readers take a snapshot of the file and see only whole lines.
    /// Changes are recorded write-ahead (<see cref="RecordAsync{T}"/>): an intent line before, the outcome after.
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

        /// <summary>Outcome of an intent line; a Started line with no later outcome reads back as <see cref="Unfinished"/>.</summary>
        public const string Started = "Started", Unfinished = "Unfinished", Interrupted = "Interrupted", Failed = "Failed",
            /// <summary>The change was sent, its answer was lost, and the remote could not be read to tell: it may have happened.</summary>
            Unknown = "Unknown";

        public AuditLog(string path) { Path = path; }
        public string Path { get; }
        /// <summary>How long an append waits for another writer's lock before it gives up (a typed error).</summary>
        public TimeSpan LockTimeout { get; set; } = TimeSpan.FromSeconds(15);

        /// <summary>Write-ahead through <paramref name="log"/> when there is one; otherwise just the change.</summary>
        public static System.Threading.Tasks.Task<T> Record<T>(AuditLog log, AuditEntry intent, Func<System.Threading.Tasks.Task<T>> change, Func<T, AuditEntry> outcome, Func<string> failureContext = null,
            Func<OpsException, System.Threading.Tasks.Task<Reconciliation<T>>> reconcile = null)
            => (log ?? new AuditLog(null)).RecordAsync(intent, change, outcome, failureContext, reconcile);

        public static string DefaultActor() => Environment.UserName + "@" + Environment.MachineName;

        /// <summary>
        /// Write-ahead: records the intent (refusing the change with AuditLogUnwritable when it cannot), makes the
        /// change, then records what the remote confirmed (<paramref name="outcome"/>), or Failed / Interrupted.
        /// </summary>
        public async System.Threading.Tasks.Task<T> RecordAsync<T>(AuditEntry intent, Func<System.Threading.Tasks.Task<T>> change, Func<T, AuditEntry> outcome, Func<string> failureContext = null,
            Func<OpsException, System.Threading.Tasks.Task<Reconciliation<T>>> reconcile = null)
        {
            if (string.IsNullOrEmpty(Path)) return await Reconciling(change, reconcile, null).ConfigureAwait(false);
            intent.Operation = intent.Operation ?? Guid.NewGuid().ToString("N");
            intent.Outcome = Started;
            try { Append(intent); }
            catch (OpsException e) when (e.ErrorId == "AuditLogWriteFailed")
            {
                throw new OpsException("AuditLogUnwritable", OpsErrorCategory.PermissionDenied,
                    $"Refused {intent.Action} of {intent.Target}: the audit log '{Path}' cannot be written ({e.InnerException?.Message ?? e.Message}). Nothing was changed.",
                    Path, recommendedAction: "Make the audit log's folder writable, or point it elsewhere with Set-KeyServiceOpsContext -AuditLogPath <path>, then run the command again.", inner: e);
            }
            T result;
            string reconciled = null;
            try { result = await Reconciling(change, reconcile, d => reconciled = d).ConfigureAwait(false); }
            catch (Exception e)
            {
                var cancelled = OpsException.IsCancel(e);
                var unknown = e is OpsException oe && oe.OutcomeUnknown;
                var context = failureContext?.Invoke();
                TryAppend(Follow(intent, cancelled ? Interrupted : unknown ? Unknown : Failed,
                    ((e as OpsException)?.ErrorId ?? e.GetType().Name) + ": " + e.Message + (context != null ? " (" + context + ")" : "")));
                throw;
            }
            var done = outcome(result);
            if (reconciled != null) done.Detail = (done.Detail == null ? "" : done.Detail + "; ") + reconciled;
            done.Operation = intent.Operation;
            done.Action = done.Action ?? intent.Action;
            done.Target = done.Target ?? intent.Target;
            done.Upstream = done.Upstream ?? intent.Upstream;
            done.Incident = done.Incident ?? intent.Incident;
            done.Actor = done.Actor ?? intent.Actor;
            // The change happened: an outcome line that cannot be written must never read as "nothing changed" (a caller
            // that undoes its own bookkeeping on an ordinary failure would forget a change the remote made). One more try,
            // then a typed error marked OutcomeUnknown: callers keep what they remembered, as after a lost answer.
            try { Append(done); }
            catch (OpsException first) when (first.ErrorId == "AuditLogWriteFailed")
            {
                try { System.Threading.Thread.Sleep(200); Append(done); }
                catch (OpsException e) when (e.ErrorId == "AuditLogWriteFailed") { throw OutcomeUnwritten(intent, e); }
            }
            return result;
        }

        private OpsException OutcomeUnwritten(AuditEntry intent, OpsException e)
            => new OpsException("AuditOutcomeUnwritten", OpsErrorCategory.ResourceUnavailable,
                $"{intent.Action} of {intent.Target} was made, but its outcome could not be written to the audit log '{Path}' ({e.InnerException?.Message ?? e.Message}); the log shows it as unfinished.",
                intent.Target, recommendedAction: "Check the change on the remote (Get-RingBalancerTarget, Get-KeyServiceContainer) before repeating anything, and make the audit log writable again.", inner: e).MaybeApplied();

        /// <summary>
        /// Runs the change; when its answer is lost (<see cref="OpsException.OutcomeUnknown"/>, not Ctrl+C) asks the remote what
        /// happened: applied → the result, as if answered (<paramref name="note"/> says it was read back); not applied → the
        /// error, no longer "unknown" (nothing changed); cannot tell → the error, still unknown.
        /// </summary>
        private static async System.Threading.Tasks.Task<T> Reconciling<T>(Func<System.Threading.Tasks.Task<T>> change, Func<OpsException, System.Threading.Tasks.Task<Reconciliation<T>>> reconcile, Action<string> note)
        {
            try { return await change().ConfigureAwait(false); }
            catch (OpsException e) when (e.OutcomeUnknown && !e.IsCancellation && reconcile != null)
            {
                Reconciliation<T> r;
                try { r = await reconcile(e).ConfigureAwait(false); }
                catch (OpsException again) when (!again.IsCancellation) { r = Reconciliation<T>.CannotTell($"reading it back failed too ({again.ErrorId})"); }
                if (r.Known && r.Applied) { note?.Invoke($"the answer was lost ({e.ErrorId}); {r.Evidence}"); return r.Result; }
                if (r.Known) { e.OutcomeUnknown = false; throw new OpsException(e.ErrorId, e.Category, e.Message + $" Not applied: {r.Evidence}.", e.TargetObject, e.Details, e.RecommendedAction, e); }
                throw new OpsException(e.ErrorId, e.Category, e.Message + $" It may have been applied: {r.Evidence}.", e.TargetObject, e.Details,
                    (e.RecommendedAction ?? "") + " Check the remote's state before running the change again (Get-RingBalancerTarget, Get-KeyServiceContainer).", e).MaybeApplied();
            }
        }

        private static AuditEntry Follow(AuditEntry intent, string outcome, string detail) => new AuditEntry
        {
            Operation = intent.Operation, Action = intent.Action, Target = intent.Target, Upstream = intent.Upstream,
            Incident = intent.Incident, Actor = intent.Actor, Forced = intent.Forced, Outcome = outcome, Detail = detail,
        };

        private void TryAppend(AuditEntry e)
        {
            try { Append(e); } catch (OpsException) { /* the intent line stands; it reads back as Unfinished */ }
        }

        public void Append(AuditEntry entry)
        {
            if (string.IsNullOrEmpty(Path)) return;
            entry.Actor = entry.Actor ?? DefaultActor();
            var line = JsonConvert.SerializeObject(new
            {
                time = entry.Time.UtcDateTime, actor = entry.Actor, host = entry.Host, action = entry.Action,
                target = entry.Target, upstream = entry.Upstream, before = entry.BeforeData, after = entry.AfterData,
                outcome = entry.Outcome, incident = entry.Incident, forced = entry.Forced ? (bool?)true : null, detail = SafeText.Lines(entry.Detail),
                op = entry.Operation,
            }, Settings) + "\n";
            lock (Gate)
            {
                try { LockedFile.AppendLine(Path, line.TrimEnd('\n'), LockTimeout); }
                catch (Exception e) when (e is IOException || e is UnauthorizedAccessException || e is System.Security.SecurityException || e is NotSupportedException || e is ArgumentException)
                {
                    throw new OpsException("AuditLogWriteFailed", OpsErrorCategory.ResourceUnavailable,
                        $"Could not append to the audit log '{Path}': {e.Message}.",
                        Path, recommendedAction: "Fix the permissions of the audit log path or set another with Set-KeyServiceOpsContext -AuditLogPath; record the change by hand.", inner: e);
                }
            }
        }

        private OpsException Unreadable(string why, Exception inner)
            => new OpsException("AuditLogUnreadable", OpsErrorCategory.ReadError, $"Could not read the audit log '{Path}': {why}.", Path,
                recommendedAction: "Pass the audit log file itself (-Path, e.g. ~/.keyserviceops/audit.jsonl) and check its permissions.", inner: inner);

        /// <summary>
        /// The entries, oldest first, from a snapshot of whole lines. An intent line whose outcome follows is folded
        /// into that outcome; one with none reads back as Unfinished (the process stopped between the two).
        /// </summary>
        public IEnumerable<AuditEntry> Read(DateTimeOffset? since = null, string target = null, string action = null)
        {
            if (!string.IsNullOrEmpty(Path) && Directory.Exists(Path))
                throw Unreadable("it is a folder, not a file", null);
            if (string.IsNullOrEmpty(Path) || !File.Exists(Path)) return Enumerable.Empty<AuditEntry>();
            // What is "already done" is never read from a file another user of a world-writable folder could have written.
            var problem = SafeFile.FolderProblem(Path);
            if (problem != null) throw Unreadable(problem, null);
            string text;
            try
            {
                using (var fs = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete))
                using (var sr = new StreamReader(fs)) text = sr.ReadToEnd();
            }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
            {
                throw Unreadable(e.Message, e);
            }
            var whole = text.LastIndexOf('\n');
            text = whole < 0 ? "" : text.Substring(0, whole); // a line still being written is not read
            var entries = new List<AuditEntry>();
            var finished = new HashSet<string>();
            foreach (var line in text.Split('\n'))
            {
                if (string.IsNullOrWhiteSpace(line)) continue;
                JObject j;
                try { j = JObject.Parse(line); } catch (JsonException) { continue; }
                var e = new AuditEntry
                {
                    Time = ParseTime(j["time"]),
                    Actor = Str(j["actor"]), Host = Str(j["host"]), Action = Str(j["action"]), Target = Str(j["target"]),
                    Upstream = Str(j["upstream"]), BeforeData = j["before"], AfterData = j["after"], Outcome = Str(j["outcome"]),
                    Incident = Str(j["incident"]), Forced = j["forced"]?.Type == JTokenType.Boolean && (bool)j["forced"], Detail = Str(j["detail"]),
                    Operation = Str(j["op"]),
                };
                if (e.Operation != null && e.Outcome != Started) finished.Add(e.Operation);
                entries.Add(e);
            }
            return entries.Where(e => !(e.Outcome == Started && e.Operation != null && finished.Contains(e.Operation)))
                .Select(e => { if (e.Outcome == Started) e.Outcome = Unfinished; return e; })
                .Where(e => !since.HasValue || e.Time >= since.Value)
                .Where(e => target == null || Like(e.Target, target))
                .Where(e => action == null || Like(e.Action, action))
                .ToList();
        }

        // What a line says is shown, never obeyed: a hand-edited or planted line with control sequences reads escaped.
        private static string Str(JToken t) => t == null || t.Type == JTokenType.Null ? null : SafeText.Lines(t.Type == JTokenType.String ? (string)t : t.ToString(Formatting.None));

        /// <summary>An unreadable time (a hand-edited line) reads as MinValue rather than stopping the whole read.</summary>
        private static DateTimeOffset ParseTime(JToken t)
        {
            if (t == null) return DateTimeOffset.MinValue;
            if (t.Type == JTokenType.Date) return new DateTimeOffset(((DateTime)t).ToUniversalTime());
            return DateTimeOffset.TryParse((string)t, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var d) ? d : DateTimeOffset.MinValue;
        }

        private static bool Like(string value, string pattern)
        {
            if (value == null) return false;
            var rx = "^" + System.Text.RegularExpressions.Regex.Escape(pattern).Replace(@"\*", ".*").Replace(@"\?", ".") + "$";
            return System.Text.RegularExpressions.Regex.IsMatch(value, rx, System.Text.RegularExpressions.RegexOptions.IgnoreCase);
        }
    }
}
