using System;
using System.Collections.Generic;
using System.IO;
using System.Text;

namespace KeyServiceOps.Core
{
    /// <summary>
    /// A JSON-lines file shared by many writers (threads, runspaces, processes): every change holds an exclusive lock
    /// on the file itself (a share-none open: an exclusive flock on Unix) with a bounded retry, so no line is lost or
    /// torn. Used by the audit log and the pending-notes outbox. Errors are the caller's to name.
    /// </summary>
    internal static class LockedFile
    {
        private static FileStream OpenExclusive(string path, TimeSpan timeout) => SafeFile.OpenExclusive(path, timeout);

        /// <summary>Appends one line (with its newline) in one write, after repairing a line torn by a killed writer; flushed to disk.</summary>
        public static void AppendLine(string path, string line, TimeSpan timeout)
        {
            var bytes = new UTF8Encoding(false).GetBytes(line + "\n");
            using (var fs = OpenExclusive(path, timeout))
            {
                var end = fs.Seek(0, SeekOrigin.End);
                if (end > 0)
                {
                    fs.Seek(end - 1, SeekOrigin.Begin);
                    if (fs.ReadByte() != '\n') { fs.Seek(0, SeekOrigin.End); fs.WriteByte((byte)'\n'); }
                }
                fs.Seek(0, SeekOrigin.End);
                fs.Write(bytes, 0, bytes.Length);
                fs.Flush(true);
            }
        }

        /// <summary>Replaces the file's whole lines with what <paramref name="change"/> makes of them, under the same lock.</summary>
        public static void Rewrite(string path, Func<List<string>, IEnumerable<string>> change, TimeSpan timeout)
        {
            using (var fs = OpenExclusive(path, timeout))
            {
                string text;
                using (var r = new StreamReader(fs, new UTF8Encoding(false), false, 4096, leaveOpen: true)) text = r.ReadToEnd();
                var whole = text.LastIndexOf('\n');
                var lines = new List<string>();
                foreach (var l in (whole < 0 ? "" : text.Substring(0, whole)).Split('\n')) if (l.Trim().Length > 0) lines.Add(l);
                var sb = new StringBuilder();
                foreach (var l in change(lines)) sb.Append(l).Append('\n');
                var bytes = new UTF8Encoding(false).GetBytes(sb.ToString());
                fs.SetLength(0);
                fs.Seek(0, SeekOrigin.Begin);
                fs.Write(bytes, 0, bytes.Length);
                fs.Flush(true);
            }
        }
    }
}
