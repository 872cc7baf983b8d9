using System;

namespace KeyServiceOps.Core
{
    /// <summary>
    /// An object from the pipeline that is neither text nor something with a Target or Address. The cmdlet layer's
    /// input transformation cannot raise our typed error itself (PowerShell would wrap it as a binding error), so it
    /// binds this marker instead and <see cref="Endpoint.TryParse"/> refuses it with the object's type name: nothing
    /// whose "host" is a .NET type name (or an object's display text) ever reaches Kong, SSH or the audit log.
    /// </summary>
    public static class PipelineRefusal
    {
        private const string Marker = "\u0000refused-pipeline-object:";

        public static string For(Type type) => Marker + (type?.FullName ?? "null");

        public static bool IsRefused(string text, out string typeName)
        {
            typeName = null;
            if (text == null || !text.StartsWith(Marker, StringComparison.Ordinal)) return false;
            typeName = text.Substring(Marker.Length);
            return true;
        }

        public static string Reason(string typeName)
            => $"a {typeName} from the pipeline has no Target, Address, IPAddress, ComputerName or Host (property or key); pipe text such as 10.0.0.5:8888, this module's objects, or @{{ Address = '10.0.0.5'; Port = 8888 }}";
    }
}
