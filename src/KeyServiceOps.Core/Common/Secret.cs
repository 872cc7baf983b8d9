using System;
using System.Runtime.InteropServices;
using System.Security;

namespace KeyServiceOps.Core
{
    /// <summary>A secret held as a SecureString; its text is revealed only to build a request header.</summary>
    public sealed class Secret
    {
        private readonly SecureString _value;
        private Secret(SecureString value) { _value = value; _value.MakeReadOnly(); }

        public static Secret FromSecureString(SecureString value)
            => value == null || value.Length == 0 ? null : new Secret(value.Copy());

        public static Secret FromPlainText(string value)
        {
            if (string.IsNullOrEmpty(value)) return null;
            var s = new SecureString();
            foreach (var c in value) s.AppendChar(c);
            return new Secret(s);
        }

        public static Secret FromEnvironment(string variable)
            => string.IsNullOrEmpty(variable) ? null : FromPlainText(Environment.GetEnvironmentVariable(variable));

        internal string Reveal()
        {
            IntPtr p = IntPtr.Zero;
            try
            {
                p = Marshal.SecureStringToGlobalAllocUnicode(_value);
                return Marshal.PtrToStringUni(p);
            }
            finally { if (p != IntPtr.Zero) Marshal.ZeroFreeGlobalAllocUnicode(p); }
        }

        public SecureString ToSecureString() => _value.Copy();
        public override string ToString() => "***";
    }
}
