using System;
using System.Net;
using System.Net.Sockets;

namespace KeyServiceOps.Lab.Estate
{
    /// <summary>Addresses for the tests' own little HTTP servers: always on loopback.</summary>
    public static class Loopback
    {
        /// <summary>http://127.0.0.1:PORT/ on a port that was free a moment ago (an HttpListener prefix).</summary>
        public static Uri FreeHttpPrefix()
        {
            var probe = new TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            var port = ((IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
            return new Uri($"http://127.0.0.1:{port}/");
        }
    }
}
