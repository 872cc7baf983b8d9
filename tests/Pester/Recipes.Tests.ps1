#requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.0.0' }
# Issue #30: every recipe in docs/unattended.md, as the engine runs it — its code taken from the page itself, run in a
# fresh pwsh process with only what the recipe sets (its own HOME, the environment it names, the config file), against
# the lab, from a signed delivery (or a schedule) to a recovered instance. Paths the recipe names (C:\kso, /kso, /etc)
# are pointed at this run's files; nothing else of the recipe is changed, except where a test says so.
BeforeAll {
    . (Join-Path $PSScriptRoot 'LabHelpers.ps1')
    $script:lab = Start-KsoLab
    $script:a = $lab.instances
    $script:pwsh = (Get-Process -Id $PID).Path
    $script:module = (Get-Module KeyServiceOps).Path -replace 'KeyServiceOps.dll$', 'KeyServiceOps.psd1'
    $script:page = Get-Content (Join-Path $PSScriptRoot '../../docs/unattended.md') -Raw

    # The code block that follows HEADING on the page.
    function script:Recipe([string] $Heading, [string] $Fence) {
        $m = [regex]::Match($page, "(?s)## $([regex]::Escape($Heading)).*?``````$Fence\r?\n(.*?)``````")
        if (-not $m.Success) { throw "docs/unattended.md has no $Fence block under '## $Heading'" }
        $m.Groups[1].Value
    }

    # A config file as a team would write one for the engine (secrets by environment variable name only).
    function script:New-RecipeConfig([string] $Dir) {
        $config = Join-Path $Dir 'config.json'
        @{ kongAdminUri = $lab.kongAdminUri; upstream = $lab.upstream
           sshUser = $lab.sshUser; sshPort = $lab.sshPort; sshKeyPath = $lab.sshKeyPath; knownHostsPath = $lab.knownHostsPath
           pagerDutyUri = $lab.pagerDutyUri; pagerDutyTokenVariable = 'KSO_RECIPE_PD_TOKEN'; pagerDutyFrom = 'oncall@example.com'
           auditLogPath = (Join-Path $Dir 'audit.jsonl'); lockDirectory = (Join-Path $Dir 'locks')
           restartPollSeconds = 0.2; restartWaitSeconds = 20 } | ConvertTo-Json | Set-Content $config
        $config
    }

    # A signed PagerDuty V3 delivery (incident.triggered) for INCIDENT, as PagerDuty signs it.
    function script:New-Delivery([string] $Incident, [string] $Address, [string] $Secret) {
        $json = @{ event = @{ id = "01RC$([guid]::NewGuid().ToString('N').Substring(0, 20))"; event_type = 'incident.triggered'; resource_type = 'incident'
                              occurred_at = (Get-Date).ToUniversalTime().ToString('o')
                              data = @{ id = $Incident; type = 'incident'; status = 'triggered'; title = "Service: apiplatform_key_service in env: prod is down, url is http://$($Address):8888/api/auth/healthz" } } } | ConvertTo-Json -Depth 5 -Compress
        $bytes = [Text.Encoding]::UTF8.GetBytes($json)
        $h = [System.Security.Cryptography.HMACSHA256]::new([Text.Encoding]::UTF8.GetBytes($Secret))
        @{ Text = $json; Signature = 'v1=' + ([Convert]::ToHexString($h.ComputeHash($bytes))).ToLowerInvariant() }
    }

    # A fresh pwsh running SCRIPT (a file) with its own HOME and only ENV of ours (nothing of this session's context).
    function script:Start-Fresh([string] $Script, [hashtable] $Env, [string] $Dir) {
        $file = Join-Path $Dir ("run-{0}.ps1" -f [guid]::NewGuid().ToString('N').Substring(0, 8))
        Set-Content $file $Script
        $psi = [System.Diagnostics.ProcessStartInfo]::new($pwsh)
        if ([IO.Path]::GetFileNameWithoutExtension($pwsh) -eq 'dotnet') { $psi.ArgumentList.Add((Join-Path $PSHOME 'pwsh.dll')) }
        foreach ($x in '-NoProfile', '-NonInteractive', '-File', $file) { $psi.ArgumentList.Add($x) }
        foreach ($k in @($psi.Environment.Keys)) { if ($k -match '^(KEYSERVICEOPS_|KSO_|PD_)') { $psi.Environment.Remove($k) | Out-Null } }
        $psi.Environment['HOME'] = (New-Item -ItemType Directory -Force (Join-Path $Dir 'home')).FullName
        foreach ($k in $Env.Keys) { $psi.Environment[$k] = $Env[$k] }
        $psi.RedirectStandardOutput = $true; $psi.RedirectStandardError = $true; $psi.RedirectStandardInput = $true; $psi.UseShellExecute = $false
        $p = [System.Diagnostics.Process]::Start($psi)
        $p.StandardInput.Close()
        $out = $p.StandardOutput.ReadToEndAsync(); $err = $p.StandardError.ReadToEndAsync()
        $p | Add-Member -NotePropertyName Out -NotePropertyValue $out -PassThru | Add-Member -NotePropertyName Err -NotePropertyValue $err -PassThru
    }
    function script:Invoke-Fresh([string] $Script, [hashtable] $Env, [string] $Dir) {
        $p = Start-Fresh $Script $Env $Dir
        if (-not $p.WaitForExit(180000)) { $p.Kill($true); throw "the recipe did not end in 3 min" }
        [pscustomobject]@{ ExitCode = $p.ExitCode; Out = $p.Out.Result; Err = $p.Err.Result }
    }
    function script:Restarts($address) { Get-KsoLabRestarts $lab $address }
    function script:InRotation($address) { (Get-RingBalancerTarget | Where-Object Target -eq "$($address):8888").Weight -gt 0 }
    function script:Wait-Until([scriptblock] $Condition, $Process, [int] $Seconds = 90) {
        $deadline = (Get-Date).AddSeconds($Seconds)
        while (-not (& $Condition)) {
            if ($Process -and $Process.HasExited) { throw "the process ended (exit $($Process.ExitCode)) before: $Condition`n$($Process.Out.Result)`n$($Process.Err.Result)" }
            if ((Get-Date) -gt $deadline) { throw "timed out waiting for: $Condition" }
            Start-Sleep -Milliseconds 100
        }
    }
}
AfterAll { Stop-KsoLab $script:lab }

