using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using KeyServiceOps.Core.Audit;
using KeyServiceOps.Core.Diagnosis;
using KeyServiceOps.Core.Remote;
using KeyServiceOps.Core.Runbook;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using Xunit;

namespace KeyServiceOps.Core.Tests
{
    /// <summary>Issue #26: nothing from outside reaches the terminal, a note or a file raw.</summary>
    public class OutsideTextTests
    {
        private static readonly CancellationToken None = CancellationToken.None;
        private const string Osc52 = "\u001b]52;c;ZXZpbA==\u0007";
        private const string Wipe = "\u001b[2J\u001b[3J";
        private const string Title = "\u001b]0;pwned\u0007";

        [Fact]
        public void Control_sequences_are_shown_escaped_and_tabs_and_line_structure_stay()
        {
            var s = SafeText.Neutralize($"a{Osc52}b{Wipe}\tc\r\u009b31m\u202eevil");
            Assert.DoesNotContain(s, ch => ch < 0x20 && ch != '\t' || ch >= 0x7f && ch <= 0x9f || ch == '\u202e');
            Assert.Equal("a\\x1b]52;c;ZXZpbA==\\x07b\\x1b[2J\\x1b[3J\tc\\x0d\\x9b31m\\u202eevil", s);
            Assert.Equal("line one\nline \\x1b[2Jtwo", SafeText.Lines("line one\r\nline \u001b[2Jtwo"));
            Assert.Same("plain text", SafeText.Neutralize("plain text"));
        }

        [Fact]
        public void A_log_line_keeps_its_raw_text_only_on_request()
        {
            var e = LogEntry.Parse("2026-12-05T08:00:00.000000000Z level=error " + Osc52 + "cipher down", LogStream.Stderr);
            Assert.DoesNotContain('\u001b', e.Message);
            Assert.Contains("\\x1b]52;", e.Message);
            Assert.DoesNotContain('\u001b', e.ToString());
            Assert.Contains(Osc52, e.GetRawMessage());
            Assert.Equal(LogLevel.Error, e.LevelValue);
        }

        [Fact]
        public void A_giant_line_is_cut_and_marked_and_the_next_line_still_arrives()
        {
            var giant = new string('x', 3_000_000);
            var text = "first\r\n" + giant + "\nlast";
            var r = new BoundedLineReader(new StringReader(text), 64 * 1024);
            Assert.Equal("first", r.ReadLine());
            var cut = r.ReadLine();
            Assert.StartsWith(new string('x', 64 * 1024) + " …[line cut at 65,536 of 3,000,000 characters]", cut);
            Assert.True(cut.Length < 64 * 1024 + 100);
            Assert.Equal("last", r.ReadLine());
            Assert.Null(r.ReadLine());
            var empty = new BoundedLineReader(new StringReader("\n\n"), 10);
            Assert.Equal(("", "", (string)null), (empty.ReadLine(), empty.ReadLine(), empty.ReadLine()));
        }

        [Fact]
        public void Redaction_covers_what_a_secret_becomes_on_the_wire()
        {
            var ctx = new OpsContext
            { CentralLogs = { ApiKey = Secret.FromPlainText("keyid42:s3cr3t-api-key"), User = "elastic", Password = Secret.FromPlainText("pa55\"word") }, Kong = { Token = Secret.FromPlainText("kong-t0ken/+=") }, PagerDuty = { Token = Secret.FromPlainText("pd-t0ken-xyz") }, Ssh = { KeyPassphrase = Secret.FromPlainText("ssh-passphrase-1") } };
            var r = Redactor.For(ctx);
            string B64(string s) => Convert.ToBase64String(Encoding.UTF8.GetBytes(s));
            var echoed = string.Join(" | ", new[]
            {
                "Authorization: ApiKey " + B64("keyid42:s3cr3t-api-key"), "the key half s3cr3t-api-key", "Basic " + B64("elastic:pa55\"word"),
                "json {\"p\":\"pa55\\\"word\"}", "url " + Uri.EscapeDataString("kong-t0ken/+="), "Token token=pd-t0ken-xyz",
                "b64 " + B64("ssh-passphrase-1").TrimEnd('='), "b64url " + Uri.EscapeDataString(B64("kong-t0ken/+=")),
            });
            var scrubbed = r.Scrub(echoed);
            foreach (var leak in new[] { B64("keyid42:s3cr3t-api-key"), "s3cr3t-api-key", B64("elastic:pa55\"word"), "pa55\\\"word", "pa55\"word",
                         Uri.EscapeDataString("kong-t0ken/+="), "pd-t0ken-xyz", B64("ssh-passphrase-1").TrimEnd('='), Uri.EscapeDataString(B64("kong-t0ken/+=")) })
                Assert.DoesNotContain(leak, scrubbed);
        }

