# The page starts the runbook (issue #30): a script for an engine that runs a command per PagerDuty delivery
# (a PagerDuty Automation Actions runner, a webhook receiver, a Kubernetes Job). It reads the delivery's body from a
# file and its X-PagerDuty-Signature from the environment, and prints one JSON line per instance for the job log.
# Exit codes: 0 done (or nothing to do), 2 a runbook ended Failed, 3 the delivery was not verified or not readable.
param(
    [string] $BodyPath = $env:PD_BODY_FILE,
    [string] $Signature = $env:PD_SIGNATURE,
    [string] $ConfigPath = $env:KSO_CONFIG,
    [string] $ModulePath = $(if ($env:KSO_MODULE) { $env:KSO_MODULE } else { 'KeyServiceOps' })
)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
Import-Module $ModulePath
Set-KeyServiceOpsContext -ConfigPath $ConfigPath -Confirm:$false
try {
    # The signing secret comes from KEYSERVICEOPS_PD_WEBHOOK_SECRET (the engine's secret store sets it).
    $incidents = @(ConvertFrom-PagerDutyWebhook -Path $BodyPath -Signature $Signature)
}
catch {
    [Console]::Error.WriteLine("delivery refused: $($_.FullyQualifiedErrorId): $($_.Exception.Message)")
    exit 3
}
if ($incidents.Count -eq 0) { '{"result":"nothing to do"}'; exit 0 }
$summaries = @($incidents | Invoke-KeyServiceRunbook -Unattended -ErrorAction Continue | Where-Object { $_.PSObject.Properties['FinalState'] })
foreach ($s in $summaries) {
    [pscustomobject]@{ incident = $s.IncidentId; target = $s.Target; finalState = $s.FinalState; seconds = $s.Seconds; actions = @($s.Actions); warnings = @($s.Warnings) } |
        ConvertTo-Json -Compress
}
if ($summaries.FinalState -contains 'Failed') { exit 2 }
exit 0
