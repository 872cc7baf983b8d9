using System;
using System.IO;
using System.Linq;
using System.Text;

namespace KeyServiceOps.Lab
{
    using KeyServiceOps.Lab.Estate; // inside: the simple name Lab is the estate class here, not the namespace

    /// <summary>
    /// What `serve` prints for a person (#27 row 12): the lines to paste into pwsh to point the module at the lab, and the
    /// commands that break an instance and page it. The JSON with the lab's tokens goes only to --info FILE.
    /// </summary>
    public static class ServeGuide
    {
        public static string Text(Lab lab, string knownHosts, Uri control, int seconds, string stateDir)
        {
            string Q(string s) => "'" + s.Replace("'", "''") + "'";
            var module = Path.Combine(HostedShellPaths.RepoRoot(), "out", "KeyServiceOps", "KeyServiceOps.psd1");
            var sb = new StringBuilder();
            sb.AppendLine($"The lab is up for {seconds} s ({lab.Instances.Count} api_key_service instances behind Kong upstream '{lab.Upstream}', PagerDuty, central logs, a real sshd).");
            sb.AppendLine("Paste into pwsh (everything it writes stays in " + stateDir + "):");
            sb.AppendLine();
            sb.AppendLine($"$env:LAB_PD_TOKEN = {Q(lab.PagerDuty.Token)}; $env:LAB_LOGS_KEY = {Q(lab.CentralLogs.ApiKey)}");
            sb.AppendLine($"Import-Module {Q(module)}");
            sb.AppendLine(ContextLine(lab, knownHosts, stateDir));
            sb.AppendLine();
            sb.AppendLine("Instances: " + string.Join(", ", lab.Instances.Select(i => i.Address)));
            var a = lab.Instances[0].Address;
            string Post(string what) => $"Invoke-RestMethod -Method Post {Q(control + what)}";
            sb.AppendLine("Break one, then page it (any address above):");
            sb.AppendLine($"  {Post($"mode?address={a}&mode=Down")}                      # Up|Down|Hung|Error500");
            sb.AppendLine($"  {Post($"scenario?address={a}&name=CleanCrash")}            # CipherDependency|IamDependency|OutOfMemory|PortInUse|CleanCrash");
            sb.AppendLine($"  {Post($"alert?address={a}")}                               # pages PagerDuty: answers the incident id");
            sb.AppendLine("Then work it as on call:");
            sb.AppendLine("  Get-PagerDutyIncident | Test-KeyServiceHealth");
            sb.AppendLine("  Get-PagerDutyIncident | Invoke-KeyServiceRunbook -WhatIf");
            sb.AppendLine("  Get-PagerDutyIncident | Invoke-KeyServiceRunbook");
            sb.AppendLine("Ctrl+C (or SIGTERM) stops the lab.");
            return sb.ToString();
        }

        public static string ContextLine(Lab lab, string knownHosts, string stateDir)
        {
            string Q(string s) => "'" + s.Replace("'", "''") + "'";
            return $"Set-KeyServiceOpsContext -KongAdminUri {Q(lab.KongUri.ToString())} -Upstream {Q(lab.Upstream)} " +
                   $"-PagerDutyUri {Q(lab.PagerDuty.BaseUri.ToString())} -PagerDutyTokenVariable LAB_PD_TOKEN -PagerDutyFrom oncall@example.com " +
                   $"-SshUser {Q(lab.Ssh.User)} -SshPort {lab.Ssh.Port} -SshKeyPath {Q(lab.Ssh.KeyPath)} -KnownHostsPath {Q(knownHosts)} " +
                   $"-CentralLogUri {Q(lab.CentralLogs.BaseUri.ToString())} -CentralLogApiKeyVariable LAB_LOGS_KEY " +
                   $"-AuditLogPath {Q(Path.Combine(stateDir, "audit.jsonl"))} -LockDirectory {Q(Path.Combine(stateDir, "locks"))} " +
                   "-RestartPollSec 0.5 -RestartWaitSec 30 -FaultOwner @{ CipherDependency = 'cipher-owner@example.com' }";
        }
    }

    internal static class HostedShellPaths
    {
        public static string RepoRoot()
        {
            var d = new DirectoryInfo(AppContext.BaseDirectory);
            while (d != null && !File.Exists(Path.Combine(d.FullName, "KeyServiceOps.sln"))) d = d.Parent;
            return d?.FullName ?? Directory.GetCurrentDirectory();
        }
    }
}
