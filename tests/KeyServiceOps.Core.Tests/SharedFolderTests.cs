using System;
using System.Diagnostics;
using System.IO;
using System.Threading;
using KeyServiceOps.Core;
using KeyServiceOps.Core.Audit;
using KeyServiceOps.Core.PagerDuty;
using KeyServiceOps.Core.Runbook;
using Xunit;

// The writers are plain callbacks (one per file the module writes) run from [Fact]s with no synchronisation context;
// the instance lock's async acquire is waited on there on purpose.
#pragma warning disable xUnit1031

namespace KeyServiceOps.Core.Tests
{
    /// <summary>
    /// Issue #26, row "a folder others can write to": every file the module writes or trusts (instance lock, audit log,
    /// pending-notes outbox, self-healing state and its lock, webhook replay list, session and config files) is used in a
    /// folder every user can write to only as /tmp is safe to use: the sticky bit, the folder ours or root's, the file
    /// ours. Each refusal is the caller's typed error and creates nothing. The second-uid version of the lock folder
    /// runs in real processes in Hostile.Tests.ps1 (setpriv).
    /// </summary>
    public class SharedFolderTests : IDisposable
    {
        private readonly string _root = Path.Combine(Path.GetTempPath(), "kso-shared-" + Guid.NewGuid().ToString("N").Substring(0, 8));
        private static bool Root => !OperatingSystem.IsWindows() && Environment.UserName == "root";

        public SharedFolderTests() { Directory.CreateDirectory(_root); }
        public void Dispose() { try { Directory.Delete(_root, true); } catch (IOException) { } }

        private string Folder(string mode)
        {
            var d = Path.Combine(_root, "f" + Guid.NewGuid().ToString("N").Substring(0, 6));
            Directory.CreateDirectory(d);
            Run("chmod", mode, d);
            return d;
        }

        private static void Run(string exe, params string[] args)
        {
            var psi = new ProcessStartInfo(exe) { RedirectStandardError = true };
            foreach (var a in args) psi.ArgumentList.Add(a);
            using (var p = Process.Start(psi)) { p.WaitForExit(); Assert.True(p.ExitCode == 0, exe + " " + string.Join(" ", args) + ": " + p.StandardError.ReadToEnd()); }
        }

        /// <summary>Each writer, run against a file in DIR; returns the typed error id it refused with, or null when it wrote.</summary>
        private static readonly (string Name, Func<string, string> Write)[] Writers =
        {
            ("instance lock", d => Id(() => { using (InstanceLock.AcquireAsync(d, "10.0.0.5", "test", TimeSpan.FromSeconds(1), CancellationToken.None).GetAwaiter().GetResult()) { } })),
            ("audit log", d => Id(() => new AuditLog(Path.Combine(d, "audit.jsonl")).Append(new AuditEntry { Action = "RemoveTarget", Target = "10.0.0.5:8888" }))),
            ("pending-notes outbox", d => Id(() => new NoteOutbox(Path.Combine(d, "audit.pending-notes.jsonl")).Add(new PendingNote { IncidentId = "Q1", Content = "x" }))),
            ("webhook replay list", d => Id(() => new WebhookReplayGuard(Path.Combine(d, "audit.webhook-events.txt")).FirstTime("evt-1"))),
            ("session file", d => Id(() => ContextSettings.SaveSession(new OpsContext(), Path.Combine(d, "session.json")))),
        };

        private static string Id(Action a)
        {
            try { a(); return null; }
            catch (OpsException e) { return e.ErrorId; }
            catch (Exception e) { return "RAW " + e.GetType().Name + ": " + e.Message; }
        }

