using System;
using System.Linq;
using System.Threading.Tasks;

namespace KeyServiceOps.Lab
{
    public static class Program
    {
        /// <summary>Starts a lab with SSH and PagerDuty, prints how to reach it, and keeps it up for SECONDS (default 600).</summary>
        private static async Task<int> ServeAsync(string[] args)
        {
            var seconds = args.Length > 0 ? int.Parse(args[0]) : 600;
            await using var lab = await Lab.StartAsync(new LabOptions { Ssh = true, PagerDuty = true });
            Console.WriteLine($"Kong admin:  {lab.KongUri}");
            Console.WriteLine($"PagerDuty:   {lab.PagerDuty.BaseUri}");
            foreach (var i in lab.Instances) Console.WriteLine($"instance:    {i.HealthUrl}  ssh -p {lab.Ssh.Port} -i {lab.Ssh.KeyPath} {lab.Ssh.User}@{i.Address}");
            Console.WriteLine($"sshd log:    {lab.Ssh.LogPath}");
            await lab[0].ApplyScenarioAsync(FaultScenario.CipherDependency);
            Console.WriteLine($"{lab[0].Address} has a cipher fault; the others are up.");
            await Task.Delay(TimeSpan.FromSeconds(seconds));
            return 0;
        }

        public static async Task<int> Main(string[] args)
        {
            var cmd = args.Length > 0 ? args[0] : "demo";
            switch (cmd)
            {
                case "demo": return await Demo.RunAsync(args.Skip(1).ToArray());
                case "package": return Package.Run();
                case "serve": return await ServeAsync(args.Skip(1).ToArray());
                case "isolation-check": return await IsolationCheck.RunAsync();
                default:
                    Console.Error.WriteLine("usage: dotnet run --project tests/KeyServiceOps.Lab -- demo|package|serve [SECONDS]");
                    return 2;
            }
        }
    }
}
