using System;
using System.Collections.Generic;
using System.Threading;
using KeyServiceOps.Bases;

namespace KeyServiceOps
{
    /// <summary>
    /// Hands items from a worker thread to the pipeline thread in batches (up to 256, or whatever arrived in the last
    /// 50 ms): one queue operation per batch instead of per line keeps a million-line log stream from spending its time
    /// in the hand-off, while a --follow line still shows within 50 ms. The bounded queue behind <c>post</c> still
    /// holds the worker back when the pipeline is slower.
    /// </summary>
    internal sealed class OutputBatcher<T> : IDisposable
    {
        private const int MaxBatch = 256;
        private readonly object _gate = new object();
        private readonly Action<Action> _post;
        private readonly Action<T> _write;
        private readonly Timer _timer;
        /// <summary>Batches posted and not yet written: at most 8 (2,048 items) wait, whatever the queue's own bound.</summary>
        private readonly SemaphoreSlim _inFlight = new SemaphoreSlim(8, 8);
        private readonly CancellationToken _ct;
        private List<T> _pending = new List<T>(MaxBatch);

        public OutputBatcher(Action<Action> post, Action<T> write, CancellationToken ct)
        {
            _post = post; _write = write; _ct = ct;
            _timer = new Timer(_ => Flush(), null, 50, 50);
        }

        public void Add(T item)
        {
            lock (_gate)
            {
                _pending.Add(item);
                if (_pending.Count >= MaxBatch) PostPending();
            }
        }

        public void Flush()
        {
            try { lock (_gate) if (_pending.Count > 0) PostPending(); }
            catch (OperationCanceledException) { }
            catch (ObjectDisposedException) { }
            catch (InvalidOperationException) { } // the queue was completed: the command is over
        }

        private void PostPending()
        {
            var batch = _pending;
            _pending = new List<T>(MaxBatch);
            _inFlight.Wait(_ct);
            _post(() => { try { foreach (var x in batch) _write(x); } finally { _inFlight.Release(); } });
        }

        public void Dispose()
        {
            _timer.Dispose();
            Flush();
        }
    }
}
