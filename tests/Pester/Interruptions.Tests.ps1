#requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.0.0' }
# Interruptions as processes: a real pwsh operator is killed (SIGKILL) or interrupted (SIGINT, Ctrl+C) in the middle
# of a change; then a re-run; then what must hold: every change has an audit line, no restart twice for one incident,
# nothing left out of the ring-balancer once a later run completes while it is healthy.
BeforeAll {
    . (Join-Path $PSScriptRoot 'LabHelpers.ps1')
    $script:lab = Start-KsoLab
    $script:a = $lab.instances
    $script:pwsh = (Get-Process -Id $PID).Path
    $script:labFile = Join-Path $TestDrive 'lab.json'
    $lab | Select-Object * -ExcludeProperty Process | ConvertTo-Json -Depth 4 | Set-Content $labFile
    $script:module = (Get-Module KeyServiceOps).Path -replace 'KeyServiceOps.dll$', 'KeyServiceOps.psd1'
    $script:helpers = Join-Path $PSScriptRoot 'LabHelpers.ps1'
    function script:Start-Operator([string] $Command) {
        $script = Join-Path $TestDrive ("op-{0}.ps1" -f [guid]::NewGuid().ToString('N'))
        @"
`$ProgressPreference = 'SilentlyContinue'
Import-Module '$module'
. '$helpers'
Set-KsoLabContext (Get-Content '$labFile' -Raw | ConvertFrom-Json)
$Command
"@ | Set-Content $script
        $psi = [System.Diagnostics.ProcessStartInfo]::new($pwsh)
        # pwsh installed as a .NET tool runs under the dotnet host: start its pwsh.dll the same way.
        if ([IO.Path]::GetFileNameWithoutExtension($pwsh) -eq 'dotnet') { $psi.ArgumentList.Add((Join-Path $PSHOME 'pwsh.dll')) }
        foreach ($x in '-NoProfile', '-NonInteractive', '-File', $script) { $psi.ArgumentList.Add($x) }
        $psi.RedirectStandardOutput = $true; $psi.RedirectStandardError = $true; $psi.UseShellExecute = $false
        [System.Diagnostics.Process]::Start($psi)
    }
    function script:Wait-Until([scriptblock] $Condition, $Process, [int] $Seconds = 60) {
        $deadline = (Get-Date).AddSeconds($Seconds)
        while (-not (& $Condition)) {
            if ($Process -and $Process.HasExited) { throw "the operator process ended (exit $($Process.ExitCode)) before: $Condition`n$($Process.StandardOutput.ReadToEnd())`n$($Process.StandardError.ReadToEnd())" }
            if ((Get-Date) -gt $deadline) { throw "timed out waiting for: $Condition" }
            Start-Sleep -Milliseconds 25
        }
    }
    function script:Restarts($address) { Get-KsoLabRestarts $lab $address }
}
AfterAll { Stop-KsoLab $script:lab }

Describe 'SIGKILL in the middle of the runbook''s restart wait, then a re-run' {
    It 'leaves an Unfinished audit line, and the re-run neither restarts again nor leaves the instance out' {
        $addr = $a[1]
        Set-KsoLabScenario $lab $addr PortInUse -Persists          # the restart does not help: the wait goes on
        $incident = New-KsoLabAlert $lab $addr
        $before = Restarts $addr
        $op = Start-Operator "Invoke-KeyServiceRunbook $addr -IncidentId $incident -Confirm:`$false -RestartTimeoutSec 120"
        Wait-Until { (Restarts $addr) -gt $before } $op             # docker restart was sent
        $op.Kill()                                                  # SIGKILL: no finally block runs
        $op.WaitForExit()
        $restart = Get-KeyServiceAuditLog -Target $addr -Action RestartContainer | Select-Object -Last 1
        $restart.Outcome | Should -Be 'Unfinished'
        $restart.Incident | Should -Be $incident
        # Every change Kong saw has its line: the target is out, and the audit log says so.
        (Get-RingBalancerTarget).Target | Should -Not -Contain "$($addr):8888"
        (Get-KeyServiceAuditLog -Target "$($addr):8888" -Action RemoveTarget).Outcome | Should -Contain 'Removed'

        # The fault clears while the operator runs the runbook again for the same incident.
        $control = $lab.control
        $clear = Start-ThreadJob { Start-Sleep -Seconds 1; Invoke-RestMethod -Method Post -Uri ("{0}mode?address={1}&mode=Up" -f $using:control, $using:addr) }
        $summary = Invoke-KeyServiceRunbook $addr -IncidentId $incident -Confirm:$false -RestartTimeoutSec 30 | Select-Object -Last 1
        $clear | Receive-Job -Wait -AutoRemoveJob | Out-Null
        (Restarts $addr) | Should -Be ($before + 1)                 # not restarted twice for one incident
        $summary.FinalState | Should -BeIn 'Recovered', 'Healthy'
        (Get-RingBalancerTarget).Target | Should -Contain "$($addr):8888"
    }
}

Describe 'Ctrl+C (SIGINT) in the middle of Restart-KeyService -Wait' {
    It 'records Interrupted, saying the container was restarted' {
        $addr = $a[2]
        Set-KsoLabScenario $lab $addr PortInUse -Persists
        $before = Restarts $addr
        $op = Start-Operator "Restart-KeyService $addr -Wait -Force -Confirm:`$false -TimeoutSec 120"
        Wait-Until { (Restarts $addr) -gt $before } $op
        Start-Sleep -Milliseconds 300
        & kill -INT $op.Id
        $op.WaitForExit(30000) | Should -BeTrue
        $line = Get-KeyServiceAuditLog -Target $addr -Action RestartContainer | Select-Object -Last 1
        $line.Outcome | Should -Be 'Interrupted'
        $line.Detail | Should -Match 'the container was restarted'
        Set-KsoLabMode $lab $addr Up
    }
}

Describe 'SIGKILL of a self-healing pass right after a removal' {
    It 'the state file remembers the removal and the next passes add it back' {
        $addr = $a[3]
        $state = Join-Path $TestDrive 'heal-state.json'
        Set-KsoLabMode $lab $addr Down
        $op = Start-Operator "Start-KeyServiceSelfHealing -StatePath '$state' -FailuresToRemove 1 -IntervalSec 0.2 -Confirm:`$false"
        Wait-Until { (Get-RingBalancerTarget).Target -notcontains "$($addr):8888" } $op
        $op.Kill(); $op.WaitForExit()
        Get-Content $state -Raw | Should -Match '"RemovedBySelfHealing": true'
        Set-KsoLabMode $lab $addr Up
        $passes = 0
        while ((Get-RingBalancerTarget).Target -notcontains "$($addr):8888" -and $passes -lt 6) { Invoke-KeyServiceSelfHealing -StatePath $state -Confirm:$false | Out-Null; $passes++ }
        (Get-RingBalancerTarget).Target | Should -Contain "$($addr):8888"
        $passes | Should -Be 2                                     # PassesToAdd, as if never interrupted
    }
}
