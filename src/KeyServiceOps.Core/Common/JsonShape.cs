using System;
using Newtonsoft.Json.Linq;

namespace KeyServiceOps.Core
{
    /// <summary>
    /// What every client needs when a server's JSON is not the shape it reads (issue #26): which exceptions a cast or a
    /// child access on a value of another type throws, and a short, escaped quote of the value for the typed error.
    /// </summary>
    public static class JsonShape
    {
        /// <summary>What Newtonsoft's casts and child access throw on a value of another type.</summary>
        public static bool IsWrongShape(Exception e)
            => e is InvalidCastException || e is ArgumentException || e is InvalidOperationException || e is FormatException || e is OverflowException;

        /// <summary>The value as compact JSON, at most 200 characters, control characters escaped.</summary>
        public static string Quote(JToken j)
        {
            var text = j?.ToString(Newtonsoft.Json.Formatting.None) ?? "null";
            return SafeText.Neutralize(text.Length > 200 ? text.Substring(0, 200) + "…" : text);
        }
    }
}
