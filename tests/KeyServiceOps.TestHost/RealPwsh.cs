using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Text;
using System.Threading.Tasks;

namespace KeyServiceOps.TestHost
{
    /// <summary>The result of one real pwsh process.</summary>
    public sealed class PwshResult
    {
        public int ExitCode { get; init; }
        public string StdOut { get; init; }
        public string StdErr { get; init; }
        public override string ToString() => $"exit {ExitCode}\n--- stdout\n{StdOut}\n--- stderr\n{StdErr}";
    }

    /// <summary>
    /// Runs the pinned pwsh (.config/dotnet-tools.json, `dotnet tool run pwsh`) as a separate process, for what the
    /// hosted runspace cannot do: ConvertTo-Json, Export-Csv, Format-Table at a width, -Parallel, jobs, signals.
    /// </summary>
    public static class RealPwsh
    {
        public static ProcessStartInfo StartInfo(string script, IDictionary<string, string> env = null, string workingDirectory = null)
        {
            var psi = new ProcessStartInfo("dotnet")
            {
                WorkingDirectory = workingDirectory ?? HostedShell.RepoRoot,
                RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true,
                UseShellExecute = false,
            };
            foreach (var a in new[] { "tool", "run", "pwsh", "--", "-NoProfile", "-NonInteractive", "-Command", "-" }) psi.ArgumentList.Add(a);
            psi.Environment["POWERSHELL_TELEMETRY_OPTOUT"] = "1";
            psi.Environment["POWERSHELL_UPDATECHECK"] = "Off";
            psi.Environment["NO_COLOR"] = "1";
            if (env != null) foreach (var kv in env) psi.Environment[kv.Key] = kv.Value;
            return psi;
        }

        /// <summary>Runs SCRIPT (fed on stdin, so no quoting rules apply) and waits for the process to end.</summary>
        public static async Task<PwshResult> RunAsync(string script, IDictionary<string, string> env = null, TimeSpan? timeout = null, string workingDirectory = null)
        {
            using var p = Process.Start(StartInfo(script, env, workingDirectory));
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            // -Command - reads the whole of stdin before it runs; PSStyle off so text is plain.
            await p.StandardInput.WriteAsync("$PSStyle.OutputRendering = 'PlainText'\n$ProgressPreference = 'SilentlyContinue'\n" + script + "\n");
            p.StandardInput.Close();
            var limit = timeout ?? TimeSpan.FromMinutes(10);
            var exited = await Task.Run(() => p.WaitForExit((int)limit.TotalMilliseconds));
            if (!exited) { try { p.Kill(true); } catch (InvalidOperationException) { } }
            return new PwshResult { ExitCode = exited ? p.ExitCode : -1, StdOut = await stdout, StdErr = await stderr + (exited ? "" : $"\n(killed after {limit})") };
        }
    }
}
