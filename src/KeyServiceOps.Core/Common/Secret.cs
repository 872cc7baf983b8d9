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
        {
            if (string.IsNullOrEmpty(variable)) return null;
            var s = FromPlainText(Environment.GetEnvironmentVariable(variable));
            if (s != null) s.Variable = variable;
            return s;
        }

        /// <summary>The environment variable it came from, if any: the only thing about a secret that is ever saved.</summary>
        public string Variable { get; private set; }

        internal string Reveal()
        {
            IntPtr p = IntPtr.Zero;
            try
            {
                p = Marshal.SecureStringToGlobalAllocUnicode(_value);
                return Marshal.PtrToStringUni(p, _value.Length); // the whole value: a NUL inside never cuts it short (a wrong token sent silently)
            }
            finally { if (p != IntPtr.Zero) Marshal.ZeroFreeGlobalAllocUnicode(p); }
        }

        /// <summary>
        /// The text for an HTTP header, refused (typed, naming the setting, never the value) when it holds a control
        /// character, CR/LF, a space or a non-ASCII character: such a value would split or corrupt the header.
        /// </summary>
        internal string RevealForHeader(string setting)
        {
            var s = Reveal();
            for (int i = 0; i < s.Length; i++)
            {
                var c = s[i];
                if (c < 0x21 || c > 0x7E)
                    throw new OpsException("SecretInvalid", OpsErrorCategory.InvalidArgument,
                        $"The {setting} contains {(c == '\r' || c == '\n' ? "a line break" : c < 0x20 || c == 0x7F ? "a control character" : c == ' ' ? "a space" : "a non-ASCII character")} at position {i + 1} of {s.Length}; it cannot be sent in an HTTP header, so nothing was sent.",
                        setting, recommendedAction: $"Set the {setting} again as printed by its issuer (check for a trailing newline or a pasted invisible character).");
            }
            return s;
        }

        public override string ToString() => "***";
    }
}
