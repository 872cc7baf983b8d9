#requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.0.0' }
# Issue #29 (and its attack): every source of a setting goes through the one catalog — the environment of a new
# session included — and a context set in a thread job stays there. Each case in a fresh pwsh process, as a new
# session meets it.
BeforeAll {
    $script:repo = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
    $script:psd1 = Join-Path $repo 'out/KeyServiceOps/KeyServiceOps.psd1'
    Import-Module $psd1 -Force
    $script:pwsh = (Get-Process -Id $PID).Path
    function script:Fresh([string] $code, [hashtable] $environment) {
        $exe = @($pwsh)
        if ([IO.Path]::GetFileNameWithoutExtension($pwsh) -eq 'dotnet') { $exe += (Join-Path $PSHOME 'pwsh.dll') }
        $saved = @{}
        foreach ($k in $environment.Keys) { $saved[$k] = [Environment]::GetEnvironmentVariable($k); [Environment]::SetEnvironmentVariable($k, $environment[$k]) }
        try {
            $script = "`$ProgressPreference = 'SilentlyContinue'; `$env:KEYSERVICEOPS_SESSION_FILE = '$(Join-Path $TestDrive 'none.json')'; Import-Module '$psd1'; $code"
            $rest = @($exe | Select-Object -Skip 1) + @('-NoProfile', '-NonInteractive', '-Command', $script)
            return (& $exe[0] @rest 2>&1 | Out-String)
        } finally {
            foreach ($k in $saved.Keys) { [Environment]::SetEnvironmentVariable($k, $saved[$k]) }
        }
    }
}

Describe 'The environment of a new session' {
    It 'skips an invalid KEYSERVICEOPS_* variable with a warning naming it, and keeps the others' {
        $out = Fresh "Get-KeyServiceOpsContext 3>&1 | ForEach-Object { if (`$_ -is [System.Management.Automation.WarningRecord]) { 'W: ' + `$_ } else { 'UP: ' + `$_.Upstream; 'TOKEN: ' + `$_.KongTokenSet } }" @{
            KEYSERVICEOPS_KONG_URI = 'ftp://kong.internal/'; KEYSERVICEOPS_UPSTREAM = 'mine'; KEYSERVICEOPS_KONG_TOKEN = 'tok' }
        $out | Should -Match 'W: .*KEYSERVICEOPS_KONG_URI'
        $out | Should -Match 'UP: mine'
        $out | Should -Match 'TOKEN: True'
        # The same variable given to New-KeyServiceOpsContext is the typed error (strict), here in this process.
        $env:KEYSERVICEOPS_KONG_URI = 'ftp://kong.internal/'
        try { { New-KeyServiceOpsContext -ErrorAction Stop } | Should -Throw -ErrorId 'InvalidUri,*' }
        finally { Remove-Item Env:KEYSERVICEOPS_KONG_URI }
    }
    It 'reads KEYSERVICEOPS_AUDIT_LOG and KEYSERVICEOPS_LOCK_DIR through the catalog: full paths, shown' {
        $out = Fresh "`$c = Get-KeyServiceOpsContext; 'AUDIT: ' + `$c.AuditLogPath; 'LOCKS: ' + `$c.LockDirectory" @{
            KEYSERVICEOPS_AUDIT_LOG = 'rel/audit.jsonl'; KEYSERVICEOPS_LOCK_DIR = 'rel-locks' }
        $out | Should -Match 'AUDIT: /.*rel/audit\.jsonl'
        $out | Should -Match 'LOCKS: /.*rel-locks'
        (Get-KeyServiceOpsContext).LockDirectory | Should -Not -Be 'rel-locks'
    }
}

Describe 'A context set in a thread job' {
    It 'stays in that job: later -Parallel runspaces start from the operator''s session' {
        $out = Fresh ("Set-KeyServiceOpsContext -Upstream from-session; " +
            "Start-ThreadJob { Import-Module '$psd1'; Set-KeyServiceOpsContext -Upstream from-threadjob } | Receive-Job -Wait -AutoRemoveJob; " +
            "1..2 | ForEach-Object -Parallel { Import-Module '$psd1'; 'PAR: ' + (Get-KeyServiceOpsContext).Upstream }") @{}
        $out | Should -Match 'PAR: from-session'
        $out | Should -Not -Match 'PAR: from-threadjob'
        (Get-KeyServiceOpsContext).Upstream | Should -Not -Be 'from-threadjob'
    }
}

Describe 'Piped objects that name an instance by their type' {
    It 'binds a [uri] with its port and an [ipaddress] as its address; a $null in the list is that item''s error' {
        $r = [uri]'http://127.0.0.9:9999/' | Test-KeyServiceHealth -TimeoutSec 0.2
        $r.Port | Should -Be 9999
        $r = [ipaddress]'127.0.0.9' | Test-KeyServiceHealth -TimeoutSec 0.2
        $r.Address | Should -Be '127.0.0.9'
        $e = $null
        $r = @($null, '127.0.0.9') | Test-KeyServiceHealth -TimeoutSec 0.2 -ErrorVariable e -ErrorAction SilentlyContinue
        @($r).Count | Should -Be 1
        $e[0].FullyQualifiedErrorId | Should -BeLike 'InvalidAddress,*'
    }
}
