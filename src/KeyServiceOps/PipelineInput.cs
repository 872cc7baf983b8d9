using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;
using System.Management.Automation;
using KeyServiceOps.Core;
using KeyServiceOps.Bases;

namespace KeyServiceOps
{
    /// <summary>
    /// An instance as the pipeline or the command line gives it (PnP's PipeBind pattern): text as written; a hashtable
    /// by its Target/Address/Port keys; any other object by its Target or Address (+ Port) property or the aliases the
    /// help lists (IPAddress, ComputerName, Host, HostName). Anything else is kept as a refusal and raises the typed
    /// InvalidAddress/InvalidTarget itself, naming the object's type — PowerShell would otherwise bind an object that a
    /// ByPropertyName pass missed as its ToString() text ('127.4.2.12 Recovered 1.2s' as a target). The core only ever
    /// sees checked text.
    /// </summary>
    public sealed class InstancePipeBind
    {
        private readonly string _text;
        private readonly string _refusedType;

        public InstancePipeBind(string text) { _text = text; }

        private InstancePipeBind(Type refused, bool _) { _refusedType = refused?.FullName ?? "null"; }

        /// <summary>What <paramref name="input"/> means as an instance; <paramref name="addressFirst"/>: prefer Address (+Port) over Target.</summary>
        public static InstancePipeBind From(object input, bool addressFirst)
        {
            var o = input is PSObject p ? p.BaseObject : input;
            switch (o)
            {
                case null: return new InstancePipeBind((string)null); // each null is that item's InvalidAddress, not the end of the command
                case InstancePipeBind b: return b;
                case string s: return new InstancePipeBind(s);
                case IDictionary d: return Text(FromPairs(k => Lookup(d, k), addressFirst)) ?? Refused(o);
                case Uri u: return new InstancePipeBind(u.IsAbsoluteUri && !u.IsDefaultPort ? $"{u.Host}:{u.Port}" : u.IsAbsoluteUri ? u.Host : u.OriginalString);
                case System.Net.IPAddress ip: return new InstancePipeBind(ip.ToString());
                case ValueType _: return Refused(o);
                default:
                    var ps = input as PSObject ?? PSObject.AsPSObject(o);
                    return Text(FromPairs(k => ps.Properties[k]?.Value, addressFirst)) ?? Refused(o);
            }
        }

        private static InstancePipeBind Text(string s) => s == null ? null : new InstancePipeBind(s);
        private static InstancePipeBind Refused(object o) => new InstancePipeBind(o.GetType(), true);

        /// <summary>The instance's text for an -Address parameter; a refused object is the typed InvalidAddress.</summary>
        public string Address() => _refusedType == null ? _text : throw Endpoint.InvalidAddress(null, Reason, $"The pipeline object ({_refusedType})");

        /// <summary>The instance's text for a -Target parameter; a refused object is the typed InvalidTarget.</summary>
        public string Target() => _refusedType == null ? _text : throw Endpoint.InvalidTarget(null, Reason, $"The pipeline object ({_refusedType})");

        private string Reason => $"a {_refusedType} from the pipeline has no Target, Address, IPAddress, ComputerName or Host (property or key); pipe text such as 10.0.0.5:8888, this module's objects, or @{{ Address = '10.0.0.5'; Port = 8888 }}";

        public override string ToString() => _text ?? $"({_refusedType})";

        private static string FromPairs(Func<string, object> get, bool addressFirst)
        {
            var target = Value(get("Target"));
            // The aliases the help lists bind by name too (Import-Csv hosts.csv with a ComputerName column).
            var address = Value(get("Address")) ?? Value(get("IPAddress")) ?? Value(get("ComputerName")) ?? Value(get("Host")) ?? Value(get("HostName"));
            var port = Value(get("Port"));
            string withPort(string a) => a != null && port != null && port != "0" && !a.Contains(":") ? a + ":" + port : a;
            return addressFirst ? (address != null ? withPort(address) : target) : (target ?? withPort(address));
        }

        private static string Value(object v)
        {
            v = v is PSObject p ? p.BaseObject : v;
            if (v == null) return null;
            var s = v is IFormattable f ? f.ToString(null, CultureInfo.InvariantCulture) : v as string;
            return string.IsNullOrWhiteSpace(s) ? null : s;
        }

        private static object Lookup(IDictionary d, string key)
        {
            foreach (DictionaryEntry e in d)
                if (string.Equals(e.Key as string, key, StringComparison.OrdinalIgnoreCase)) return e.Value;
            return null;
        }
    }

    /// <summary>For a -Target parameter (Kong's IP:PORT): a piped object binds by its Target, else Address:Port.</summary>
    [AttributeUsage(AttributeTargets.Property)]
    public sealed class TargetInputAttribute : ArgumentTransformationAttribute
    {
        public override object Transform(EngineIntrinsics engineIntrinsics, object inputData) => InstancePipeBind.From(inputData, addressFirst: false);
    }

    /// <summary>For an -Address parameter (InstancePipeBind[]): each piped object binds by its Address (+Port), else Target.</summary>
    [AttributeUsage(AttributeTargets.Property)]
    public sealed class AddressInputAttribute : ArgumentTransformationAttribute
    {
        public override object Transform(EngineIntrinsics engineIntrinsics, object inputData)
        {
            var o = inputData is PSObject p ? p.BaseObject : inputData;
            if (o is string || o is IDictionary || o is InstancePipeBind || !(o is IEnumerable e)) return new[] { InstancePipeBind.From(inputData, addressFirst: true) };
            var list = new List<InstancePipeBind>();
            foreach (var item in e) list.Add(InstancePipeBind.From(item, addressFirst: true));
            return list.ToArray();
        }
    }
}
