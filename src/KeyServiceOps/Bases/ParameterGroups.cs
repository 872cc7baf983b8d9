using System;
using System.Collections.Generic;
using System.Collections.ObjectModel;
using System.Linq;
using System.Management.Automation;
using System.Reflection;
using System.Security;

namespace KeyServiceOps.Commands
{
    /// <summary>
    /// The parameter groups a cmdlet offers (inherited; a derived cmdlet restates it to offer fewer). Each group is declared
    /// once, as a class of [Parameter] properties, and offered by composition through dynamic parameters — so a cmdlet carries
    /// only the groups it uses, and a group can be offered only when it applies (ContextCmdlet.Offers). The help generator
    /// reads the same attribute, so help and binding agree.
    /// </summary>
    [AttributeUsage(AttributeTargets.Class, Inherited = true, AllowMultiple = false)]
    public sealed class ParameterGroupsAttribute : Attribute
    {
        public ParameterGroupsAttribute(params Type[] groups) { Groups = groups ?? Type.EmptyTypes; }
        public Type[] Groups { get; }
        /// <summary>When set, the groups' parameters belong to this parameter set only.</summary>
        public string ParameterSetName { get; set; }
    }

    /// <summary>Per-call Kong Admin API endpoint and credentials.</summary>
    public sealed class KongParameters
    {
        [Parameter] public Uri KongAdminUri { get; set; }
        [Parameter] public string Workspace { get; set; }
        [Parameter] public SecureString KongToken { get; set; }
        [Parameter] public SwitchParameter SkipCertificateCheck { get; set; }
    }

    /// <summary>Per-call PagerDuty endpoint and token.</summary>
    public sealed class PagerDutyParameters
    {
        [Parameter] public Uri PagerDutyUri { get; set; }
        [Parameter] public SecureString PagerDutyToken { get; set; }
    }

    /// <summary>Everything that runs commands on an instance's VM over SSH.</summary>
    public sealed class SshParameters
    {
        [Parameter] public string SshUser { get; set; }
        [Parameter, ValidateRange(1, 65535)] public int SshPort { get; set; }
        [Parameter] public string SshKeyPath { get; set; }
        [Parameter] public SecureString SshKeyPassphrase { get; set; }
        /// <summary>User and password (password and keyboard-interactive authentication).</summary>
        [Parameter, Credential] public PSCredential Credential { get; set; }
        [Parameter] public string KnownHostsPath { get; set; }
        /// <summary>Record the host key of a VM not yet in known_hosts (a changed key is still refused).</summary>
        [Parameter] public SwitchParameter AcceptNewHostKey { get; set; }
        [Parameter] public string JumpHost { get; set; }
        /// <summary>Run docker as `sudo -n docker`.</summary>
        [Parameter] public SwitchParameter UseSudo { get; set; }
        [Parameter, ValidatePattern("^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")] public string Container { get; set; }
        [Parameter, ValidateRange(1, 600)] public double ConnectTimeoutSec { get; set; }
        [Parameter, ValidateRange(1, 3600)] public double CommandTimeoutSec { get; set; }
    }

    /// <summary>Turns groups into dynamic parameters, and the bound values back into group objects.</summary>
    internal static class ParameterGroups
    {
        public static RuntimeDefinedParameterDictionary Offer(IEnumerable<Type> groups, string parameterSetName)
        {
            var d = new RuntimeDefinedParameterDictionary();
            foreach (var g in groups)
                foreach (var p in g.GetProperties(BindingFlags.Public | BindingFlags.Instance))
                {
                    var attrs = p.GetCustomAttributes(true).OfType<Attribute>().ToList();
                    if (!attrs.OfType<ParameterAttribute>().Any()) continue;
                    if (parameterSetName != null) foreach (var pa in attrs.OfType<ParameterAttribute>()) pa.ParameterSetName = parameterSetName;
                    d.Add(p.Name, new RuntimeDefinedParameter(p.Name, p.PropertyType, new Collection<Attribute>(attrs)));
                }
            return d;
        }

        /// <summary>A group object holding what was bound (defaults for the rest, and for a group not offered).</summary>
        public static T Get<T>(RuntimeDefinedParameterDictionary bound) where T : new()
        {
            var g = new T();
            if (bound == null) return g;
            foreach (var p in typeof(T).GetProperties(BindingFlags.Public | BindingFlags.Instance))
                if (bound.TryGetValue(p.Name, out var rp) && rp.IsSet)
                    p.SetValue(g, rp.Value is PSObject ps && !(p.PropertyType.IsInstanceOfType(ps)) ? ps.BaseObject : rp.Value);
            return g;
        }
    }
}
