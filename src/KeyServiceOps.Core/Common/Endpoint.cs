using System;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace KeyServiceOps.Core
{
    /// <summary>An instance address and port, parsed strictly from "IP", "IP:PORT", "[v6]:PORT" or "host:PORT".</summary>
    public struct Endpoint : IEquatable<Endpoint>
    {
        private static readonly Regex HostName = new Regex(@"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$", RegexOptions.CultureInvariant);

        public Endpoint(string address, int port) { Address = address; Port = port; }
        public string Address { get; }
        public int Port { get; }

        /// <summary>Kong's stored form: IPv4 without leading zeros, IPv6 expanded in brackets, hostnames as written.</summary>
        public string Target => Join(Address, Port);

        /// <summary>The one place an address becomes host[:port] text: IPv6 in brackets (URLs, Kong targets, known_hosts).</summary>
        public static string Host(string address) => address != null && address.Contains(":") ? "[" + address + "]" : address;
        public static string Join(string address, int port) => $"{Host(address)}:{port}";
        public override string ToString() => Target;

        public static Endpoint Parse(string input, int defaultPort)
        {
            if (TryParse(input, defaultPort, out var ep, out var why)) return ep;
            throw InvalidTarget(input, why);
        }

        /// <summary>The one InvalidTarget error (a ring-balancer target); <paramref name="shownAs"/>: how to name an input that is not text.</summary>
        public static OpsException InvalidTarget(string input, string why, string shownAs = null)
            => new OpsException("InvalidTarget", OpsErrorCategory.InvalidArgument,
                $"{shownAs ?? Describe(input)} is not a valid instance address: {why}", shownAs ?? Clip(input),
                recommendedAction: "Give an IPv4/IPv6 address or host name, optionally with :PORT (1-65535), e.g. 10.0.0.5:8888.");

        public static bool TryParse(string input, int defaultPort, out Endpoint endpoint, out string reason)
        {
            endpoint = default;
            reason = null;
            if (string.IsNullOrWhiteSpace(input)) { reason = "it is empty"; return false; }
            var s = input.Trim();
            string host = s, portText = null;
            if (s.StartsWith("["))
            {
                var close = s.IndexOf(']');
                if (close < 0) { reason = "unbalanced '['"; return false; }
                host = s.Substring(1, close - 1);
                var rest = s.Substring(close + 1);
                if (rest.Length > 0)
                {
                    if (!rest.StartsWith(":")) { reason = "expected ':' after ']'"; return false; }
                    portText = rest.Substring(1);
                }
            }
            else if (s.IndexOf(':') >= 0 && s.IndexOf(':') == s.LastIndexOf(':'))
            {
                var i = s.IndexOf(':');
                host = s.Substring(0, i);
                portText = s.Substring(i + 1);
            }
            int port = defaultPort;
            if (portText != null)
            {
                if (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out port) || port < 1 || port > 65535)
                { reason = $"port '{Short(portText)}' is not a number from 1 to 65535"; return false; }
            }
            if (host.Contains("%")) { reason = "a zone id (%…) cannot be part of a ring-balancer target"; return false; }
            if (IPAddress.TryParse(host, out var ip) && (host.Contains(":") || Regex.IsMatch(host, @"^[0-9]{1,3}(\.[0-9]{1,3}){3}$")))
            {
                if (ip.AddressFamily == AddressFamily.InterNetworkV6)
                {
                    var b = ip.GetAddressBytes();
                    var parts = new string[8];
                    for (int k = 0; k < 8; k++) parts[k] = ((b[2 * k] << 8) | b[2 * k + 1]).ToString("x4");
                    endpoint = new Endpoint(string.Join(":", parts), port);
                }
                else endpoint = new Endpoint(ip.ToString(), port);
                return true;
            }
            if (Regex.IsMatch(host, @"^[0-9.]+$")) { reason = $"'{Short(host)}' is not a valid IPv4 address"; return false; }
            if (!HostName.IsMatch(host)) { reason = $"'{Short(host)}' is not a valid IP address or host name"; return false; }
            endpoint = new Endpoint(host, port);
            return true;
        }

        /// <summary>The one InvalidAddress error: names the input (clipped; <paramref name="shownAs"/> for an input that is not text), says why and what to give instead.</summary>
        public static OpsException InvalidAddress(string input, string why, string shownAs = null)
            => new OpsException("InvalidAddress", OpsErrorCategory.InvalidArgument, $"{shownAs ?? Describe(input)} is not a valid instance address: {why}", shownAs ?? Clip(input),
                recommendedAction: "Give an IPv4/IPv6 address or host name, optionally with :PORT (1-65535), e.g. 10.0.0.5 or 10.0.0.5:8888.");

        private static string Clip(string input) => input != null && input.Length > 200 ? input.Substring(0, 200) + "…" : input;

        /// <summary>The input as an error message names it: quoted, clipped to 200 characters.</summary>
        public static string Describe(string input)
        {
            if (input == null) return "(nothing)";
            return input.Length <= 200 ? $"'{input}'" : $"'{input.Substring(0, 200)}…' ({input.Length} characters)";
        }

        private static string Short(string s) => s != null && s.Length > 60 ? s.Substring(0, 60) + "…" : s;

        public bool Equals(Endpoint other) => string.Equals(Address, other.Address, StringComparison.OrdinalIgnoreCase) && Port == other.Port;
        public override bool Equals(object obj) => obj is Endpoint e && Equals(e);
        public override int GetHashCode() => (Address ?? "").ToLowerInvariant().GetHashCode() * 31 + Port;
    }
}
