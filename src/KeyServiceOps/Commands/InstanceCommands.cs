using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using KeyServiceOps.Core;
using KeyServiceOps.Core.RingBalancer;
using KeyServiceOps.Core.Runbook;
using KeyServiceOps.Bases;

namespace KeyServiceOps.Commands
{
    public enum InstanceSource { All, RingBalancer, Inventory }

    [Cmdlet(VerbsCommon.Get, "KeyServiceInstance")]
    [OutputType(typeof(KeyServiceInstance))]
    public sealed class GetKeyServiceInstanceCommand : KongCmdlet
    {
        [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [Alias("IPAddress", "ComputerName", "Host")]
        [AddressInput, AllowNull]
        [ArgumentCompleter(typeof(AddressCompleter))]
        public InstancePipeBind[] Address { get; set; }

        [Parameter] [ArgumentCompleter(typeof(UpstreamCompleter))] public string Upstream { get; set; }
        [Parameter] [ArgumentCompleter(typeof(EnvironmentCompleter))] public string Environment { get; set; }
        [Parameter] public InstanceSource Source { get; set; } = InstanceSource.All;

        private List<KeyServiceInstance> _all;

        protected override void ProcessRecord() => PerItem(() =>
        {
            if (_all == null)
            {
                var upstream = UpstreamOrDefault(Upstream);
                List<RingBalancerTarget> targets = null;
                if (Source != InstanceSource.Inventory && (Settings.Kong.AdminUri != null || Source == InstanceSource.RingBalancer))
                {
                    targets = Await(RingBalancer.Kong.GetTargetsAsync(upstream, Cancellation));
                    var health = Await(RingBalancer.Kong.GetHealthAsync(upstream, Cancellation));
                    foreach (var t in targets) t.KongHealth = health.TryGetValue(t.Target, out var h) ? h : null;
                }
                else if (Source == InstanceSource.All) WriteVerbose("No Kong Admin API is configured: listing the inventory only.");
                _all = KeyServiceInstance.Merge(upstream, targets, Source == InstanceSource.RingBalancer ? null : Settings.Inventory, Settings);
            }
            IEnumerable<KeyServiceInstance> result = _all;
            if (Environment != null)
            {
                var p = new WildcardPattern(Environment, WildcardOptions.IgnoreCase);
                result = result.Where(i => i.Environment != null && p.IsMatch(i.Environment));
            }
            if (Address != null && Address.Length > 0)
            {
                foreach (var bind in Address)
                {
                    if (bind == null) continue;
                    string a;
                    try { a = bind.Address(); }
                    catch (OpsException e) { WriteOpsError(e); continue; }
                    var ep = Endpoint.Parse(a, Settings.Health.Port);
                    var hit = result.Where(i => string.Equals(i.Address, ep.Address, System.StringComparison.OrdinalIgnoreCase) && (!a.Contains(":") || i.Port == ep.Port)).ToList();
                    if (hit.Count == 0)
                        WriteOpsError(new OpsException("InstanceNotFound", OpsErrorCategory.ObjectNotFound,
                            $"{a} is neither a target of upstream '{UpstreamOrDefault(Upstream)}' nor in the inventory.", a,
                            recommendedAction: "Check the address, or add it to the inventory in the config file."));
                    WriteObject(hit, true);
                }
            }
            else WriteObject(result, true);
        });
    }
}