Describe 'Azure Automation: the runbook a webhook starts, as the page shows it' {
    It 'a signed delivery ends Recovered with one restart and one summary note; the same delivery again changes nothing' {
        $addr = $a[1]
        $dir = (New-Item -ItemType Directory (Join-Path $TestDrive 'azure')).FullName
        $config = New-RecipeConfig $dir
        Set-KsoLabScenario $lab $addr CleanCrash
        $incident = New-KsoLabAlert $lab $addr
        $before = Restarts $addr
        $runbook = (Recipe 'Azure Automation' 'powershell').Replace('Import-Module KeyServiceOps', "Import-Module '$module'").Replace('C:\kso\config.json', $config)
        Set-Content (Join-Path $dir 'azure-runbook.ps1') $runbook
        $delivery = New-Delivery $incident $addr 'whsec-azure'
        Set-Content (Join-Path $dir 'body.json') $delivery.Text -NoNewline
        # What Azure Automation does with a webhook call: $WebhookData with the body as text and the headers.
        $start = "`$ProgressPreference = 'SilentlyContinue'`n& '$(Join-Path $dir 'azure-runbook.ps1')' -WebhookData ([pscustomobject]@{ WebhookName = 'kso'; RequestBody = [IO.File]::ReadAllText('$(Join-Path $dir 'body.json')'); RequestHeader = @{ 'X-PagerDuty-Signature' = '$($delivery.Signature)' } })"
        $env = @{ KSO_PD_WEBHOOK_SECRET = 'whsec-azure'; KSO_RECIPE_PD_TOKEN = $lab.pagerDutyToken }
        $r = Invoke-Fresh $start $env $dir
        $r.ExitCode | Should -Be 0 -Because "$($r.Out)`n$($r.Err)"
        $r.Out | Should -Match 'Recovered'
        (Restarts $addr) | Should -Be ($before + 1)
        InRotation $addr | Should -BeTrue
        @((Get-PagerDutyIncidentNote -IncidentId $incident) | Where-Object Content -match 'unattended runbook for').Count | Should -Be 1
        # PagerDuty retries the delivery: nothing is done the second time, and it says so.
        $again = Invoke-Fresh $start $env $dir
        $again.ExitCode | Should -Be 0 -Because "$($again.Out)`n$($again.Err)"
        "$($again.Out)$($again.Err)" | Should -Match 'seen before'
        (Restarts $addr) | Should -Be ($before + 1)
    }
}