        [Fact]
        public async Task Container_log_escape_sequences_arrive_escaped_over_real_ssh_and_never_reach_an_incident_note()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true, PagerDuty = true });
            var inc = lab.PagerDuty.AddAlert(lab[0].Address);
            using var rig = new OpsRig(lab);
            await lab[0].SetModeAsync(InstanceMode.Down);
            lab[0].ModeAfterRestart = InstanceMode.Down;
            lab[0].AppendLog("panic: " + Osc52 + Wipe + Title + "boom", stderr: true);
            var got = new List<LogEntry>();
            await rig.Docker.LogsAsync(SshTarget.For(rig.Ctx, lab[0].Address), new LogQuery { Tail = 5 }, got.Add, None);
            var hostile = Assert.Single(got, e => e.GetRawMessage().Contains("boom"));
            Assert.Contains(Osc52, hostile.GetRawMessage());
            Assert.DoesNotContain('\u001b', hostile.Message);
            // The runbook escalates with the last log lines: the note holds them escaped.
            var s = await rig.Runner().RunAsync(Endpoint.Parse(lab[0].Address, 8888),
                new RunbookOptions { IncidentId = inc.Id, RestartTimeout = TimeSpan.FromSeconds(1), PollInterval = TimeSpan.FromMilliseconds(100), EscalationLogLines = 20 },
                (t, a) => Task.FromResult(true), null, None);
            Assert.Equal("Escalated", s.FinalState);
            var notes = lab.PagerDuty.Incident(inc.Id).Notes.Select(n => n.Content).ToList();
            Assert.Contains(notes, n => n.Contains("\\x1b]52;"));
            Assert.DoesNotContain(notes, n => n.Any(ch => ch < 0x20 && ch != '\n' && ch != '\t'));
        }

        [Fact]
        public async Task A_log_line_of_many_megabytes_without_a_newline_is_cut_over_real_ssh()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 3, Ssh = true });
            using var rig = new OpsRig(lab);
            lab[0].AppendLog("before");
            lab[0].AppendLog("level=error " + new string('y', 8 * 1024 * 1024) + "\u00ff\ud800tail");
            lab[0].AppendLog("after");
            var got = new List<LogEntry>();
            await rig.Docker.LogsAsync(SshTarget.For(rig.Ctx, lab[0].Address), new LogQuery { Tail = 3 }, got.Add, None);
            Assert.Equal(3, got.Count);
            Assert.Contains("…[line cut at 65,536 of ", got[1].Message);
            Assert.True(got[1].Message.Length < 70_000);
            Assert.EndsWith("after", got[2].Message);
        }
    }
}

namespace KeyServiceOps.Core.Tests
{
    /// <summary>Issue #26 row 5: every client method answers a 2xx that is not what it asked for (HTML, empty) with its typed …InvalidResponse.</summary>
    /// <summary>Issue #26 item 1 siblings found by a hostile review: every field a server fills, not only titles and log lines.</summary>
    public class OutsideFieldsTests
    {
        private const string Evil = "\u001b]52;c;ZXZpbA==\u0007\u001b[2J\u001b[3J\u009b6n\u202e";

