using System;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using KeyServiceOps.Core.Health;
using KeyServiceOps.Lab;
using KeyServiceOps.Lab.Estate;
using Xunit;

namespace KeyServiceOps.Core.Tests
{
    public class HealthCheckerTests
    {
        private static HealthChecker Checker(double timeoutSec = 1.5)
            => new HealthChecker(HttpHandlers.Get(false, null), null, null, TimeSpan.FromSeconds(timeoutSec));

        [Theory]
        [InlineData(InstanceMode.Up, HealthStatus.Up, true, 200)]
        [InlineData(InstanceMode.Down, HealthStatus.Down, false, null)]
        [InlineData(InstanceMode.Error500, HealthStatus.Unhealthy, false, 500)]
        [InlineData(InstanceMode.WrongBody, HealthStatus.Degraded, false, 200)]
        public async Task Classifies_each_instance_mode(InstanceMode mode, HealthStatus status, bool healthy, int? http)
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 1 });
            await lab[0].SetModeAsync(mode);
            var r = await Checker().CheckAsync(new Endpoint(lab[0].Address, 8888), CancellationToken.None);
            Assert.Equal(status, r.StatusValue);
            Assert.Equal(healthy, r.Healthy);
            Assert.Equal(http, r.HttpStatus);
            Assert.Equal($"http://{lab[0].Address}:8888/api/auth/healthz", r.Url);
        }

        [Fact]
        public async Task A_hung_endpoint_ends_at_the_timeout()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 1 });
            await lab[0].SetModeAsync(InstanceMode.Hung);
            var sw = Stopwatch.StartNew();
            var r = await Checker(1.0).CheckAsync(new Endpoint(lab[0].Address, 8888), CancellationToken.None);
            sw.Stop();
            Assert.Equal(HealthStatus.Timeout, r.StatusValue);
            Assert.True(sw.Elapsed.TotalSeconds >= 0.9, $"ended after {sw.Elapsed}, before the timeout");
            Assert.Equal(1, lab[0].HealthRequests);
        }

        [Fact]
        public async Task A_50MB_body_is_not_read_whole()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 1 });
            await lab[0].SetModeAsync(InstanceMode.HugeBody);
            var r = await Checker(10).CheckAsync(new Endpoint(lab[0].Address, 8888), CancellationToken.None);
            Assert.Equal(HealthStatus.Degraded, r.StatusValue);
            // The checker stops at its bound (64 KiB) and says so; it never buffers the 50 MB.
            Assert.Contains("not in the first 65536 bytes (body not read further)", r.Detail);
        }

        [Fact]
        public async Task Fan_out_with_hung_instances_takes_about_one_timeout()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 12 });
            foreach (var i in lab.Instances.Take(4)) await i.SetModeAsync(InstanceMode.Hung);
            var sw = Stopwatch.StartNew();
            var results = await Checker(1.0).CheckManyAsync(lab.Instances.Select(i => new Endpoint(i.Address, 8888)).ToList(), 64, CancellationToken.None);
            sw.Stop();
            Assert.Equal(4, results.Count(r => r.StatusValue == HealthStatus.Timeout));
            Assert.Equal(8, results.Count(r => r.Healthy));
            Assert.Equal(lab.Instances.Select(i => i.Address), results.Select(r => r.Address)); // input order
            // Concurrent, not serial: every hung check started before any of them timed out (intervals overlap).
            var hung = results.Where(r => r.StatusValue == HealthStatus.Timeout).ToList();
            var lastStart = hung.Max(r => r.CheckedAt);
            var firstEnd = hung.Min(r => r.CheckedAt + r.Latency);
            Assert.True(lastStart < firstEnd, $"the hung checks ran one after another (last start {lastStart:O}, first end {firstEnd:O})");
        }

        [Fact]
        public async Task Cancellation_stops_a_check_at_once()
        {
            await using var lab = await Lab.Estate.Lab.StartAsync(new LabOptions { Instances = 1 });
            await lab[0].SetModeAsync(InstanceMode.Hung);
            using var cts = new CancellationTokenSource(200);
            var sw = Stopwatch.StartNew();
            // Without cancellation this would end as a Timeout result after 30 s, not as an exception.
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Checker(30).CheckAsync(new Endpoint(lab[0].Address, 8888), cts.Token));
        }
    }
}
