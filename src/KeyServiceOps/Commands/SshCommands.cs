using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using KeyServiceOps.Core;
using KeyServiceOps.Core.Diagnosis;
using KeyServiceOps.Core.Remote;
using KeyServiceOps.Bases;

namespace KeyServiceOps.Commands
{
    public enum LogSource { Docker, Central }

    [Cmdlet(VerbsCommon.Get, "KeyServiceLog")]
    [OutputType(typeof(LogEntry))]
    public sealed class GetKeyServiceLogCommand : SshCmdlet
    {
        /// <summary>Docker (default): `docker logs` over SSH. Central: the central log service (the runbook's "logmet").</summary>
        [Parameter] public LogSource Source { get; set; } = LogSource.Docker;
        /// <summary>Central only: replaces the base query (instance_id:KeyServiceApi), in Lucene syntax, as written.</summary>
        [Parameter] public string Query { get; set; }
        /// <summary>Central only: text the message must contain, matched literally (Lucene characters are escaped).</summary>
        [Parameter] public string Match { get; set; }
        /// <summary>Central only: newest entries first.</summary>
        [Parameter] public SwitchParameter NewestFirst { get; set; }
        /// <summary>Central only: when the central service is unreachable or denies access, warn once and read docker logs over SSH instead.</summary>
        [Parameter] public SwitchParameter Fallback { get; set; }

        [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [Alias("IPAddress", "ComputerName", "Host")]
        [AddressInput, AllowNull]
        [ArgumentCompleter(typeof(AddressCompleter))]
        public InstancePipeBind[] Address { get; set; }

        /// <summary>The last N lines of the container log, stdout and stderr counted together (docker logs --tail).</summary>
        [Parameter, ValidateRange(0, int.MaxValue)] public int Tail { get; set; } = -1;
        /// <summary>A [datetime], a [timespan] back from now, an RFC 3339 time, a Unix time or a duration such as 10m.</summary>
        [Parameter] public object Since { get; set; }
        [Parameter] public object Until { get; set; }
        /// <summary>Keep streaming new lines until Ctrl+C.</summary>
        [Parameter] public SwitchParameter Follow { get; set; }

        private LogQuery _query;
        private KeyServiceOps.Core.CentralLogs.CentralLogClient _central;
        private bool _fellBack;

        protected override void BeginProcessing()
        {
            if (Source == LogSource.Central && Follow)
                ThrowArgument("FollowNotSupported", "-Follow reads a live container stream; the central log service is searched, not followed.", "Follow",
                    "Use -Source Docker -Follow, or search the central service again with -Since.");
            if (Source == LogSource.Docker && (Query != null || Match != null || NewestFirst))
                ThrowArgument("CentralOnlyParameter", "-Query, -Match and -NewestFirst apply to -Source Central only.", Query ?? Match, "Add -Source Central, or drop them.");
            try
            {
                _query = new LogQuery
                {
                    Tail = Tail >= 0 ? Tail : (int?)null,
                    Since = ShellText.ValidTime(Since is PSObject ps ? ps.BaseObject : Since, "Since"),
                    Until = ShellText.ValidTime(Until is PSObject pu ? pu.BaseObject : Until, "Until"),
                    Follow = Follow,
                };
            }
            catch (OpsException e) { ThrowOps(e); }
        }

        protected override void ProcessRecord()
        {
            foreach (var bind in Address ?? new InstancePipeBind[0]) PerItem(() =>
            {
                var a = bind?.Address();
                if (Source == LogSource.Central && !_fellBack && SearchCentral(a)) return;
                var t = SshTargetFor(a);
                // Lines are written as they arrive; the bounded queue holds the reader back when the pipeline is slower.
                long n;
                using (var batch = new OutputBatcher<LogEntry>(Post, WriteObject, Cancellation))
                {
                    n = Await(Docker.LogsAsync(t, _query, batch.Add, Cancellation));
                    batch.Flush();
                }
                DrainQueue();
                WriteVerbose($"{t.Host}: {n} log lines from {t.Container}.");
            });
        }

        /// <summary>Searches the central service; false when it is not available and -Fallback says to read docker logs instead.</summary>
        private bool SearchCentral(string address)
        {
            if (!Endpoint.TryParse(address, Settings.Health.Port, out var ep, out var why))
                throw Endpoint.InvalidAddress(address, why);
            long written = 0;
            try
            {
                if (_central == null)
                {
                    _central = new KeyServiceOps.Core.CentralLogs.CentralLogClient(Settings.ForCentralLogs(), Log, RetryBaseDelay("KEYSERVICEOPS_RETRY_BASE_MS"));
                }
                var now = DateTimeOffset.UtcNow;
                var search = new KeyServiceOps.Core.CentralLogs.CentralLogSearch
                {
                    Host = ep.Address, Query = Query, Match = Match, NewestFirst = NewestFirst, Tail = _query.Tail,
                    Since = _query.Since == null ? (DateTimeOffset?)null : ShellText.ResolveTime(_query.Since, now),
                    Until = _query.Until == null ? (DateTimeOffset?)null : ShellText.ResolveTime(_query.Until, now),
                };
                var n = Await(_central.SearchAsync(search, e => { System.Threading.Interlocked.Increment(ref written); Post(() => WriteObject(e)); }, Cancellation));
                WriteVerbose($"{ep.Address}: {n} log lines from the central log service.");
                return true;
            }
            catch (OpsException e) when (Fallback && System.Threading.Interlocked.Read(ref written) > 0 && Array.IndexOf(KeyServiceOps.Core.CentralLogs.CentralLogClient.FallbackErrorIds, e.ErrorId) >= 0)
            {
                // Lines were already written: docker logs now would repeat them and mix two sources. The error says so.
                throw new OpsException(e.ErrorId, e.Category,
                    $"{e.Message} {System.Threading.Interlocked.Read(ref written)} line(s) had been read from the central log service before it; not falling back to docker logs, which would repeat them.",
                    e.TargetObject, e.Details, e.RecommendedAction, e);
            }
            catch (OpsException e) when (Fallback && Array.IndexOf(KeyServiceOps.Core.CentralLogs.CentralLogClient.FallbackErrorIds, e.ErrorId) >= 0)
            {
                _fellBack = true;
                WriteWarning($"The central log service is not available ({e.ErrorId}: {e.Message}) Reading docker logs over SSH instead, as the runbook says.");
                return false;
            }
        }
    }