        [Fact]
        public void A_world_writable_folder_without_the_sticky_bit_is_refused_by_every_writer_typed_and_nothing_is_created()
        {
            if (OperatingSystem.IsWindows()) return;
            var expected = new[] { "LockDirectoryUnwritable", "AuditLogWriteFailed", "NoteOutboxUnwritable", "StateFileUnsafe", "SessionFileUnwritable" };
            var d = Folder("0777");
            for (var i = 0; i < Writers.Length; i++)
            {
                var id = Writers[i].Write(d);
                Assert.True(expected[i] == id, $"{Writers[i].Name}: {id ?? "wrote"}");
            }
            Assert.Empty(Directory.GetFileSystemEntries(d));
            var e = Assert.Throws<OpsException>(() => SelfHealer.Load(Path.Combine(d, "state.json")));
            Assert.Equal("SelfHealingStateInvalid", e.ErrorId);
            Assert.Contains("sticky bit", e.Message);
        }

        [Fact]
        public void With_the_sticky_bit_every_writer_works_and_makes_owner_only_files()
        {
            if (OperatingSystem.IsWindows()) return;
            var d = Folder("1777");
            foreach (var w in Writers) Assert.True(w.Write(d) == null, $"{w.Name}: {w.Write(d)}");
            foreach (var f in Directory.GetFiles(d))
                Assert.True((File.GetUnixFileMode(f) & (UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite)) == 0, f + " is " + File.GetUnixFileMode(f));
        }

        [Fact]
        public void A_folder_shared_through_its_group_gets_files_the_group_can_use()
        {
            if (OperatingSystem.IsWindows()) return;
            var d = Folder("2770");
            using (InstanceLock.AcquireAsync(d, "10.0.0.6", "test", TimeSpan.FromSeconds(1), CancellationToken.None).GetAwaiter().GetResult())
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite, File.GetUnixFileMode(Path.Combine(d, "10.0.0.6.lock")));
        }

