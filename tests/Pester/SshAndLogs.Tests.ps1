#requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.0.0' }
BeforeAll {
    . (Join-Path $PSScriptRoot 'LabHelpers.ps1')
    $script:lab = Start-KsoLab
    $script:a = $lab.instances
    Set-KsoLabScenario $lab $a[2] CipherDependency
}
AfterAll { Stop-KsoLab $script:lab }

Describe 'Get-KeyServiceLog and Get-KeyServiceFault' {
    It 'finds the cipher fault in the docker logs' {
        $f = Get-KeyServiceLog $a[2] -Tail 200 | Get-KeyServiceFault
        $f.Category | Should -Be 'CipherDependency'
        $f.Owner | Should -Be 'cipher-owner@example.com'
    }
    It 'finds the same fault in the central logs' {
        (Get-KeyServiceLog $a[2] -Source Central -Since 1h | Get-KeyServiceFault).Category | Should -Be 'CipherDependency'
    }
    It 'shows the container state' {
        (Get-KeyServiceContainer $a[2]).Status | Should -Be 'exited'
    }
}

Describe 'Restart-KeyService' {
    It 'refuses to restart on a dependency fault' {
        { Restart-KeyService $a[2] -Confirm:$false -ErrorAction Stop } | Should -Throw -ErrorId 'DependencyFaultNoRestart,KeyServiceOps.Commands.RestartKeyServiceCommand'
    }
    It 'refuses a container name with shell metacharacters before connecting' {
        { Restart-KeyService $a[0] -Container 'api_key_service; id' -Confirm:$false -ErrorAction Stop } | Should -Throw -ErrorId 'InvalidSettingValue,KeyServiceOps.Commands.RestartKeyServiceCommand'
    }
    It 'restarts a crashed instance and waits until it recovers' {
        Set-KsoLabScenario $lab $a[1] CleanCrash
        $r = Restart-KeyService $a[1] -Wait -Confirm:$false
        $r.Recovered | Should -BeTrue
    }
    It 'says an unknown host key is unknown' {
        $empty = New-TemporaryFile
        { Get-KeyServiceContainer $a[0] -KnownHostsPath $empty.FullName -ErrorAction Stop } | Should -Throw -ErrorId 'SshHostKeyUnknown,KeyServiceOps.Commands.GetKeyServiceContainerCommand'
    }
}

Describe 'Log time ranges' {
    It 'takes a 30-day -Since as a [timespan] (it was a FormatException over 999,999 s)' {
        { Get-KeyServiceLog $a[2] -Source Central -Since (New-TimeSpan -Days 30) -ErrorAction Stop | Out-Null } | Should -Not -Throw
        @(Get-KeyServiceLog $a[2] -Since (New-TimeSpan -Days 30) -Tail 5).Count | Should -BeGreaterThan 0
    }
}
