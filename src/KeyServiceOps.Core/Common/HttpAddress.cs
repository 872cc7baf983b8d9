using System;

namespace KeyServiceOps.Core
{
    /// <summary>
    /// The one rule for a service address (Kong, PagerDuty, central logs), whatever it came from — a parameter, the
    /// config file, the environment (issue #29): absolute http:// or https://, no user:password@ (it would reach
    /// verbose lines, errors and the session file). Typed errors; the credentials are never echoed.
    /// </summary>
    public static class HttpAddress
    {
        public static bool IsValid(Uri uri) => uri != null && uri.IsAbsoluteUri && (uri.Scheme == "http" || uri.Scheme == "https") && string.IsNullOrEmpty(uri.UserInfo);

        public static Uri Require(Uri uri, string setting)
        {
            if (uri == null) return null;
            if (!uri.IsAbsoluteUri || (uri.Scheme != "http" && uri.Scheme != "https")) throw Invalid(setting, $"'{Safe(uri)}' is not an http:// or https:// address", Safe(uri));
            if (!string.IsNullOrEmpty(uri.UserInfo))
                throw new OpsException("UriWithCredentials", OpsErrorCategory.InvalidArgument,
                    $"{setting} has a user name or password in it ({Safe(uri)} with user-info): it would be written to verbose lines, errors and the session file. Nothing was changed.", Safe(uri),
                    recommendedAction: setting.Contains("CentralLog") || setting.Contains("CENTRAL_LOG") ? "Give the address alone and the credentials with -CentralLogCredential or -CentralLogApiKey." : "Give the address alone; the token has its own setting.");
            return uri;
        }

        /// <summary>Text from the environment or a file: parsed, then the same rule.</summary>
        public static Uri Require(string text, string setting)
        {
            if (string.IsNullOrEmpty(text)) return null;
            if (!Uri.TryCreate(text, UriKind.Absolute, out var uri)) throw Invalid(setting, "is not an address", setting);
            return Require(uri, setting);
        }

        private static OpsException Invalid(string setting, string why, object target)
            => new OpsException("InvalidUri", OpsErrorCategory.InvalidArgument, $"{setting} {why}. Nothing was changed.", target,
                recommendedAction: $"Give the full address, e.g. {setting} https://kong-admin.internal:8444.");

        private static string Safe(Uri uri)
        {
            if (!uri.IsAbsoluteUri) return uri.OriginalString;
            try { return string.IsNullOrEmpty(uri.UserInfo) ? uri.OriginalString : new UriBuilder(uri) { UserName = "", Password = "" }.Uri.ToString(); }
            catch (UriFormatException) { return uri.Scheme + "://…"; }
        }
    }
}
