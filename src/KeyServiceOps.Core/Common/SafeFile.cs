using System;
using System.IO;
using System.Runtime.InteropServices;
using System.Text;

namespace KeyServiceOps.Core
{
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

        /// <summary>Replaces <paramref name="path"/> with <paramref name="text"/> atomically (see the class).</summary>
        public static void WriteAllText(string path, string text) => WriteAllBytes(path, new UTF8Encoding(false).GetBytes(text));

        public static void WriteAllBytes(string path, byte[] bytes)
        {
            var full = Path.GetFullPath(path);
            var dir = Path.GetDirectoryName(full);
            if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
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
