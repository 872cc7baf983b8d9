#requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.0.0' }
# Every table view in real pwsh at 80 and 120 columns: no line wider than the console, and the column that decides
# (why it is down, what happened, the title) is still there.
BeforeAll {
    . (Join-Path $PSScriptRoot 'LabHelpers.ps1')
    $script:lab = Start-KsoLab
    $script:a = $lab.instances
    Set-KsoLabMode $lab $a[3] Down
    Set-KsoLabScenario $lab $a[2] CipherDependency
    $script:incident = New-KsoLabAlert $lab $a[3]
    Remove-RingBalancerTarget "$($a[3]):8888" -Confirm:$false -Force -IncidentId $incident -WarningAction SilentlyContinue | Out-Null
    $script:samples = [ordered]@{
        HealthResult       = @{ Make = { Test-KeyServiceHealth $a[0], $a[3] }; Deciding = 'Detail'; Expect = 'refused|Down|DOWN' }
        RingBalancerTarget = @{ Make = { Get-RingBalancerTarget }; Deciding = 'KongHealth'; Expect = $a[0] }
        TargetChange       = @{ Make = { Add-RingBalancerTarget "$($a[3]):8888" -Force -Confirm:$false -PassThru; Remove-RingBalancerTarget "$($a[3]):8888" -Force -Confirm:$false -PassThru -WarningAction SilentlyContinue }; Deciding = 'Detail'; Expect = 'Added|Removed'; Room = 30 }
        SelfHealingAction  = @{ Make = { Invoke-KeyServiceSelfHealing -StatePath (Join-Path $TestDrive 'views-heal.json') -WhatIf -FailuresToRemove 1 }; Deciding = 'Detail'; Expect = 'Remove|None|Add'; Room = 30 }
        KeyServiceInstance = @{ Make = { Get-KeyServiceInstance }; Deciding = 'KongHealth'; Expect = $a[0] }
        AuditEntry         = @{ Make = { Get-KeyServiceAuditLog }; Deciding = 'Incident'; Expect = $incident; Room = 13 }
        PagerDutyIncident  = @{ Make = { Get-PagerDutyIncident -IncidentId $incident }; Deciding = 'Title'; Expect = $incident; Room = 30 }
        ContainerState     = @{ Make = { Get-KeyServiceContainer $a[2] }; Deciding = 'OOM'; Expect = 'exited' }
        Fault              = @{ Make = { Get-KeyServiceLog $a[2] -Tail 50 | Get-KeyServiceFault | Format-Table }; Deciding = 'Evidence'; Expect = 'CipherDependency' }
    }
}
AfterAll { Stop-KsoLab $script:lab }

Describe 'Table views' {
    It '<Type> fits <Width> columns and keeps its deciding column' -ForEach @(
        foreach ($t in 'HealthResult', 'RingBalancerTarget', 'TargetChange', 'SelfHealingAction', 'KeyServiceInstance', 'AuditEntry', 'PagerDutyIncident', 'ContainerState', 'Fault') {
            foreach ($w in 80, 120) { @{ Type = $t; Width = $w } }
        }
    ) {
        $sample = $samples[$Type]
        $objects = @(& $sample.Make)
        $objects.Count | Should -BeGreaterThan 0
        $text = $objects | Out-String -Width $Width
        $lines = $text -split "`r?`n" | Where-Object { $_.Trim() }
        $lines | ForEach-Object { $_.Length | Should -BeLessOrEqual $Width -Because "line: $_" }
        $header = $lines | Where-Object { $_ -match "\b$($sample.Deciding)\b" } | Select-Object -First 1
        $header | Should -Not -BeNullOrEmpty -Because "the $($sample.Deciding) column is in the table at $Width columns:`n$text"
        # The last, deciding column has room to be read, not a sliver that wraps a word per line (#27 row 4).
        if ($sample.Room) { ($Width - $header.IndexOf($sample.Deciding)) | Should -BeGreaterOrEqual $sample.Room -Because "the $($sample.Deciding) column starts at $($header.IndexOf($sample.Deciding)) of $Width`n$text" }
        $text | Should -Match $sample.Expect
    }
}
