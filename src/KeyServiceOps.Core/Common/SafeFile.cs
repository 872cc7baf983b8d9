using System;
using System.IO;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace KeyServiceOps.Core
{
    /// <summary>
    /// A file or folder the module refuses to use (a symbolic link, a world-writable folder without the sticky bit, a
    /// file another user owns in a world-writable folder): never retried, the caller names it with its own typed error.
    /// </summary>
    public sealed class UnsafeFileException : IOException
    {
        public UnsafeFileException(string message) : base(message) { }
    }

    /// <summary>
    /// How the module writes its own files (state, outbox, holder and context files) when the folder may be shared or the
    /// process may die mid-write (issues #25, #26): a temporary file created new (O_EXCL: never through a planted
    /// symlink), owner-only, flushed to disk, then renamed over the target (rename replaces a symlink, never writes
    /// through it), so a reader sees the old file or the new one, never an empty or torn one.
    /// </summary>
    public static class SafeFile
    {
        private static readonly bool Unix = !RuntimeInformation.IsOSPlatform(OSPlatform.Windows);

        [DllImport("libc", EntryPoint = "readlink", SetLastError = true)]
        private static extern int ReadLink(string path, byte[] buffer, int size);

        [DllImport("libc", EntryPoint = "chmod", SetLastError = true)]
        private static extern int Chmod(string path, int mode);

        [DllImport("libc", EntryPoint = "rename", SetLastError = true)]
        private static extern int Rename(string from, string to);

        [DllImport("libc", EntryPoint = "lstat", SetLastError = true)]
        private static extern int LStat(string path, byte[] buf);

        [DllImport("libc", EntryPoint = "__lxstat", SetLastError = true)]
        private static extern int LXStat(int version, string path, byte[] buf);

        [DllImport("libc", EntryPoint = "stat", SetLastError = true)]
        private static extern int Stat(string path, byte[] buf);

        [DllImport("libc", EntryPoint = "__xstat", SetLastError = true)]
        private static extern int XStat(int version, string path, byte[] buf);

        [DllImport("libc", EntryPoint = "geteuid")]
        private static extern uint GetEUid();

        /// <summary>Owner and mode of <paramref name="path"/> (not following a link unless <paramref name="follow"/>), or null where this platform does not say.</summary>
        internal static (uint Uid, int Mode)? OwnerAndMode(string path, bool follow = false)
        {
            if (!Unix || !RuntimeInformation.IsOSPlatform(OSPlatform.Linux)) return null;
            int modeAt, uidAt, version;
            switch (RuntimeInformation.ProcessArchitecture)
            {
                case Architecture.X64: modeAt = 24; uidAt = 28; version = 1; break;   // st_dev, st_ino, st_nlink (8 each), st_mode, st_uid
                case Architecture.Arm64: modeAt = 16; uidAt = 24; version = 0; break; // st_dev, st_ino, st_mode, st_nlink (4), st_uid
                default: return null;
            }
            var buf = new byte[512];
            int rc;
            try { rc = follow ? Stat(path, buf) : LStat(path, buf); }
            catch (EntryPointNotFoundException)
            {
                try { rc = follow ? XStat(version, path, buf) : LXStat(version, path, buf); } catch (Exception e) when (e is DllNotFoundException || e is EntryPointNotFoundException) { return null; }
            }
            catch (DllNotFoundException) { return null; }
            if (rc != 0) return null;
            return (BitConverter.ToUInt32(buf, uidAt), BitConverter.ToInt32(buf, modeAt));
        }

        private static uint? Me()
        {
            try { return Unix ? GetEUid() : (uint?)null; } catch (Exception e) when (e is DllNotFoundException || e is EntryPointNotFoundException) { return null; }
        }

        /// <summary>
        /// Why the folder of <paramref name="file"/> may not hold the module's files, or null when it may. A folder every
        /// user can write to is used only as /tmp is safe to use (issue #26): with the sticky bit (others cannot rename or
        /// delete our files), owned by us or root (the folder's owner can), and only files of our own in it (an existing
        /// file of another user is refused, as Linux's protected_regular refuses it). A folder shared through a group
        /// (0770/2770) is trusted as the group is.
        /// </summary>
        public static string FolderProblem(string file)
        {
            var full = Path.GetFullPath(file);
            var dir = Path.GetDirectoryName(full);
            if (string.IsNullOrEmpty(dir)) return null;
            var me = Me();
            if (me == null || OwnerAndMode("/") == null) return null;
            const int OtherWrite = 0x2 /* 0002 */, GroupWrite = 0x10 /* 0020 */, Sticky = 0x200 /* 01000 */;
            // The folder may not exist yet (it is created for us): judge the nearest one that does, and every folder
            // above it — one writable by every user without the sticky bit lets anyone rename what is below it.
            var existing = dir;
            // Folders are judged by what they are (a symlinked folder or /var/run's link has mode 0777 of its own, which says nothing).
            while (!string.IsNullOrEmpty(existing) && OwnerAndMode(existing, follow: true) == null) existing = Path.GetDirectoryName(existing);
            if (string.IsNullOrEmpty(existing)) return null;
            for (var up = Path.GetDirectoryName(existing); !string.IsNullOrEmpty(up); up = Path.GetDirectoryName(up))
            {
                var a = OwnerAndMode(up, follow: true);
                if (a != null && (a.Value.Mode & OtherWrite) != 0 && (a.Value.Mode & Sticky) == 0)
                    return $"the folder '{up}' above it is writable by every user and has no sticky bit (anyone could rename the folders below it)";
            }
            var d = OwnerAndMode(existing, follow: true).Value;
            if ((d.Mode & OtherWrite) == 0)
            {
                // A private folder of another user (not shared through its group): its owner can replace anything in it.
                if (d.Uid != 0 && d.Uid != me.Value && (d.Mode & GroupWrite) == 0)
                    return $"the folder '{existing}' belongs to another user (uid {d.Uid}), who can replace the module's files there";
                return null;
            }
            if ((d.Mode & Sticky) == 0)
                return $"the folder '{existing}' is writable by every user and has no sticky bit (anyone could replace or delete the module's files there)";
            if (d.Uid != 0 && d.Uid != me.Value)
                return $"the folder '{existing}' is writable by every user and owned by another user (uid {d.Uid}), who can replace the module's files there";
            if (existing != dir) return null;
            var f = OwnerAndMode(full);
            if (f != null && f.Value.Uid != me.Value && f.Value.Uid != 0)
                return $"'{full}' belongs to another user (uid {f.Value.Uid}) in a folder every user can write to; the module uses only files of its own there";
            return null;
        }

        /// <summary>
        /// Opens (creating it owner-only when absent) a file of the module's own that several processes share — a lock,
        /// a JSON-lines log, a replay list — exclusively (share-none: an exclusive lock), waiting up to
        /// <paramref name="timeout"/> while another process holds it. Never through a symbolic link (checked before and
        /// after the open) and never in a folder <see cref="FolderProblem"/> refuses: <see cref="UnsafeFileException"/>,
        /// not retried. When the wait runs out, the last <see cref="IOException"/> is thrown.
        /// </summary>
        public static FileStream OpenExclusive(string path, TimeSpan timeout, CancellationToken ct = default(CancellationToken))
            => OpenExclusiveAsync(path, timeout, ct, sync: true).GetAwaiter().GetResult();

        /// <inheritdoc cref="OpenExclusive"/>
        /// <param name="waiting">Told, about once a second, how long it has waited for another process so far.</param>
        public static Task<FileStream> OpenExclusiveAsync(string path, TimeSpan timeout, CancellationToken ct, Action<TimeSpan> waiting = null) => OpenExclusiveAsync(path, timeout, ct, sync: false, waiting);

        private static async Task<FileStream> OpenExclusiveAsync(string path, TimeSpan timeout, CancellationToken ct, bool sync, Action<TimeSpan> waiting = null)
        {
            var told = TimeSpan.Zero;
            var full = PrepareFolder(path);
            if (Directory.Exists(full)) throw new UnsafeFileException($"'{full}' is a folder, not a file");
            var waited = System.Diagnostics.Stopwatch.StartNew(); // monotonic: a clock step neither ends nor stretches the wait
            var random = new Random();
            while (true)
            {
                ct.ThrowIfCancellationRequested();
                try
                {
                    var problem = FolderProblem(full);
                    if (problem != null) throw new UnsafeFileException(problem);
                    if (IsLink(full)) throw new UnsafeFileException($"'{full}' is a symbolic link; the module never writes through one");
                    var created = !File.Exists(full);
                    var fs = new FileStream(full, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
                    if (IsLink(full)) { fs.Dispose(); throw new UnsafeFileException($"'{full}' is a symbolic link; the module never writes through one"); }
                    if (created) ForFolder(full);
                    return fs;
                }
                catch (IOException e) when (!(e is UnsafeFileException) && !(e is DirectoryNotFoundException) && !(e is PathTooLongException) && waited.Elapsed < timeout)
                {
                    // another process holds it
                    if (waiting != null && waited.Elapsed - told >= TimeSpan.FromSeconds(1)) { told = waited.Elapsed; waiting(told); }
                    if (sync) Thread.Sleep(2 + random.Next(15));
                    else await Task.Delay(20 + random.Next(30), ct).ConfigureAwait(false);
                }
            }
        }

        /// <summary>
        /// The full path of <paramref name="path"/>, its folder judged (<see cref="FolderProblem"/>: refused before any
        /// folder is made there) and then made (<see cref="CreateFolder"/>): the first step of both writers.
        /// </summary>
        private static string PrepareFolder(string path)
        {
            var full = Path.GetFullPath(path);
            var problem = FolderProblem(full);
            if (problem != null) throw new UnsafeFileException(problem);
            var dir = Path.GetDirectoryName(full);
            if (!string.IsNullOrEmpty(dir)) CreateFolder(dir);
            return full;
        }

        /// <summary>
        /// Creates <paramref name="dir"/> and any missing folder above it, each one the module makes owner-only (0700:
        /// other users of the machine do not list which instances it works on); folders that exist keep their mode.
        /// </summary>
        public static void CreateFolder(string dir)
        {
            var made = new System.Collections.Generic.List<string>();
            for (var d = Path.GetFullPath(dir); !string.IsNullOrEmpty(d) && !Directory.Exists(d); d = Path.GetDirectoryName(d)) made.Add(d);
            Directory.CreateDirectory(dir);
            if (!Unix) return;
            foreach (var d in made)
            {
                try { Chmod(d, Convert.ToInt32("700", 8)); }
                catch (Exception e) when (e is DllNotFoundException || e is EntryPointNotFoundException) { return; }
            }
        }

        /// <summary>True when <paramref name="path"/> itself is a symbolic link (also a dangling one).</summary>
        public static bool IsLink(string path)
        {
            if (string.IsNullOrEmpty(path)) return false;
            if (Unix)
            {
                try { return ReadLink(path, new byte[1], 1) >= 0; }
                catch (Exception e) when (e is DllNotFoundException || e is EntryPointNotFoundException) { }
            }
            try { return File.Exists(path) && (File.GetAttributes(path) & FileAttributes.ReparsePoint) != 0; }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException) { return false; }
        }

        /// <summary>Owner read/write only (0600) on Unix; best effort (a file on a filesystem without modes keeps its own).</summary>
        public static void OwnerOnly(string path)
        {
            if (!Unix) return;
            try { Chmod(path, Convert.ToInt32("600", 8)); }
            catch (Exception e) when (e is DllNotFoundException || e is EntryPointNotFoundException) { }
        }

        /// <summary>
        /// The permissions the folder calls for, on a file just created: owner-only (0600), or owner and group (0660) in a
        /// folder shared through its group (group-writable, not world-writable: a lock folder for every operator of the machine).
        /// </summary>
        public static void ForFolder(string path)
        {
            if (!Unix) return;
            var d = OwnerAndMode(Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".", follow: true);
            var mode = d != null && (d.Value.Mode & 0x10 /* 0020 */) != 0 && (d.Value.Mode & 0x2 /* 0002 */) == 0 ? "660" : "600";
            try { Chmod(path, Convert.ToInt32(mode, 8)); }
            catch (Exception e) when (e is DllNotFoundException || e is EntryPointNotFoundException) { }
        }

        /// <summary>Replaces <paramref name="path"/> with <paramref name="text"/> atomically (see the class).</summary>
        public static void WriteAllText(string path, string text) => WriteAllBytes(path, new UTF8Encoding(false).GetBytes(text));

        public static void WriteAllBytes(string path, byte[] bytes)
        {
            var full = PrepareFolder(path);
            var dir = Path.GetDirectoryName(full);
            if (Directory.Exists(full)) throw new IOException($"'{full}' is a folder, not a file");
            var tmp = Path.Combine(dir ?? ".", "." + Path.GetFileName(full) + "." + Guid.NewGuid().ToString("N").Substring(0, 12) + ".tmp");
            try
            {
                using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
                {
                    OwnerOnly(tmp);
                    fs.Write(bytes, 0, bytes.Length);
                    fs.Flush(true);
                }
                Replace(tmp, full);
            }
            finally
            {
                try { if (File.Exists(tmp)) File.Delete(tmp); } catch (Exception e) when (e is IOException || e is UnauthorizedAccessException) { }
            }
        }

        private static void Replace(string tmp, string target)
        {
            if (Unix)
            {
                int rc;
                try { rc = Rename(tmp, target); }
                catch (Exception e) when (e is DllNotFoundException || e is EntryPointNotFoundException) { rc = int.MinValue; }
                if (rc == 0) return;
                if (rc != int.MinValue) throw new IOException($"cannot rename into '{target}' (errno {Marshal.GetLastWin32Error()})");
            }
            if (File.Exists(target)) File.Replace(tmp, target, null); else File.Move(tmp, target);
        }

        /// <summary>Reads at most <paramref name="max"/> bytes of a small file (a holder file, say) as UTF-8; the rest is ignored.</summary>
        public static string ReadSmall(string path, int max)
        {
            using (var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete))
            {
                var buf = new byte[max];
                int n = 0, r;
                while (n < max && (r = fs.Read(buf, n, max - n)) > 0) n += r;
                return Encoding.UTF8.GetString(buf, 0, n);
            }
        }
    }
}
