using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Management.Automation;
using System.Threading;
using System.Threading.Tasks;
using KeyServiceOps.Core;
using KeyServiceOps.Core.Health;
using KeyServiceOps.Bases;

namespace KeyServiceOps.Commands
{
    [Cmdlet(VerbsDiagnostic.Test, "KeyServiceHealth")]
    [OutputType(typeof(HealthResult), typeof(bool))]
    public sealed class TestKeyServiceHealthCommand : ContextCmdlet
    {
        private const int ActivityId = 3201;
        private readonly Queue<Task<HealthResult>> _pending = new Queue<Task<HealthResult>>();
        private readonly Stopwatch _clock = new Stopwatch();
        private SemaphoreSlim _gate;
        private HealthChecker _checker;
        private bool _allHealthy = true;
        private int _count;

        [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [Alias("IPAddress", "ComputerName", "Host")]
        [AddressInput, AllowNull]
        [ArgumentCompleter(typeof(AddressCompleter))]
        [AllowEmptyString]
        public InstancePipeBind[] Address { get; set; }

        [Parameter(ValueFromPipelineByPropertyName = true), ValidateRange(0, 65535)]
        public int Port { get; set; }

        [Parameter(ValueFromPipelineByPropertyName = true)]
        public string Upstream { get; set; }

        [Parameter(ValueFromPipelineByPropertyName = true)]
        [ArgumentCompleter(typeof(IncidentCompleter))]
        public string IncidentId { get; set; }

        [Parameter] public string Path { get; set; }
        [Parameter] public string ExpectedText { get; set; }
        [Parameter] public double TimeoutSec { get; set; }
        [Parameter] public int ThrottleLimit { get; set; }
        /// <summary>Http (default): probe from here. Ssh: run the runbook's curl to localhost on the VM, for ports not reachable from here.</summary>
        [Parameter] public KeyServiceOps.Core.Remote.HealthVia Via { get; set; } = KeyServiceOps.Core.Remote.HealthVia.Http;

        /// <summary>Return one bool: true when every instance checked is healthy.</summary>
        [Parameter] public SwitchParameter Quiet { get; set; }

        /// <summary>This call's health check: the health settings it may override (SSH for -Via Ssh comes from the context, or -Context).</summary>
        protected override IReadOnlyDictionary<string, string> Overrides => OverrideMap;
        private static readonly IReadOnlyDictionary<string, string> OverrideMap = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
        {
            ["Path"] = "HealthPath", ["ExpectedText"] = "ExpectedText", ["TimeoutSec"] = "HealthTimeoutSec", ["ThrottleLimit"] = "ThrottleLimit",
        };

        protected override void BeginProcessing()
        {
            _checker = NewHealthChecker();
            if (Via == KeyServiceOps.Core.Remote.HealthVia.Ssh) { var _ = Docker; } // made here, not on a worker thread
            _gate = new SemaphoreSlim(Via == KeyServiceOps.Core.Remote.HealthVia.Ssh ? Settings.Health.SshThrottle : Settings.Health.HttpThrottle);
            _clock.Start();
        }

        protected override void ProcessRecord()
        {
            foreach (var bind in Address ?? new InstancePipeBind[0])
            {
                if (bind == null) continue;
                string a;
                try { a = bind.Address(); }
                catch (OpsException e) { WriteOpsError(e); continue; }
                if (!Endpoint.TryParse(a, Port > 0 ? Port : Settings.Health.Port, out var ep, out var why))
                {
                    WriteOpsError(Endpoint.InvalidAddress(a, why));
                    continue;
                }
                var upstream = Upstream; var incident = IncidentId;
                KeyServiceOps.Core.Remote.SshTarget ssh = null;
                if (Via == KeyServiceOps.Core.Remote.HealthVia.Ssh)
                {
                    try { ssh = SshTargetFor(ep.Address); }
                    catch (OpsException e) { WriteOpsError(e); continue; }
                }
                _count++;
                _pending.Enqueue(HealthChecker.Gated(_gate, async () =>
                {
                    var r = await new KeyServiceOps.Core.Remote.HealthProbe(_checker, ssh != null ? Docker : null).CheckAsync(ep, ssh, Via, Cancellation).ConfigureAwait(false);
                    r.Upstream = string.IsNullOrEmpty(upstream) ? null : upstream;
                    r.IncidentId = string.IsNullOrEmpty(incident) ? null : incident;
                    return r;
                }, Cancellation));
            }
            DrainQueue();
            // Stream results that are already done, in input order.
            while (_pending.Count > 0 && _pending.Peek().IsCompleted) Emit(_pending.Dequeue());
        }

        protected override void EndProcessing()
        {
            var total = _count;
            while (_pending.Count > 0)
            {
                var head = _pending.Peek();
                while (!head.Wait(1000, Cancellation))
                {
                    var left = _pending.Count(t => !t.IsCompleted);
                    Progress(ActivityId, "Testing key service health", $"{total - left} of {total} answered, {left} waiting ({_clock.Elapsed.TotalSeconds:0} s)", total == 0 ? -1 : (total - left) * 100 / total);
                    DrainQueue();
                }
                Emit(_pending.Dequeue());
            }
            if (total > 0 && _clock.Elapsed.TotalSeconds >= 1) ProgressDone(ActivityId, "Testing key service health");
            base.EndProcessing();
            if (Quiet) WriteObject(_count > 0 && _allHealthy);
        }

        private void Emit(Task<HealthResult> t)
        {
            if (t.IsCanceled) throw new PipelineStoppedException();
            HealthResult r = null;
            PerItem(() => r = t.GetAwaiter().GetResult());
            if (r == null) { _allHealthy = false; return; }
            if (!r.Healthy) _allHealthy = false;
            if (!Quiet) WriteObject(r);
        }
    }
}
