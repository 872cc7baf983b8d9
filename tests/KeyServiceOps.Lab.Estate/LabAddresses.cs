using System.Diagnostics;
using System.Threading;

namespace KeyServiceOps.Lab.Estate
{
    /// <summary>
    /// Hands out loopback blocks 127.B.C.0/24 so that labs in parallel test processes and classes never
    /// collide on IP:8888. B comes from the process id, C from a per-process counter.
    /// </summary>
    public static class LabAddresses
    {
        private static int _counter = 0;
        private static readonly int B = 2 + Process.GetCurrentProcess().Id % 250;

        public static string NextBlock()
        {
            var c = Interlocked.Increment(ref _counter);
            return $"127.{B + c / 250}.{c % 250 + 1}";
        }
    }
}
