#requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.0.0' }
BeforeAll {
    . (Join-Path $PSScriptRoot 'LabHelpers.ps1')
    $script:lab = Start-KsoLab
    $script:a = $lab.instances
}
AfterAll { Stop-KsoLab $script:lab }

Describe 'Test-KeyServiceHealth' {
    It 'reports a healthy instance as Up' {
        $r = Test-KeyServiceHealth $a[0]
        $r.Healthy | Should -BeTrue
        $r.Status | Should -Be 'Up'
    }
    It 'reports a stopped instance as Down' {
        Set-KsoLabMode $lab $a[3] Down
        (Test-KeyServiceHealth $a[3]).Status | Should -Be 'Down'
        Set-KsoLabMode $lab $a[3] Up
    }
    It 'rejects a malformed address with a typed error' {
        { Test-KeyServiceHealth '10.0.0.999' -ErrorAction Stop } | Should -Throw -ErrorId 'InvalidAddress,KeyServiceOps.Commands.TestKeyServiceHealthCommand'
    }
    It 'returns one bool with -Quiet' {
        Get-RingBalancerTarget | Test-KeyServiceHealth -Quiet | Should -BeTrue
    }
}

Describe 'Remove-RingBalancerTarget and Add-RingBalancerTarget' {
    It 'changes nothing with -WhatIf' {
        $before = @(Get-RingBalancerTarget).Count
        Remove-RingBalancerTarget "$($a[1]):8888" -WhatIf
        @(Get-RingBalancerTarget).Count | Should -Be $before
    }
    It 'removes a target and puts it back as it was' {
        $removed = Remove-RingBalancerTarget "$($a[1]):8888" -Confirm:$false -PassThru
        $removed.Action | Should -Be 'Removed'
        (Get-RingBalancerTarget).Target | Should -Not -Contain "$($a[1]):8888"
        $added = $removed | Add-RingBalancerTarget -Confirm:$false -PassThru
        $added.Action | Should -Be 'Added'
        (Get-KeyServiceAuditLog -Target "$($a[1]):8888").Action | Should -Contain 'RemoveTarget'
    }
    It 'refuses a target that is not Kong-shaped' {
        { Remove-RingBalancerTarget '10.0.0.5:99999' -Confirm:$false -ErrorAction Stop } | Should -Throw -ErrorId 'InvalidTarget,KeyServiceOps.Commands.RemoveRingBalancerTargetCommand'
    }
}