Describe 'Kubernetes CronJob: a self-healing pass per tick, as the page''s command line' {
    It 'ticks of the CronJob''s command take the crashed instance out, restart it once and put it back' {
        $addr = $a[2]
        $dir = (New-Item -ItemType Directory (Join-Path $TestDrive 'k8s')).FullName
        $config = New-RecipeConfig $dir
        $state = (New-Item -ItemType Directory (Join-Path $dir 'state')).FullName
        $yaml = Recipe 'Kubernetes CronJob' 'yaml'
        $yaml | Should -Match 'concurrencyPolicy: Forbid'
        $command = [regex]::Match($yaml, '"-Command",\s*\r?\n?\s*"([^"]+)"').Groups[1].Value
        $command | Should -Match 'Invoke-KeyServiceSelfHealing'
        $command = $command.Replace('/kso/KeyServiceOps/KeyServiceOps.psd1', $module).Replace('/kso/config.json', $config).Replace('/state/', "$state/")
        Set-KsoLabScenario $lab $addr CleanCrash
        $before = Restarts $addr
        $ticks = 0; $removed = $false
        while ($ticks -lt 20) {
            $r = Invoke-Fresh $command @{ KSO_RECIPE_PD_TOKEN = $lab.pagerDutyToken } $dir
            $r.ExitCode | Should -Be 0 -Because "tick $($ticks + 1): $($r.Out)`n$($r.Err)"
            $ticks++
            if (-not (InRotation $addr)) { $removed = $true }
            if ($removed -and (InRotation $addr)) { break }
        }
        $removed | Should -BeTrue
        InRotation $addr | Should -BeTrue -Because "after $ticks ticks"
        (Restarts $addr) | Should -Be ($before + 1)
        Test-Path (Join-Path $state 'api_key_service.json') | Should -BeTrue      # the state lives on the volume
    }
}

Describe 'systemd: the long-running loop the unit starts' {
    It 'recovers a crashed instance once, then SIGTERM (systemctl stop) ends it with nothing left unfinished' {
        $addr = $a[0]
        $dir = (New-Item -ItemType Directory (Join-Path $TestDrive 'systemd')).FullName
        $config = New-RecipeConfig $dir
        $unit = Recipe 'systemd' 'ini'
        $command = [regex]::Match($unit, 'ExecStart=\S+ -NoProfile -NonInteractive -Command "(.+)"').Groups[1].Value
        # What systemd does to ExecStart= first: $$ is a literal $, $NAME / ${NAME} its own (empty) variables.
        $command = [regex]::Replace($command, '\$\$|\$\{?\w+\}?', { param($m) if ($m.Value -eq '$$') { '$' } else { '' } })
        $command | Should -Match 'Start-KeyServiceSelfHealing -IntervalSec 30'
        # A test cannot wait 30 s between passes: the one change to the recipe.
        $command = $command.Replace('/opt/kso/KeyServiceOps/KeyServiceOps.psd1', $module).Replace('/etc/kso/config.json', $config).Replace('-IntervalSec 30', "-IntervalSec 0.5 -StatePath '$dir/state.json'")
        Set-KsoLabScenario $lab $addr CleanCrash
        $before = Restarts $addr
        $p = Start-Fresh $command @{ KSO_RECIPE_PD_TOKEN = $lab.pagerDutyToken } $dir
        try {
            Wait-Until { -not (InRotation $addr) } $p
            Wait-Until { (Restarts $addr) -gt $before -and (InRotation $addr) } $p
            & kill -TERM $p.Id                                                  # systemctl stop
            $p.WaitForExit(30000) | Should -BeTrue -Because 'the loop stops on SIGTERM'
        }
        finally { if (-not $p.HasExited) { $p.Kill($true) } }
        (Restarts $addr) | Should -Be ($before + 1)
        $lines = @(Get-Content (Join-Path $dir 'audit.jsonl') | ConvertFrom-Json)
        $lines.Count | Should -BeGreaterThan 0
        @(Get-KeyServiceAuditLog -Path (Join-Path $dir 'audit.jsonl') | Where-Object Outcome -in 'Unfinished', 'Unknown').Count | Should -Be 0
    }
}