    [Cmdlet(VerbsCommon.Get, "KeyServiceFault", DefaultParameterSetName = InputSet)]
    [OutputType(typeof(Fault))]
    public sealed class GetKeyServiceFaultCommand : SshCmdlet
    {
        private const string InputSet = "InputObject", AddressSet = "Address";

        /// <summary>Log entries (Get-KeyServiceLog), container states (Get-KeyServiceContainer) or plain log lines.</summary>
        [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = InputSet)]
        [AllowNull, AllowEmptyString]
        public object[] InputObject { get; set; }

        /// <summary>Read the last -Tail lines and the container state of these instances directly.</summary>
        [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true, ParameterSetName = AddressSet)]
        [Alias("IPAddress", "ComputerName", "Host")]
        [ArgumentCompleter(typeof(AddressCompleter))]
        public string[] Address { get; set; }

        [Parameter(ParameterSetName = AddressSet), ValidateRange(1, 1000000)] public int Tail { get; set; } = 500;

        /// <summary>Your rules file (same shape as the module's KeyServiceOps.FaultRules.json).</summary>
        [Parameter] public string RulePath { get; set; }

        private FaultAnalyzer _analyzer;
        private FaultRuleSet _rules;

        protected override void BeginProcessing()
        {
            // The SSH parameters apply when it reads the instances itself (-Address), not to piped input.
            if (ParameterSetName == InputSet)
                foreach (var p in SettingParameters.Ssh.Keys)
                    if (MyInvocation.BoundParameters.ContainsKey(p))
                        ThrowOps(OpsErrorRecord.InvalidArgument("SshParameterWithoutAddress", $"-{p} applies when Get-KeyServiceFault reads an instance itself (-Address); piped log lines were read already.", p,
                            $"Drop -{p}, or give it to the command that read the lines (Get-KeyServiceLog -{p} …)."));
            var path = RulePath != null ? GetUnresolvedProviderPathFromPSPath(RulePath) : Settings.Healing.FaultRulesPath;
            _rules = Setup(() => FaultRuleSet.Load(path));
            _analyzer = new FaultAnalyzer(_rules, Settings.Healing.FaultOwners, WriteWarning);
            if (_rules.Sources.Count > 1 || path != null) WriteVerbose($"Fault rules from: {string.Join(", ", _rules.Sources)}");
        }

