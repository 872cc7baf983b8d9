using System.Collections.Generic;
using System.Management.Automation;
using System.Security;
using KeyServiceOps.Commands;

namespace KeyServiceOps.Bases
{
    /// <summary>Cmdlets that talk to the Kong Admin API only: Kong's address and credentials may be given per call.</summary>
    public abstract class KongCmdlet : ContextCmdlet
    {
        [Parameter] public System.Uri KongAdminUri { get; set; }
        [Parameter] public string Workspace { get; set; }
        [Parameter] public SecureString KongToken { get; set; }
        [Parameter] public SwitchParameter SkipCertificateCheck { get; set; }

        protected override IReadOnlyDictionary<string, string> Overrides => SettingParameters.Kong;
    }
}