        [Fact]
        public void Files_another_user_made_in_a_sticky_folder_and_sticky_folders_another_user_owns_are_neither_written_nor_trusted()
        {
            if (!Root) return; // making a file of another uid needs root (CI runs as root; Hostile.Tests.ps1 does it with setpriv)
            var d = Folder("1777");
            foreach (var name in new[] { "10.0.0.5.lock", "audit.jsonl", "audit.pending-notes.jsonl", "audit.webhook-events.txt", "session.json", "state.json", "config.json" })
            {
                File.WriteAllText(Path.Combine(d, name), name.EndsWith(".json") ? "{}" : "{\"time\":\"2026-12-06T00:00:00Z\",\"action\":\"RestartContainer\",\"target\":\"10.0.0.5\",\"outcome\":\"Restarted\"}\n");
                Run("chown", "1001:1001", Path.Combine(d, name));
            }
            foreach (var w in Writers)
            {
                var id = w.Write(d);
                Assert.True(id != null && !id.StartsWith("RAW"), $"{w.Name}: {id ?? "wrote into another user's file"}");
            }
            // ... and never read as ours: what was done, what to send, where Kong is.
            var read = Assert.Throws<OpsException>(() => new AuditLog(Path.Combine(d, "audit.jsonl")).Read());
            Assert.Equal("AuditLogUnreadable", read.ErrorId);
            Assert.Contains("belongs to another user", read.Message);
            Assert.Empty(new NoteOutbox(Path.Combine(d, "audit.pending-notes.jsonl")).Pending());
            Assert.Equal("SelfHealingStateInvalid", Assert.Throws<OpsException>(() => SelfHealer.Load(Path.Combine(d, "state.json"))).ErrorId);
            Assert.Equal("ConfigFileInvalid", Assert.Throws<OpsException>(() => new OpsContext().LoadConfigFile(Path.Combine(d, "config.json"))).ErrorId);

            var theirs = Folder("1777");
            Run("chown", "1001:1001", theirs);
            foreach (var w in Writers)
            {
                var id = w.Write(theirs);
                Assert.True(id != null && !id.StartsWith("RAW"), $"{w.Name} in a folder uid 1001 owns: {id ?? "wrote"}");
            }
            Assert.Empty(Directory.GetFileSystemEntries(theirs));
        }

        [Fact]
        public void A_planted_symlink_in_place_of_any_file_of_ours_never_redirects_a_write_refused_or_replaced()
        {
            if (OperatingSystem.IsWindows()) return;
            var d = Folder("1777");
            var victim = Path.Combine(_root, "victim");
            var names = new[] { "10.0.0.5.lock", "audit.jsonl", "audit.pending-notes.jsonl", "audit.webhook-events.txt", "session.json" };
            for (var i = 0; i < Writers.Length; i++)
            {
                File.WriteAllText(victim, "precious");
                var link = Path.Combine(d, names[i]);
                File.CreateSymbolicLink(link, victim);
                var id = Writers[i].Write(d);
                Assert.Equal("precious", File.ReadAllText(victim));
                // Refused with the writer's typed error, or (the session file: a whole-file write) the link itself replaced.
                if (id == null) Assert.Null(new FileInfo(link).LinkTarget);
                else Assert.False(id.StartsWith("RAW"), $"{Writers[i].Name}: {id}");
                if (Writers[i].Name != "session file") Assert.NotNull(id);
                File.Delete(link);
            }
            // The self-healing state and its lock: refused, never read or written through the link.
            var state = Path.Combine(d, "state.json");
            File.WriteAllText(victim, "{\"Targets\":{}}");
            File.CreateSymbolicLink(state, victim);
            Assert.Equal("SelfHealingStateInvalid", Assert.Throws<OpsException>(() => SelfHealer.Load(state)).ErrorId);
            Assert.Equal("{\"Targets\":{}}", File.ReadAllText(victim));
        }

        [Fact]
        public void A_private_folder_of_another_user_and_a_folder_below_an_unsafe_one_are_refused_before_anything_is_made()
        {
            if (!Root) return;
            // Another user's own folder (0755): its owner can replace anything in it (found by a hostile review: every file was written there).
            var theirs = Folder("0755");
            Run("chown", "1001:1001", theirs);
            foreach (var w in Writers)
            {
                var id = w.Write(theirs);
                Assert.True(id != null && !id.StartsWith("RAW"), $"{w.Name} in a 0755 folder of uid 1001: {id ?? "wrote"}");
            }
            Assert.Empty(Directory.GetFileSystemEntries(theirs));
            // A folder of ours below one every user can write to without the sticky bit: anyone can rename it away.
            var open = Folder("0777");
            foreach (var w in Writers)
            {
                var id = w.Write(Path.Combine(open, "ours", "deeper"));
                Assert.True(id != null && !id.StartsWith("RAW"), $"{w.Name} below a 0777 folder: {id ?? "wrote"}");
            }
            Assert.Empty(Directory.GetFileSystemEntries(open));                  // not even the subfolders were made
            // Shared through a group (2770 of another user): trusted as the group is.
            var group = Folder("2770");
            Run("chown", "1001:0", group);
            Assert.Null(Writers[0].Write(group));
        }

        [Fact]
        public void Folders_the_module_makes_are_owner_only()
        {
            if (OperatingSystem.IsWindows()) return;
            var d = Folder("0755");
            foreach (var w in Writers) Assert.True(w.Write(Path.Combine(d, "made", w.Name.Replace(' ', '-'))) == null, w.Name);
            foreach (var made in Directory.GetDirectories(d, "*", SearchOption.AllDirectories))
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(made));
        }

        [Fact]
        public void A_folder_reached_through_a_symlink_is_judged_by_what_it_points_to()
        {
            // Review of the folder rule: a symlink's own mode is 0777 without the sticky bit; a lock folder set through a
            // link (or below one, as /var/run is) must not read as "writable by every user".
            if (OperatingSystem.IsWindows()) return;
            var real = Folder("0700");
            var link = Path.Combine(_root, "link-" + Guid.NewGuid().ToString("N").Substring(0, 6));
            Directory.CreateSymbolicLink(link, real);
            foreach (var w in Writers)
            {
                Assert.True(w.Write(link) == null, $"{w.Name} through a link: {w.Write(link)}");
                Assert.True(w.Write(Path.Combine(link, "below")) == null, $"{w.Name} below a link: {w.Write(Path.Combine(link, "below"))}");
            }
        }
    }
}
