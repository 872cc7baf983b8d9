using System;
using System.IO;
using Newtonsoft.Json.Linq;
using Xunit;

namespace KeyServiceOps.Core.Tests
{
    public class ContextSettingsTests
    {
        private static string Write(string json)
        {
            var p = Path.Combine(Path.GetTempPath(), $"kso-cfg-{Guid.NewGuid():N}.json");
            File.WriteAllText(p, json);
            return p;
        }

        [Fact]
        public void Every_setting_written_to_the_session_file_reads_back_the_same()
        {
            Environment.SetEnvironmentVariable("KSO_CFG_TEST_TOKEN", "tok-abc");
            var c = new OpsContext
            { Kong = { AdminUri = new Uri("https://kong.internal:8444/"), Upstream = "u1", Workspace = "ws", SkipCertificateCheck = true, CaCertificatePath = "/ca.pem", Token = Secret.FromEnvironment("KSO_CFG_TEST_TOKEN") }, Health = { Port = 9999, Path = "/h", ExpectedText = "ok", Timeout = TimeSpan.FromSeconds(2.5), ThrottleLimit = 7 }, Removal = { MaxRemoveShare = 0.25 }, Ssh = { User = "ops", Port = 2222, ConnectTimeout = TimeSpan.FromSeconds(4), CommandTimeout = TimeSpan.FromSeconds(30) }, Healing = { RestartPollInterval = TimeSpan.FromSeconds(0.5) }, PagerDuty = { SkipCertificateCheck = true }, CentralLogs = { PageSize = 77 } };
            c.Healing.FaultOwners["CipherDependency"] = "cipher@example.com";
            c.Inventory.Add(new InventoryEntry { Address = "10.0.0.5", Port = 8888, Environment = "prod" });
            var json = ContextSettings.ToJson(c);
            Assert.DoesNotContain("tok-abc", json.ToString());
            Assert.Equal("KSO_CFG_TEST_TOKEN", (string)json["kongTokenVariable"]);
            // The settings the old config reader missed (health path and port, throttle, share, TLS, timeouts) are all keys now.
            foreach (var k in new[] { "healthPath", "healthPort", "throttleLimit", "maxRemoveShare", "skipCertificateCheck", "caCertificatePath", "healthTimeoutSeconds", "sshCommandTimeoutSeconds", "restartPollSeconds" })
                Assert.Contains(k, ContextSettings.Keys);
            var back = new OpsContext();
            back.LoadConfigFile(Write(json.ToString()));
            Assert.Equal(json.ToString(), ContextSettings.ToJson(back).ToString());
            Assert.NotNull(back.Kong.Token);
        }

        [Theory]
        [InlineData("{\"kongAdminUri\": \"not a uri\"}", "kongAdminUri")]
        [InlineData("{\"kongAdminUri\": \"ftp://kong/\"}", "kongAdminUri")]
        [InlineData("{\"sshPort\": \"22\"}", "sshPort")]
        [InlineData("{\"sshPort\": 70000}", "sshPort")]
        [InlineData("{\"useSudo\": \"maybe\"}", "useSudo")]
        [InlineData("{\"restartWaitSeconds\": 1e300}", "restartWaitSeconds")]
        [InlineData("{\"faultOwners\": {\"CipherDependency\": {\"a\": 1}}}", "faultOwners")]
        [InlineData("{\"inventory\": [{\"address\": \"10.0.0.5\", \"port\": \"x\"}]}", "inventory")]
        [InlineData("{\"inventory\": [{\"address\": \"not an ip!\"}]}", "inventory")]
        [InlineData("{\"sshUser\": \"\"}", "sshUser")]
        [InlineData("{\"containerName\": \"api; rm -rf /\"}", "containerName")]
        [InlineData("{\"maxRemoveShare\": 5}", "maxRemoveShare")]
        [InlineData("{\"centralLogFields\": {\"Timestamp\": \"\"}}", "centralLogFields")]
        [InlineData("{\"centralLogFields\": {\"Host\": [\"host\", 5]}}", "centralLogFields")]
        [InlineData("{\"centralLogFields\": {\"Hostname\": \"host\"}}", "centralLogFields")]
        public void A_value_of_the_wrong_type_or_range_is_ConfigFileInvalid_naming_the_key_and_changes_nothing(string json, string key)
        {
            var c = new OpsContext { Kong = { Upstream = "before" } };
            var o = JObject.Parse(json);
            o["upstream"] = "after"; // a good value beside the bad one is not applied either
            var path = Write(o.ToString());
            var e = Assert.Throws<OpsException>(() => c.LoadConfigFile(path));
            Assert.Equal("ConfigFileInvalid", e.ErrorId);
            Assert.Equal(OpsErrorCategory.InvalidData, e.Category);
            Assert.Contains($"'{key}'", e.Message);
            Assert.Contains(path, e.Message);
            Assert.False(string.IsNullOrEmpty(e.RecommendedAction));
            Assert.Equal("before", c.Kong.Upstream);
        }

