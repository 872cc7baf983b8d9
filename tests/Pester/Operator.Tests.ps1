#requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.0.0' }
# Issue #27, the operator at 3 a.m., in real pwsh: a question asked in a real terminal (a pty), the deciding text
# readable at 80 columns, Import-Csv binding by the aliases the help lists.
BeforeAll {
    . (Join-Path $PSScriptRoot 'LabHelpers.ps1')
    $script:lab = Start-KsoLab
    $script:a = $lab.instances
    $script:pwsh = (Get-Process -Id $PID).Path
    $script:labFile = Join-Path $TestDrive 'lab.json'
    $lab | Select-Object * -ExcludeProperty Process | ConvertTo-Json -Depth 4 | Set-Content $labFile
    $script:module = (Get-Module KeyServiceOps).Path -replace 'KeyServiceOps.dll$', 'KeyServiceOps.psd1'
    $script:helpers = Join-Path $PSScriptRoot 'LabHelpers.ps1'
}
AfterAll { Stop-KsoLab $script:lab }

Describe 'A healthy target: the operator is asked, in a real terminal, even with -Confirm:$false (rows 2, 3)' {
    BeforeAll {
        function script:InPty([string]$name, [string]$command, [string]$answer) {
            $file = Join-Path $TestDrive "$name.ps1"
            @"
`$ProgressPreference = 'SilentlyContinue'
`$PSStyle.OutputRendering = 'PlainText'
Import-Module '$module'
. '$helpers'
Set-KsoLabContext (Get-Content '$labFile' -Raw | ConvertFrom-Json)
$command
"@ | Set-Content $file
            $exe = @($pwsh)
            if ([IO.Path]::GetFileNameWithoutExtension($pwsh) -eq 'dotnet') { $exe += (Join-Path $PSHOME 'pwsh.dll') }
            $argv = $exe + @('-NoProfile', '-File', $file)      # interactive: the host can ask
            $typescript = Join-Path $TestDrive "$name.typescript"
            $answer | & script -q -e -c ($argv -join ' ') $typescript | Out-Null
            [IO.File]::ReadAllText($typescript)
        }
    }
    It 'asks before taking a healthy target out; answered N, the target stays' {
        $target = "$($a[0]):8888"
        $screen = InPty 'ask' "Remove-RingBalancerTarget '$target' -Confirm:`$false -Verbose`n""DONE:`$((Get-RingBalancerTarget -NoHealth).Target -contains '$target')""" 'n'
        $screen | Should -Match 'although it is\s+healthy\?'
        $screen | Should -Match 'is operational\s.*taking\s+traffic'
        $screen | Should -Match 'kept \(declined: it is healthy\)'
        $screen | Should -Match 'DONE:True'
        (Get-RingBalancerTarget -NoHealth).Target | Should -Contain $target
    }
    It '-Force (past the guards) still asks; answered N, the target stays' {
        $target = "$($a[0]):8888"
        $screen = InPty 'force' "Remove-RingBalancerTarget '$target' -Force -Confirm:`$false -Verbose`n""DONE:`$((Get-RingBalancerTarget -NoHealth).Target -contains '$target')""" 'n'
        $screen | Should -Match 'although it is\s+healthy\?'
        $screen | Should -Match 'DONE:True'
        (Get-RingBalancerTarget -NoHealth).Target | Should -Contain $target
    }
    It '-EvenIfHealthy does not ask: the warning stays and the target goes' {
        $target = "$($a[3]):8888"
        $screen = InPty 'even' "Remove-RingBalancerTarget '$target' -EvenIfHealthy -Confirm:`$false`n""GONE:`$(-not ((Get-RingBalancerTarget -NoHealth).Target -contains '$target'))""" 'n'
        $screen | Should -Not -Match 'although it is\s+healthy\?'
        $screen | Should -Match 'is operational\s.*taking\s+traffic'
        $screen | Should -Match 'GONE:True'
        Add-RingBalancerTarget $target -Confirm:$false | Out-Null
    }
}

