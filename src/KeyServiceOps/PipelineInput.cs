using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;
using System.Management.Automation;
using KeyServiceOps.Core;

namespace KeyServiceOps.Commands
{
    /// <summary>
    /// What a pipeline object means as an instance: text as written; a hashtable by its Target/Address/Port keys;
    /// any other object by its Target or Address (+ Port) property; anything else is refused (a marker that the
    /// address parser turns into a typed InvalidTarget/InvalidAddress). PowerShell would otherwise bind an object
    /// that a ByPropertyName pass missed as its ToString() text — '127.4.2.12 Recovered 1.2s' as a target.
    /// </summary>
    internal static class PipelineInput
    {
        public static string AsTarget(object input, bool addressFirst)
        {
            var o = input is PSObject p ? p.BaseObject : input;
            switch (o)
            {
                case null: return null;
                case string s: return s;
                case IDictionary d: return FromPairs(k => Lookup(d, k), addressFirst) ?? PipelineRefusal.For(o.GetType());
                default:
                    var ps = input as PSObject ?? PSObject.AsPSObject(o);
                    if (o is ValueType || o is Uri) return o is Uri u ? u.Host : PipelineRefusal.For(o.GetType());
                    return FromPairs(k => ps.Properties[k]?.Value, addressFirst) ?? PipelineRefusal.For(o.GetType());
            }
        }

        private static string FromPairs(Func<string, object> get, bool addressFirst)
        {
            var target = Text(get("Target"));
            // The aliases the help lists bind by name too (Import-Csv hosts.csv with a ComputerName column).
            var address = Text(get("Address")) ?? Text(get("IPAddress")) ?? Text(get("ComputerName")) ?? Text(get("Host")) ?? Text(get("HostName"));
            var port = Text(get("Port"));
            string withPort(string a) => a != null && port != null && port != "0" && !a.Contains(":") ? a + ":" + port : a;
            return addressFirst ? (address != null ? withPort(address) : target) : (target ?? withPort(address));
        }

        private static string Text(object v)
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
        public override object Transform(EngineIntrinsics engineIntrinsics, object inputData) => PipelineInput.AsTarget(inputData, addressFirst: false);
    }

    /// <summary>For an -Address parameter (string[]): each piped object binds by its Address (+Port), else Target.</summary>
    [AttributeUsage(AttributeTargets.Property)]
    public sealed class AddressInputAttribute : ArgumentTransformationAttribute
    {
        public override object Transform(EngineIntrinsics engineIntrinsics, object inputData)
        {
            var o = inputData is PSObject p ? p.BaseObject : inputData;
            if (o is string || o is IDictionary || !(o is IEnumerable e)) return new[] { PipelineInput.AsTarget(inputData, addressFirst: true) };
            var list = new List<string>();
            foreach (var item in e) list.Add(PipelineInput.AsTarget(item, addressFirst: true));
            return list.ToArray();
        }
    }
}
