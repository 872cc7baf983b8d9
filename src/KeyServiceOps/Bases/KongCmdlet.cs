using KeyServiceOps.Core;

namespace KeyServiceOps.Commands
{
    /// <summary>Everything that talks to the Kong Admin API: the Kong parameter group.</summary>
    [ParameterGroups(typeof(KongParameters))]
    public abstract class KongCmdlet : ContextCmdlet
    {
        protected override void ApplyOverrides(OpsContext c) => EndpointOverrides.Kong(c, Group<KongParameters>());
    }
}
