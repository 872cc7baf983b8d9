using System;
using System.IO;
using System.Linq;
using System.Runtime.Loader;
using System.Threading.Tasks;
using KeyServiceOps.TestHost;

namespace KeyServiceOps.Lab
{
    using KeyServiceOps.Lab.Estate; // inside: the simple name Lab is the estate class here, not the namespace

    /// <summary>
    /// `isolation-check`: what an operator gets when Posh-SSH or PowerCLI loaded other versions of our dependencies
    /// first. Loads SSH.NET 2024.2.0 and Newtonsoft.Json 12.0.3 into the default load context, then imports the
    /// module and runs cmdlets that need SSH.NET 2026.0.0 and Newtonsoft.Json 13. Prints where each copy lives.
    /// Run in its own process: a test host already holds its own copies.
    /// </summary>
    public static class IsolationCheck
    {
        public static async Task<int> RunAsync()
        {
            var cache = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
                        ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
            var oldSsh = Path.Combine(cache, "ssh.net", "2024.2.0", "lib", "netstandard2.0", "Renci.SshNet.dll");
            var oldJson = Path.Combine(cache, "newtonsoft.json", "12.0.3", "lib", "netstandard2.0", "Newtonsoft.Json.dll");
            var a1 = AssemblyLoadContext.Default.LoadFromAssemblyPath(oldSsh);
            var a2 = AssemblyLoadContext.Default.LoadFromAssemblyPath(oldJson);
            // PowerShell 7 ships Newtonsoft.Json in its platform list, so the default context keeps its own 13.x whatever
            // is asked; SSH.NET is not shipped with PowerShell, so the old one really takes the default context's slot.
            Console.WriteLine($"loaded first, default context: {a1.GetName().Name} {a1.GetName().Version}, {a2.GetName().Name} {a2.GetName().Version}");

            await using var lab = await Lab.StartAsync(new LabOptions { Instances = 1, Ssh = true, PagerDuty = true });
            lab.PagerDuty.AddAlert(lab[0].Address);
            var known = lab.WriteKnownHosts();
            Environment.SetEnvironmentVariable("ISO_PD_TOKEN", lab.PagerDuty.Token);
            using var sh = new HostedShell();
            var r = sh.Run($"Set-KeyServiceOpsContext -KongAdminUri '{lab.KongUri}' -PagerDutyUri '{lab.PagerDuty.BaseUri}' -PagerDutyTokenVariable ISO_PD_TOKEN " +
                           $"-SshUser '{lab.Ssh.User}' -SshPort {lab.Ssh.Port} -SshKeyPath '{lab.Ssh.KeyPath}' -KnownHostsPath '{known}'; " +
                           $"Get-PagerDutyIncident -Status Triggered; Get-KeyServiceContainer {lab[0].Address}; Get-RingBalancerTarget");
            foreach (var e in r.Errors) Console.WriteLine($"ERROR {e.FullyQualifiedErrorId}: {e.Exception?.Message}");
            var types = r.Output.Select(o => o.BaseObject.GetType().Name).ToList();
            Console.WriteLine("cmdlet output: " + string.Join(", ", types.Distinct()));
            foreach (var a in AppDomain.CurrentDomain.GetAssemblies().Where(a => a.GetName().Name is "Renci.SshNet" or "Newtonsoft.Json" or "KeyServiceOps.Core" or "Polly.Core")
                         .OrderBy(a => a.GetName().Name))
                Console.WriteLine($"  {a.GetName().Name,-20} {a.GetName().Version,-12} context: {AssemblyLoadContext.GetLoadContext(a)?.GetType().Name}");
            var ok = r.Errors.Count == 0 && types.Contains("PagerDutyIncident") && types.Contains("ContainerState") && types.Contains("RingBalancerTarget")
                     && AppDomain.CurrentDomain.GetAssemblies().Count(a => a.GetName().Name == "Renci.SshNet") == 2
                     && AppDomain.CurrentDomain.GetAssemblies().Count(a => a.GetName().Name == "Newtonsoft.Json") == 2;
            Console.WriteLine(ok ? "ISOLATION OK" : "ISOLATION FAILED");
            return ok ? 0 : 1;
        }
    }
}
