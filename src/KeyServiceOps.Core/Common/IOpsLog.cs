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

    public sealed class NullOpsLog : IOpsLog
    {
        public static readonly NullOpsLog Instance = new NullOpsLog();
        public void Verbose(string message) { }
        public void Debug(string message) { }
        public void Warning(string message) { }
    }
}