        [Fact]
        public void The_default_throttle_sizes_direct_probes_to_the_fleet_and_bounds_probes_over_SSH()
        {
            var c = new OpsContext();
            Assert.Equal(0, c.Health.ThrottleLimit);                                   // automatic
            Assert.Equal(1024, c.Health.HttpThrottle);                                 // was 64: 100 hung of 1,000 took two timeouts
            Assert.Equal(64, c.Health.SshThrottle);
            c.Health.ThrottleLimit = 8;
            Assert.Equal((8, 8), (c.Health.HttpThrottle, c.Health.SshThrottle));              // a number bounds both
            // Saved and read back as automatic (0 is a valid value in the file).
            var back = new OpsContext { Health = { ThrottleLimit = 5 } };
            back.LoadConfigFile(Write(ContextSettings.ToJson(new OpsContext { Kong = { AdminUri = new Uri("http://kong:8001/"), Upstream = "u1" } }).ToString()));
            Assert.Equal(0, back.Health.ThrottleLimit);
        }

        [Theory]
        [InlineData("ftp://kong/", "InvalidUri")]
        [InlineData("https://ops:Pa55word@kong:8444/", "UriWithCredentials")]
        [InlineData("not a uri", "InvalidUri")]
        public void One_address_rule_for_parameters_the_config_file_and_the_environment(string value, string errorId)
        {
            var e = Assert.Throws<OpsException>(() => HttpAddress.Require(value, "KEYSERVICEOPS_KONG_URI"));
            Assert.Equal(errorId, e.ErrorId);
            Assert.DoesNotContain("Pa55word", e.Message + e.TargetObject + e.RecommendedAction);
            // The config file refuses it too, naming the key; the environment's value is warned about and not used.
            var f = Assert.Throws<OpsException>(() => new OpsContext().LoadConfigFile(Write(new JObject { ["kongAdminUri"] = value }.ToString())));
            Assert.Equal("ConfigFileInvalid", f.ErrorId);
            Environment.SetEnvironmentVariable("KEYSERVICEOPS_KONG_URI", value);
            try
            {
                var warnings = new System.Collections.Generic.List<string>();
                var c = OpsContext.FromEnvironmentAndSession(warnings.Add);
                Assert.Null(c.Kong.AdminUri);
                Assert.Contains(warnings, w => w.Contains("KEYSERVICEOPS_KONG_URI") && !w.Contains("Pa55word"));
            }
            finally { Environment.SetEnvironmentVariable("KEYSERVICEOPS_KONG_URI", null); }
        }

        [Fact]
        public void Central_log_fields_take_a_name_or_a_list_and_survive_a_round_trip()
        {
            var c = new OpsContext();
            c.LoadConfigFile(Write("{\"centralLogFields\": {\"Timestamp\": \"event.created\", \"Host\": [\"host.name\", \"hostname\"]}, \"centralLogTieBreaker\": \"event.id\"}"));
            Assert.Equal(new[] { "event.created" }, c.CentralLogs.Fields.Timestamp);
            Assert.Equal(new[] { "host.name", "hostname" }, c.CentralLogs.Fields.Host);
            Assert.Equal(new[] { "level", "log.level" }, c.CentralLogs.Fields.Level); // not named: the default stays
            Assert.Equal("event.id", c.CentralLogs.TieBreaker);
            var back = new OpsContext();
            back.LoadConfigFile(Write(ContextSettings.ToJson(c).ToString()));
            Assert.Equal(c.CentralLogs.Fields.Host, back.CentralLogs.Fields.Host);
            Assert.Equal(c.CentralLogs.Fields.Timestamp, back.CentralLogs.Fields.Timestamp);
            Assert.Equal("event.id", back.CentralLogs.TieBreaker);
        }

        [Theory]
        [InlineData("")]
        [InlineData("{ not json")]
        [InlineData("[1, 2]")]
        public void A_file_that_is_not_a_settings_object_is_ConfigFileInvalid_with_advice(string text)
        {
            var e = Assert.Throws<OpsException>(() => new OpsContext().LoadConfigFile(Write(text)));
            Assert.Equal("ConfigFileInvalid", e.ErrorId);
            Assert.Contains("the JSON in the file", e.RecommendedAction);
        }

        [Fact]
        public void A_config_path_that_is_a_folder_says_so()
        {
            var dir = Directory.CreateTempSubdirectory().FullName;
            var e = Assert.Throws<OpsException>(() => new OpsContext().LoadConfigFile(dir));
            Assert.Equal("ConfigFileInvalid", e.ErrorId);
            Assert.Contains("folder", e.Message);
        }
    }
}
