using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using Newtonsoft.Json.Linq;
using Xunit;
using KeyServiceOps.TestHost;

namespace KeyServiceOps.Core.Tests
{
    /// <summary>
    /// Every setting of the config file (ContextSettings.Settings), walked through all three places it lives: the config
    /// file, its Set-KeyServiceOpsContext parameter, and its property on Get-KeyServiceOpsContext. A setting added to one
    /// and not the others fails here.
    /// </summary>
    public class SettingsWalkTests
    {
        private static readonly string Dir = Path.Combine(Path.GetTempPath(), "kso-walk-" + Guid.NewGuid().ToString("N").Substring(0, 8));

        /// <summary>A value for the setting that is not its default: (JSON for the file, PowerShell for the parameter, text the view shows).</summary>
        private static (JToken json, string ps, string shown) Sample(ContextSettings.Setting s)
        {
            var e = s.Expected;
            if (e.StartsWith("an http")) return ("http://127.0.0.1:9/", "'http://127.0.0.1:9/'", "http://127.0.0.1:9/");
            if (e == "true or false") return (true, "$true", "True");
            if (e.StartsWith("a share")) return (0.3, "0.3", "0.3");
            if (e.StartsWith("one of ")) return ("Drain", "Drain", "Drain");
            if (e == "a list of strings") return (new JArray("a", "b"), "a,b", "a, b");
            if (e.StartsWith("the name of an environment variable"))
            {
                var name = "KSO_WALK_" + s.Key.ToUpperInvariant();
                Environment.SetEnvironmentVariable(name, "walk-secret-" + s.Key);
                return (name, name, name);
            }
            var m = Regex.Match(e, @"from ([0-9.]+) to ([0-9.]+)");
            if (m.Success)
            {
                var lo = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture); var hi = double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
                var v = e.StartsWith("a whole number") ? Math.Min(hi, Math.Floor(lo) + 2) : (lo <= 7 && 7 <= hi ? 7 : lo);
                var t = v.ToString(CultureInfo.InvariantCulture);
                return (e.StartsWith("a whole number") ? (JToken)(long)v : v, t, t);
            }
            // Strings.
            string str = s.Key switch
            {
                "containerName" => "api_key_service2",
                "jumpHost" => "ops@bastion.internal:2222",
                "workspace" => "team-a",
                "pagerDutyFrom" => "walk@example.com",
                "healthPath" => "/walk/healthz",
                _ when s.Key.EndsWith("Path") || s.Key == "lockDirectory" => Path.Combine(Dir, s.Key),
                _ => "walk-" + s.Key,
            };
            return (str, "'" + str + "'", str);
        }

        private static string Shown(object v) => v switch
        {
            null => null,
            double d => d.ToString(CultureInfo.InvariantCulture),
            System.Collections.IEnumerable list when !(v is string) => string.Join(", ", list.Cast<object>()),
            _ => v.ToString(),
        };

        [Fact]
        public void Every_setting_is_a_config_key_a_Set_parameter_and_a_view_property_that_agree()
        {
            Directory.CreateDirectory(Dir);
            File.WriteAllText(Path.Combine(Dir, "faultRulesPath"), "{\"rules\": []}");
            using var sh = new HostedShell();
            var surfaces = ContextSettings.Settings;
            Assert.True(surfaces.Count >= 50, $"{surfaces.Count} settings");
            var parameters = sh.Run("(Get-Command Set-KeyServiceOpsContext).Parameters.Keys").Output.Select(o => o.ToString()).ToHashSet();
            var viewProps = sh.Run("Get-KeyServiceOpsContext | ForEach-Object { $_.PSObject.Properties.Name }").Output.Select(o => o.ToString()).ToHashSet();
            var problems = new List<string>();
            foreach (var s in surfaces)
            {
                if (!parameters.Contains(s.Name)) problems.Add($"{s.Key}: no parameter -{s.Name}");
                if (!viewProps.Contains(s.View)) problems.Add($"{s.Key}: no view property {s.View}");
            }
            Assert.True(problems.Count == 0, string.Join("\n", problems));

            // Through the config file: every key at once.
            var file = new JObject();
            foreach (var s in surfaces) file[s.Key] = Sample(s).json;
            var config = Path.Combine(Dir, "all.json");
            File.WriteAllText(config, file.ToString());
            var r = sh.Run($"Set-KeyServiceOpsContext -Reset -ConfigPath '{config}' -PassThru");
            Assert.True(r.Errors.Count == 0, string.Join(", ", r.Errors.Select(x => x.FullyQualifiedErrorId)) + " " + string.Join("; ", r.Errors.Select(x => x.ToString())));
            var view = Assert.Single(r.Output);
            foreach (var s in surfaces)
                if (!string.Equals(Shown(view.Properties[s.View].Value), Sample(s).shown, StringComparison.OrdinalIgnoreCase))
                    problems.Add($"{s.Key} from the file: the view shows '{Shown(view.Properties[s.View].Value)}', expected '{Sample(s).shown}'");

            // Through each parameter, one at a time, from a fresh context.
            foreach (var s in surfaces)
            {
                var p = sh.Run($"Set-KeyServiceOpsContext -Reset; Set-KeyServiceOpsContext -{s.Name}:{Sample(s).ps} -PassThru");
                if (p.Errors.Count > 0) { problems.Add($"{s.Key} via -{s.Name}: {string.Join("; ", p.Errors.Select(x => x.ToString()))}"); continue; }
                var v = p.Output.Last();
                if (!string.Equals(Shown(v.Properties[s.View].Value), Sample(s).shown, StringComparison.OrdinalIgnoreCase))
                    problems.Add($"{s.Key} via -{s.Name}: the view shows '{Shown(v.Properties[s.View].Value)}', expected '{Sample(s).shown}'");
            }
            sh.Run("Set-KeyServiceOpsContext -Reset");
            Assert.True(problems.Count == 0, string.Join("\n", problems));
        }
    }
}
