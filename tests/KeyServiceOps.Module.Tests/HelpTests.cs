using System.IO;
using System.Linq;
using System.Management.Automation.Language;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using Xunit;
using KeyServiceOps.TestHost;

namespace KeyServiceOps.Module.Tests
{
    public class HelpTests
    {
        [Fact]
        public void Every_exported_cmdlet_has_full_help_with_every_parameter_and_two_parsing_examples()
        {
            using var sh = new HostedShell();
            var r = sh.Run(@"
$common = [System.Management.Automation.Cmdlet]::CommonParameters + [System.Management.Automation.Cmdlet]::OptionalCommonParameters
foreach ($c in (Get-Command -Module KeyServiceOps)) {
    $h = Get-Help $c.Name -Full
    $declared = $c.Parameters.Keys | Where-Object { $_ -notin $common }
    $documented = @($h.parameters.parameter | Where-Object { ($_.description | ForEach-Object Text) -join '' } | ForEach-Object name)
    [pscustomobject]@{
        Name = $c.Name
        Synopsis = $h.Synopsis
        Description = ($h.description | ForEach-Object Text) -join ' '
        Missing = @($declared | Where-Object { $_ -notin $documented }) -join ','
        Examples = @($h.examples.example).Count
        Codes = @($h.examples.example | ForEach-Object code)
        Links = @($h.relatedLinks.navigationLink).Count
    }
}");
            Assert.Empty(r.Errors);
            var exported = sh.Run("(Get-Command -Module KeyServiceOps).Count").Output.Single().BaseObject;
            Assert.Equal(exported, r.Output.Count);
            Assert.True(r.Output.Count >= 18);
            var sample = r.Output.First(o => o.S("Name") == "Restart-KeyService");
            Assert.Contains("dependency fault", sample.S("Description"));
            Assert.Equal(3, (int)sample.P("Examples"));
            foreach (var h in r.Output)
            {
                var name = h.S("Name");
                Assert.False(string.IsNullOrWhiteSpace(h.S("Synopsis")) || h.S("Synopsis") == name, $"{name}: no synopsis");
                Assert.True(h.S("Description").Length > 40, $"{name}: no description");
                Assert.True(string.IsNullOrEmpty(h.S("Missing")), $"{name}: undocumented parameters {h.S("Missing")}");
                Assert.True((int)h.P("Examples") >= 2, $"{name}: {h.P("Examples")} examples");
                Assert.True((int)h.P("Links") >= 1, $"{name}: no related links");
                var codes = ((object[])h.P("Codes")).Select(c => c.ToString()).ToList();
                foreach (var code in codes)
                {
                    Parser.ParseInput(code, out _, out var errors);
                    Assert.True(errors.Length == 0, $"{name}: example does not parse: {code}\n{string.Join("\n", errors.Select(e => e.Message))}");
                }
                // At least one example is a pipeline that involves another of our cmdlets.
                Assert.True(codes.Any(c => c.Contains('|') && System.Text.RegularExpressions.Regex.Matches(c, @"\b(Get|Set|Add|Remove|Test|Invoke|Start|Restart|ConvertFrom|Export)-(KeyService|RingBalancer|PagerDuty)\w*").Count >= 2)
                            || name == "Get-KeyServiceOpsContext" && codes.Any(c => c.Contains("Invoke-KeyServiceSelfHealing")), $"{name}: no example pipes into or from another of our cmdlets");
            }
        }

        [Fact]
        public void The_about_topic_maps_the_runbook_and_troubleshooting()
        {
            using var sh = new HostedShell();
            var about = Path.Combine(Path.GetDirectoryName(HostedShell.ModuleManifest)!, "en-US", "about_KeyServiceOps.help.txt");
            Assert.True(File.Exists(about));
            var text = File.ReadAllText(about);
            foreach (var section in new[] { "THE RUNBOOK, STEP BY STEP", "CONFIGURATION", "SELF-HEALING", "SAFETY GUARDS", "AUDIT LOG", "TROUBLESHOOTING", "SshHostKeyChanged", "SudoPasswordRequired", "KongUnauthorized", "TLS" })
                Assert.Contains(section, text);
            // Every command line in it uses a cmdlet the module exports.
            var exported = sh.Run("Get-Command -Module KeyServiceOps | ForEach-Object Name").Output.Select(o => o.ToString()).ToHashSet();
            foreach (System.Text.RegularExpressions.Match m in System.Text.RegularExpressions.Regex.Matches(text, @"\b(?:Get|Set|Add|Remove|Test|Invoke|Start|Restart)-(?:KeyService|RingBalancer|PagerDuty)\w*"))
                Assert.Contains(m.Value, exported);
        }
    }
}
