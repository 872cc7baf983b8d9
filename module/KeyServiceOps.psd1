@{
    RootModule           = 'KeyServiceOps.dll'
    ModuleVersion        = '0.1.0'
    GUID                 = '5b0c2f6e-7d1a-4f0e-9d84-6a3b1c2e9f41'
    Author               = 'KeyServiceOps maintainers'
    CompanyName          = 'KeyServiceOps'
    Copyright            = '(c) KeyServiceOps maintainers. MIT License.'
    Description          = 'The api_key_service "instance is down" runbook as cmdlets: health checks, Kong ring-balancer targets, docker over SSH, PagerDuty notes and escalation, and safe self-healing.'
    PowerShellVersion    = '5.1'
    CompatiblePSEditions = @('Desktop', 'Core')
    FormatsToProcess     = @('KeyServiceOps.format.ps1xml')
    # Imported before the root module: loads our dependencies from Dependencies/ in isolation.
    NestedModules        = @('KeyServiceOps.Loader.dll')
    CmdletsToExport      = @(
        'Set-KeyServiceOpsContext'
        'Get-KeyServiceOpsContext'
        'New-KeyServiceOpsContext'
        'Get-KeyServiceInstance'
        'Test-KeyServiceHealth'
        'Get-RingBalancerTarget'
        'Remove-RingBalancerTarget'
        'Add-RingBalancerTarget'
        'Get-KeyServiceAuditLog'
        'Get-KeyServiceLog'
        'Get-KeyServiceFault'
        'Get-KeyServiceContainer'
        'Restart-KeyService'
        'Invoke-KeyServiceRunbook'
        'Get-KeyServiceIncidentTimeline'
        'Export-KeyServiceIncidentReport'
        'Invoke-KeyServiceSelfHealing'
        'Start-KeyServiceSelfHealing'
        'Get-KeyServiceSelfHealingStatus'
        'Get-PagerDutyIncident'
        'Get-PagerDutyIncidentNote'
        'ConvertFrom-PagerDutyWebhook'
        'Add-PagerDutyIncidentNote'
        'Set-PagerDutyIncident'
    )
    FunctionsToExport    = @()
    AliasesToExport      = @()
    VariablesToExport    = @()
    PrivateData          = @{
        PSData = @{
            Tags         = @('Kong', 'PagerDuty', 'SSH', 'Runbook', 'OnCall', 'SRE', 'SelfHealing')
            LicenseUri   = 'https://opensource.org/licenses/MIT'
            ReleaseNotes = 'See CHANGELOG.md in the repository.'
        }
    }
}
