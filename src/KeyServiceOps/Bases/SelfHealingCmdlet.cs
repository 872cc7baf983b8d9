using System;
using System.Management.Automation;
using KeyServiceOps.Core.Diagnosis;
using KeyServiceOps.Core.Remote;
using KeyServiceOps.Core.Runbook;
using KeyServiceOps.Commands;

namespace KeyServiceOps.Bases
{
    /// <summary>Parameters of a self-healing pass (one pass, or the loop).</summary>
    public abstract class SelfHealingCmdlet : ContextCmdlet
    {
        [Parameter] [ArgumentCompleter(typeof(UpstreamCompleter))] public string Upstream { get; set; }
        [Parameter, ValidateRange(1, 100)] public int FailuresToRemove { get; set; } = 3;
        [Parameter, ValidateRange(1, 100)] public int PassesToAdd { get; set; } = 2;
        /// <summary>Also restart the container of a removed instance that keeps failing (within -MaxRestartsPerHour).</summary>
        [Parameter] public SwitchParameter Restart { get; set; }
        [Parameter, ValidateRange(1, 60)] public int MaxRestartsPerHour { get; set; } = 3;
        /// <summary>Back-off after a target's first restart, doubling per restart up to -RestartBackoffMaxSec; reset after 10 minutes healthy.</summary>
        [Parameter, ValidateRange(1, 86400)] public double RestartBackoffSec { get; set; } = 10;
        [Parameter, ValidateRange(1, 86400)] public double RestartBackoffMaxSec { get; set; } = 300;
        /// <summary>Never more than this share of the upstream out at once (counting targets already out); always one.</summary>
        [Parameter, ValidateRange(0.01, 1.0)] public double MaxEjectionShare { get; set; } = 0.10;
        /// <summary>With fewer than this share of the targets in rotation healthy, take nothing out and escalate.</summary>
        [Parameter, ValidateRange(0.0, 1.0)] public double PanicThreshold { get; set; } = 0.5;
        [Parameter, ValidateRange(0, 3600)] public double StartupGraceSec { get; set; } = 60;
        /// <summary>Counters between passes (default ~/.keyserviceops/selfhealing-state.json), locked while a pass runs.</summary>
        [Parameter] public string StatePath { get; set; }
        /// <summary>Started by an engine with no one at the keyboard: never asks, whatever $ConfirmPreference says; the pass's own limits decide.</summary>
        [Parameter] public SwitchParameter Unattended { get; set; }

        private SelfHealer _healer;

        protected SelfHealer Healer
        {
            get
            {
                if (_healer != null) return _healer;
                var rules = Setup(() => FaultRuleSet.Load(Settings.Healing.FaultRulesPath));
                var health = NewHealthChecker();
                var restarter = Restart ? new KeyServiceRestarter(Docker, health, Audit, rules, Settings.Healing.FaultOwners, Log) : null;
                return _healer = new SelfHealer(Settings, RingBalancer, health, restarter, PagerDutyIfConfigured, Log);
            }
        }

        protected SelfHealingOptions Options() => new SelfHealingOptions
        {
            Upstream = UpstreamOrDefault(Upstream), FailuresToRemove = FailuresToRemove, PassesToAdd = PassesToAdd, Restart = Restart,
            MaxRestartsPerHour = MaxRestartsPerHour, RestartBackoff = TimeSpan.FromSeconds(RestartBackoffSec), StartupGrace = TimeSpan.FromSeconds(StartupGraceSec),
            RestartBackoffMax = TimeSpan.FromSeconds(Math.Max(RestartBackoffSec, RestartBackoffMaxSec)), MaxEjectionShare = MaxEjectionShare, PanicThreshold = PanicThreshold,
            StatePath = StatePath != null ? GetUnresolvedProviderPathFromPSPath(StatePath) : SelfHealingOptions.DefaultStatePath(),
            WhatIf = IsWhatIf,
        };

        protected int RunPass()
        {
            var n = 0;
            var whatIf = IsWhatIf;
            Func<string, string, System.Threading.Tasks.Task<bool>> confirm = Unattended ? (t, a) => System.Threading.Tasks.Task.FromResult(!whatIf) : (Func<string, string, System.Threading.Tasks.Task<bool>>)ConfirmAsync;
            Await(Healer.PassAsync(Options(), confirm, a => Post(() => { n++; WriteObject(a); }), Cancellation,
                summary => Post(() => WriteObject(summary))));
            return n;
        }
    }
}
