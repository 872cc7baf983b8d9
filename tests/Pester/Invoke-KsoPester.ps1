<#
.SYNOPSIS
    Runs the Pester suites in this folder with Pester 5 (installed, or restored from NuGet by `dotnet build`).
.DESCRIPTION
    Used by `dotnet test` (tests/KeyServiceOps.Pester.Tests runs it in the pinned pwsh and reports one case per It)
    and by `./build.ps1 Test`. Needs `dotnet build KeyServiceOps.sln` first: the suites import out/KeyServiceOps.
    Exit code: the number of failed tests and failed containers (0 when all passed).
.EXAMPLE
    dotnet pwsh -NoProfile -File tests/Pester/Invoke-KsoPester.ps1
.EXAMPLE
    dotnet pwsh -NoProfile -File tests/Pester/Invoke-KsoPester.ps1 -Path tests/Pester/Serialization.Tests.ps1 -ResultPath ./pester.json
#>
[CmdletBinding()]
param(
    [string[]] $Path = $PSScriptRoot,
    [string] $ResultPath,
    [string] $PesterPath
)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
# Verbose lines must never become prompts in a run with no one at the keyboard.
$DebugPreference = 'SilentlyContinue'

function Find-Pester {
    if ($PesterPath) { return $PesterPath }
    $installed = Get-Module -ListAvailable Pester | Where-Object { $_.Version -ge [version]'5.0.0' -and $_.Version -lt [version]'6.0.0' } |
        Sort-Object Version -Descending | Select-Object -First 1
    if ($installed) { return $installed.Path }
    $roots = @($env:NUGET_PACKAGES, (Join-Path ([Environment]::GetFolderPath('UserProfile')) '.nuget/packages')) | Where-Object { $_ }
    foreach ($root in $roots) {
        $candidates = Get-ChildItem -Path (Join-Path $root 'pester') -Directory -ErrorAction SilentlyContinue |
            Where-Object { $_.Name -like '5.*' -and (Test-Path (Join-Path $_.FullName 'tools/Pester.psd1')) } |
            Sort-Object { [version]$_.Name } -Descending
        if ($candidates) { return (Join-Path $candidates[0].FullName 'tools/Pester.psd1') }
    }
    throw "Pester 5 was not found. Run 'dotnet build KeyServiceOps.sln' (it restores Pester $('5.7.1') from NuGet) or Install-Module Pester -MinimumVersion 5.0 -MaximumVersion 5.99 -Scope CurrentUser."
}

Import-Module (Find-Pester) -Force
$cfg = New-PesterConfiguration
$cfg.Run.Path = $Path
$cfg.Run.PassThru = $true
$cfg.Run.Exit = $false
$cfg.Output.Verbosity = 'Detailed'
$run = Invoke-Pester -Configuration $cfg

if ($ResultPath) {
    $tests = foreach ($t in $run.Tests) {
        [pscustomobject]@{
            File   = $t.ScriptBlock.File
            Line   = $t.ScriptBlock.StartPosition.StartLine
            Name   = $t.ExpandedPath
            Result = [string]$t.Result
            Error  = (@($t.ErrorRecord | ForEach-Object { "$_`n$($_.ScriptStackTrace)" }) -join "`n")
        }
    }
    $containers = foreach ($c in $run.Containers) {
        [pscustomobject]@{
            File   = [string]$c.Item
            Result = [string]$c.Result
            Error  = (@($c.ErrorRecord | ForEach-Object { "$_`n$($_.ScriptStackTrace)" }) -join "`n")
        }
    }
    [pscustomobject]@{ Tests = @($tests); Containers = @($containers) } | ConvertTo-Json -Depth 5 | Set-Content -LiteralPath $ResultPath -Encoding utf8
}
# A failed BeforeAll/AfterAll (block) or a file that does not even load (container) counts as a failure too.
$failed = $run.FailedCount + $run.FailedBlocksCount + $run.FailedContainersCount
"Pester: $($run.PassedCount) passed, $failed failed"
exit $failed
