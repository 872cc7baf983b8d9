using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace KeyServiceOps.Lab.Estate
{
    /// <summary>
    /// A fleet of api_key_service health endpoints light enough for a thousand in one process (for benchmarks): one
    /// listening socket per address and a minimal HTTP answer, no Kestrel. Up answers the healthy body; Hung accepts
    /// and never answers; Down has no listener, so a connection is refused, as with a real dead instance.
    /// </summary>
    public sealed class LightFleet : IDisposable
    {
        private static readonly byte[] Healthy = Encoding.ASCII.GetBytes(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " + SimInstance.HealthyBody.Length + "\r\n\r\n" + SimInstance.HealthyBody);
        private readonly List<(string address, Socket listener)> _listeners = new List<(string, Socket)>();
        private readonly ConcurrentBag<Socket> _held = new ConcurrentBag<Socket>();
        private readonly CancellationTokenSource _stop = new CancellationTokenSource();

        public List<string> Up { get; } = new List<string>();
        public List<string> Hung { get; } = new List<string>();
        public List<string> Down { get; } = new List<string>();
        public int Port { get; }
        public IEnumerable<string> Targets => Up.Concat(Hung).Concat(Down).Select(a => $"{a}:{Port}");

        /// <summary>Addresses 127.B.x.y in a block of their own: <paramref name="up"/> healthy, then hung, then down.</summary>
        public LightFleet(int up, int hung, int down, int port = 8888)
        {
            Port = port;
            var block = LabAddresses.NextBlock().Split('.');
            var b = int.Parse(block[1]);
            string Addr(int i) => $"127.{b}.{200 + i / 250}.{i % 250 + 1}";
            int k = 0;
            for (int i = 0; i < up; i++) Up.Add(Addr(k++));
            for (int i = 0; i < hung; i++) Hung.Add(Addr(k++));
            for (int i = 0; i < down; i++) Down.Add(Addr(k++));
            foreach (var a in Up) Listen(a, false);
            foreach (var a in Hung) Listen(a, true);
        }

        private void Listen(string address, bool hung)
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            s.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            s.Bind(new IPEndPoint(IPAddress.Parse(address), Port));
            s.Listen(512);
            _listeners.Add((address, s));
            _ = Task.Run(async () =>
            {
                while (!_stop.IsCancellationRequested)
                {
                    Socket c;
                    try { c = await s.AcceptAsync(_stop.Token); } catch (Exception) { return; }
                    if (hung) { _held.Add(c); continue; }
                    _ = AnswerAsync(c);
                }
            });
        }

        private static async Task AnswerAsync(Socket c)
        {
            try
            {
                var buf = new byte[4096]; var seen = new StringBuilder();
                while (!seen.ToString().Contains("\r\n\r\n"))
                {
                    var n = await c.ReceiveAsync(buf, SocketFlags.None);
                    if (n == 0) break;
                    seen.Append(Encoding.ASCII.GetString(buf, 0, n));
                }
                await c.SendAsync(Healthy, SocketFlags.None);
                c.Shutdown(SocketShutdown.Both);
            }
            catch (Exception) { }
            finally { c.Dispose(); }
        }

        public void Dispose()
        {
            _stop.Cancel();
            foreach (var (_, s) in _listeners) s.Dispose();
            foreach (var c in _held) c.Dispose();
        }
    }
}
