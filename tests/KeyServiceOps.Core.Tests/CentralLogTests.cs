using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using KeyServiceOps.Core.CentralLogs;
using KeyServiceOps.Core.Diagnosis;
using KeyServiceOps.Core.Remote;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using Xunit;

namespace KeyServiceOps.Core.Tests
{
    public class CentralLogTests
    {
        private static readonly CancellationToken None = CancellationToken.None;

        private static OpsContext Ctx(Lab.Estate.Lab lab, string apiKey = null)
        {
            var c = TestCtx.For(lab);
            c.CentralLogs.Uri = lab.CentralLogs.BaseUri;
            c.CentralLogs.ApiKey = Secret.FromPlainText(apiKey ?? lab.CentralLogs.ApiKey);
            c.CentralLogs.MaxRetries = 3;
            return c;
        }

        private static CentralLogClient Client(OpsContext c, ListLog log = null) => new CentralLogClient(c.ForCentralLogs(), log, TimeSpan.FromMilliseconds(10));

        private static async Task<List<LogEntry>> Search(CentralLogClient c, CentralLogSearch s)
        {
            var list = new List<LogEntry>();
            await c.SearchAsync(s, list.Add, None);
            return list;
        }

        [Fact]
        public async Task Pages_with_search_after_past_the_result_window_in_order()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 2, CentralLogs = true });
            lab.CentralLogs.MaxResultWindow = 1000; // a small window: reaching 2,400 hits needs search_after, not from/size
            lab.CentralLogs.AddGenerated(lab[0].Address, 2400);
            lab.CentralLogs.AddGenerated(lab[1].Address, 50);
            var ctx = Ctx(lab); ctx.CentralLogs.PageSize = 500;
            var client = Client(ctx);
            var all = await Search(client, new CentralLogSearch { Host = lab[0].Address });
            Assert.Equal(2400, all.Count);
            Assert.Equal(Enumerable.Range(0, 2400).Select(i => $"seq={i}"), all.Select(e => e.Message.Split(' ').Last()));
            Assert.All(all, e => { Assert.Equal(lab[0].Address, e.Address); Assert.Equal("Central", e.Source); Assert.Null(e.Stream); Assert.Equal(LogLevel.Info, e.LevelValue); });
            var reqs = lab.CentralLogs.Requests;
            Assert.Equal(5, reqs.Count);
            Assert.Null(reqs[0]["search_after"]);
            Assert.All(reqs.Skip(1), r => Assert.NotNull(r["search_after"]));
            Assert.All(reqs, r => Assert.Null(r["from"]));

            var newest = await Search(client, new CentralLogSearch { Host = lab[0].Address, NewestFirst = true, Tail = 3 });
            Assert.Equal(new[] { "seq=2399", "seq=2398", "seq=2397" }, newest.Select(e => e.Message.Split(' ').Last()));
            var tail = await Search(client, new CentralLogSearch { Host = lab[0].Address, Tail = 3 });
            Assert.Equal(new[] { "seq=2397", "seq=2398", "seq=2399" }, tail.Select(e => e.Message.Split(' ').Last()));
        }

        [Fact]
        public async Task A_time_range_narrows_the_search()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 1, CentralLogs = true });
            var t0 = DateTimeOffset.UtcNow.AddHours(-3);
            for (int i = 0; i < 6; i++) lab[0].AppendLog($"level=info msg=\"tick {i}\"", false, t0.AddMinutes(30 * i));
            var hits = await Search(Client(Ctx(lab)), new CentralLogSearch { Host = lab[0].Address, Since = t0.AddMinutes(45), Until = t0.AddMinutes(125) });
            Assert.Equal(new[] { "tick 2", "tick 3", "tick 4" }, hits.Select(e => e.Message.Split('"')[1]));
            var range = lab.CentralLogs.Requests.Last()["query"]["bool"]["filter"][1]["range"]["@timestamp"];
            Assert.StartsWith(t0.AddMinutes(45).UtcDateTime.ToString("yyyy-MM-ddTHH:mm"), range["gte"].ToString());
        }

        [Fact]
        public async Task Text_with_lucene_characters_is_escaped_and_matched_exactly()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 1, CentralLogs = true });
            const string tricky = "cipher: \"cfg\" (503) *all*";
            lab[0].AppendLog($"level=error msg=\"fetch failed: {tricky} retry\"", true);
            lab[0].AppendLog("level=error msg=\"fetch failed: cipher 503 all retry\"", true);
            var client = Client(Ctx(lab));
            var s = new CentralLogSearch { Host = lab[0].Address, Match = tricky };
            Assert.Equal($"(instance_id:KeyServiceApi) AND (host:\"{lab[0].Address}\" OR host.name:\"{lab[0].Address}\") AND message:\"cipher\\: \\\"cfg\\\" \\(503\\) \\*all\\*\"", client.QueryText(s));
            var hit = Assert.Single(await Search(client, s));
            Assert.Contains(tricky, hit.Message);
            Assert.Equal(LogLevel.Error, hit.LevelValue);
            // The emulator's parser reads back exactly the text we meant.
            var terms = CentralLogEmulator.ParseQuery(lab.CentralLogs.Requests.Last()["query"]["bool"]["filter"][0]["query_string"]["query"].ToString());
            Assert.Equal(("message", tricky), terms.Last());
            Assert.Equal(@"a\""b\:c\(d\)e\*\\f\/g", Lucene.Escape("a\"b:c(d)e*\\f/g"));
        }

        public static IEnumerable<object[]> ErrorsByFlavour()
        {
            foreach (var (flavour, version) in new[] { (CentralLogFlavor.Elasticsearch, "8.11.3"), (CentralLogFlavor.OpenSearch, "2.11.1") })
                foreach (var (kind, id) in new[] { ("badquery", "CentralLogBadQuery"), ("window", "CentralLogWindowTooLarge"), ("nokey", "CentralLogUnauthorized"),
                                                   ("forbidden", "CentralLogForbidden"), ("noindex", "CentralLogIndexNotFound"), ("429forever", "CentralLogRateLimited") })
                    yield return new object[] { flavour, version, kind, id };
        }

        [Theory]
        [MemberData(nameof(ErrorsByFlavour))]
        public async Task Each_error_of_the_contract_is_its_own_typed_error(CentralLogFlavor flavour, string version, string kind, string errorId)
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 1, CentralLogs = true });
            lab.CentralLogs.Flavor = flavour; lab.CentralLogs.Version = version;
            var ctx = Ctx(lab);
            var s = new CentralLogSearch { Host = lab[0].Address };
            switch (kind)
            {
                case "badquery": s.Query = "instance_id:(KeyServiceApi"; break;
                case "window": lab.CentralLogs.MaxResultWindow = 100; break;
                case "nokey": ctx.CentralLogs.ApiKey = null; break;
                case "forbidden": ctx.CentralLogs.ApiKey = Secret.FromPlainText(lab.CentralLogs.ForbiddenApiKey); break;
                case "noindex": ctx.CentralLogs.Index = "logs-x"; break;
                case "429forever": lab.CentralLogs.RateLimitNext = 100; break;
            }
            var log = new ListLog();
            var e = await Assert.ThrowsAsync<OpsException>(() => Client(ctx, log).SearchAsync(s, _ => { }, None));
            Assert.Equal(errorId, e.ErrorId);
            Assert.False(string.IsNullOrEmpty(e.RecommendedAction));
            if (!(kind == "nokey" && flavour == CentralLogFlavor.OpenSearch)) Assert.False(string.IsNullOrEmpty(e.Details)); // OpenSearch's 401 has no body
            Assert.DoesNotContain(lab.CentralLogs.ApiKey, log.All);
            if (kind == "429forever") Assert.Equal(1 + ctx.CentralLogs.MaxRetries, 100 - lab.CentralLogs.RateLimitNext); // retried, then given up
        }

        [Fact]
        public async Task A_429_is_retried_and_the_search_succeeds()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 1, CentralLogs = true });
            lab[0].AppendLog("level=info msg=\"hello\"");
            lab.CentralLogs.RateLimitNext = 2;
            var client = Client(Ctx(lab));
            var hits = await Search(client, new CentralLogSearch { Host = lab[0].Address });
            Assert.Single(hits);
            Assert.Equal(3, lab.CentralLogs.Calls.Count(c => c.StartsWith("POST /_search") || c.StartsWith("POST /logstash-*/_search")));
        }

        [Fact]
        public async Task The_same_fault_is_found_from_docker_logs_and_from_the_central_service()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 2, CentralLogs = true, Ssh = true });
            await lab[0].ApplyScenarioAsync(FaultScenario.IamDependency);
            await lab[1].ApplyScenarioAsync(FaultScenario.OutOfMemory);
            var ctx = TestCtx.ForSsh(lab, TestCtx.KnownHostsFor(lab));
            ctx.CentralLogs.Uri = lab.CentralLogs.BaseUri; ctx.CentralLogs.ApiKey = Secret.FromPlainText(lab.CentralLogs.ApiKey);
            using var pool = new SshSessionPool();
            var docker = new DockerClient(new RemoteShell(pool, null), null);
            foreach (var inst in lab.Instances)
            {
                var viaDocker = new FaultAnalyzer();
                await docker.LogsAsync(SshTarget.For(ctx, inst.Address), new LogQuery { Tail = 200 }, viaDocker.Add, None);
                var viaCentral = new FaultAnalyzer();
                await Client(ctx).SearchAsync(new CentralLogSearch { Host = inst.Address, Since = DateTimeOffset.UtcNow.AddHours(-1) }, viaCentral.Add, None);
                var d = Assert.Single(viaDocker.Results()); var c = Assert.Single(viaCentral.Results());
                Assert.Equal(d.Category, c.Category);
                Assert.Equal(d.Dependency, c.Dependency);
                Assert.Equal(d.Count, c.Count);
                Assert.Equal(inst.Address, c.Address);
            }
        }
    }
}
