#requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.0.0' }
# Cmdlets that compose through the pipeline: an object of ours binds by the right property, or is refused with a
# typed error. It never binds as its display text (ToString), and nothing whose host is a .NET type name reaches Kong.
BeforeAll {
    . (Join-Path $PSScriptRoot 'LabHelpers.ps1')
    $script:lab = Start-KsoLab
    $script:a = $lab.instances
    function script:Targets { @(Get-RingBalancerTarget -NoHealth).Target | Sort-Object }
}
AfterAll { Stop-KsoLab $script:lab }

Describe 'Help example: restart, then put back what recovered' {
    It 'binds a RestartResult to Add-RingBalancerTarget by its Address, not its display text' {
        $removed = Remove-RingBalancerTarget "$($a[1]):8888" -Confirm:$false -PassThru
        $removed.Action | Should -Be 'Removed'
        Set-KsoLabScenario $lab $a[1] CleanCrash
        $added = Restart-KeyService $a[1] -Wait -Confirm:$false | Where-Object Recovered | Add-RingBalancerTarget -Confirm:$false -PassThru -ErrorAction Stop
        $added.Action | Should -Be 'Added'
        $added.Target | Should -Be "$($a[1]):8888"
        Targets | Should -Contain "$($a[1]):8888"
    }
}

Describe 'Every output type into every cmdlet that takes an instance or target' {
    BeforeAll {
        $script:sources = [ordered]@{
            RingBalancerTarget = { Get-RingBalancerTarget -Target "$($a[0]):8888" }
            HealthResult       = { Test-KeyServiceHealth $a[0] }
            KeyServiceInstance = { Get-KeyServiceInstance $a[0] }
            ContainerState     = { Get-KeyServiceContainer $a[0] }
            TargetChange       = { Add-RingBalancerTarget "$($a[0]):8888" -Force -Confirm:$false -PassThru -WarningAction SilentlyContinue }
            Incident           = { $id = New-KsoLabAlert $lab $a[0]; Get-PagerDutyIncident -IncidentId $id }
            PSCustomObject     = { [pscustomobject]@{ Address = $a[0]; Port = 8888 } }
            Hashtable          = { @{ Target = "$($a[0]):8888" } }
        }
    }
    It 'binds <_> to every reader by its address' -ForEach @('RingBalancerTarget', 'HealthResult', 'KeyServiceInstance', 'ContainerState', 'TargetChange', 'Incident', 'PSCustomObject', 'Hashtable') {
        $name = $_
        $o = & $sources[$name]
        $o | Should -Not -BeNullOrEmpty
        @($o | Test-KeyServiceHealth -ErrorAction Stop | ForEach-Object Address) | Should -Be @($a[0]) -Because "$name | Test-KeyServiceHealth"
        @($o | Get-KeyServiceContainer -ErrorAction Stop | ForEach-Object Address) | Should -Be @($a[0]) -Because "$name | Get-KeyServiceContainer"
        @($o | Get-KeyServiceInstance -ErrorAction Stop | ForEach-Object Address) | Should -Be @($a[0]) -Because "$name | Get-KeyServiceInstance"
    }
    It 'binds <_> to Remove- and Add-RingBalancerTarget as the same target (WhatIf names it)' -ForEach @('RingBalancerTarget', 'HealthResult', 'KeyServiceInstance', 'TargetChange', 'Incident', 'PSCustomObject', 'Hashtable') {
        $name = $_
        $o = & $sources[$name]
        $before = Targets
        $log = Join-Path $TestDrive "$name.txt"
        Start-Transcript -LiteralPath $log -UseMinimalHeader | Out-Null
        try {
            $o | Remove-RingBalancerTarget -WhatIf -Force -ErrorAction Stop
            $o | Add-RingBalancerTarget -WhatIf -Force -ErrorAction Stop -WarningAction SilentlyContinue
        }
        finally { Stop-Transcript | Out-Null }
        $whatIf = @(Get-Content $log | Where-Object { $_ -like 'What if:*' })
        $whatIf.Count | Should -Be 2
        $whatIf | ForEach-Object { $_ | Should -BeLike "*on target ""$($a[0]):8888 (*" }
        Targets | Should -Be $before
    }
}

Describe 'Objects that are not instances are refused with a typed error' {
    It 'refuses <Name> piped to Add-RingBalancerTarget and changes nothing' -ForEach @(
        @{ Name = 'a date'; Make = { Get-Date } }
        @{ Name = 'a hashtable without Target or Address'; Make = { @{ Foo = 1 } } }
        @{ Name = 'a process'; Make = { Get-Process -Id $PID } }
    ) {
        $before = Targets
        $audit = @(Get-KeyServiceAuditLog).Count
        $err = $null
        & $Make | Add-RingBalancerTarget -Force -Confirm:$false -ErrorVariable err -ErrorAction SilentlyContinue
        $err.Count | Should -Be 1
        $err[0].FullyQualifiedErrorId | Should -BeLike 'InvalidTarget,*'
        $err[0].CategoryInfo.Category | Should -Be 'InvalidArgument'
        $err[0].Exception.Message | Should -Match 'has no Target, Address, IPAddress, ComputerName or Host'
        $err[0].ErrorDetails.RecommendedAction | Should -Not -BeNullOrEmpty
        Targets | Should -Be $before
        @(Get-KeyServiceAuditLog).Count | Should -Be $audit
    }
    It 'refuses a date piped to Test-KeyServiceHealth with InvalidAddress naming its type' {
        $err = $null
        Get-Date | Test-KeyServiceHealth -ErrorVariable err -ErrorAction SilentlyContinue
        $err[0].FullyQualifiedErrorId | Should -BeLike 'InvalidAddress,*'
        $err[0].Exception.Message | Should -Match 'System.DateTime'
    }
}
