using System;
using System.IO;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using KeyServiceOps.Core.Remote;
using Xunit;

namespace KeyServiceOps.Core.Tests
{
    public class SpillBufferTests
    {
        [Fact]
        public async Task A_slow_reader_gets_every_byte_in_order_while_the_writer_never_waits_and_the_excess_goes_to_a_file()
        {
            var dir = Directory.CreateTempSubdirectory("kso-spill-test").FullName;
            using var b = new SpillBuffer(64 * 1024, dir);
            const int lines = 200_000;
            var writer = Task.Run(() =>
            {
                for (int i = 0; i < lines; i++) { var x = Encoding.ASCII.GetBytes($"line {i:D7}\n"); b.Write(x, 0, x.Length); }
                b.Complete();
            });
            // The reader starts late and is slow at first: the writer finishes without waiting for it.
            await writer.WaitAsync(TimeSpan.FromMinutes(2));
            Assert.True(b.PeakSpilledBytes > 1024 * 1024, $"spilled {b.PeakSpilledBytes}");
            Assert.Single(Directory.GetFiles(dir));
            using var r = new StreamReader(b);
            int n = 0; string l;
            while ((l = r.ReadLine()) != null) { Assert.Equal($"line {n:D7}", l); n++; if (n % 50_000 == 0) Thread.Sleep(10); }
            Assert.Equal(lines, n);
            b.Dispose();
            Assert.Empty(Directory.GetFiles(dir)); // deleted on dispose
        }

        [Fact]
        public void Interleaved_writes_and_reads_keep_order_across_memory_and_file()
        {
            using var b = new SpillBuffer(64 * 1024);
            var expected = new MemoryStream(); var got = new MemoryStream();
            var rnd = new Random(7); var buf = new byte[200_000];
            for (int round = 0; round < 200; round++)
            {
                var len = rnd.Next(1, 100_000);
                for (int i = 0; i < len; i++) buf[i] = (byte)rnd.Next(256);
                b.Write(buf, 0, len); expected.Write(buf, 0, len);
                var want = rnd.Next(1, 120_000); var rb = new byte[want];
                int k; while (want > 0 && got.Length < expected.Length && (k = b.Read(rb, 0, Math.Min(want, (int)(expected.Length - got.Length)))) > 0) { got.Write(rb, 0, k); want -= k; }
            }
            b.Complete();
            var rest = new byte[65536]; int m;
            while ((m = b.Read(rest, 0, rest.Length)) > 0) got.Write(rest, 0, m);
            Assert.Equal(expected.ToArray(), got.ToArray());
            Assert.True(b.PeakSpilledBytes > 0);
        }

        [Fact]
        public void Abandon_ends_the_reader_and_drops_later_writes()
        {
            using var b = new SpillBuffer(64 * 1024);
            b.Write(new byte[100], 0, 100);
            b.Abandon();
            b.Write(new byte[100], 0, 100);
            Assert.Equal(0, b.Read(new byte[10], 0, 10));
        }
    }
}
