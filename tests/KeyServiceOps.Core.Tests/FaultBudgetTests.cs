using System;
using System.Collections.Generic;
using System.IO;
using KeyServiceOps.Core.Diagnosis;
using Xunit;

namespace KeyServiceOps.Core.Tests
{
    public class FaultBudgetTests
    {
        private static FaultRuleSet WithCatastrophicRule()
        {
            var path = Path.Combine(Path.GetTempPath(), $"kso-rules-{Guid.NewGuid():N}.json");
            File.WriteAllText(path, "{\"rules\": [ { \"name\": \"greedy\", \"category\": \"Configuration\", \"pattern\": \"(a+)+$\", \"action\": \"Restart\" } ]}");
            return FaultRuleSet.Load(path); // the operator's rules first, then the module's
        }

        [Fact]
        public void A_catastrophic_rule_is_skipped_after_its_first_timeout_named_once_and_the_other_rules_still_work()
        {
            var warnings = new List<string>();
            var a = new FaultAnalyzer(WithCatastrophicRule(), null, warnings.Add);
            var evil = new string('a', 40) + "!";
            for (int i = 0; i < 500; i++) a.Add(LogEntry.Parse($"2026-12-03T10:00:{i % 60:00}.000Z level=error msg=\"{evil}\"", LogStream.Stderr));
            a.Add(LogEntry.Parse("2026-12-03T10:01:00.000Z level=error msg=\"failed to get config from cipher service\" error=\"cipher: connection refused\"", LogStream.Stderr));
            var faults = a.Results();
            Assert.Equal(new[] { "greedy" }, a.SkippedRules);
            Assert.Single(warnings, w => w.Contains("'greedy'") && w.Contains("skipped"));
            Assert.Contains(faults, f => f.Category == "CipherDependency");
            Assert.Equal(501, a.LinesRead);
        }

        [Fact]
        public void The_same_rule_on_a_container_state_error_is_a_warning_not_a_raw_exception()
        {
            var warnings = new List<string>();
            var a = new FaultAnalyzer(WithCatastrophicRule(), null, warnings.Add);
            a.Add(new ContainerState { Address = "10.0.0.5", Container = "api_key_service", Status = "exited", ExitCode = 1, Error = new string('a', 40) + "!" });
            Assert.Single(warnings);
            Assert.Contains("greedy", a.SkippedRules);
        }

        [Theory]
        [InlineData("{\"rules\": [null]}")]
        [InlineData("{\"rules\": [42]}")]
        [InlineData("{\"rules\": [{\"name\": \"x\", \"category\": \"C\", \"pattern\": \"(unclosed\"}]}")]
        public void A_malformed_rules_file_is_FaultRulesInvalid(string json)
        {
            var e = Assert.Throws<OpsException>(() => FaultRuleSet.Parse(json, "rules.json"));
            Assert.Equal("FaultRulesInvalid", e.ErrorId);
            Assert.False(string.IsNullOrEmpty(e.RecommendedAction));
        }
    }
}
