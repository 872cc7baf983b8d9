using System.Collections.Generic;

namespace KeyServiceOps.Core
{
    /// <summary>
    /// A list of text on an output object that still reads as text where PowerShell flattens it: Export-Csv and
    /// string conversion show "a, b" (a string[] would show "System.String[]"), ConvertTo-Json an array, and
    /// indexing and Count work as on any list.
    /// </summary>
    public sealed class TextList : List<string>
    {
        public TextList() { }
        public TextList(IEnumerable<string> items) : base(items ?? new string[0]) { }
        public override string ToString() => string.Join(", ", this);
        public static implicit operator TextList(string[] items) => items == null ? null : new TextList(items);
    }
}
