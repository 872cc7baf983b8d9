using System;
using System.Collections.Generic;
using System.Linq;
using KeyServiceOps.Core.RingBalancer;

namespace KeyServiceOps.Core.Runbook
{
    /// <summary>An api_key_service instance as the ring-balancer and the inventory know it.</summary>
    public sealed class KeyServiceInstance
    {
        public string Address { get; set; }
        public int Port { get; set; } = OpsContext.DefaultServicePort;
        public string Target => Endpoint.Join(Address, Port);
        public string Environment { get; set; }
        public string Upstream { get; set; }
        public bool InRingBalancer { get; set; }
        public int? Weight { get; set; }
        public string KongHealth { get; set; }
        public TextList Tags { get; set; } = new TextList();
        public string SshUser { get; set; }
        public int? SshPort { get; set; }
        public string JumpHost { get; set; }
        public bool Maintenance { get; set; }
        public string Source { get; set; }
        public override string ToString() => Target;

        /// <summary>Merges targets and inventory entries by address+port.</summary>
        public static List<KeyServiceInstance> Merge(string upstream, IEnumerable<RingBalancerTarget> targets, IEnumerable<InventoryEntry> inventory, OpsContext ctx)
        {
            var map = new Dictionary<string, KeyServiceInstance>(StringComparer.OrdinalIgnoreCase);
            foreach (var t in targets ?? Enumerable.Empty<RingBalancerTarget>())
            {
                map[t.Target] = new KeyServiceInstance
                {
                    Address = t.Address, Port = t.Port, Upstream = upstream, InRingBalancer = t.Weight > 0, Weight = t.Weight,
                    KongHealth = t.KongHealth, Tags = t.Tags, Source = "RingBalancer",
                    Maintenance = (t.Tags ?? new string[0]).Contains(ctx.Removal.MaintenanceTag, StringComparer.OrdinalIgnoreCase),
                };
            }
            foreach (var e in inventory ?? Enumerable.Empty<InventoryEntry>())
            {
                var key = new Endpoint(e.Address, e.Port).Target;
                if (!map.TryGetValue(key, out var i))
                    map[key] = i = new KeyServiceInstance { Address = e.Address, Port = e.Port, Upstream = upstream, Source = "Inventory" };
                else i.Source = "RingBalancer+Inventory";
                i.Environment = e.Environment;
                i.SshUser = e.SshUser ?? ctx.Ssh.User;
                i.SshPort = e.SshPort ?? ctx.Ssh.Port;
                i.JumpHost = e.JumpHost ?? ctx.Ssh.JumpHost;
                i.Maintenance |= e.Maintenance;
            }
            foreach (var i in map.Values)
                if (ctx.Removal.MaintenanceTargets.Any(m => string.Equals(m, i.Target, StringComparison.OrdinalIgnoreCase) || string.Equals(m, i.Address, StringComparison.OrdinalIgnoreCase)))
                    i.Maintenance = true;
            return map.Values.OrderBy(i => i.Address, StringComparer.Ordinal).ThenBy(i => i.Port).ToList();
        }
    }
}
