using System;

namespace KeyServiceOps.Core
{
    /// <summary>
    /// Where the core tells its story. The cmdlet layer queues these and writes them from the
    /// pipeline thread; the core may call it from any thread.
    /// </summary>
    public interface IOpsLog
    {
        void Verbose(string message);
        void Debug(string message);
        void Warning(string message);
    }

    /// <summary>
    /// A log that can also show a wait as it happens (the cmdlet layer: a progress bar with a countdown). The core tells
    /// it of every wait longer than a moment — another actor's lock or lease, a retry's back-off — so nothing waits
    /// silently (issue #27). <see cref="WaitProgress"/> reaches it through any <see cref="IOpsLog"/>.
    /// </summary>
    public interface IOpsWaitProgress
    {
        void Waiting(string activity, string status, int secondsRemaining);
        void WaitOver(string activity);
    }

    public static class WaitProgress
    {
        /// <summary>Shows the wait where <paramref name="log"/> can show one; nothing otherwise.</summary>
        public static void Waiting(IOpsLog log, string activity, string status, TimeSpan remaining)
            => (log as IOpsWaitProgress)?.Waiting(activity, status, remaining <= TimeSpan.Zero ? 0 : (int)Math.Ceiling(remaining.TotalSeconds));

        public static void Over(IOpsLog log, string activity) => (log as IOpsWaitProgress)?.WaitOver(activity);
    }

    public sealed class NullOpsLog : IOpsLog
    {
        public static readonly NullOpsLog Instance = new NullOpsLog();
        public void Verbose(string message) { }
        public void Debug(string message) { }
        public void Warning(string message) { }
    }
}
