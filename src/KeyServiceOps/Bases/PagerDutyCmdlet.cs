using System.Collections.Generic;
using System.Management.Automation;
using System.Security;
using KeyServiceOps.Commands;

namespace KeyServiceOps.Bases
{
    /// <summary>Cmdlets that talk to PagerDuty only: its address and token may be given per call.</summary>
    public abstract class PagerDutyCmdlet : ContextCmdlet
    {
        [Parameter] public System.Uri PagerDutyUri { get; set; }
        [Parameter] public SecureString PagerDutyToken { get; set; }

        protected override IReadOnlyDictionary<string, string> Overrides => SettingParameters.PagerDuty;
    }
}
