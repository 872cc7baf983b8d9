using System;
using System.Collections.Generic;
using KeyServiceOps.Core.Diagnosis;

namespace KeyServiceOps.Core.Remote
{
    /// <summary>
    /// Puts `docker logs --timestamps` stdout and stderr lines back in time order (#27 row 6): over SSH the two streams
    /// arrive on separate channels, so arrival order interleaves them by chance. Each stream is in order by itself, so a
    /// line is released once the other stream has shown a later one (or ended) — a merge, not a sort: memory holds only
    /// the lead of one stream over the other, capped at <see cref="MaxHeld"/> lines (then the oldest is released as is).
    /// Not thread-safe: the caller serialises Add and Finish.
    /// </summary>
    public sealed class StreamMerger
    {
        private readonly Queue<LogEntry> _out = new Queue<LogEntry>(), _err = new Queue<LogEntry>();
        private readonly Action<LogEntry> _emit;
        private bool _outEnded, _errEnded;
        public int MaxHeld { get; set; } = 10_000;

        public StreamMerger(Action<LogEntry> emit) { _emit = emit; }

        public void Add(LogEntry e)
        {
            if (e.Timestamp == null) { Drain(); _emit(e); return; } // no time to order by: in arrival order, after what came before
            (e.StreamValue == LogStream.Stderr ? _err : _out).Enqueue(e);
            Release();
        }

        /// <summary>One stream ended (its channel closed): the other's lines need not wait for it.</summary>
        public void End(LogStream stream) { if (stream == LogStream.Stderr) _errEnded = true; else _outEnded = true; Release(); }

        public void Finish() => Drain();

        private void Release()
        {
            while (true)
            {
                if (_out.Count > 0 && _err.Count > 0)
                {
                    // Ties go to the earlier arrival's stream order: stdout first (docker writes both with one clock).
                    _emit(_err.Peek().Timestamp < _out.Peek().Timestamp ? _err.Dequeue() : _out.Dequeue());
                }
                else if (_out.Count > 0 && (_errEnded || _out.Count > MaxHeld)) _emit(_out.Dequeue());
                else if (_err.Count > 0 && (_outEnded || _err.Count > MaxHeld)) _emit(_err.Dequeue());
                else return;
            }
        }

        private void Drain()
        {
            _outEnded = _errEnded = true;
            Release();
            _outEnded = _errEnded = false;
        }
    }
}
