using System;
using System.Linq;
using System.Threading.Tasks;

namespace KeyServiceOps.Lab
{
    public static class Program
    {
        public static async Task<int> Main(string[] args)
        {
            var cmd = args.Length > 0 ? args[0] : "demo";
            switch (cmd)
            {
                case "demo": return await Demo.RunAsync(args.Skip(1).ToArray());
                case "package": return Package.Run();
                default:
                    Console.Error.WriteLine("usage: dotnet run --project tests/KeyServiceOps.Lab -- demo|package");
                    return 2;
            }
        }
    }
}
