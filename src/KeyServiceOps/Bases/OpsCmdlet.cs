using System;
using System.Collections.Concurrent;
using System.Management.Automation;
using System.Threading;
using System.Threading.Tasks;
using KeyServiceOps.Core;
using KeyServiceOps.Commands;

namespace KeyServiceOps.Bases
{

    /// <summary>
    /// Base of every cmdlet: runs core work off the pipeline thread and pumps its verbose/debug/warning/progress
    /// messages and objects back onto it; Ctrl+C cancels; OpsExceptions become ErrorRecords with stable ids.
    /// </summary>
    public abstract class OpsCmdlet : PSCmdlet
    {
        private readonly CancellationTokenSource _cts = new CancellationTokenSource();
        private readonly BlockingCollection<Action> _queue = new BlockingCollection<Action>(2048);
        private QueueLog _log;

        protected CancellationToken Cancellation => _cts.Token;
        protected IOpsLog Log => _log ?? (_log = new QueueLog(this));

        protected override void StopProcessing() => _cts.Cancel();

        /// <summary>Posts an action to run on the pipeline thread; blocks (back-pressure) while the queue is full.</summary>
        protected void Post(Action action) => _queue.Add(action, _cts.Token);

        protected void TryPost(Action action) => _queue.TryAdd(action);

        /// <summary>ShouldProcess asked from a worker thread: it runs on the pipeline thread (the pump) and the answer comes back.</summary>
        protected Task<bool> ConfirmAsync(string target, string action)
        {
            var tcs = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            Post(() =>
            {
                try { tcs.SetResult(ShouldProcess(target, action)); }
                catch (Exception e) { tcs.SetException(e); }
            });
            return tcs.Task;
        }

        /// <summary>
        /// For a change every guard allows but that is likely a mistake (a healthy instance taking traffic): a warning
        /// always, then a question where the host can ask one — also under -Confirm:$false; only <paramref name="skipSwitch"/>
        /// skips it (#27 rows 2, 3: -Force means "past the guards", never "don't ask"). A host that cannot prompt
        /// (-NonInteractive, a job, a hosted runspace) gets the warning only. False: declined.
        /// </summary>
        protected bool WarnAndAsk(string warning, string question, string caption, bool skip, string skipSwitch)
        {
            WriteWarning(warning);
            if (skip || IsWhatIf) return true;
            // A console whose stdin is not a terminal (a CI runner, systemd, cron, a pipe) has no one to answer: the
            // warning only, never a prompt that reads end-of-file or waits forever.
            if (Host?.Name == "ConsoleHost" && Console.IsInputRedirected) return true;
            try { return ShouldContinue(question + $" ({skipSwitch}: no question)", caption); }
            catch (Exception e) when (!(e is PipelineStoppedException) && !(e is OperationCanceledException)) // a host that cannot ask, however it fails: the warning stands
            {
                return true;
            }
        }

        /// <summary>True under -WhatIf (the parameter or $WhatIfPreference).</summary>
        protected bool IsWhatIf
        {
            get
            {
                if (MyInvocation.BoundParameters.TryGetValue("WhatIf", out var w)) return w is SwitchParameter sw ? sw.IsPresent : LanguagePrimitives.IsTrue(w);
                return LanguagePrimitives.IsTrue(GetVariableValue("WhatIfPreference"));
            }
        }

        /// <summary>Waits for <paramref name="task"/> on the pipeline thread while running what it posts.</summary>
        protected T Await<T>(Task<T> task)
        {
            Pump(task);
            try { return task.GetAwaiter().GetResult(); }
            catch (OperationCanceledException) when (_cts.IsCancellationRequested) { throw new PipelineStoppedException(); }
            catch (OpsException e) when (_perItem == 0 && !e.IsCancellation) { ThrowOps(e); throw; }
            catch (Exception e) when (ClientAnswers.Translate(e) is OpsException typed) { if (_perItem == 0) ThrowOps(typed); throw typed; }
        }

        protected void Await(Task task)
        {
            Pump(task);
            try { task.GetAwaiter().GetResult(); }
            catch (OperationCanceledException) when (_cts.IsCancellationRequested) { throw new PipelineStoppedException(); }
            catch (OpsException e) when (_perItem == 0 && !e.IsCancellation) { ThrowOps(e); }
            catch (Exception e) when (ClientAnswers.Translate(e) is OpsException typed) { if (_perItem == 0) ThrowOps(typed); throw typed; }
        }