Describe 'No one to answer: a console whose stdin is not a terminal (CI runner, systemd, cron)' {
    It 'warns and goes on, never prompting at end-of-file (pwsh -File without -NonInteractive, stdin from /dev/null)' {
        $target = "$($a[1]):8888"
        $file = Join-Path $TestDrive 'noask.ps1'
        @"
`$ProgressPreference = 'SilentlyContinue'
Import-Module '$module'
. '$helpers'
Set-KsoLabContext (Get-Content '$labFile' -Raw | ConvertFrom-Json)
Remove-RingBalancerTarget '$target' -Confirm:`$false 3>&1 | ForEach-Object { "W:`$_" }
"GONE:`$(-not ((Get-RingBalancerTarget -NoHealth).Target -contains '$target'))"
"@ | Set-Content $file
        $exe = @($pwsh)
        if ([IO.Path]::GetFileNameWithoutExtension($pwsh) -eq 'dotnet') { $exe += (Join-Path $PSHOME 'pwsh.dll') }
        $out = Join-Path $TestDrive 'noask.out'
        $p = Start-Process -FilePath $exe[0] -ArgumentList (@($exe | Select-Object -Skip 1) + @('-NoProfile', '-File', $file)) -RedirectStandardInput '/dev/null' -RedirectStandardOutput $out -PassThru
        # A liveness guard, not a timing bound: a prompt reading end-of-file would never return.
        $p.WaitForExit(180000) | Should -BeTrue -Because 'a prompt with no one to answer must not hang the script'
        $text = Get-Content $out -Raw
        $text | Should -Match 'W:.*is operational'
        $text | Should -Match 'GONE:True'
        Add-RingBalancerTarget $target -Force -Confirm:$false -WarningAction SilentlyContinue | Out-Null
    }
}

Describe 'The deciding text is readable at 80 columns (rows 4, 5)' {
    BeforeAll {
        Set-KsoLabMode $lab $a[3] Down
        $long = 'failed to load config from cipher service https://cipher.internal:8443/v1/keys after 5 attempts: 503 Service Unavailable'
        Add-KsoLabLogLine $lab $a[2] "time=""2026-12-05T08:27:01Z"" level=error msg=""$long"" component=config" -Stderr
        $script:long = $long
    }
    It 'the runbook''s Detail is all on the screen, wrapped, never cut' {
        $steps = @(Invoke-KeyServiceRunbook $a[3] -WhatIf 3>$null | Where-Object { $_.PSObject.TypeNames[0] -like '*RunbookStepResult' })
        $steps.Count | Should -BeGreaterThan 1
        $text = $steps | Out-String -Width 80
        ($text -split "`r?`n" | Where-Object { $_.Length -gt 80 }) | Should -BeNullOrEmpty
        $text | Should -Not -Match '…'
        # Wrapped (PowerShell may break inside a word), never cut: the whole Detail is on the screen, in order.
        $flat = $text -replace '\s+', ''
        foreach ($s in $steps) { $flat | Should -Match ([regex]::Escape(($s.Detail -replace '\s+', ''))) -Because "step $($s.Step)'s Detail is all on the screen" }
    }
    It 'the log shows the message first (not the time= prefix), and all of it' {
        $entries = @(Get-KeyServiceLog $a[2] -Tail 5)
        $text = $entries | Out-String -Width 80
        ($text -split "`r?`n" | Where-Object { $_.Length -gt 80 }) | Should -BeNullOrEmpty
        $text | Should -Not -Match 'time="2026-12-05T08:27:01Z"'
        ($text -replace '\s+', '') | Should -Match ([regex]::Escape(($long -replace '\s+', '')))
        $text | Should -Match 'Error\s+failed to load'                  # the message text first
        $text | Should -Match 'component=config'
    }
    It 'a fault''s evidence is the message, readable, and its date has a year' {
        $faults = @(Get-KeyServiceLog $a[2] -Tail 5 | Get-KeyServiceFault)
        $text = $faults | Out-String -Width 80
        ($text -split "`r?`n" | Where-Object { $_.Length -gt 80 }) | Should -BeNullOrEmpty
        ($text -replace '\s+', '') | Should -Match 'failedtoloadconfigfromcipherservice'
        $text | Should -Not -Match 'time="2026'
        $text | Should -Match '\b20\d\d-\d\d-\d\d \d\d:\d\dZ'
    }
}

Describe 'Import-Csv binds by the aliases the help lists (row 8)' {
    It 'reads a hosts.csv with a <_> column' -ForEach @('ComputerName', 'IPAddress', 'Host') {
        $csv = Join-Path $TestDrive "hosts-$_.csv"
        @([pscustomobject]@{ $_ = $a[0]; Owner = 'team-a' }, [pscustomobject]@{ $_ = $a[1]; Owner = 'team-b' }) | Export-Csv $csv -NoTypeInformation
        $err = $null
        $r = @(Import-Csv $csv | Test-KeyServiceHealth -ErrorVariable err -ErrorAction SilentlyContinue)
        $err | Should -BeNullOrEmpty
        @($r | ForEach-Object Address) | Should -Be @($a[0], $a[1])
    }
}
