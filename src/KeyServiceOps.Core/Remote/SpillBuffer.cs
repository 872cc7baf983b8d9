using System;
using System.Collections.Generic;
using System.IO;
using System.Threading;

namespace KeyServiceOps.Core.Remote
{
    /// <summary>
    /// A FIFO of bytes between a fast writer (the SSH channel, drained as fast as it arrives) and a slow reader (the
    /// PowerShell pipeline): up to <c>memoryLimit</c> bytes in memory, the rest in a temporary file read back in order.
    /// SSH.NET opens channels with a 2 GB window and buffers whatever we do not read (sshnet/SSH.NET#1671), so holding
    /// the reader back alone cannot bound memory; draining into this buffer does. The file is deleted on dispose.
    /// </summary>
    public sealed class SpillBuffer : Stream
    {
        private readonly object _gate = new object();
        private readonly Queue<byte[]> _memory = new Queue<byte[]>();
        private readonly int _memoryLimit;
        private readonly string _spillDirectory;
        private long _memoryBytes;
        private byte[] _head;
        private int _headOffset;
        private FileStream _file;
        private long _fileWrite, _fileRead;
        private bool _completed, _abandoned, _disposed;

        public SpillBuffer(int memoryLimit = 4 * 1024 * 1024, string spillDirectory = null)
        {
            _memoryLimit = Math.Max(64 * 1024, memoryLimit);
            _spillDirectory = spillDirectory ?? Path.GetTempPath();
        }

        /// <summary>The most bytes ever waiting in the file (0 when the reader kept up): what a benchmark reports.</summary>
        public long PeakSpilledBytes { get; private set; }
        public long TotalBytes { get; private set; }

        /// <summary>Appends a copy of the bytes; never blocks on the reader.</summary>
        public override void Write(byte[] buffer, int offset, int count)
        {
            if (count <= 0) return;
            lock (_gate)
            {
                if (_abandoned || _disposed) return;
                TotalBytes += count;
                // Order: once anything waits in the file, everything newer goes there too until the reader has caught up.
                if (_fileWrite == _fileRead && _memoryBytes + count <= _memoryLimit)
                {
                    var copy = new byte[count];
                    Buffer.BlockCopy(buffer, offset, copy, 0, count);
                    _memory.Enqueue(copy);
                    _memoryBytes += count;
                }
                else
                {
                    if (_file == null)
                        _file = new FileStream(Path.Combine(_spillDirectory, "kso-spill-" + Guid.NewGuid().ToString("N") + ".tmp"), FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 64 * 1024, FileOptions.DeleteOnClose);
                    _file.Position = _fileWrite;
                    _file.Write(buffer, offset, count);
                    _fileWrite += count;
                    PeakSpilledBytes = Math.Max(PeakSpilledBytes, _fileWrite - _fileRead);
                }
                Monitor.PulseAll(_gate);
            }
        }

        /// <summary>The writer is done: the reader sees the end once it has read everything.</summary>
        public void Complete()
        {
            lock (_gate) { _completed = true; Monitor.PulseAll(_gate); }
        }

        /// <summary>The reader gave up (an error downstream): drop what is buffered and what still comes.</summary>
        public void Abandon()
        {
            lock (_gate)
            {
                _abandoned = true;
                _memory.Clear(); _memoryBytes = 0; _head = null;
                _file?.Dispose(); _file = null; _fileRead = _fileWrite = 0;
                Monitor.PulseAll(_gate);
            }
        }

        /// <summary>Blocks until bytes are there or the writer completed (then 0).</summary>
        public override int Read(byte[] buffer, int offset, int count)
        {
            if (count <= 0) return 0;
            lock (_gate)
            {
                while (true)
                {
                    if (_abandoned || _disposed) return 0;
                    if (_head == null && _memory.Count > 0) { _head = _memory.Dequeue(); _headOffset = 0; }
                    if (_head != null)
                    {
                        var n = Math.Min(count, _head.Length - _headOffset);
                        Buffer.BlockCopy(_head, _headOffset, buffer, offset, n);
                        _headOffset += n;
                        _memoryBytes -= n;
                        if (_headOffset == _head.Length) _head = null;
                        return n;
                    }
                    if (_fileRead < _fileWrite)
                    {
                        _file.Position = _fileRead;
                        var n = _file.Read(buffer, offset, (int)Math.Min(count, _fileWrite - _fileRead));
                        _fileRead += n;
                        // Caught up: start the file again from the beginning (the bytes it held are read).
                        if (_fileRead == _fileWrite) { _fileRead = _fileWrite = 0; _file.SetLength(0); }
                        return n;
                    }
                    if (_completed) return 0;
                    Monitor.Wait(_gate);
                }
            }
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
                lock (_gate)
                {
                    _disposed = true;
                    _file?.Dispose(); _file = null;
                    _memory.Clear(); _head = null;
                    Monitor.PulseAll(_gate);
                }
            base.Dispose(disposing);
        }
    }
}
