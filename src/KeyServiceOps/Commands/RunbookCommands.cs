using System.Collections.Generic;
using System;
using System.Management.Automation;
using KeyServiceOps.Core;
using KeyServiceOps.Core.Diagnosis;
using KeyServiceOps.Core.Remote;
using KeyServiceOps.Core.Runbook;
using KeyServiceOps.Bases;

namespace KeyServiceOps.Commands
{

    [Cmdlet(VerbsLifecycle.Invoke, "KeyServiceRunbook", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
    [OutputType(typeof(RunbookStepResult), typeof(RunbookSummary))]
    public sealed class InvokeKeyServiceRunbookCommand : ContextCmdlet
    {
        /// <summary>How long to wait for another operator acting on the same instance before InstanceBusy.</summary>
        [Parameter] public double LockTimeoutSec { get; set; }

        protected override IReadOnlyDictionary<string, string> Overrides => SettingParameters.LockTimeout;

        private const int ActivityId = 3501;

        [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [Alias("IPAddress", "ComputerName", "Host")]
        [AddressInput, AllowNull]
        [ArgumentCompleter(typeof(AddressCompleter))]
        public InstancePipeBind[] Address { get; set; }

        [Parameter(ValueFromPipelineByPropertyName = true), ValidateRange(0, 65535)] public int Port { get; set; }
        [Parameter(ValueFromPipelineByPropertyName = true)] [ArgumentCompleter(typeof(UpstreamCompleter))] public string Upstream { get; set; }
        /// <summary>The incident to write notes on; piped incidents bring theirs. Without it, the open incident for the address is used.</summary>
        [Parameter(ValueFromPipelineByPropertyName = true)] [ArgumentCompleter(typeof(IncidentCompleter))] public string IncidentId { get; set; }
        [Parameter, ValidateRange(1, 3600)] public double RestartTimeoutSec { get; set; }
        [Parameter, ValidateRange(0.05, 600)] public double PollIntervalSec { get; set; }
        [Parameter] public HealthVia Via { get; set; } = HealthVia.Http;
        [Parameter, ValidateRange(1, 10000)] public int EscalationLogLines { get; set; } = 50;
        [Parameter, ValidateRange(2, 10)] public int EscalationLevel { get; set; } = 2;
        /// <summary>
        /// Started by the page, no one at the keyboard (issue #30): never prompts (every change is decided by the
        /// runbook's guards alone, as with -Confirm:$false), and ends with one summary note on the incident.
        /// </summary>
        [Parameter] public SwitchParameter Unattended { get; set; }

        private RunbookRunner _runner;

        protected override void BeginProcessing()
        {
            var rules = Setup(() => FaultRuleSet.Load(Settings.Healing.FaultRulesPath));
            var health = NewHealthChecker();
            var restarter = new KeyServiceRestarter(Docker, health, Audit, rules, Settings.Healing.FaultOwners, Log);
            _runner = new RunbookRunner(Settings, RingBalancer, Docker, restarter, health, PagerDutyIfConfigured, Audit, rules, Log);
            if (Settings.PagerDuty.Token == null) WriteWarning("PagerDuty is not configured (Set-KeyServiceOpsContext -PagerDutyToken): the runbook runs, but records no notes and cannot escalate.");
        }

        protected override void ProcessRecord()
        {
            foreach (var bind in Address ?? new InstancePipeBind[0]) PerItem(() =>
            {
                var a = bind?.Address();
                if (!Endpoint.TryParse(a, Port > 0 ? Port : Settings.Health.Port, out var ep, out var why))
                    throw Endpoint.InvalidAddress(a, why);
                var b = MyInvocation.BoundParameters;
                var o = new RunbookOptions
                {
                    Upstream = UpstreamOrDefault(Upstream), IncidentId = string.IsNullOrEmpty(IncidentId) ? null : IncidentId, Via = Via,
                    RestartTimeout = b.ContainsKey(nameof(RestartTimeoutSec)) ? TimeSpan.FromSeconds(RestartTimeoutSec) : Settings.Healing.RestartWaitTimeout,
                    PollInterval = b.ContainsKey(nameof(PollIntervalSec)) ? TimeSpan.FromSeconds(PollIntervalSec) : Settings.Healing.RestartPollInterval,
                    EscalationLogLines = EscalationLogLines, EscalationLevel = EscalationLevel, WhatIf = IsWhatIf,
                };
                var activity = $"Runbook for {ep.Target}";
                o.Progress = p => Post(() => Progress(ActivityId, activity, $"step {p.Step} ({p.Name}): {p.Status}", p.Step * 20 - 10, p.SecondsRemaining));
                var whatIf = IsWhatIf;
                var steps = new List<RunbookStepResult>();
                Func<string, string, System.Threading.Tasks.Task<bool>> confirm = Unattended ? (t, a) => System.Threading.Tasks.Task.FromResult(!whatIf) : (Func<string, string, System.Threading.Tasks.Task<bool>>)ConfirmAsync;
                var summary = Await(_runner.RunAsync(ep, o, confirm, step => Post(() =>
                {
                    Progress(ActivityId, activity, $"step {step.Step} ({step.Name}): {step.Outcome}", step.Step * 20);
                    steps.Add(step);
                    WriteObject(step);
                }), Cancellation));
                ProgressDone(ActivityId, activity);
                if (Unattended && !whatIf && summary.IncidentId != null && PagerDutyIfConfigured != null)
                {
                    // One summary note for the responder who opens the page.
                    try { Await(PagerDutyIfConfigured.AddNoteAsync(summary.IncidentId, RunbookRunner.UnattendedNote(summary, steps), Cancellation)); }
                    catch (OpsException e) when (!e.IsCancellation) { WriteWarning($"The summary note for incident {summary.IncidentId} was not written ({e.ErrorId}): {e.Message}"); }
                }
                WriteObject(summary);
            });
        }
    }

    /// <summary>One reconcile pass (for cron, Task Scheduler, a Kubernetes CronJob).</summary>
    [Cmdlet(VerbsLifecycle.Invoke, "KeyServiceSelfHealing", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
    [OutputType(typeof(SelfHealingAction), typeof(SelfHealingPassSummary))]
    public sealed class InvokeKeyServiceSelfHealingCommand : SelfHealingCmdlet
    {
        protected override void EndProcessing()
        {
            base.EndProcessing();
            var n = RunPass();
            WriteVerbose($"Self-healing pass done: {n} action(s) or decision(s) reported.");
        }
    }

    /// <summary>
    /// What self-healing knows between passes (its state file): the targets it took out and since when, counters,
    /// the restart budget left, back-off until, and the limits in force (given the same parameters as the loop).
    /// Reads only; no connection is made.
    /// </summary>
    [Cmdlet(VerbsCommon.Get, "KeyServiceSelfHealingStatus")]
    [OutputType(typeof(SelfHealingStatus))]
    public sealed class GetKeyServiceSelfHealingStatusCommand : SelfHealingCmdlet
    {
        protected override void EndProcessing()
        {
            base.EndProcessing();
            var o = Options();
            var state = Setup(() => SelfHealer.Load(o.StatePath));
            if (state.Pass == 0) WriteVerbose($"No self-healing pass has written {o.StatePath} yet.");
            WriteObject(SelfHealingStatus.From(state, o, o.StatePath, DateTimeOffset.UtcNow));
        }
    }

    /// <summary>The pass in a loop every -IntervalSec until Ctrl+C (or -Count passes).</summary>
    [Cmdlet(VerbsLifecycle.Start, "KeyServiceSelfHealing", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
    [OutputType(typeof(SelfHealingAction), typeof(SelfHealingPassSummary))]
    public sealed class StartKeyServiceSelfHealingCommand : SelfHealingCmdlet
    {
        private const int ActivityId = 3601;
        [Parameter, ValidateRange(0.05, 86400)] public double IntervalSec { get; set; } = 30;
        [Parameter, ValidateRange(1, int.MaxValue)] public int Count { get; set; }

        protected override void EndProcessing()
        {
            base.EndProcessing();
            var activity = $"Self-healing upstream '{UpstreamOrDefault(Upstream)}' every {IntervalSec:0.##} s";
            for (int pass = 1; Count == 0 || pass <= Count; pass++)
            {
                var n = RunPass();
                if (Count != 0 && pass == Count) break;
                var until = DateTimeOffset.UtcNow.AddSeconds(IntervalSec);
                while (true)
                {
                    var left = until - DateTimeOffset.UtcNow;
                    if (left <= TimeSpan.Zero) break;
                    Progress(ActivityId, activity, $"pass {pass} done ({n} reported); next pass in {left.TotalSeconds:0} s", Count == 0 ? -1 : pass * 100 / Count, (int)left.TotalSeconds);
                    Await(System.Threading.Tasks.Task.Delay(left < TimeSpan.FromSeconds(1) ? left : TimeSpan.FromSeconds(1), Cancellation));
                }
            }
            ProgressDone(ActivityId, activity);
        }
    }
}