        protected override void ProcessRecord()
        {
            if (ParameterSetName == AddressSet)
            {
                foreach (var a in Address ?? new string[0]) PerItem(() =>
                {
                    var t = SshTargetFor(a);
                    var faults = Await(Docker.DiagnoseAsync(t, Tail, _rules, Settings.Healing.FaultOwners, Cancellation));
                    if (faults.Count == 0) WriteVerbose($"{t.Host}: no fault in the last {Tail} lines or the container state.");
                    WriteObject(faults, true);
                });
                return;
            }
            foreach (var o in InputObject ?? new object[0])
            {
                var item = o is PSObject ps ? ps.BaseObject : o;
                switch (item)
                {
                    case null: break;
                    case LogEntry e: _analyzer.Add(e); break;
                    case ContainerState s: _analyzer.Add(s); break;
                    case string line: _analyzer.Add(LogEntry.Parse(line, LogStream.Stdout)); break;
                    default:
                        WriteOpsError(new OpsException("UnsupportedInput", OpsErrorCategory.InvalidType, $"Get-KeyServiceFault reads log entries, container states or text lines, not {item.GetType().Name}.", item,
                            recommendedAction: "Pipe Get-KeyServiceLog or Get-KeyServiceContainer into it."));
                        break;
                }
            }
        }