Describe 'The on-page recipe when the runbook cannot act' {
    It 'exits 2 with one JSON line saying why, notes the incident, and prints no warning text on stdout' {
        $addr = $a[2]
        $dir = (New-Item -ItemType Directory (Join-Path $TestDrive 'cannot')).FullName
        $config = New-RecipeConfig $dir
        $c = Get-Content $config -Raw | ConvertFrom-Json; $c.kongAdminUri = 'http://127.0.0.1:1/'; $c | ConvertTo-Json | Set-Content $config
        Set-KsoLabScenario $lab $addr CleanCrash
        $incident = New-KsoLabAlert $lab $addr
        $before = Restarts $addr
        $delivery = New-Delivery $incident $addr 'whsec-cannot'
        Set-Content (Join-Path $dir 'body.json') $delivery.Text -NoNewline
        $recipe = Join-Path $PSScriptRoot '../../docs/recipes/on-page.ps1'
        $env = @{ PD_BODY_FILE = (Join-Path $dir 'body.json'); PD_SIGNATURE = $delivery.Signature; KSO_CONFIG = $config; KSO_MODULE = $module
                  KEYSERVICEOPS_PD_WEBHOOK_SECRET = 'whsec-cannot'; KSO_RECIPE_PD_TOKEN = $lab.pagerDutyToken }
        $r = Invoke-Fresh "& '$recipe'; exit `$LASTEXITCODE" $env $dir
        $r.ExitCode | Should -Be 2 -Because "$($r.Out)`n$($r.Err)"                 # was 0, with nothing on stdout
        $lines = @($r.Out -split "`r?`n" | Where-Object { $_.Trim() })
        $lines.Count | Should -Be 1 -Because $r.Out
        $j = $lines[0] | ConvertFrom-Json
        $j.result | Should -Be 'error'
        $j.error | Should -Match 'Kong'
        $r.Out | Should -Not -Match "`e"                                            # no colour codes in the job log
        (Restarts $addr) | Should -Be $before
        @((Get-PagerDutyIncidentNote -IncidentId $incident) | Where-Object Content -match 'unattended runbook could not run').Count | Should -Be 1
        Set-KsoLabMode $lab $addr Up
    }
}

Describe 'A delivery while a responder''s own runbook works the instance' {
    It 'the unattended run waits for the responder and restarts nothing: one restart' {
        $addr = $a[3]
        $dir = (New-Item -ItemType Directory (Join-Path $TestDrive 'during')).FullName
        $config = New-RecipeConfig $dir
        Set-KsoLabScenario $lab $addr CleanCrash
        $incident = New-KsoLabAlert $lab $addr
        $before = Restarts $addr
        # The responder (its own HOME, same lock folder and VM) runs the runbook by hand.
        $responder = Start-Fresh "Import-Module '$module'; Set-KeyServiceOpsContext -ConfigPath '$config'; Invoke-KeyServiceRunbook $addr -IncidentId $incident -Confirm:`$false" @{ KSO_RECIPE_PD_TOKEN = $lab.pagerDutyToken } $dir
        try {
            Wait-Until { -not (InRotation $addr) } $responder                   # the responder is inside the runbook
            $delivery = New-Delivery $incident $addr 'whsec-during'
            Set-Content (Join-Path $dir 'body.json') $delivery.Text -NoNewline
            $recipe = Join-Path $PSScriptRoot '../../docs/recipes/on-page.ps1'
            $r = Invoke-Fresh "& '$recipe'; exit `$LASTEXITCODE" @{ PD_BODY_FILE = (Join-Path $dir 'body.json'); PD_SIGNATURE = $delivery.Signature; KSO_CONFIG = $config; KSO_MODULE = $module
                                                                   KEYSERVICEOPS_PD_WEBHOOK_SECRET = 'whsec-during'; KSO_RECIPE_PD_TOKEN = $lab.pagerDutyToken } $dir
            $responder.WaitForExit(120000) | Should -BeTrue
        }
        finally { if (-not $responder.HasExited) { $responder.Kill($true) } }
        $r.ExitCode | Should -Be 0 -Because "$($r.Out)`n$($r.Err)"
        (Restarts $addr) | Should -Be ($before + 1)
        InRotation $addr | Should -BeTrue
    }
}
