using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading.Tasks;

namespace KeyServiceOps.Lab.Estate
{
    public sealed class LabOptions
    {
        public int Instances { get; set; } = 3;
        public KongEra Era { get; set; } = KongEra.V3;
        public string Workspace { get; set; }
        public string RbacToken { get; set; }
        public double Threshold { get; set; }
        public bool KongHealthchecks { get; set; } = true;
        public string Upstream { get; set; } = "api_key_service";
        /// <summary>Extra targets (not backed by instances) to push the upstream past one page.</summary>
        public int ExtraTargets { get; set; }
        public bool Ssh { get; set; }
        public bool PagerDuty { get; set; }
        public bool CentralLogs { get; set; }
        /// <summary>
        /// VMs running a real Docker Engine (see <see cref="RealDockerEstate"/>), beside the simulated instances;
        /// with SSH on, the lab's sshd serves these VMs (their docker commands reach their own daemon).
        /// </summary>
        public int RealDockerVms { get; set; }
    }

    /// <summary>The simulated estate on loopback: instances on 127.B.C.x:8888 and the Kong emulator (plus SSH/PagerDuty when asked).</summary>
    public sealed partial class Lab : IAsyncDisposable
    {
        private readonly List<Func<ValueTask>> _disposers = new List<Func<ValueTask>>();

        public LabOptions Options { get; private set; }
        public string Block { get; private set; }
        public List<SimInstance> Instances { get; } = new List<SimInstance>();
        public KongEmulator Kong { get; private set; }
        public RealDockerEstate RealDocker { get; private set; }
        public IReadOnlyList<RealVm> Vms => (IReadOnlyList<RealVm>)RealDocker?.Vms ?? Array.Empty<RealVm>();
        public PagerDutyEmulator PagerDuty { get; private set; }

        private async Task StartPagerDutyCoreAsync()
        {
            PagerDuty = await PagerDutyEmulator.StartAsync();
            _disposers.Add(() => PagerDuty.DisposeAsync());
        }
        public string Upstream => Options.Upstream;
        public SimInstance this[int i] => Instances[i];

        public static async Task<Lab> StartAsync(LabOptions options = null)
        {
            var lab = new Lab { Options = options ?? new LabOptions() };
            await lab.StartCoreAsync();
            return lab;
        }

        private async Task StartCoreAsync()
        {
            Exception last = null;
            for (int attempt = 0; attempt < 5; attempt++)
            {
                Block = LabAddresses.NextBlock();
                var made = new List<SimInstance>();
                try
                {
                    var tasks = new List<Task>();
                    for (int i = 0; i < Options.Instances; i++)
                    {
                        var inst = new SimInstance($"{Block}.{i + 1 + 10}");
                        made.Add(inst);
                    }
                    // Start in small batches: Kestrel start-up is mostly CPU.
                    foreach (var batch in made.Chunk(16)) await Task.WhenAll(batch.Select(x => x.SetModeAsync(InstanceMode.Up)));
                    Instances.AddRange(made);
                    last = null;
                    break;
                }
                catch (Exception e) when (e is System.IO.IOException || e.InnerException is System.Net.Sockets.SocketException || e is System.Net.Sockets.SocketException)
                {
                    last = e;
                    foreach (var m in made) await m.DisposeAsync();
                }
            }
            if (last != null) throw last;
            foreach (var i in Instances) _disposers.Add(() => i.DisposeAsync());
            if (Options.RealDockerVms > 0)
            {
                RealDocker = await RealDockerEstate.StartAsync(Enumerable.Range(0, Options.RealDockerVms).Select(i => $"{Block}.{100 + i}").ToList());
                _disposers.Add(() => RealDocker.DisposeAsync());
            }

            Kong = await KongEmulator.StartAsync(Options.Era);
            _disposers.Add(() => Kong.DisposeAsync());
            Kong.Workspace = Options.Workspace;
            Kong.RbacToken = Options.RbacToken;
            Kong.AddUpstream(Options.Upstream, Options.Threshold, Options.KongHealthchecks);
            var byTarget = Instances.ToDictionary(i => i.Target);
            Kong.HealthOf = t => byTarget.TryGetValue(t, out var inst) ? (inst.Mode == InstanceMode.Up ? "HEALTHY" : "UNHEALTHY") : "HEALTHY";
            for (int i = 0; i < Options.ExtraTargets; i++)
                Kong.AddTarget(Options.Upstream, $"{Block}.{200 + i % 50}:{10000 + i}");
            foreach (var i in Instances) Kong.AddTarget(Options.Upstream, i.Target);
            foreach (var v in Vms) Kong.AddTarget(Options.Upstream, v.Target);
            if (Options.Ssh) await StartSshAsync();
            if (Options.PagerDuty) await StartPagerDutyAsync();
            if (Options.CentralLogs) await StartCentralLogsAsync();
        }

        private int _dealt;

        /// <summary>The next instance no one has taken yet (tests sharing one lab each take their own).</summary>
        public SimInstance NextUnused() => Instances[System.Threading.Interlocked.Increment(ref _dealt) - 1];

        public SimInstance Instance(string addressOrTarget)
            => Instances.First(i => i.Address == addressOrTarget || i.Target == addressOrTarget);

        /// <summary>Kong Admin URI as the module should be configured (without workspace: that is a separate setting).</summary>
        public Uri KongUri => Kong.BaseUri;

        public async ValueTask DisposeAsync()
        {
            for (int i = _disposers.Count - 1; i >= 0; i--)
            {
                try { await _disposers[i](); } catch (Exception) { }
            }
            _disposers.Clear();
        }

        private Task StartSshAsync() => StartSshCoreAsync();
        private Task StartPagerDutyAsync() => StartPagerDutyCoreAsync();
        private Task StartCentralLogsAsync() => StartCentralLogsCoreAsync();
    }
}
