using KeyServiceOps.Core;

namespace KeyServiceOps.Commands
{
    /// <summary>Everything that talks to PagerDuty: the PagerDuty parameter group.</summary>
    [ParameterGroups(typeof(PagerDutyParameters))]
    public abstract class PagerDutyCmdlet : ContextCmdlet
    {
        protected override void ApplyOverrides(OpsContext c) => EndpointOverrides.PagerDuty(c, Group<PagerDutyParameters>());
    }
}
