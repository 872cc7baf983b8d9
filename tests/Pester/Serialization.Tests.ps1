#requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.0.0' }
# Every output type serialises readably: ConvertTo-Json (names, not numbers; seconds, not 15 TimeSpan fields; no
# nested empty arrays), Export-Csv (no .NET type names, no line breaks in a cell), Export-Clixml and back, and jobs.
BeforeAll {
    . (Join-Path $PSScriptRoot 'LabHelpers.ps1')
    $script:lab = Start-KsoLab
    $script:a = $lab.instances
    Set-KsoLabScenario $lab $a[2] CipherDependency
    Set-KsoLabMode $lab $a[3] Down
    $script:incident = New-KsoLabAlert $lab $a[3]
    $script:samples = [ordered]@{
        HealthResult       = { Test-KeyServiceHealth $a[0], $a[3] }
        RingBalancerTarget = { Get-RingBalancerTarget }
        TargetChange       = { Remove-RingBalancerTarget "$($a[3]):8888" -Force -Confirm:$false -PassThru -IncidentId $incident; Add-RingBalancerTarget "$($a[3]):8888" -Force -Confirm:$false -PassThru }
        KeyServiceInstance = { Get-KeyServiceInstance }
        AuditEntry         = { Get-KeyServiceAuditLog }
        PagerDutyIncident  = { Get-PagerDutyIncident -IncidentId $incident }
        PagerDutyNote      = { Add-PagerDutyIncidentNote -IncidentId $incident -Note 'serialisation check' -Confirm:$false -PassThru }
        ContainerState     = { Get-KeyServiceContainer $a[2] }
        LogEntry           = { Get-KeyServiceLog $a[2] -Tail 3 }
        Fault              = { Get-KeyServiceLog $a[2] -Tail 50 | Get-KeyServiceFault }
        RestartResult      = { Set-KsoLabScenario $lab $a[1] CleanCrash; Restart-KeyService $a[1] -Wait -Confirm:$false }
        RunbookStep        = { Invoke-KeyServiceRunbook $a[0] -Confirm:$false }
        SelfHealing        = { Invoke-KeyServiceSelfHealing -WhatIf -StatePath (Join-Path ([IO.Path]::GetTempPath()) "kso-ser-$([guid]::NewGuid()).json") }
        Context            = { Get-KeyServiceOpsContext }
        NewContext         = { New-KeyServiceOpsContext -KongAdminUri http://127.0.0.1:1/ -DeclarativeTag a, b }
    }
    $script:made = @{}
    foreach ($k in $samples.Keys) { $made[$k] = @(& $samples[$k]) }
    function script:Leaves($node, $path) {
        if ($null -eq $node) { return }
        if ($node -is [pscustomobject]) { foreach ($p in $node.PSObject.Properties) { Leaves $p.Value "$path.$($p.Name)" } }
        elseif ($node -is [array]) { $i = 0; foreach ($x in $node) { Leaves $x "$path[$i]"; $i++ } }
        else { [pscustomobject]@{ Path = $path; Value = $node } }
    }
}
AfterAll { Stop-KsoLab $script:lab }

Describe 'Serialisation of <_>' -ForEach @('HealthResult', 'RingBalancerTarget', 'TargetChange', 'KeyServiceInstance', 'AuditEntry', 'PagerDutyIncident', 'PagerDutyNote', 'ContainerState', 'LogEntry', 'Fault', 'RestartResult', 'RunbookStep', 'SelfHealing', 'Context', 'NewContext') {
    BeforeAll { $script:objs = $made[$_]; $script:name = $_ }
    It 'has samples' { $objs.Count | Should -BeGreaterThan 0 }
    It 'ConvertTo-Json writes enum names, seconds and plain values' {
        $json = $objs | ConvertTo-Json -Depth 6
        $json | Should -Not -Match '"Ticks"'
        $json | Should -Not -Match '\[\s*\[\s*\]'
        $back = $json | ConvertFrom-Json
        foreach ($leaf in @($back | ForEach-Object { Leaves $_ '' })) {
            if ($leaf.Path -match '\.(Status|Action|Outcome|Level|Stream|Via|Category|Reason|FinalState)$') {
                $leaf.Value | Should -BeOfType [string] -Because "$name$($leaf.Path) = $($leaf.Value)"
            }
        }
    }
    It 'Export-Csv has no .NET type names and no line breaks in a cell' {
        $csv = Join-Path $TestDrive "$name.csv"
        $objs | Export-Csv -LiteralPath $csv -NoTypeInformation
        $rows = Import-Csv -LiteralPath $csv
        foreach ($r in $rows) {
            foreach ($p in $r.PSObject.Properties) {
                $p.Value | Should -Not -Match '^(System|Newtonsoft|KeyServiceOps)\.[\w.`]+(\[|$)' -Because "$name.$($p.Name)"
                $p.Value | Should -Not -Match "`n" -Because "$name.$($p.Name)"
            }
        }
    }
    It 'survives Export-Clixml and Import-Clixml with every value there' {
        $xml = Join-Path $TestDrive "$name.xml"
        $objs | Export-Clixml -LiteralPath $xml -Depth 4
        $back = @(Import-Clixml -LiteralPath $xml)
        $back.Count | Should -Be $objs.Count
        for ($i = 0; $i -lt $objs.Count; $i++) {
            foreach ($p in $objs[$i].PSObject.Properties) {
                if ($null -ne $p.Value -and "$($p.Value)" -ne '') {
                    "$($back[$i].($p.Name))" | Should -Not -BeNullOrEmpty -Because "$name.$($p.Name) was '$($p.Value)'"
                }
            }
        }
    }
}

Describe 'Jobs' {
    It 'a health result from Start-Job keeps CheckedAt and formats with it' {
        $module = (Get-Module KeyServiceOps).Path -replace 'KeyServiceOps.dll$', 'KeyServiceOps.psd1'
        $r = Start-Job { Import-Module $using:module; Test-KeyServiceHealth $using:a[0] } | Receive-Job -Wait -AutoRemoveJob
        $r.CheckedAt | Should -Not -BeNullOrEmpty
        ([datetimeoffset]"$($r.CheckedAt)").Year | Should -BeGreaterThan 2000
        $r.Status | Should -Be 'Up'
    }
}