        /// <summary>Inside <see cref="PerItem"/> an OpsException is that item's (non-terminating) error; outside, a terminating ErrorRecord.</summary>
        private int _perItem;

        /// <summary>Runs queued work without waiting for anything.</summary>
        protected void DrainQueue()
        {
            while (_queue.TryTake(out var a)) a();
        }

        private void Pump(Task task)
        {
            using (var done = new CancellationTokenSource())
            {
                task.ContinueWith(_ => { try { done.Cancel(); } catch (ObjectDisposedException) { } }, TaskContinuationOptions.ExecuteSynchronously);
                while (true)
                {
                    Action a;
                    try
                    {
                        if (!_queue.TryTake(out a, Timeout.Infinite, done.Token)) break;
                    }
                    catch (OperationCanceledException) { break; }
                    a();
                }
                DrainQueue();
            }
        }

        protected override void EndProcessing() => DrainQueue();

        // ---- errors ----

        /// <summary>Scrubs the secrets this cmdlet holds from everything it writes (errors, verbose, debug, warnings).</summary>
        protected virtual Redactor Redactor => Redactor.None;

        protected ErrorRecord ToErrorRecord(OpsException e) => OpsErrorRecord.From(e, Redactor);

        protected void WriteOpsError(OpsException e) => WriteError(ToErrorRecord(e));

        protected void ThrowOps(OpsException e) => ThrowTerminatingError(ToErrorRecord(e));

        protected void ThrowArgument(string errorId, string message, object target, string action = null)
            => ThrowOps(OpsErrorRecord.InvalidArgument(errorId, message, target, action));

        /// <summary>Runs per-item work: an OpsException becomes a non-terminating error and the pipeline goes on.</summary>
        protected void PerItem(Action work)
        {
            _perItem++;
            try { work(); }
            catch (OpsException e) when (e.IsCancellation) { throw new PipelineStoppedException(); }
            catch (OpsException e) { WriteOpsError(e); }
            catch (Exception e) when (ClientAnswers.Translate(e) is OpsException typed) { WriteOpsError(typed); }
            finally { _perItem--; }
        }

        // ---- progress ----

        protected void Progress(int activityId, string activity, string status, int percent = -1, int secondsRemaining = -1)
        {
            var pr = new ProgressRecord(activityId, activity, string.IsNullOrEmpty(status) ? " " : SafeText.Neutralize(status))
            { PercentComplete = Math.Max(-1, Math.Min(100, percent)), SecondsRemaining = secondsRemaining };
            WriteProgress(pr);
        }

        protected void ProgressDone(int activityId, string activity)
            => WriteProgress(new ProgressRecord(activityId, activity, "Done") { RecordType = ProgressRecordType.Completed });

        /// <summary>The progress activity every wait for another actor or a retry is shown under (one bar, replaced as waits change).</summary>
        private const int WaitActivityId = 0x4b57;

        private sealed class QueueLog : IOpsLog, IOpsWaitProgress
        {
            private readonly OpsCmdlet _c;
            public QueueLog(OpsCmdlet c) { _c = c; }
            // Scrubbed of secrets and of control sequences (text from outside never reaches the terminal raw, issue #26).
            public void Verbose(string message) { message = SafeText.Lines(_c.Redactor.Scrub(message)); _c.TryPost(() => _c.WriteVerbose(message)); }
            public void Debug(string message) { message = SafeText.Lines(_c.Redactor.Scrub(message)); _c.TryPost(() => _c.WriteDebug(message)); }
            public void Warning(string message) { message = SafeText.Lines(_c.Redactor.Scrub(message)); _c.TryPost(() => _c.WriteWarning(message)); }
            public void Waiting(string activity, string status, int secondsRemaining)
            {
                activity = SafeText.Neutralize(_c.Redactor.Scrub(activity)); status = SafeText.Neutralize(_c.Redactor.Scrub(status));
                _c.TryPost(() => _c.Progress(WaitActivityId, activity, status, -1, secondsRemaining));
            }
            public void WaitOver(string activity) { activity = SafeText.Neutralize(_c.Redactor.Scrub(activity)); _c.TryPost(() => _c.ProgressDone(WaitActivityId, activity)); }
        }
    }
}
