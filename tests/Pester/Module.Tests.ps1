#requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.0.0' }
# The module as a user loads it: a second copy in one session, session defaults in new runspaces.
BeforeAll {
    $script:repo = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
    $script:staged = Join-Path $repo 'out/KeyServiceOps'
}
AfterAll { Remove-Module KeyServiceOps -ErrorAction SilentlyContinue }

Describe 'A second copy of the module in one session' {
    AfterAll { Get-Module KeyServiceOps | Remove-Module }
    It 'imports a copy from another folder after the staged one and its cmdlets run (never the loader''s raw failure)' {
        $copy = Join-Path $TestDrive 'modules/KeyServiceOps'
        New-Item -ItemType Directory -Path (Split-Path $copy) -Force | Out-Null
        Copy-Item -Recurse $staged $copy
        Import-Module (Join-Path $staged 'KeyServiceOps.psd1') -Force
        $err = $null
        Import-Module (Join-Path $copy 'KeyServiceOps.psd1') -ErrorVariable err -ErrorAction SilentlyContinue
        $err | Should -BeNullOrEmpty
        { Get-KeyServiceOpsContext -ErrorAction Stop } | Should -Not -Throw
        (Get-Command Test-KeyServiceHealth).Module | Should -Not -BeNullOrEmpty
        $e = $null
        Test-KeyServiceHealth '10.0.0.999' -ErrorVariable e -ErrorAction SilentlyContinue
        $e[0].FullyQualifiedErrorId | Should -BeLike 'InvalidAddress,*'
    }
}

Describe 'Session defaults reach new runspaces and processes, never a secret value' {
    BeforeAll {
        Import-Module (Join-Path $staged 'KeyServiceOps.psd1') -Force
        $script:session = Join-Path $TestDrive 'session.json'
        $env:KEYSERVICEOPS_SESSION_FILE = $session
        $env:KSO_TEST_KONG_TOKEN = 'kong-secret-value-5d1'
    }
    AfterAll { Remove-Item Env:KEYSERVICEOPS_SESSION_FILE, Env:KSO_TEST_KONG_TOKEN -ErrorAction SilentlyContinue }

    It 'reaches ForEach-Object -Parallel runspaces, a SecureString token included (in memory only)' {
        $token = ConvertTo-SecureString 'in-memory-token-77' -AsPlainText -Force
        Set-KeyServiceOpsContext -KongAdminUri http://127.0.0.1:9/ -Upstream parallel_up -KongToken $token -HealthTimeoutSec 3
        $modulePath = Join-Path $staged 'KeyServiceOps.psd1'   # not on PSModulePath here, so each runspace imports it
        $seen = 1..3 | ForEach-Object -Parallel { Import-Module $using:modulePath; Get-KeyServiceOpsContext } -ThrottleLimit 3
        $seen.Count | Should -Be 3
        $seen | ForEach-Object { $_.KongAdminUri | Should -Be 'http://127.0.0.1:9/'; $_.Upstream | Should -Be 'parallel_up'; $_.KongTokenSet | Should -BeTrue }
        Test-Path $session | Should -BeFalse   # nothing written without -Save
    }
    It 'reaches a thread job' {
        Set-KeyServiceOpsContext -KongAdminUri http://127.0.0.1:9/ -Upstream thread_up
        $modulePath = Join-Path $staged 'KeyServiceOps.psd1'
        $ctx = Start-ThreadJob { Import-Module $using:modulePath; Get-KeyServiceOpsContext } | Receive-Job -Wait -AutoRemoveJob
        $ctx.Upstream | Should -Be 'thread_up'
    }
    It 'changes nothing under -WhatIf' {
        Set-KeyServiceOpsContext -Upstream before_whatif
        Set-KeyServiceOpsContext -Upstream after_whatif -Save -WhatIf
        (Get-KeyServiceOpsContext).Upstream | Should -Be 'before_whatif'
        Test-Path $session | Should -BeFalse
    }
    It 'reaches a new process (Start-Job) through -Save, which says where it wrote and writes no secret value' {
        $said = Set-KeyServiceOpsContext -KongAdminUri http://127.0.0.1:9/ -Upstream job_up -KongTokenVariable KSO_TEST_KONG_TOKEN -Save 6>&1 | Out-String
        $said | Should -Match ([regex]::Escape($session))
        $text = Get-Content $session -Raw
        $text | Should -Match 'KSO_TEST_KONG_TOKEN'
        $text | Should -Not -Match 'kong-secret-value-5d1'
        $modulePath = Join-Path $staged 'KeyServiceOps.psd1'
        $ctx = Start-Job { Import-Module $using:modulePath; Get-KeyServiceOpsContext | Select-Object Upstream, KongTokenSet, KongAdminUri } | Receive-Job -Wait -AutoRemoveJob
        $ctx.Upstream | Should -Be 'job_up'
        $ctx.KongTokenSet | Should -BeTrue
    }
    It 'warns that a SecureString token is not saved' {
        $w = $null
        Set-KeyServiceOpsContext -KongToken (ConvertTo-SecureString 'never-saved-9' -AsPlainText -Force) -Save -WarningVariable w -WarningAction SilentlyContinue 6>$null
        ($w -join ' ') | Should -Match 'not saved'
        Get-Content $session -Raw | Should -Not -Match 'never-saved-9'
    }
}

Describe 'The manifest, as a publisher and a user check it (#27 row 16)' {
    It 'the staged module passes Test-ModuleManifest, carries the version of Directory.Build.props, a LICENSE and no placeholder URI' {
        $m = Test-ModuleManifest (Join-Path $staged 'KeyServiceOps.psd1') -ErrorAction Stop
        Import-Module (Join-Path $staged 'KeyServiceOps.psd1') -Force
        (Get-Module KeyServiceOps).Version | Should -Be $m.Version
        Get-KeyServiceOpsContext | Should -Not -BeNullOrEmpty
        $props = [xml](Get-Content (Join-Path $repo 'Directory.Build.props') -Raw)
        $m.Version.ToString() | Should -Be ($props.Project.PropertyGroup.KeyServiceOpsVersion | Where-Object { $_ } | Select-Object -First 1)
        Join-Path $staged 'LICENSE' | Should -Exist
        $data = Import-PowerShellDataFile (Join-Path $staged 'KeyServiceOps.psd1')
        foreach ($uri in @($data.PrivateData.PSData.ProjectUri, $data.PrivateData.PSData.LicenseUri, $data.HelpInfoURI) | Where-Object { $_ }) {
            $uri | Should -Not -Match 'example\.(invalid|com|org)'
        }
    }
    It 'the source manifest in module/ is a valid manifest: its only complaints are the binaries the build puts beside it' {
        $errs = $null
        $m = Test-ModuleManifest (Join-Path $repo 'module/KeyServiceOps.psd1') -ErrorVariable errs -ErrorAction SilentlyContinue
        Get-KeyServiceOpsContext | Should -Not -BeNullOrEmpty   # the module the manifest describes runs
        $m.Version | Should -Not -BeNullOrEmpty
        $m.Version.ToString() | Should -Be (Test-ModuleManifest (Join-Path $staged 'KeyServiceOps.psd1')).Version.ToString()
        @($errs | Where-Object { $_.Exception.Message -notmatch 'KeyServiceOps(\.Loader)?\.dll' }) | Should -BeNullOrEmpty
    }
}