        protected override void EndProcessing()
        {
            base.EndProcessing();
            if (ParameterSetName != InputSet) return;
            var faults = _analyzer.Results();
            WriteVerbose($"{_analyzer.LinesRead} lines read, {faults.Count} faults found.");
            WriteObject(faults, true);
        }
    }

    [Cmdlet(VerbsCommon.Get, "KeyServiceContainer")]
    [OutputType(typeof(ContainerState))]
    public sealed class GetKeyServiceContainerCommand : SshCmdlet
    {
        [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [Alias("IPAddress", "ComputerName", "Host")]
        [AddressInput, AllowNull]
        [ArgumentCompleter(typeof(AddressCompleter))]
        public InstancePipeBind[] Address { get; set; }

        protected override void ProcessRecord()
        {
            foreach (var a in Address ?? new InstancePipeBind[0]) PerItem(() => WriteObject(Await(Docker.InspectAsync(SshTargetFor(a?.Address()), Cancellation))));
        }
    }

    [Cmdlet(VerbsLifecycle.Restart, "KeyService", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, DefaultParameterSetName = AddressSet)]
    [OutputType(typeof(RestartResult))]
    public sealed class RestartKeyServiceCommand : SshCmdlet
    {
        /// <summary>How long to wait for another operator acting on the same instance before InstanceBusy.</summary>
        [Parameter] public double LockTimeoutSec { get; set; }

        protected override IReadOnlyDictionary<string, string> Overrides => OverrideMap;
        private static readonly IReadOnlyDictionary<string, string> OverrideMap = SettingParameters.Join(SettingParameters.Ssh, SettingParameters.LockTimeout);

        private const string AddressSet = "Address", FaultSet = "Fault";
        private const int ActivityId = 3401;

        [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true, ParameterSetName = AddressSet)]
        [Alias("IPAddress", "ComputerName", "Host")]
        [AddressInput, AllowNull]
        [ArgumentCompleter(typeof(AddressCompleter))]
        public InstancePipeBind[] Address { get; set; }

        /// <summary>Faults from Get-KeyServiceFault: the instance is restarted unless its latest fault is a dependency fault.</summary>
        [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = FaultSet)]
        public Fault[] Fault { get; set; }

        /// <summary>Poll health after the restart until the API is operational or -TimeoutSec passes.</summary>
        [Parameter] public SwitchParameter Wait { get; set; }
        [Parameter, ValidateRange(1, 3600)] public double TimeoutSec { get; set; }
        [Parameter, ValidateRange(0.05, 600)] public double PollIntervalSec { get; set; }
        /// <summary>Seconds docker waits after SIGTERM before SIGKILL (docker restart --time).</summary>
        [Parameter, ValidateRange(0, 600)] public int GraceSec { get; set; } = -1;
        /// <summary>Check health over HTTP from here (default) or with curl on the VM.</summary>
        [Parameter] public HealthVia Via { get; set; } = HealthVia.Http;
        [Parameter(ValueFromPipelineByPropertyName = true)] [ArgumentCompleter(typeof(IncidentCompleter))] public string IncidentId { get; set; }
        /// <summary>Restart even when the latest fault is a dependency (cipher, IAM) fault. Never skips the operational-instance question.</summary>
        [Parameter] public SwitchParameter Force { get; set; }
        /// <summary>Restart although it is operational and may be taking traffic, without the question (the warning stays).</summary>
        [Parameter] public SwitchParameter EvenIfHealthy { get; set; }

        private KeyServiceRestarter _restarter;
        private readonly List<Fault> _faults = new List<Fault>();

        protected override void BeginProcessing()
        {
            _restarter = Setup(() => new KeyServiceRestarter(Docker, NewHealthChecker(), Audit, FaultRuleSet.Load(Settings.Healing.FaultRulesPath), Settings.Healing.FaultOwners, Log));
        }

        protected override void ProcessRecord()
        {
            if (ParameterSetName == FaultSet)
            {
                // Collect: one restart per instance, judged on all of its faults.
                _faults.AddRange((Fault ?? new Fault[0]).Where(f => f != null));
                return;
            }
            foreach (var a in Address ?? new InstancePipeBind[0]) PerItem(() => RestartOne(a?.Address(), null));
        }

        protected override void EndProcessing()
        {
            base.EndProcessing();
            foreach (var g in _faults.GroupBy(f => f.Address ?? "", StringComparer.OrdinalIgnoreCase))
            {
                if (g.Key.Length == 0)
                {
                    WriteOpsError(new OpsException("FaultWithoutAddress", OpsErrorCategory.InvalidArgument,
                        "A piped fault carries no address (it came from text lines), so there is nothing to restart.", g.First(),
                        recommendedAction: "Use Get-KeyServiceLog -Address ... | Get-KeyServiceFault, or Restart-KeyService -Address."));
                    continue;
                }
                var list = g.ToList();
                PerItem(() => RestartOne(g.Key, list));
            }
        }

        private void RestartOne(string address, IReadOnlyList<Fault> known)
        {
            var t = SshTargetFor(address);
            if (!IsWhatIf)
            {
                // Restarting an operational instance drops its requests in flight: say so, and ask where the host can (#27 row 3).
                var h = Await(NewHealthChecker().CheckAsync(new Endpoint(t.Host, Settings.Health.Port), Cancellation));
                if (h.Healthy && !WarnAndAsk($"{t.Host} is operational and may be taking traffic: restarting it drops the requests in flight. Take it out of the ring-balancer first (Remove-RingBalancerTarget).",
                        $"Restart {t.Container} on {t.Host}, operational?", "Healthy instance", EvenIfHealthy, "-EvenIfHealthy"))
                {
                    WriteVerbose($"{t.Host}: not restarted (declined: it is operational).");
                    return;
                }
            }
            if (!ShouldProcess($"{t.Container} on {t.Host}", Wait ? "Restart container and wait for health" : "Restart container")) return;
            var b = MyInvocation.BoundParameters;
            var o = new RestartOptions
            {
                Wait = Wait, Force = Force, KnownFaults = known, Via = Via, HealthPort = Settings.Health.Port, IncidentId = IncidentId,
                Timeout = b.ContainsKey(nameof(TimeoutSec)) ? TimeSpan.FromSeconds(TimeoutSec) : Settings.Healing.RestartWaitTimeout,
                PollInterval = b.ContainsKey(nameof(PollIntervalSec)) ? TimeSpan.FromSeconds(PollIntervalSec) : Settings.Healing.RestartPollInterval,
                GraceSeconds = GraceSec >= 0 ? GraceSec : (int?)null,
                LockDirectory = Settings.Safety.LockDirectory, LockTimeout = Settings.Safety.LockTimeout, Leases = Settings.Leases,
            };
            var activity = $"Restarting {t.Container} on {t.Host}";
            var total = o.Timeout.TotalSeconds;
            var r = Await(_restarter.RestartAsync(t, o, p => TryPost(() =>
                Progress(ActivityId, activity,
                    p.LastHealth == null ? p.Phase : $"{p.Phase}: {p.Elapsed.TotalSeconds:0} s elapsed, {p.Remaining.TotalSeconds:0} s left (check {p.Attempts})",
                    total <= 0 ? -1 : (int)(100 * p.Elapsed.TotalSeconds / total), (int)p.Remaining.TotalSeconds)), Cancellation));
            ProgressDone(ActivityId, activity);
            WriteObject(r);
            if (r.Recovered == false)
                WriteOpsError(new OpsException("KeyServiceNotRecovered", OpsErrorCategory.OperationTimeout,
                    $"{t.Host}: the container was restarted but the API was not operational within {o.Timeout.TotalSeconds:0} s (last check: {r.Health?.Status} {r.Health?.Detail}).",
                    t.Host, recommendedAction: "Collect the logs (Get-KeyServiceLog -Tail 500) and escalate the incident to level 2 (Set-PagerDutyIncident -EscalationLevel 2)."));
        }
    }
}
