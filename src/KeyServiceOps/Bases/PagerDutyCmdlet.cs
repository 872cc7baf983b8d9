using System;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using System.Security;
using KeyServiceOps.Core;
using KeyServiceOps.Core.PagerDuty;

namespace KeyServiceOps.Commands
{
    /// <summary>Parameters shared by the PagerDuty cmdlets.</summary>
    public abstract class PagerDutyCmdlet : ContextCmdlet
    {
        [Parameter] public Uri PagerDutyUri { get; set; }
        [Parameter] public SecureString PagerDutyToken { get; set; }

        protected override void ApplyOverrides(OpsContext c) => EndpointOverrides.PagerDuty(c, PagerDutyUri, PagerDutyToken);
    }
}
