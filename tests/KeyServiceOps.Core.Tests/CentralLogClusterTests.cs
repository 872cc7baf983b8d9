using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using KeyServiceOps.Core.CentralLogs;
using KeyServiceOps.Core.Diagnosis;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using Newtonsoft.Json.Linq;
using Xunit;

namespace KeyServiceOps.Core.Tests
{
    /// <summary>
    /// Issue #28: the central-log client against the emulator answering as Elasticsearch 7/8 and OpenSearch 1/2 do
    /// (shared/contracts/central-log-search.md): exact paging with equal timestamps past the 10,000 window, ECS and
    /// flat documents in one index pattern, epoch and nanosecond timestamps, errors judged by the status.
    /// </summary>
    public class CentralLogClusterTests
    {
        private static readonly CancellationToken None = CancellationToken.None;

        private static async Task<Lab.Estate.Lab> LabAs(CentralLogFlavor flavour, string version, int instances = 2)
        {
            var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = instances, CentralLogs = true });
            lab.CentralLogs.Flavor = flavour;
            lab.CentralLogs.Version = version;
            return lab;
        }

        private static OpsContext Ctx(Lab.Estate.Lab lab)
        {
            var c = TestCtx.For(lab);
            c.CentralLogs.Uri = lab.CentralLogs.BaseUri;
            c.CentralLogs.ApiKey = Secret.FromPlainText(lab.CentralLogs.ApiKey);
            c.CentralLogs.MaxRetries = 2;
            return c;
        }

        private static CentralLogClient Client(OpsContext c, ListLog log = null) => new CentralLogClient(c.ForCentralLogs(), log, TimeSpan.FromMilliseconds(5));

        private static async Task<List<LogEntry>> Search(CentralLogClient c, CentralLogSearch s)
        {
            var list = new List<LogEntry>();
            await c.SearchAsync(s, list.Add, None);
            return list;
        }

        private static int Seq(LogEntry e) => int.Parse(e.Message.Split(' ').Last().Substring(4));

        [Theory]
        [InlineData(CentralLogFlavor.Elasticsearch, "8.11.3", "es-pit")]
        [InlineData(CentralLogFlavor.Elasticsearch, "7.17.15", "es-pit")]
        [InlineData(CentralLogFlavor.Elasticsearch, "7.11.2", "es-pit-id")] // a point in time, but no _shard_doc before 7.12
        [InlineData(CentralLogFlavor.Elasticsearch, "7.10.2", "es-pit-id")]
        [InlineData(CentralLogFlavor.Elasticsearch, "7.9.3", "_id")]
        [InlineData(CentralLogFlavor.OpenSearch, "2.11.1", "os-pit")]
        [InlineData(CentralLogFlavor.OpenSearch, "1.3.14", "_id")]
        public async Task Paging_is_exact_with_equal_timestamps_past_the_window_in_every_flavour(CentralLogFlavor flavour, string version, string how)
        {
            await using var lab = await LabAs(flavour, version);
            // 12,000 lines of one host, 40 to a millisecond (a burst shares one sort value), past the 10,000-hit window.
            lab.CentralLogs.AddGenerated(lab[0].Address, 12_000, perMillisecond: 40);
            lab.CentralLogs.AddGenerated(lab[1].Address, 300, perMillisecond: 40);
            var ctx = Ctx(lab); ctx.CentralLogs.PageSize = 1000;
            var all = await Search(Client(ctx), new CentralLogSearch { Host = lab[0].Address });
            Assert.Equal(12_000, all.Count);
            Assert.Equal(Enumerable.Range(0, 12_000), all.Select(Seq)); // every line once, in order, across 12 pages of equal timestamps
            Assert.All(all, e => Assert.Equal(lab[0].Address, e.Address));

            var reqs = lab.CentralLogs.Requests;
            Assert.All(reqs, r => Assert.Null(r["from"]));
            var sorts = reqs.Select(r => r["sort"].ToJsonString()).Distinct().ToList();
            switch (how)
            {
                case "es-pit":
                    Assert.All(reqs, r => Assert.NotNull(r["pit"]));
                    Assert.DoesNotContain(sorts, x => x.Contains("_id")); // refused by Elasticsearch 8: _shard_doc breaks ties
                    Assert.All(sorts, x => Assert.Contains("_shard_doc", x));
                    Assert.Contains(lab.CentralLogs.Calls, c => c.StartsWith("POST /logstash-*/_pit?keep_alive="));
                    Assert.Contains("DELETE /_pit", lab.CentralLogs.Calls);
                    break;
                case "es-pit-id":
                    Assert.All(reqs, r => Assert.NotNull(r["pit"]));
                    Assert.All(sorts, x => Assert.Contains("_id", x));
                    Assert.DoesNotContain(sorts, x => x.Contains("_shard_doc"));
                    break;
                case "os-pit":
                    Assert.All(reqs, r => Assert.NotNull(r["pit"]));
                    Assert.All(sorts, x => Assert.Contains("_id", x)); // OpenSearch: an explicit tie-breaker
                    Assert.Contains(lab.CentralLogs.Calls, c => c.StartsWith("POST /logstash-*/_search/point_in_time?keep_alive="));
                    Assert.Contains("DELETE /_search/point_in_time", lab.CentralLogs.Calls);
                    break;
                default:
                    Assert.All(reqs, r => Assert.Null(r["pit"]));
                    Assert.All(sorts, x => Assert.Contains("_id", x));
                    break;
            }
            Assert.Equal(0, lab.CentralLogs.OpenPits); // every point in time closed

            var tail = await Search(Client(ctx), new CentralLogSearch { Host = lab[0].Address, Tail = 1500 });
            Assert.Equal(Enumerable.Range(10_500, 1500), tail.Select(Seq));
            var newest = await Search(Client(ctx), new CentralLogSearch { Host = lab[0].Address, Tail = 3, NewestFirst = true });
            Assert.Equal(new[] { 11_999, 11_998, 11_997 }, newest.Select(Seq).ToArray());
            Assert.Equal(0, lab.CentralLogs.OpenPits);
            // The flavour is asked once per session, not per search.
            Assert.Equal(1, lab.CentralLogs.Calls.Count(c => c == "GET /"));
        }

        [Fact]
        public async Task Elasticsearch_8_without_a_point_in_time_stops_with_the_setting_that_fixes_it_then_pages_on_that_field()
        {
            await using var lab = await LabAs(CentralLogFlavor.Elasticsearch, "8.11.3");
            lab.CentralLogs.AddGenerated(lab[0].Address, 2_500, perMillisecond: 50);
            lab.CentralLogs.PitForbidden = true; // a role without the point-in-time privilege
            var ctx = Ctx(lab); ctx.CentralLogs.PageSize = 400;
            var e = await Assert.ThrowsAsync<OpsException>(() => Client(ctx).SearchAsync(new CentralLogSearch { Host = lab[0].Address }, _ => { }, None));
            Assert.Equal("CentralLogNoTieBreaker", e.ErrorId);
            Assert.Contains("-CentralLogTieBreaker", e.RecommendedAction);
            // Known before paging: one search of no hits only, to let the cluster refuse access first (then it is Forbidden).
            Assert.Equal(0, (int)Assert.Single(lab.CentralLogs.Requests)["size"]);

            // The same when the cluster will not say what it is (no monitor privilege): the _id refusal is recognised.
            lab.CentralLogs.RootForbidden = true;
            var blind = Ctx(lab); blind.CentralLogs.PageSize = 400;
            e = await Assert.ThrowsAsync<OpsException>(() => Client(blind).SearchAsync(new CentralLogSearch { Host = lab[0].Address }, _ => { }, None));
            Assert.Equal("CentralLogNoTieBreaker", e.ErrorId);
            Assert.NotEqual("CentralLogBadQuery", e.ErrorId);

            ctx.CentralLogs.TieBreaker = "log_id";
            var all = await Search(Client(ctx), new CentralLogSearch { Host = lab[0].Address });
            Assert.Equal(Enumerable.Range(0, 2_500), all.Select(Seq));
            Assert.All(lab.CentralLogs.Requests.Skip(2), r => Assert.Contains("log_id", r["sort"].ToJsonString())); // after the probe and the refused _id sort
        }

        [Theory]
        [InlineData("7.11.2")]
        [InlineData("8.11.3")]
        public async Task A_cluster_that_does_not_say_its_version_still_pages_exactly(string version)
        {
            await using var lab = await LabAs(CentralLogFlavor.Elasticsearch, version, instances: 1);
            lab.CentralLogs.RootForbidden = true; // no monitor privilege: GET / is 403
            lab.CentralLogs.AddGenerated(lab[0].Address, 1_200, perMillisecond: 40);
            var ctx = Ctx(lab); ctx.CentralLogs.PageSize = 500;
            var all = await Search(Client(ctx), new CentralLogSearch { Host = lab[0].Address });
            Assert.Equal(Enumerable.Range(0, 1_200), all.Select(Seq));
            var tail = await Search(Client(ctx), new CentralLogSearch { Host = lab[0].Address, Tail = 520 });
            Assert.Equal(Enumerable.Range(680, 520), tail.Select(Seq));
        }

        [Theory]
        [InlineData("forbidden", "CentralLogForbidden")]
        [InlineData("503", "CentralLogServerError")]
        [InlineData("429", "CentralLogRateLimited")]
        public async Task A_point_in_time_refused_for_access_or_an_outage_says_that_not_no_tie_breaker(string how, string errorId)
        {
            await using var lab = await LabAs(CentralLogFlavor.Elasticsearch, "8.11.3", instances: 1);
            lab.CentralLogs.AddGenerated(lab[0].Address, 10);
            var ctx = Ctx(lab); ctx.CentralLogs.MaxRetries = 1;
            Assert.Equal(10, (await Search(Client(ctx), new CentralLogSearch { Host = lab[0].Address })).Count); // the session knows: Elasticsearch 8
            if (how == "forbidden") ctx.CentralLogs.ApiKey = Secret.FromPlainText(lab.CentralLogs.ForbiddenApiKey);
            else lab.CentralLogs.Answer(int.Parse(how), "text/html", "<html>busy</html>", times: 100);
            var e = await Assert.ThrowsAsync<OpsException>(() => Client(ctx).SearchAsync(new CentralLogSearch { Host = lab[0].Address }, _ => { }, None));
            Assert.Equal(errorId, e.ErrorId);
            Assert.Equal(how == "forbidden", CentralLogClient.FallbackErrorIds.Contains(e.ErrorId));
        }

        [Fact]
        public async Task An_expired_point_in_time_is_its_own_error_not_a_missing_index()
        {
            await using var lab = await LabAs(CentralLogFlavor.Elasticsearch, "8.11.3", instances: 1);
            lab.CentralLogs.AddGenerated(lab[0].Address, 1_000);
            lab.CentralLogs.ExpirePitsAfterSearches = 1;
            var ctx = Ctx(lab); ctx.CentralLogs.PageSize = 300;
            var got = new List<LogEntry>();
            var e = await Assert.ThrowsAsync<OpsException>(() => Client(ctx).SearchAsync(new CentralLogSearch { Host = lab[0].Address }, got.Add, None));
            Assert.Equal("CentralLogPointInTimeExpired", e.ErrorId);
            Assert.Equal(300, got.Count);
        }

        [Fact]
        public async Task A_base_query_with_OR_stays_inside_the_host_and_an_index_pattern_matching_nothing_warns()
        {
            await using var lab = await LabAs(CentralLogFlavor.Elasticsearch, "8.11.3");
            lab[0].AppendLog("level=error msg=\"a\""); lab[1].AppendLog("level=error msg=\"b\""); lab[1].AppendLog("level=fatal msg=\"c\"");
            var ctx = Ctx(lab);
            var hits = await Search(Client(ctx), new CentralLogSearch { Host = lab[0].Address, Query = "level:ERROR OR level:FATAL" });
            Assert.Equal(lab[0].Address, Assert.Single(hits).Address);
            ctx.CentralLogs.Index = "logstsh-*";
            var log = new ListLog();
            Assert.Empty(await Search(Client(ctx, log), new CentralLogSearch { Host = lab[0].Address }));
            Assert.Contains("No index of the central log service matches 'logstsh-*'", log.All);
        }

        [Fact]
        public void Values_wrapped_in_one_element_arrays_are_read_as_Elasticsearch_reads_them()
        {
            var src = JObject.Parse("{\"message\":[\"x\"],\"host\":{\"name\":[\"10.0.0.5\"]},\"log\":[{\"level\":\"warn\"}]}");
            Assert.Equal("x", (string)CentralLogClient.Field(src, new[] { "message" }));
            Assert.Equal("10.0.0.5", (string)CentralLogClient.Field(src, new[] { "host", "host.name" }));
            Assert.Equal("warn", (string)CentralLogClient.Field(src, new[] { "level", "log.level" }));
        }

        [Theory]
        [InlineData(CentralLogFlavor.Elasticsearch, "8.11.3")]
        [InlineData(CentralLogFlavor.OpenSearch, "2.11.1")]
        public async Task Flat_and_ECS_documents_of_one_host_are_all_found_and_read(CentralLogFlavor flavour, string version)
        {
            await using var lab = await LabAs(flavour, version);
            lab.CentralLogs.AddGenerated(lab[0].Address, 550, CentralLogDocStyle.Flat, perMillisecond: 5);
            lab.CentralLogs.AddGenerated(lab[0].Address, 300, CentralLogDocStyle.Ecs, perMillisecond: 5);
            lab.CentralLogs.AddGenerated(lab[1].Address, 200, CentralLogDocStyle.Ecs, perMillisecond: 5);
            var ctx = Ctx(lab); ctx.CentralLogs.PageSize = 200;
            var all = await Search(Client(ctx), new CentralLogSearch { Host = lab[0].Address });
            Assert.Equal(850, all.Count);
            Assert.All(all, e => Assert.Equal(lab[0].Address, e.Address)); // host.name read from the nested object
            Assert.All(all, e => Assert.Equal(LogLevel.Info, e.LevelValue)); // log.level from the nested object
            Assert.All(all, e => Assert.NotNull(e.Timestamp));
            // Flat lines seq 0..549 and ECS lines seq 0..299: the first 300 twice (once from each pipeline), the rest once.
            Assert.Equal(300, all.GroupBy(Seq).Count(g => g.Count() == 2));
            Assert.Equal(550, all.Select(Seq).Distinct().Count());
            // The message filter reaches ECS documents too.
            var one = await Search(Client(ctx), new CentralLogSearch { Host = lab[1].Address, Match = "k199 200" });
            Assert.Equal("k199", Assert.Single(one).Message.Split('/').Last().Split(' ')[0]);
        }

        [Fact]
        public async Task Epoch_millisecond_and_nanosecond_timestamps_are_read()
        {
            await using var lab = await LabAs(CentralLogFlavor.Elasticsearch, "8.11.3", instances: 1);
            var before = DateTimeOffset.UtcNow.AddSeconds(-5);
            lab.CentralLogs.AddGenerated(lab[0].Address, 20, CentralLogDocStyle.EpochMillis, tag: "a");
            lab.CentralLogs.AddGenerated(lab[0].Address, 20, CentralLogDocStyle.EpochMillisText, tag: "b");
            lab.CentralLogs.AddGenerated(lab[0].Address, 20, CentralLogDocStyle.Nanoseconds, tag: "c");
            var all = await Search(Client(Ctx(lab)), new CentralLogSearch { Host = lab[0].Address });
            Assert.Equal(60, all.Count);
            Assert.All(all, e => Assert.True(e.Timestamp > before && e.Timestamp < DateTimeOffset.UtcNow.AddSeconds(5), $"{e.Timestamp:o} for {e.Message}"));
            Assert.Equal(all.Select(e => e.Timestamp).OrderBy(t => t), all.Select(e => e.Timestamp)); // ascending, as sorted
        }

        [Theory]
        [InlineData("2026-12-05T08:00:00.123456789Z", "2026-12-05T08:00:00.1234567+00:00")]
        [InlineData("2026-12-05T09:00:00.123+01:00", "2026-12-05T08:00:00.1230000+00:00")]
        [InlineData("2026-12-05T08:00:00Z", "2026-12-05T08:00:00.0000000+00:00")]
        [InlineData("1795515176563", "2026-11-24T10:12:56.5630000+00:00")]
        [InlineData("#1795515176563", "2026-11-24T10:12:56.5630000+00:00")]
        [InlineData("#1795515176563.5", "2026-11-24T10:12:56.5635000+00:00")]
        [InlineData("yesterday", null)]
        [InlineData("1.2.3", null)]
        [InlineData("12/05/2026", null)]
        [InlineData("-1000", "1969-12-31T23:59:59.0000000+00:00")]
        [InlineData("#99999999999999999", null)]
        [InlineData("", null)]
        public void A_shippers_timestamp_in_any_documented_form_is_read(string given, string expected)
        {
            // '#' marks a JSON number rather than a string.
            JToken token = given.StartsWith("#") ? JToken.Parse(given.Substring(1)) : new JValue(given);
            var got = CentralLogClient.ParseTimestamp(token);
            Assert.Equal(expected, got?.ToString("o"));
            Assert.Null(CentralLogClient.ParseTimestamp(new JObject { ["a"] = 1 }));
        }

        [Fact]
        public void Fields_are_read_from_dotted_keys_nested_objects_and_mixes()
        {
            var src = JObject.Parse("{\"log.level\":\"warn\",\"host\":{\"name\":\"10.0.0.5\"},\"a\":{\"b.c\":{\"d\":1}},\"event\":{\"id\":\"x\"}}");
            Assert.Equal("warn", (string)CentralLogClient.Resolve(src, "log.level"));
            Assert.Equal("10.0.0.5", (string)CentralLogClient.Resolve(src, "host.name"));
            Assert.Equal(1, (int)CentralLogClient.Resolve(src, "a.b.c.d"));
            Assert.IsType<JObject>(CentralLogClient.Resolve(src, "host")); // an object: not a value, so never taken as the host
            Assert.Null(CentralLogClient.Resolve(src, "host.ip"));
        }

        public static IEnumerable<object[]> StatusRows()
        {
            foreach (var flavour in new[] { CentralLogFlavor.Elasticsearch, CentralLogFlavor.OpenSearch })
                foreach (var (status, ct, body, id) in new[]
                {
                    (401, (string)null, "", "CentralLogUnauthorized"),
                    (401, "text/html", "<html><body>Sign in</body></html>", "CentralLogUnauthorized"),
                    (403, "text/html", "<html><body>Forbidden</body></html>", "CentralLogForbidden"),
                    (403, (string)null, "", "CentralLogForbidden"),
                    (404, "text/html", "<html><body>Not Found</body></html>", "CentralLogIndexNotFound"),
                    (429, "text/plain", "Too Many Requests", "CentralLogRateLimited"),
                })
                    yield return new object[] { flavour, status, ct, body, id };
        }

        [Theory]
        [MemberData(nameof(StatusRows))]
        public async Task Errors_are_judged_by_the_status_whatever_the_body(CentralLogFlavor flavour, int status, string contentType, string body, string errorId)
        {
            await using var lab = await LabAs(flavour, flavour == CentralLogFlavor.OpenSearch ? "2.11.1" : "8.11.3", instances: 1);
            lab.CentralLogs.Answer(status, contentType, body, times: 100);
            var ctx = Ctx(lab); ctx.CentralLogs.MaxRetries = 1;
            var e = await Assert.ThrowsAsync<OpsException>(() => Client(ctx).SearchAsync(new CentralLogSearch { Host = lab[0].Address }, _ => { }, None));
            Assert.Equal(errorId, e.ErrorId);
            Assert.Equal(status == 401 || status == 403, CentralLogClient.FallbackErrorIds.Contains(e.ErrorId));
        }

        [Fact]
        public async Task OpenSearch_security_401_with_an_empty_body_is_Unauthorized()
        {
            await using var lab = await LabAs(CentralLogFlavor.OpenSearch, "2.11.1", instances: 1);
            var ctx = Ctx(lab); ctx.CentralLogs.ApiKey = Secret.FromPlainText("wrong-id:wrong-key");
            var e = await Assert.ThrowsAsync<OpsException>(() => Client(ctx).SearchAsync(new CentralLogSearch { Host = lab[0].Address }, _ => { }, None));
            Assert.Equal("CentralLogUnauthorized", e.ErrorId);
            Assert.Contains("-Fallback", e.RecommendedAction);
        }
    }
}
