# Shared by the Pester suites: start the lab (a separate dotnet process), import the staged module, point the
# context at the lab. Needs `dotnet build KeyServiceOps.sln` first (build.ps1 Test does it).

function Start-KsoLab {
    $repo = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
    $info = Join-Path ([System.IO.Path]::GetTempPath()) ("kso-lab-{0}.json" -f [guid]::NewGuid().ToString('N'))
    $psi = [System.Diagnostics.ProcessStartInfo]::new('dotnet')
    foreach ($a in @('run', '--project', (Join-Path $repo 'tests/KeyServiceOps.Lab'), '--no-build', '--', 'serve', '3600', '--info', $info, '--stop-on-stdin-close')) { $psi.ArgumentList.Add($a) }
    $psi.RedirectStandardInput = $true      # closing stdin stops the lab
    $psi.RedirectStandardOutput = $true
    $process = [System.Diagnostics.Process]::Start($psi)
    $deadline = (Get-Date).AddSeconds(90)
    while (-not (Test-Path $info)) {
        if ((Get-Date) -gt $deadline -or $process.HasExited) { throw "The lab did not start: $($process.StandardOutput.ReadToEnd())" }
        Start-Sleep -Milliseconds 200
    }
    $lab = Get-Content $info -Raw | ConvertFrom-Json
    Remove-Item $info -ErrorAction SilentlyContinue     # read once; it holds the lab's tokens
    $lab | Add-Member -NotePropertyName Process -NotePropertyValue $process
    Import-Module (Join-Path $repo 'out/KeyServiceOps/KeyServiceOps.psd1') -Force
    $audit = Join-Path ([System.IO.Path]::GetTempPath()) ("kso-pester-audit-{0}.jsonl" -f [guid]::NewGuid().ToString('N'))
    $lab | Add-Member -NotePropertyName AuditLog -NotePropertyValue $audit
    Set-KsoLabContext $lab
    $lab
}

function Set-KsoLabContext($lab) {
    $env:KSO_PESTER_PD_TOKEN = $lab.pagerDutyToken
    $env:KSO_PESTER_LOGS_KEY = $lab.centralLogApiKey
    Set-KeyServiceOpsContext -Reset -KongAdminUri $lab.kongAdminUri -Upstream $lab.upstream -HealthTimeoutSec 2 -AuditLogPath $lab.AuditLog `
        -PagerDutyUri $lab.pagerDutyUri -PagerDutyTokenVariable KSO_PESTER_PD_TOKEN -PagerDutyFrom oncall@example.com `
        -SshUser $lab.sshUser -SshPort $lab.sshPort -SshKeyPath $lab.sshKeyPath -KnownHostsPath $lab.knownHostsPath `
        -CentralLogUri $lab.centralLogUri -CentralLogApiKeyVariable KSO_PESTER_LOGS_KEY `
        -RestartPollSec 0.2 -RestartWaitSec 20 -FaultOwner @{ CipherDependency = 'cipher-owner@example.com' } -Confirm:$false
}

function Stop-KsoLab($Lab) {
    if ($Lab -and $Lab.Process -and -not $Lab.Process.HasExited) {
        $Lab.Process.StandardInput.Close()
        if (-not $Lab.Process.WaitForExit(15000)) { $Lab.Process.Kill($true) }
    }
    Remove-Module KeyServiceOps -ErrorAction SilentlyContinue
    if ($Lab -and $Lab.AuditLog) { Remove-Item $Lab.AuditLog, "$($Lab.AuditLog).lock", ($Lab.AuditLog -replace '\.jsonl$', '.pending-notes.jsonl') -ErrorAction SilentlyContinue }
}

function Set-KsoLabScenario($Lab, [string] $Address, [string] $Scenario, [switch] $Persists) {
    Invoke-RestMethod -Method Post -Uri ("{0}scenario?address={1}&name={2}&persists={3}" -f $Lab.control, $Address, $Scenario, $(if ($Persists) { 'true' } else { 'false' })) | Out-Null
}

function Set-KsoLabMode($Lab, [string] $Address, [string] $Mode) {
    Invoke-RestMethod -Method Post -Uri ("{0}mode?address={1}&mode={2}" -f $Lab.control, $Address, $Mode) | Out-Null
}

# How many `docker restart` commands the instance served (the lab's count: Docker's RestartCount only counts restart-policy restarts).
function Get-KsoLabRestarts($Lab, [string] $Address) {
    [int] (Invoke-RestMethod -Uri ("{0}restarts?address={1}" -f $Lab.control, $Address))
}

function New-KsoLabAlert($Lab, [string] $Address) {
    Invoke-RestMethod -Method Post -Uri ("{0}alert?address={1}" -f $Lab.control, $Address)
}

# The container writes a line with exactly these characters (escape sequences included).
# `docker logs` on the instance also sends this file's bytes as they are, after its lines ('' turns it off).
function Set-KsoLabRawLog($Lab, [string] $Address, [string] $Path) {
    Invoke-RestMethod -Method Post -Uri ("{0}rawlog?address={1}&path={2}" -f $Lab.control, $Address, [uri]::EscapeDataString($Path)) | Out-Null
}

function Add-KsoLabLogLine($Lab, [string] $Address, [string] $Text, [switch] $Stderr) {
    $b64 = [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes($Text))
    Invoke-RestMethod -Method Post -Uri ("{0}log?address={1}&b64={2}&stderr={3}" -f $Lab.control, $Address, [uri]::EscapeDataString($b64), $(if ($Stderr) { 'true' } else { 'false' })) | Out-Null
}
