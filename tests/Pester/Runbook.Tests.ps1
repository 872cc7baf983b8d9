#requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.0.0' }
BeforeAll {
    . (Join-Path $PSScriptRoot 'LabHelpers.ps1')
    $script:lab = Start-KsoLab
    $script:a = $lab.instances
}
AfterAll { Stop-KsoLab $script:lab }

Describe 'Invoke-KeyServiceRunbook' {
    It 'changes nothing on a healthy instance' {
        $s = Invoke-KeyServiceRunbook $a[0] -Confirm:$false | Select-Object -Last 1
        $s.FinalState | Should -Be 'Healthy'
    }
    It 'walks every step under -WhatIf' {
        Set-KsoLabScenario $lab $a[1] CleanCrash
        $out = Invoke-KeyServiceRunbook $a[1] -WhatIf
        ($out | Where-Object Outcome -eq 'WouldDo').Count | Should -BeGreaterThan 0
        (Get-RingBalancerTarget).Target | Should -Contain "$($a[1]):8888"
    }
    It 'recovers a crashed instance' {
        $s = Invoke-KeyServiceRunbook $a[1] -Confirm:$false | Select-Object -Last 1
        $s.FinalState | Should -Be 'Recovered'
    }
    It 'hands a cipher fault to its owner without restarting' {
        Set-KsoLabScenario $lab $a[2] CipherDependency
        $incident = New-KsoLabAlert $lab $a[2]
        $s = Get-PagerDutyIncident -IncidentId $incident | Invoke-KeyServiceRunbook -Confirm:$false | Select-Object -Last 1
        $s.FinalState | Should -Be 'AssignedToOwner'
        (Get-PagerDutyIncident -IncidentId $incident).Assignees | Should -Be 'Cipher Owner'
    }
}

Describe 'Invoke-KeyServiceSelfHealing' {
    It 'removes a dead instance on the third pass' {
        $state = Join-Path ([System.IO.Path]::GetTempPath()) ("kso-heal-{0}.json" -f [guid]::NewGuid().ToString('N'))
        Set-KsoLabMode $lab $a[3] Down
        1..2 | ForEach-Object { Invoke-KeyServiceSelfHealing -StatePath $state | Out-Null }
        $third = Invoke-KeyServiceSelfHealing -StatePath $state -Confirm:$false
        ($third | Where-Object Action -eq 'Remove').Outcome | Should -Be 'Done'
    }
}

Describe 'Self-healing pass summary' {
    It 'prints one line per pass under -WhatIf even when all is healthy' {
        $state = Join-Path $TestDrive 'whatif-state.json'
        $text = Invoke-KeyServiceSelfHealing -WhatIf -StatePath $state | Out-String -Width 200
        $text | Should -Match "pass 1 api_key_service: \d+ checked, 0 unhealthy"
        $text | Should -Match '\[WhatIf\]'
    }
    It 'emits a summary object for every pass of a loop' {
        $state = Join-Path $TestDrive 'loop-state.json'
        $out = Start-KeyServiceSelfHealing -Count 2 -IntervalSec 0.1 -StatePath $state -Confirm:$false
        $sums = @($out | Where-Object { $_.PSObject.TypeNames[0] -like '*SelfHealingPassSummary' })
        $sums.Count | Should -Be 2
        $sums.Pass | Should -Be @(1, 2)
        $sums | ForEach-Object { $_.TargetsChecked | Should -BeGreaterThan 0 }
    }
}

Describe 'Pending notes' {
    It 'Add-PagerDutyIncidentNote -RetryPendingNotes writes what an earlier runbook could not, once' {
        $incident = New-KsoLabAlert $lab $a[0]
        $outbox = $lab.AuditLog -replace '\.jsonl$', '.pending-notes.jsonl'
        @{ IncidentId = $incident; Content = '[KeyServiceOps] manually removed target (pending)'; Since = (Get-Date).ToUniversalTime().ToString('o') } | ConvertTo-Json -Compress | Add-Content $outbox
        Add-PagerDutyIncidentNote -RetryPendingNotes -Confirm:$false 6>$null
        Add-PagerDutyIncidentNote -RetryPendingNotes -Confirm:$false 6>$null
        $notes = (Invoke-RestMethod -Headers @{ Authorization = "Token token=$($lab.pagerDutyToken)" } -Uri "$($lab.pagerDutyUri)incidents/$incident/notes").notes
        @($notes | Where-Object content -eq '[KeyServiceOps] manually removed target (pending)').Count | Should -Be 1
        @(Get-Content $outbox | Where-Object { $_.Trim() }).Count | Should -Be 0
    }
}
