using System;
using System.Diagnostics;
using System.IO;
using System.Net.Http;
using System.Text.Json;
using System.Threading.Tasks;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using Xunit;
using KeyServiceOps.TestHost;

namespace KeyServiceOps.Module.Tests
{
    public class LabServeTests
    {
        [Fact]
        public async Task Serve_keeps_running_with_stdin_closed_and_stops_on_SIGTERM()
        {
            var info = Path.Combine(Path.GetTempPath(), $"kso-serve-{Guid.NewGuid():N}.json");
            // The lab's own process (not `dotnet run`, which would stand between it and the signal).
            var config = AppContext.BaseDirectory.Contains("/Release/") ? "Release" : "Debug";
            var dll = Path.Combine(HostedShell.RepoRoot, "tests", "KeyServiceOps.Lab", "bin", config, "net10.0", "KeyServiceOps.Lab.dll");
            var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = HostedShell.RepoRoot, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { dll, "serve", "120", "--info", info }) psi.ArgumentList.Add(a);
            using var p = Process.Start(psi);
            p.StandardInput.Close(); // as in the background: no stdin at all
            var output = p.StandardOutput.ReadToEndAsync();
            var deadline = DateTime.UtcNow.AddSeconds(120);
            while (!File.Exists(info) && !p.HasExited && DateTime.UtcNow < deadline) await Task.Delay(100);
            Assert.True(File.Exists(info), "serve wrote no info file: " + (p.HasExited ? await output : "(still starting)"));
            await Task.Delay(1000);
            Assert.False(p.HasExited, "serve exited although only stdin was closed");
            using var doc = JsonDocument.Parse(File.ReadAllText(info));
            using var http = new HttpClient();
            var kong = await http.GetAsync(doc.RootElement.GetProperty("kongAdminUri").GetString() + "upstreams");
            Assert.True(kong.IsSuccessStatusCode);
            Process.Start("kill", $"-TERM {p.Id}").WaitForExit();
            Assert.True(p.WaitForExit(30000), "serve did not stop on SIGTERM");
            Assert.Equal(0, p.ExitCode);
        }
    }
}
