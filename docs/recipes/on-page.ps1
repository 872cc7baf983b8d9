# The page starts the runbook (issue #30): a script for an engine that runs a command per PagerDuty delivery
# (a PagerDuty Automation Actions runner, a webhook receiver, a Kubernetes Job). It reads the delivery's body from a
# file and its X-PagerDuty-Signature from the environment, and prints one JSON line per instance (or one for the
# delivery) on stdout for the job log; warnings go into that line, never onto stdout as text.
# Exit codes: 0 recovered, healthy or nothing to do; 2 a runbook failed or could not run (the incident gets a note
# saying so); 3 the delivery was not verified or not readable; 4 handed to a human (escalated, assigned to a
# dependency's owner, a dependency fault, maintenance); 1 the module or its settings could not be loaded.
param(
    [string] $BodyPath = $env:PD_BODY_FILE,
    [string] $Signature = $env:PD_SIGNATURE,
    [string] $ConfigPath = $env:KSO_CONFIG,
    [string] $ModulePath = $(if ($env:KSO_MODULE) { $env:KSO_MODULE } else { 'KeyServiceOps' })
)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$PSStyle.OutputRendering = 'PlainText'
try {
    Import-Module $ModulePath
    Set-KeyServiceOpsContext -ConfigPath $ConfigPath -Confirm:$false
}
catch {
    [Console]::Error.WriteLine("setup failed: $($_.FullyQualifiedErrorId): $($_.Exception.Message)")
    exit 1
}
try {
    # The signing secret comes from KEYSERVICEOPS_PD_WEBHOOK_SECRET (the engine's secret store sets it).
    $incidents = @(ConvertFrom-PagerDutyWebhook -Path $BodyPath -Signature $Signature -WarningVariable hookWarnings -WarningAction SilentlyContinue)
}
catch {
    [Console]::Error.WriteLine("delivery refused: $($_.FullyQualifiedErrorId): $($_.Exception.Message)")
    exit 3
}
if ($incidents.Count -eq 0) { [pscustomobject]@{ result = 'nothing to do'; warnings = @($hookWarnings | ForEach-Object { "$_" }) } | ConvertTo-Json -Compress; exit 0 }
$exit = 0
foreach ($incident in $incidents) {
    $runErrors = $null; $runWarnings = $null
    $summary = @($incident | Invoke-KeyServiceRunbook -Unattended -ErrorAction SilentlyContinue -ErrorVariable runErrors -WarningAction SilentlyContinue -WarningVariable runWarnings |
        Where-Object { $_.PSObject.Properties['FinalState'] }) | Select-Object -Last 1
    if ($summary) {
        [pscustomobject]@{ incident = $summary.IncidentId; target = $summary.Target; finalState = $summary.FinalState; seconds = $summary.Seconds
                           actions = @($summary.Actions); warnings = @($summary.Warnings) + @($runWarnings | ForEach-Object { "$_" }) } | ConvertTo-Json -Compress
        if ($summary.FinalState -eq 'Failed') { $exit = 2 }
        elseif ($summary.FinalState -in 'Escalated', 'AssignedToOwner', 'DependencyFault', 'Maintenance' -and $exit -eq 0) { $exit = 4 }
        continue
    }
    # The runbook could not run (Kong unreachable, a refused incident, ...): said on the incident for whoever is paged,
    # and the engine's job fails. (The delivery's id is recorded: PagerDuty's retry of it does nothing; the note is the hand-over.)
    $why = @($runErrors | ForEach-Object { "$($_.FullyQualifiedErrorId.Split(',')[0]): $($_.Exception.Message)" }) -join '; '
    try { Add-PagerDutyIncidentNote -IncidentId $incident.IncidentId -Note "The unattended runbook could not run for $($incident.Address): $why. Nothing was changed by it; a responder must act." -Confirm:$false -ErrorAction Stop -WarningAction SilentlyContinue | Out-Null }
    catch { $why += "; the note on the incident failed too: $($_.FullyQualifiedErrorId)" }
    [pscustomobject]@{ incident = $incident.IncidentId; target = $incident.Address; result = 'error'; error = $why; warnings = @($runWarnings | ForEach-Object { "$_" }) } | ConvertTo-Json -Compress
    $exit = 2
}
exit $exit