        private static void Clean(string what, object value)
        {
            foreach (var s in value is System.Collections.IEnumerable e && !(value is string) ? e.Cast<object>().Select(x => x?.ToString()) : new[] { value?.ToString() })
                Assert.False(s != null && s.Any(c => (c < 0x20 && c != '\n' && c != '\t') || (c >= 0x7f && c <= 0x9f) || c == '\u202e'), $"{what} holds a raw control character: {s}");
        }

        [Fact]
        public async Task PagerDuty_Kong_audit_and_error_texts_with_control_sequences_are_read_escaped_everywhere()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 2, PagerDuty = true });
            var inc = lab.PagerDuty.AddAlert(lab[0].Address);
            var pdInc = lab.PagerDuty.Incident(inc.Id);
            pdInc.ServiceName = "svc" + Evil;
            lab.PagerDuty.Users.Add(new PdUser { Id = "PEVIL01", Email = "evil@example.com", Name = "Mallory" + Evil });
            pdInc.Assignees.Add("PEVIL01");
            pdInc.Notes.Add(new PdNote { Id = "PNOTEX", UserId = "PEVIL01", Content = "look" + Evil + "\nsecond line", CreatedAt = DateTimeOffset.UtcNow });
            var ctx = TestCtx.For(lab);
            ctx.PagerDuty.Uri = lab.PagerDuty.BaseUri; ctx.PagerDuty.Token = Secret.FromPlainText(lab.PagerDuty.Token); ctx.PagerDuty.From = "oncall@example.com";
            var pd = new KeyServiceOps.Core.PagerDuty.PagerDutyClient(ctx.ForPagerDuty(), null, null, TimeSpan.FromMilliseconds(5));
            var i = await pd.GetIncidentAsync(inc.Id, CancellationToken.None);
            foreach (var p in i.GetType().GetProperties()) Clean("incident." + p.Name, p.GetValue(i));
            var notes = await pd.GetNotesAsync(inc.Id, CancellationToken.None);
            var note = Assert.Single(notes, n => n.NoteId == "PNOTEX");
            foreach (var p in note.GetType().GetProperties()) Clean("note." + p.Name, p.GetValue(note));
            Assert.Contains("second line", note.Content.Split('\n')[1]);             // line structure kept

            var kong = new KeyServiceOps.Core.RingBalancer.KongClient(ctx.ForKong(), null);
            await kong.AddTargetAsync(lab.Upstream, "127.9.9.9:8888", 100, new[] { "tag" + Evil }, CancellationToken.None);
            foreach (var t in await kong.GetTargetsAsync(lab.Upstream, CancellationToken.None))
                foreach (var p in t.GetType().GetProperties()) Clean("target." + p.Name, p.GetValue(t));

            // An error's message quotes what it was given; the audit log's detail is written and read escaped.
            var err = new OpsException("X", OpsErrorCategory.InvalidResult, "server said" + Evil, "t" + Evil, "details" + Evil);
            Clean("exception.Message", err.Message); Clean("exception.Details", err.Details); Clean("exception.Target", err.TargetObject);
            var path = Path.Combine(Path.GetTempPath(), $"kso-evil-audit-{Guid.NewGuid():N}.jsonl");
            try
            {
                new AuditLog(path).Append(new AuditEntry { Action = "RemoveTarget", Target = "10.0.0.5:8888", Outcome = "Failed", Detail = "KongServerError: " + Evil });
                File.AppendAllText(path, "{\"time\":\"2026-12-06T00:00:00Z\",\"actor\":\"planted\\u001b]0;pwned\\u0007\",\"action\":\"AddTarget\",\"target\":\"x\",\"outcome\":\"Added\",\"detail\":\"\\u001b[2J\"}\n");
                Assert.DoesNotContain('\u001b', File.ReadAllText(path).Replace("\\u001b", ""));
                foreach (var a in new AuditLog(path).Read())
                    foreach (var p in a.GetType().GetProperties().Where(p => p.PropertyType == typeof(string))) Clean("audit." + p.Name, p.GetValue(a));
            }
            finally { File.Delete(path); }
        }
    }

    public class HtmlTwoHundredTests
    {
        private static readonly CancellationToken None = CancellationToken.None;

        private static async Task<string> IdOf(Func<Task> call)
        {
            try { await call(); return "no error"; }
            catch (OpsException e) { return e.ErrorId; }
            catch (Exception e) { return "raw " + e.GetType().Name; }
        }

        [Fact]
        public async Task Every_PagerDuty_client_method_answers_an_HTML_200_with_PagerDutyInvalidResponse()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 1, PagerDuty = true });
            var inc = lab.PagerDuty.AddAlert(lab[0].Address);
            var ctx = TestCtx.For(lab);
            ctx.PagerDuty.Uri = lab.PagerDuty.BaseUri; ctx.PagerDuty.Token = Secret.FromPlainText(lab.PagerDuty.Token); ctx.PagerDuty.From = "oncall@example.com";
            var pd = new KeyServiceOps.Core.PagerDuty.PagerDutyClient(ctx.ForPagerDuty(), null, null, TimeSpan.FromMilliseconds(5));
            lab.PagerDuty.SignInPage = true;
            var calls = new Dictionary<string, Func<Task>>
            {
                ["GetIncident"] = () => pd.GetIncidentAsync(inc.Id, None),
                ["ListIncidents"] = () => pd.ListIncidentsAsync(new[] { "triggered" }, null, None),
                ["FindForAddress"] = () => pd.FindForAddressAsync(lab[0].Address, None),
                ["GetNotes"] = () => pd.GetNotesAsync(inc.Id, None),
                ["AddNote"] = () => pd.AddNoteAsync(inc.Id, "a note", None),
                ["EscalateTo"] = () => pd.EscalateToAsync(inc.Id, 2, None),
                ["ResolveUserId"] = () => pd.ResolveUserIdAsync("someone@example.com", None),
            };
            var got = new Dictionary<string, string>();
            foreach (var kv in calls) got[kv.Key] = await IdOf(kv.Value);
            Assert.All(got, kv => Assert.True(kv.Value == "PagerDutyInvalidResponse", $"{kv.Key}: {kv.Value}"));
        }

        [Fact]
        public async Task Every_Kong_and_PagerDuty_method_answers_a_200_of_the_wrong_JSON_shape_with_its_typed_error()
        {
            // Issue #26 item 5, found by a hostile review: JSON of the wrong shape (a list where an object is, a string
            // where a list is, an object where text is) was InvalidCastException, ArgumentException or
            // NullReferenceException from 10 methods. Every one is now the client's ...InvalidResponse (or another typed error).
            var bodies = new (string name, string body)[]
            {
                ("a JSON array", "[1,2,3]"),
                ("lists as strings", "{\"data\":\"nope\",\"incident\":\"x\",\"incidents\":\"x\",\"notes\":\"x\",\"users\":\"x\",\"log_entries\":\"x\",\"note\":\"x\",\"next\":null}"),
                ("items of the wrong type", "{\"data\":[1,2],\"incident\":{\"id\":{\"a\":1}},\"incidents\":[1],\"notes\":[1],\"users\":[1],\"log_entries\":[1],\"next\":null}"),
                ("fields of the wrong type", "{\"data\":[{\"target\":{\"a\":1},\"id\":\"x\"}],\"target\":[1],\"id\":7,\"incident\":{\"id\":\"P1\",\"service\":\"str\",\"assignments\":\"x\",\"incident_number\":\"n\"},\"incidents\":[{\"id\":\"P1\",\"escalation_policy\":[1]}],\"notes\":[{\"id\":\"n\",\"user\":\"u\",\"content\":{\"x\":1}}],\"next\":null}"),
            };
            using var l = new System.Net.HttpListener();
            var uri = KeyServiceOps.Lab.Estate.Loopback.FreeHttpPrefix();
            l.Prefixes.Add(uri.ToString());
            l.Start();
            var answer = "";
            _ = Task.Run(async () =>
            {
                while (l.IsListening)
                {
                    System.Net.HttpListenerContext c;
                    try { c = await l.GetContextAsync(); } catch { return; }
                    var bytes = Encoding.UTF8.GetBytes(answer);
                    c.Response.StatusCode = 200; c.Response.ContentType = "application/json";
                    c.Response.OutputStream.Write(bytes, 0, bytes.Length);
                    c.Response.Close();
                }
            });
            var ctx = new OpsContext { Kong = { AdminUri = uri }, PagerDuty = { Uri = uri, Token = Secret.FromPlainText("pd-token"), From = "oncall@example.com", MaxRetries = 0 } };
            var kong = new KeyServiceOps.Core.RingBalancer.KongClient(ctx.ForKong(), null);
            var pd = new KeyServiceOps.Core.PagerDuty.PagerDutyClient(ctx.ForPagerDuty(), null, null, TimeSpan.FromMilliseconds(5));
            var calls = new Dictionary<string, Func<Task>>
            {
                ["Kong GetTargets"] = () => kong.GetTargetsAsync("u", None),
                ["Kong FindTarget"] = () => kong.FindTargetAsync("u", "10.0.0.5:8888", None),
                ["Kong GetHealth"] = () => kong.GetHealthAsync("u", None),
                ["Kong GetUpstream"] = () => kong.GetUpstreamAsync("u", None),
                ["Kong AddTarget"] = () => kong.AddTargetAsync("u", "10.0.0.5:8888", 100, null, None),
                ["Kong SetWeight"] = () => kong.SetWeightAsync("u", "10.0.0.5:8888", 0, None),
                ["PD GetIncident"] = () => pd.GetIncidentAsync("P1ABCDE", None),
                ["PD ListIncidents"] = () => pd.ListIncidentsAsync(new[] { "triggered" }, null, None),
                ["PD GetNotes"] = () => pd.GetNotesAsync("P1ABCDE", None),
                ["PD AddNote"] = () => pd.AddNoteAsync("P1ABCDE", "a note", None),
                ["PD GetLogEntries"] = () => pd.GetLogEntriesAsync("P1ABCDE", None),
                ["PD EscalateTo"] = () => pd.EscalateToAsync("P1ABCDE", 2, None),
                ["PD ResolveUserId"] = () => pd.ResolveUserIdAsync("someone@example.com", None),
            };
            var got = new List<string>();
            foreach (var (name, body) in bodies)
            {
                answer = body;
                foreach (var kv in calls)
                {
                    var id = await IdOf(kv.Value);
                    got.Add($"{(id.StartsWith("raw ") ? "WRONG" : "ok")} {name} / {kv.Key}: {id}");
                }
            }
            l.Stop();
            Assert.True(got.All(g => g.StartsWith("ok")), string.Join("\n", got.Where(g => !g.StartsWith("ok"))));
        }

        [Fact]
        public async Task The_central_log_search_answers_every_2xx_that_is_not_a_search_result_with_a_typed_error()
        {
            // Issue #26 item 5: a 2xx that is not what was asked for — a sign-in page, an empty body, JSON of the wrong
            // shape at any level — is CentralLogInvalidResponse, never a raw .NET exception; odd field types in one hit
            // (a number for the message, an object for the time) are read as text or skipped, never fatal.
            var bodies = new (string name, string contentType, string body, bool shapeError)[]
            {
                ("HTML sign-in page", "text/html", "<html><body>Please sign in</body></html>", true),
                ("empty body", "application/json", "", true),
                ("JSON array", "application/json", "[]", true),
                ("JSON null", "application/json", "null", true),
                ("hits a string", "application/json", "{\"hits\": \"x\"}", true),
                ("hits.hits an object", "application/json", "{\"hits\": {\"hits\": {}}}", true),
                ("a null hit", "application/json", "{\"hits\": {\"hits\": [null]}}", true),
                ("_source a string", "application/json", "{\"hits\": {\"hits\": [{\"_source\": \"text\", \"sort\": [1]}]}}", true),
                ("odd field types", "application/json", "{\"hits\": {\"hits\": [{\"_source\": {\"@timestamp\": {\"a\": 1}, \"message\": 42, \"host\": [1,2]}, \"sort\": [1]}]}}", false),
                ("sort not an array", "application/json", "{\"hits\": {\"hits\": [{\"_source\": {\"message\": \"m\"}, \"sort\": \"x\"}]}}", false),
            };
            using var l = new System.Net.HttpListener();
            var uri = KeyServiceOps.Lab.Estate.Loopback.FreeHttpPrefix();
            l.Prefixes.Add(uri.ToString());
            l.Start();
            (string contentType, string body) answer = ("", "");
            _ = Task.Run(async () =>
            {
                while (l.IsListening)
                {
                    System.Net.HttpListenerContext c;
                    try { c = await l.GetContextAsync(); } catch { return; }
                    var (ct, body) = answer;
                    var bytes = Encoding.UTF8.GetBytes(body);
                    c.Response.StatusCode = 200; c.Response.ContentType = ct;
                    c.Response.OutputStream.Write(bytes, 0, bytes.Length);
                    c.Response.Close();
                }
            });
            var ctx = new OpsContext { CentralLogs = { Uri = uri, ApiKey = Secret.FromPlainText("id:key"), MaxRetries = 0 } };
            var client = new KeyServiceOps.Core.CentralLogs.CentralLogClient(ctx.ForCentralLogs(), null, TimeSpan.FromMilliseconds(5));
            var got = new List<string>();
            foreach (var (name, contentType, body, shapeError) in bodies)
            {
                answer = (contentType, body);
                var id = await IdOf(() => client.SearchAsync(new KeyServiceOps.Core.CentralLogs.CentralLogSearch { Host = "10.0.0.5", Tail = 5 }, _ => { }, None));
                var ok = shapeError ? id == "CentralLogInvalidResponse" : !id.StartsWith("raw ");
                got.Add($"{(ok ? "ok" : "WRONG")} {name}: {id}");
            }
            l.Stop();
            Assert.True(got.All(g => g.StartsWith("ok")), string.Join("\n", got));
        }

        [Fact]
        public async Task Every_Kong_client_method_answers_an_HTML_200_with_KongInvalidResponse()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 2 });
            var kong = new KeyServiceOps.Core.RingBalancer.KongClient(TestCtx.For(lab).ForKong(), null);
            var html = "<html><body>Please sign in</body></html>";
            var calls = new Dictionary<string, Func<Task>>
            {
                ["GetNodeInfo"] = () => kong.GetNodeInfoAsync(None),
                ["GetUpstream"] = () => kong.GetUpstreamAsync(lab.Upstream, None),
                ["ListUpstreams"] = () => kong.ListUpstreamsAsync(None),
                ["GetTargets"] = () => kong.GetTargetsAsync(lab.Upstream, None),
                ["GetHealth"] = () => kong.GetHealthAsync(lab.Upstream, None),
                ["FindTarget"] = () => kong.FindTargetAsync(lab.Upstream, lab[0].Target, None),
                ["AddTarget"] = () => kong.AddTargetAsync(lab.Upstream, "127.0.0.9:8888", 100, null, None),
                ["DeleteTarget"] = () => kong.DeleteTargetAsync(lab.Upstream, lab[0].Target, None),
                ["SetWeight"] = () => kong.SetWeightAsync(lab.Upstream, lab[0].Target, 0, None),
            };
            var got = new Dictionary<string, string>();
            foreach (var kv in calls) { lab.Kong.FailNext(5, 200, html); got[kv.Key] = await IdOf(kv.Value); lab.Kong.ClearCanned(); }
            Assert.All(got, kv => Assert.True(kv.Value == "KongInvalidResponse", $"{kv.Key}: {kv.Value}"));
        }
    }
}
