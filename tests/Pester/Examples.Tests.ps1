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
    $script:notHere = @{}   # pattern -> why the lab cannot run it (none at present)
    # A PagerDuty V3 delivery for the example's incident, signed as PagerDuty signs it (the webhook examples' $body).
    function script:New-SignedDelivery([string] $Incident, [string] $Address) {
        $json = @{ event = @{ id = "01EX$([guid]::NewGuid().ToString('N').Substring(0, 20))"; event_type = 'incident.triggered'; resource_type = 'incident'
                              occurred_at = (Get-Date).ToUniversalTime().ToString('o')
                              data = @{ id = $Incident; type = 'incident'; status = 'triggered'; title = "Service: apiplatform_key_service in env: prod is down, url is http://$($Address):8888/api/auth/healthz" } } } | ConvertTo-Json -Depth 5 -Compress
        $bytes = [Text.Encoding]::UTF8.GetBytes($json)
        $h = [System.Security.Cryptography.HMACSHA256]::new([Text.Encoding]::UTF8.GetBytes('whsec-examples'))
        $sig = 'v1=' + ([Convert]::ToHexString($h.ComputeHash($bytes))).ToLowerInvariant()
        @{ Text = $json; Bytes = $bytes; Signature = $sig }
    }
    $env:KEYSERVICEOPS_PD_WEBHOOK_SECRET = 'whsec-examples'; $env:PD_WEBHOOK_SECRET = 'whsec-examples'; $env:KSO_PD_WEBHOOK_SECRET = 'whsec-examples'
}
AfterAll {
    Stop-KsoLab $script:lab
    Remove-Item $log, $rules, $config, $env:KEYSERVICEOPS_SESSION_FILE -ErrorAction SilentlyContinue
    Remove-Item Env:KEYSERVICEOPS_SESSION_FILE, Env:KONG_ADMIN_TOKEN, Env:PD_API_KEY, Env:KEYSERVICEOPS_PD_WEBHOOK_SECRET, Env:PD_WEBHOOK_SECRET, Env:KSO_PD_WEBHOOK_SECRET, Env:PD_SIGNATURE -ErrorAction SilentlyContinue
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
        $delivery = New-SignedDelivery $incident $a[1]
        $body = $delivery.Text; $headers = @{ 'X-PagerDuty-Signature' = $delivery.Signature }; $env:PD_SIGNATURE = $delivery.Signature
        $code = $Code.Replace('10.0.0.5', $a[1]).Replace('Q1X2', $incident).Replace('./api_key_service.log', $log).Replace('./my-rules.json', $rules).
            Replace('./keyserviceops.json', $config).Replace('/etc/keyserviceops.json', $config).
            Replace('http://kong-admin:8001', $lab.kongAdminUri).Replace('https://kong-admin.internal:8444', $lab.kongAdminUri).
            Replace('-IntervalSec 30', '-IntervalSec 0.1 -Count 2').Replace('-IntervalSec 5', '-IntervalSec 0.1').Replace('-Count 10', '-Count 2').
            Replace('(Read-Host -AsSecureString)', '(ConvertTo-SecureString x -AsPlainText -Force)').Replace('~/.ssh/id_ed25519', $lab.sshKeyPath).
            Replace('ops@bastion.internal', "$($lab.sshUser)@$($a[0]):$($lab.sshPort)").Replace('-SshUser ops', "-SshUser $($lab.sshUser)").Replace('you@example.com', 'oncall@example.com').
            # "After recovery, put them back": the instance recovers between the two halves of the example.
            Replace('$removed | Add-RingBalancerTarget', 'Set-KsoLabMode $lab $a[1] Up; $removed | Add-RingBalancerTarget').
            # The webhook examples: the delivery arrives on stdin, or as Azure's $WebhookData.
            Replace('([Console]::In.ReadToEnd())', '$body').
            Replace('param([object] $WebhookData)', '$WebhookData = [pscustomobject]@{ RequestBody = $body; RequestHeader = $headers }')
        # A -Follow line streams until Ctrl+C: it is left out here (SshTests follows and cancels a live stream).
        $code = ($code -split "\r?\n" | ForEach-Object { if ($_ -match '^\s*Get-KeyServiceLog .*-Follow') { "# $_" } else { $_ } }) -join "`n"
        $ConfirmPreference = 'None'
        $err = $null
        # Files an example writes (./Q1X2.html) go to a folder of its own, never the repository.
        $here = Join-Path $TestDrive ([guid]::NewGuid().ToString('N'))
        New-Item -ItemType Directory -Path $here | Out-Null
        Push-Location $here
        try { $null = Invoke-Expression $code -ErrorVariable err -ErrorAction SilentlyContinue 3>$null 6>$null }
        finally { Pop-Location }
        @($err | Where-Object { $_ -is [System.Management.Automation.ErrorRecord] }) | ForEach-Object { "$($_.FullyQualifiedErrorId): $_" } | Should -BeNullOrEmpty -Because $code
    }
}
