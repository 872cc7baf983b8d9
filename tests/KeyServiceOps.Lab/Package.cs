using System;
using System.IO;
using System.IO.Compression;
using System.Text.RegularExpressions;

namespace KeyServiceOps.Lab
{
    /// <summary>
    /// `dotnet run --project tests/KeyServiceOps.Lab -- package`: copies the staged module to
    /// out/package/KeyServiceOps/VERSION/ and zips it (the layout Publish-PSResource expects). No pwsh needed.
    /// </summary>
    public static class Package
    {
        public static int Run()
        {
            var root = HostedShell.RepoRoot;
            var staged = Path.Combine(root, "out", "KeyServiceOps");
            var manifest = Path.Combine(staged, "KeyServiceOps.psd1");
            if (!File.Exists(manifest)) { Console.Error.WriteLine("No staged module: run 'dotnet build KeyServiceOps.sln' first."); return 1; }
            var m = Regex.Match(File.ReadAllText(manifest), @"ModuleVersion\s*=\s*'([0-9.]+)'");
            if (!m.Success) { Console.Error.WriteLine("The staged manifest has no stamped ModuleVersion."); return 1; }
            var version = m.Groups[1].Value;
            var dest = Path.Combine(root, "out", "package", "KeyServiceOps", version);
            if (Directory.Exists(dest)) Directory.Delete(dest, true);
            foreach (var f in Directory.GetFiles(staged, "*", SearchOption.AllDirectories))
            {
                var rel = Path.GetRelativePath(staged, f);
                Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(dest, rel))!);
                File.Copy(f, Path.Combine(dest, rel));
            }
            var zip = Path.Combine(root, "out", "package", $"KeyServiceOps-{version}.zip");
            if (File.Exists(zip)) File.Delete(zip);
            ZipFile.CreateFromDirectory(Path.Combine(root, "out", "package", "KeyServiceOps"), zip, CompressionLevel.Optimal, includeBaseDirectory: true);
            Console.WriteLine($"Packaged KeyServiceOps {version}: {dest} and {zip}");
            return 0;
        }
    }
}
