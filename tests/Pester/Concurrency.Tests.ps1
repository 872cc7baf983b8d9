#requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.0.0' }
# Two operators at once, as two real processes (Start-Job runs each in its own pwsh): one actor per instance.
BeforeAll {
    . (Join-Path $PSScriptRoot 'LabHelpers.ps1')
    $script:lab = Start-KsoLab
    $script:a = $lab.instances
    $script:labInfo = $lab | Select-Object * -ExcludeProperty Process
    $script:helpers = Join-Path $PSScriptRoot 'LabHelpers.ps1'
    $script:module = (Get-Module KeyServiceOps).Path -replace 'KeyServiceOps.dll$', 'KeyServiceOps.psd1'
    function script:Start-Operator([scriptblock] $Work, [object[]] $Arguments) {
        Start-Job -ScriptBlock {
            param($module, $helpers, $labInfo, $work, $arguments)
            $ProgressPreference = 'SilentlyContinue'
            Import-Module $module
            . $helpers
            Set-KsoLabContext $labInfo
            & ([scriptblock]::Create($work)) @arguments
        } -ArgumentList $module, $helpers, $labInfo, $Work.ToString(), $Arguments
    }
}
AfterAll { Get-Job | Remove-Job -Force -ErrorAction SilentlyContinue; Stop-KsoLab $script:lab }

Describe 'Two operators, one instance' {
    It 'two runbooks from two processes restart the instance once and write the removal note once' {
        Set-KsoLabScenario $lab $a[1] CleanCrash
        $incident = New-KsoLabAlert $lab $a[1]
        $before = Get-KsoLabRestarts $lab $a[1]
        $work = { param($address, $incident) Invoke-KeyServiceRunbook $address -IncidentId $incident -Confirm:$false -LockTimeoutSec 120 | Select-Object -Last 1 }
        $jobs = 1..2 | ForEach-Object { Start-Operator $work @($a[1], $incident) }
        $results = $jobs | Receive-Job -Wait -AutoRemoveJob
        @($results.FinalState | Sort-Object) | Should -Be @('Healthy', 'Recovered')
        Get-KsoLabRestarts $lab $a[1] | Should -Be ($before + 1)
        $notes = (Get-PagerDutyIncident -IncidentId $incident | Select-Object -ExpandProperty IncidentId | ForEach-Object { Invoke-RestMethod -Headers @{ Authorization = "Token token=$($lab.pagerDutyToken)" } -Uri "$($lab.pagerDutyUri)incidents/$_/notes" }).notes
        @($notes | Where-Object content -like '*manually removed target*').Count | Should -Be 1
        (Get-RingBalancerTarget).Target | Should -Contain "$($a[1]):8888"
    }
    It 'a second operator who will not wait gets InstanceBusy naming the holder, and changes nothing' {
        Set-KsoLabScenario $lab $a[2] CleanCrash
        $holder = Start-Operator { param($address) Restart-KeyService $address -Wait -Confirm:$false -Force -TimeoutSec 20 } @($a[2])
        # Wait until the holder has the lock (its holder file names the instance).
        $lockDir = if ($env:KEYSERVICEOPS_LOCK_DIR) { $env:KEYSERVICEOPS_LOCK_DIR } else { Join-Path $HOME '.keyserviceops/locks' }
        $holderFile = Join-Path $lockDir (($a[2]).ToLowerInvariant() + '.holder')
        $deadline = (Get-Date).AddSeconds(60)
        while (-not (Test-Path $holderFile) -and (Get-Date) -lt $deadline) { Start-Sleep -Milliseconds 50 }
        Test-Path $holderFile | Should -BeTrue
        $targets = (Get-RingBalancerTarget).Target
        $err = $null
        Remove-RingBalancerTarget "$($a[2]):8888" -Confirm:$false -Force -LockTimeoutSec 0 -ErrorVariable err -ErrorAction SilentlyContinue
        $err[0].FullyQualifiedErrorId | Should -BeLike 'InstanceBusy,*'
        $err[0].Exception.Message | Should -Match 'restart api_key_service'
        $err[0].Exception.Message | Should -Match 'process \d+'
        $err[0].ErrorDetails.RecommendedAction | Should -Match 'LockTimeoutSec'
        (Get-RingBalancerTarget).Target | Should -Be $targets
        $holder | Receive-Job -Wait -AutoRemoveJob | Out-Null
    }
}
