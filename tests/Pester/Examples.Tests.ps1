#requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.0.0' }
# Every example block with a pipeline in the cmdlet help (docs/cmdlets/*.md) and the README runs in real pwsh against
# the lab, with the example's placeholders (10.0.0.5, Q1X2, kong-admin:8001, …) replaced by the lab's, and ends with
# no error. The module is on PSModulePath, as an installed one is (runspaces of -Parallel and jobs load it by name).
# An example that needs what the lab cannot give is listed with the reason.
BeforeDiscovery {
    $repo = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
    $files = @(Get-ChildItem (Join-Path $repo 'docs/cmdlets') -Filter '*.md') + @(Get-Item (Join-Path $repo 'README.md'))
    $script:examples = foreach ($f in $files) {
        $text = Get-Content $f.FullName -Raw
        foreach ($m in [regex]::Matches($text, '(?s)```powershell\r?\n(.*?)```')) {
            $code = $m.Groups[1].Value
            $statements = ($code -split "\r?\n" | Where-Object { $_ -notmatch '^\s*#' }) -join "`n"
            if ($statements -match '\|') { @{ File = $f.Name; Code = $code.Trim(); Title = (($code.Trim() -split "\r?\n" | Where-Object { $_ -notmatch '^\s*#' } | Select-Object -First 1) -replace '\s+', ' ') } }
        }
    }
}
BeforeAll {
    . (Join-Path $PSScriptRoot 'LabHelpers.ps1')
    $script:repo = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
    $env:PSModulePath = (Join-Path $repo 'out') + [IO.Path]::PathSeparator + $env:PSModulePath
    $env:KEYSERVICEOPS_SESSION_FILE = Join-Path ([IO.Path]::GetTempPath()) "kso-example-session-$([guid]::NewGuid().ToString('N')).json"
    $script:lab = Start-KsoLab
    $script:a = $lab.instances
    $script:log = Join-Path ([IO.Path]::GetTempPath()) "kso-example-$([guid]::NewGuid().ToString('N')).log"
    $script:rules = Join-Path ([IO.Path]::GetTempPath()) "kso-example-rules-$([guid]::NewGuid().ToString('N')).json"
    '{"rules": []}' | Set-Content $rules
    "2026-12-03T10:00:00.000Z level=error msg=""cipher: cannot fetch config"" error=""cipher service unavailable""" | Set-Content $log
    $script:config = Join-Path ([IO.Path]::GetTempPath()) "kso-example-config-$([guid]::NewGuid().ToString('N')).json"
    @{ inventory = @(@{ address = $a[1]; port = 8888; environment = 'prod-eu-1' }) } | ConvertTo-Json -Depth 4 | Set-Content $config
    $env:KONG_ADMIN_TOKEN = 'lab-has-no-rbac'
    $env:PD_API_KEY = $lab.pagerDutyToken
    # pattern -> why the lab cannot run it
    $script:notHere = @{ 'ConvertFrom-PagerDutyWebhook' = 'needs a delivery signed by PagerDuty on stdin or from Azure: WebhookCmdletTests plays signed deliveries, and the runner recipe in a fresh pwsh' }
}
AfterAll {
    Stop-KsoLab $script:lab
    Remove-Item $log, $rules, $config, $env:KEYSERVICEOPS_SESSION_FILE -ErrorAction SilentlyContinue
    Remove-Item Env:KEYSERVICEOPS_SESSION_FILE, Env:KONG_ADMIN_TOKEN, Env:PD_API_KEY -ErrorAction SilentlyContinue
}

Describe 'Help and README pipeline examples' {
    It '<File>: <Title>' -ForEach $examples {
        $skip = $notHere.Keys | Where-Object { $Code -like "*$_*" } | Select-Object -First 1
        if ($skip) { Set-ItResult -Skipped -Because $notHere[$skip]; return }
        Set-KsoLabContext $lab
        Set-KeyServiceOpsContext -ConfigPath $config -Confirm:$false
        # The lab's 10.0.0.5: a crashed instance with an open incident, in the ring-balancer.
        Set-KsoLabMode $lab $a[1] Up
        Add-RingBalancerTarget "$($a[1]):8888" -Force -Confirm:$false -WarningAction SilentlyContinue | Out-Null
        Set-KsoLabScenario $lab $a[1] CleanCrash
        $incident = New-KsoLabAlert $lab $a[1]
        $code = $Code.Replace('10.0.0.5', $a[1]).Replace('Q1X2', $incident).Replace('./api_key_service.log', $log).Replace('./my-rules.json', $rules).
            Replace('./keyserviceops.json', $config).Replace('/etc/keyserviceops.json', $config).
            Replace('http://kong-admin:8001', $lab.kongAdminUri).Replace('https://kong-admin.internal:8444', $lab.kongAdminUri).
            Replace('-IntervalSec 30', '-IntervalSec 0.1 -Count 2').Replace('-IntervalSec 5', '-IntervalSec 0.1').Replace('-Count 10', '-Count 2').
            Replace('(Read-Host -AsSecureString)', '(ConvertTo-SecureString x -AsPlainText -Force)').Replace('~/.ssh/id_ed25519', $lab.sshKeyPath).
            Replace('ops@bastion.internal', "$($lab.sshUser)@$($a[0]):$($lab.sshPort)").Replace('-SshUser ops', "-SshUser $($lab.sshUser)").Replace('you@example.com', 'oncall@example.com').
            # "After recovery, put them back": the instance recovers between the two halves of the example.
            Replace('$removed | Add-RingBalancerTarget', 'Set-KsoLabMode $lab $a[1] Up; $removed | Add-RingBalancerTarget')
        # A -Follow line streams until Ctrl+C: it is left out here (SshTests follows and cancels a live stream).
        $code = ($code -split "\r?\n" | ForEach-Object { if ($_ -match '^\s*Get-KeyServiceLog .*-Follow') { "# $_" } else { $_ } }) -join "`n"
        $ConfirmPreference = 'None'
        $err = $null
        $null = Invoke-Expression $code -ErrorVariable err -ErrorAction SilentlyContinue 3>$null 6>$null
        @($err | Where-Object { $_ -is [System.Management.Automation.ErrorRecord] }) | ForEach-Object { "$($_.FullyQualifiedErrorId): $_" } | Should -BeNullOrEmpty -Because $code
    }
}
