using KeyServiceOps.Core;

namespace KeyServiceOps.Commands
{
    /// <summary>Cmdlets that touch everything (Kong, the VMs, PagerDuty): the SSH, Kong and PagerDuty parameter groups.</summary>
    [ParameterGroups(typeof(SshParameters), typeof(KongParameters), typeof(PagerDutyParameters))]
    public abstract class RunbookCmdlet : SshCmdlet
    {
        protected override void ApplyOverrides(OpsContext c)
        {
            base.ApplyOverrides(c);
            EndpointOverrides.Kong(c, Group<KongParameters>());
            EndpointOverrides.PagerDuty(c, Group<PagerDutyParameters>());
        }
    }
}
