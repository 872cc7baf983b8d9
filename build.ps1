#requires -Version 7.0
<#
.SYNOPSIS
    Build, test, package or demo KeyServiceOps (for pwsh users: `dotnet pwsh ./build.ps1 Test`; CI uses `dotnet` directly, see .ci/run).
.EXAMPLE
    ./build.ps1 Build
.EXAMPLE
    ./build.ps1 Test      # every suite: xunit, and the Pester suites in real pwsh (Pester 5.7.1 from NuGet)
.EXAMPLE
    ./build.ps1 Pester    # the Pester suites alone, in this pwsh
.EXAMPLE
    ./build.ps1 Package   # out/package/KeyServiceOps/<version> and a zip ready for Publish-PSResource
.EXAMPLE
    ./build.ps1 Demo
#>
[CmdletBinding()]
param(
    [ValidateSet('Build', 'Test', 'Pester', 'Package', 'Demo')]
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
            # dotnet test runs every suite (it does not stop at the first failing project), the Pester suites
            # included: tests/KeyServiceOps.Pester.Tests runs them in the pinned pwsh with Pester from NuGet.
            Invoke-Dotnet tool restore
            Invoke-Dotnet build KeyServiceOps.sln -c $Configuration
            dotnet test KeyServiceOps.sln -c $Configuration --no-build
            if ($LASTEXITCODE -ne 0) { throw "dotnet test failed with exit code $LASTEXITCODE (see the failures above)" }
        }
        'Pester' {
            # The Pester suites alone, in this pwsh, with Pester found installed or in the NuGet cache.
            Invoke-Dotnet build KeyServiceOps.sln -c $Configuration
            & (Join-Path $PSScriptRoot 'tests/Pester/Invoke-KsoPester.ps1')
            if ($LASTEXITCODE -ne 0) { throw "$LASTEXITCODE Pester test(s) failed" }
        }
        'Package' {
            # A build step of the module project (target PackageModule), not a test project.
            Invoke-Dotnet build src/KeyServiceOps/KeyServiceOps.csproj -c Release -t:PackageModule
        }
        'Demo' {
            Invoke-Dotnet build KeyServiceOps.sln -c $Configuration
            Invoke-Dotnet run --project tests/KeyServiceOps.Lab -c $Configuration --no-build -- demo
        }
    }
}
