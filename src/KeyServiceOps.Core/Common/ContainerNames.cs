using System.Text.RegularExpressions;

namespace KeyServiceOps.Core
{
    /// <summary>Docker's rule for a container name (used by the settings and by the SSH side, so it lives here).</summary>
    public static class ContainerNames
    {
        public static readonly Regex Pattern = new Regex(@"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$", RegexOptions.CultureInvariant);
    }
}
