#requires -Version 7.0
<#
.SYNOPSIS
    Build, test, package or demo KeyServiceOps (for pwsh users; CI uses `dotnet` directly, see .ci/run).
.EXAMPLE
    ./build.ps1 Build
.EXAMPLE
    ./build.ps1 Test      # xunit suites, then the Pester suites when Pester 5 is installed
.EXAMPLE
    ./build.ps1 Package   # out/package/KeyServiceOps/<version> and a zip ready for Publish-PSResource
.EXAMPLE
    ./build.ps1 Demo
#>
[CmdletBinding()]
param(
    [ValidateSet('Build', 'Test', 'Package', 'Demo')]
    [string[]] $Task = 'Build',
    [ValidateSet('Debug', 'Release')]
    [string] $Configuration = 'Debug'
)
$ErrorActionPreference = 'Stop'
Set-Location $PSScriptRoot

function Invoke-Dotnet {
    dotnet @args
    if ($LASTEXITCODE -ne 0) { throw "dotnet $($args -join ' ') failed with exit code $LASTEXITCODE" }
}

foreach ($t in $Task) {
    switch ($t) {
        'Build' {
            Invoke-Dotnet build KeyServiceOps.sln -c $Configuration
            Write-Host "Staged module: $(Join-Path $PSScriptRoot 'out/KeyServiceOps')"
        }
        'Test' {
            Invoke-Dotnet build KeyServiceOps.sln -c $Configuration
            Invoke-Dotnet test KeyServiceOps.sln -c $Configuration --no-build
            $pester = Get-Module -ListAvailable Pester | Where-Object Version -ge '5.0.0' | Sort-Object Version -Descending | Select-Object -First 1
            if ($pester) {
                Import-Module $pester
                $cfg = New-PesterConfiguration
                $cfg.Run.Path = Join-Path $PSScriptRoot 'tests/Pester'
                $cfg.Run.Exit = $true
                $cfg.Output.Verbosity = 'Detailed'
                Invoke-Pester -Configuration $cfg
            }
            else {
                Write-Warning 'Pester 5 is not installed: skipped tests/Pester (Install-Module Pester -MinimumVersion 5.0 -Scope CurrentUser).'
            }
        }
        'Package' {
            Invoke-Dotnet build KeyServiceOps.sln -c Release
            Invoke-Dotnet run --project tests/KeyServiceOps.Lab -c Release --no-build -- package
        }
        'Demo' {
            Invoke-Dotnet build KeyServiceOps.sln -c $Configuration
            Invoke-Dotnet run --project tests/KeyServiceOps.Lab -c $Configuration --no-build -- demo
        }
    }
}
