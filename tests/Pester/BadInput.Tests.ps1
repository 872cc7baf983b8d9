#requires -Modules @{ ModuleName = 'Pester'; ModuleVersion = '5.0.0' }
# Bad input, as an operator (or a hostile one) would type it: each row must end in a typed error — a stable id that
# names the problem, a category, a message that names the input (clipped) and says what to do — and change nothing:
# Kong's targets, the audit log, the container's restarts, the incident's notes.
BeforeDiscovery {
    $script:rows = @(
        # ring-balancer targets
        @{ Name = 'port out of range'; Id = 'InvalidTarget'; Run = { Remove-RingBalancerTarget '10.0.0.5:99999' -Confirm:$false } }
        @{ Name = 'not an address'; Id = 'InvalidTarget'; Run = { Add-RingBalancerTarget 'not an ip' -Force -Confirm:$false } }
        @{ Name = 'empty target'; Id = 'TargetMissing'; Run = { Add-RingBalancerTarget '' -Force -Confirm:$false } }
        @{ Name = 'lone bracket'; Id = 'InvalidTarget'; Run = { Add-RingBalancerTarget '[' -Force -Confirm:$false } }
        @{ Name = 'unclosed IPv6'; Id = 'InvalidTarget'; Run = { Add-RingBalancerTarget '[::1' -Force -Confirm:$false } }
        @{ Name = 'IPv6 zone id'; Id = 'InvalidTarget'; Run = { Add-RingBalancerTarget '[fe80::1%eth0]:8888' -Force -Confirm:$false } }
        @{ Name = '100,000 digits'; Id = 'InvalidTarget'; Run = { Add-RingBalancerTarget ('9' * 100000) -Force -Confirm:$false } }
        @{ Name = 'full-width digits'; Id = 'InvalidTarget'; Run = { Add-RingBalancerTarget '１２７.0.0.1:8888' -Force -Confirm:$false } }
        @{ Name = 'shell metacharacters'; Id = 'InvalidTarget'; Run = { Add-RingBalancerTarget '10.0.0.5;rm -rf /' -Force -Confirm:$false } }
        @{ Name = 'a date from the pipeline'; Id = 'InvalidTarget'; Run = { Get-Date | Add-RingBalancerTarget -Force -Confirm:$false } }
        @{ Name = 'a hashtable without keys'; Id = 'InvalidTarget'; Run = { @{ Foo = 1 } | Remove-RingBalancerTarget -Confirm:$false } }
        @{ Name = 'negative weight'; Id = 'ParameterArgumentValidationError'; Run = { Add-RingBalancerTarget '10.0.0.5:8888' -Weight -1 -Force -Confirm:$false } }
        @{ Name = 'a Kong target id to add'; Id = 'TargetIdNotAddable'; Run = { Add-RingBalancerTarget ([guid]::NewGuid().ToString()) -Force -Confirm:$false } }
        # health and addresses
        @{ Name = 'octet over 255'; Id = 'InvalidAddress'; Run = { Test-KeyServiceHealth '10.0.0.999' } }
        @{ Name = 'space in a host name'; Id = 'InvalidAddress'; Run = { Test-KeyServiceHealth 'a b' } }
        @{ Name = 'a 300-character host'; Id = 'InvalidAddress'; Run = { Test-KeyServiceHealth ('x' * 300) } }
        @{ Name = 'unicode host'; Id = 'InvalidAddress'; Run = { Test-KeyServiceHealth 'ключ.example' } }
        @{ Name = 'health timeout out of range'; Id = 'InvalidSettingValue'; Run = { Test-KeyServiceHealth 10.0.0.5 -TimeoutSec 0 } }
        # SSH and docker
        @{ Name = 'container with shell metacharacters'; Id = 'InvalidSettingValue'; Run = { Restart-KeyService $a[0] -Container 'api; id' -Confirm:$false } }
        @{ Name = 'an 11-year -Since'; Id = 'InvalidTime'; Run = { Get-KeyServiceLog $a[0] -Source Central -Since (New-TimeSpan -Days 4000) } }
        @{ Name = 'an absurd -Since'; Id = 'InvalidTime'; Run = { Get-KeyServiceLog $a[0] -Since ('999999h' * 20) } }
        @{ Name = 'full-width -Since'; Id = 'InvalidTime'; Run = { Get-KeyServiceLog $a[0] -Since '１２３' } }
        @{ Name = 'negative -Tail'; Id = 'ParameterArgumentValidationError'; Run = { Get-KeyServiceLog $a[0] -Tail -1 } }
        @{ Name = 'known_hosts is a folder'; Id = 'SshKnownHostsUnreadable'; Run = { Get-KeyServiceContainer $a[0] -KnownHostsPath $TestDrive } }
        @{ Name = 'accept-new into an unwritable known_hosts'; Id = 'SshKnownHostsUnwritable'; Run = { $f = Join-Path $TestDrive 'not-a-folder'; 'x' | Set-Content $f; Get-KeyServiceContainer $a[0] -KnownHostsPath (Join-Path $f 'known_hosts') -AcceptNewHostKey } }
        @{ Name = 'jump host port out of range'; Id = 'InvalidJumpHost'; Run = { Get-KeyServiceContainer $a[0] -JumpHost 'host:99999' } }
        @{ Name = 'empty SSH user'; Id = 'InvalidSettingValue'; Run = { Get-KeyServiceContainer $a[0] -SshUser '' } }
        @{ Name = 'missing key file'; Id = 'SshKeyNotFound'; Run = { Get-KeyServiceContainer $a[0] -SshKeyPath (Join-Path $TestDrive 'no-such-key') } }
        # context and config
        @{ Name = 'empty central-log field'; Id = 'InvalidCentralLogField'; Run = { Set-KeyServiceOpsContext -CentralLogFieldMap @{ Timestamp = '' } } }
        @{ Name = 'unknown central-log field'; Id = 'UnknownCentralLogField'; Run = { Set-KeyServiceOpsContext -CentralLogFieldMap @{ Colour = 'x' } } }
        @{ Name = 'an ftp Kong address'; Id = 'InvalidUri'; Run = { Set-KeyServiceOpsContext -KongAdminUri 'ftp://kong.internal/' } }
        @{ Name = 'an ftp Kong address for one call'; Id = 'InvalidUri'; Run = { Get-RingBalancerTarget -KongAdminUri 'ftp://kong.internal/' } }
        @{ Name = 'an ftp PagerDuty address for one call'; Id = 'InvalidUri'; Run = { Get-PagerDutyIncident -PagerDutyUri 'ftp://pd.internal/' } }
        @{ Name = 'an ftp PagerDuty address in a context object'; Id = 'InvalidUri'; Run = { New-KeyServiceOpsContext -PagerDutyUri 'ftp://pd.internal/' } }
        @{ Name = 'an SSH port out of range for one call'; Id = 'InvalidSettingValue'; Run = { Get-KeyServiceLog $a[0] -SshPort 0 } }
        @{ Name = 'a health timeout out of range in a context object'; Id = 'InvalidSettingValue'; Run = { New-KeyServiceOpsContext -HealthTimeoutSec 0 } }
        @{ Name = 'a token variable that is not set'; Id = 'TokenVariableEmpty'; Run = { Set-KeyServiceOpsContext -KongTokenVariable KSO_NOT_SET_ANYWHERE } }
        @{ Name = 'config with a bad URI'; Id = 'ConfigFileInvalid'; Run = { $p = Join-Path $TestDrive 'bad.json'; '{"kongAdminUri": "not a uri"}' | Set-Content $p; Set-KeyServiceOpsContext -ConfigPath $p } }
        @{ Name = 'config path is a folder'; Id = 'ConfigFileInvalid'; Run = { Set-KeyServiceOpsContext -ConfigPath $TestDrive } }
        @{ Name = 'removal share over 1'; Id = 'InvalidSettingValue'; Run = { Set-KeyServiceOpsContext -MaxRemoveShare 5 } }
        @{ Name = 'a token with a line break'; Id = 'SecretInvalid'; Run = { Get-RingBalancerTarget -KongToken (ConvertTo-SecureString "tok`r`nX-Evil: 1" -AsPlainText -Force) } }
        # PagerDuty
        @{ Name = 'incident id "."'; Id = 'InvalidIncidentId'; Run = { Get-PagerDutyIncident -IncidentId '.' } }
        @{ Name = 'resolve incident "."'; Id = 'InvalidIncidentId'; Run = { Set-PagerDutyIncident -IncidentId '.' -Status Resolved -Confirm:$false } }
        @{ Name = 'a note on an unknown incident'; Id = 'PagerDutyNotFound'; Run = { Add-PagerDutyIncidentNote -IncidentId NOPE123 -Note 'x' -Confirm:$false } }
        @{ Name = 'the runbook with a mistyped incident'; Id = 'PagerDutyNotFound'; Run = { Set-KsoLabMode $lab $a[0] Down; try { Invoke-KeyServiceRunbook $a[0] -IncidentId NOPE123 -Confirm:$false } finally { Set-KsoLabMode $lab $a[0] Up } } }
        # audit log and self-healing state
        @{ Name = 'audit log path is a folder'; Id = 'AuditLogUnreadable'; Run = { Get-KeyServiceAuditLog -Path $TestDrive } }
        @{ Name = 'an unwritable audit log'; Id = 'AuditLogUnwritable'; Run = { $f = Join-Path $TestDrive 'a-file'; 'x' | Set-Content $f; Set-KeyServiceOpsContext -AuditLogPath (Join-Path $f 'audit.jsonl'); Remove-RingBalancerTarget "$($a[0]):8888" -Force -Confirm:$false } }
        @{ Name = 'state path is a folder'; Id = 'SelfHealingStateInvalid'; Run = { Invoke-KeyServiceSelfHealing -StatePath $TestDrive -Confirm:$false } }
        @{ Name = 'a truncated state file'; Id = 'SelfHealingStateInvalid'; Run = { $p = Join-Path $TestDrive 'state-cut.json'; '{"Pass": 3, "Targets": {' | Set-Content $p; Invoke-KeyServiceSelfHealing -StatePath $p -Confirm:$false } }
        @{ Name = 'a state file with a null target'; Id = 'SelfHealingStateInvalid'; Run = { $p = Join-Path $TestDrive 'state-null.json'; '{"Pass": 3, "Targets": {"10.0.0.5:8888": null}}' | Set-Content $p; Invoke-KeyServiceSelfHealing -StatePath $p -Confirm:$false } }
        # outside text and files others can write to (issue #26)
        @{ Name = 'a config path that never ends (/dev/zero)'; Id = 'ConfigFileInvalid'; Run = { Set-KeyServiceOpsContext -ConfigPath /dev/zero -Confirm:$false } }
        @{ Name = 'a report path that is a folder'; Id = 'ReportPathIsFolder'; Run = { Export-KeyServiceIncidentReport -IncidentId Q1X2 -Path $TestDrive -Confirm:$false } }
        @{ Name = 'a report in a folder every user can write to without the sticky bit'; Id = 'ReportUnwritable'; Run = { $d = Join-Path $TestDrive 'open'; New-Item -ItemType Directory $d | Out-Null; & chmod 0777 $d; Export-KeyServiceIncidentReport -IncidentId $incident -Path (Join-Path $d 'r.html') -Confirm:$false } }
        @{ Name = 'a target holding OSC 52'; Id = 'InvalidTarget'; Run = { Add-RingBalancerTarget "10.0.0.5$([char]27)]52;c;Y3VybA==$([char]7)" -Force -Confirm:$false } }
        @{ Name = 'an incident id holding a screen wipe'; Id = 'InvalidIncidentId'; Run = { Get-PagerDutyIncident -IncidentId "P1$([char]27)[2J$([char]27)[3J" } }
        @{ Name = 'a host holding a bidi override'; Id = 'InvalidAddress'; Run = { Test-KeyServiceHealth "10.0.0.5$([char]0x202E)evil" } }
        @{ Name = 'a token with a NUL'; Id = 'SecretInvalid'; Run = { Get-RingBalancerTarget -KongToken (ConvertTo-SecureString "tok$([char]0)en" -AsPlainText -Force) } }
        @{ Name = 'a state file that is a symlink to a victim'; Id = 'SelfHealingStateInvalid'; Run = { $v = Join-Path $TestDrive 'victim-state'; 'victim' | Set-Content $v; $l = Join-Path $TestDrive 'state-link.json'; New-Item -ItemType SymbolicLink -Path $l -Target $v -Force | Out-Null; Invoke-KeyServiceSelfHealing -StatePath $l -Confirm:$false } }
        @{ Name = 'an empty state file'; Id = 'SelfHealingStateInvalid'; Run = { $p = Join-Path $TestDrive 'state-empty.json'; [IO.File]::WriteAllText($p, ''); Invoke-KeyServiceSelfHealing -StatePath $p -Confirm:$false } }
        @{ Name = 'a state file that is a JSON array'; Id = 'SelfHealingStateInvalid'; Run = { $p = Join-Path $TestDrive 'state-array.json'; '[1,2,3]' | Set-Content $p; Invoke-KeyServiceSelfHealing -StatePath $p -Confirm:$false } }
        @{ Name = 'an audit log that is a symlink to a victim'; Id = 'AuditLogUnwritable'; Run = { $v = Join-Path $TestDrive 'victim-audit'; 'victim' | Set-Content $v; $l = Join-Path $TestDrive 'audit-link.jsonl'; New-Item -ItemType SymbolicLink -Path $l -Target $v -Force | Out-Null; Set-KeyServiceOpsContext -AuditLogPath $l; Remove-RingBalancerTarget "$($a[1]):8888" -Force -Confirm:$false } }
        @{ Name = 'a planted lock symlink in the lock folder'; Id = 'LockDirectoryUnwritable'; Run = { $d = Join-Path $TestDrive 'locks-planted'; New-Item -ItemType Directory $d -Force | Out-Null; New-Item -ItemType SymbolicLink -Path (Join-Path $d "$($a[1]).lock") -Target (Join-Path $TestDrive 'victim-lock') -Force | Out-Null; Set-KeyServiceOpsContext -LockDirectory $d; Remove-RingBalancerTarget "$($a[1]):8888" -Force -Confirm:$false } }
        @{ Name = 'PagerDuty''s address pointed at Kong'; Id = 'PagerDutyInvalidResponse'; Run = { Get-PagerDutyIncident -PagerDutyUri $lab.kongAdminUri } }
        @{ Name = 'Kong''s address pointed at PagerDuty'; Id = 'KongInvalidResponse'; Run = { Get-RingBalancerTarget -KongAdminUri $lab.pagerDutyUri } }
        @{ Name = 'an empty note'; Id = 'ParameterArgumentValidationErrorEmptyStringNotAllowed'; Run = { Add-PagerDutyIncidentNote -IncidentId $incident -Note '' -Confirm:$false } }
        @{ Name = 'a restart for an incident already restarted'; Id = 'AlreadyRestartedForIncident'; Run = { Restart-KeyService $a[2] -IncidentId $incident2 -Confirm:$false } }
        # fault rules
        @{ Name = 'a rules file with a null rule'; Id = 'FaultRulesInvalid'; Run = { $p = Join-Path $TestDrive 'rules-null.json'; '{"rules":[null]}' | Set-Content $p; 'line' | Get-KeyServiceFault -RulePath $p } }
        @{ Name = 'a rules path that is a folder'; Id = 'FaultRulesUnreadable'; Run = { 'line' | Get-KeyServiceFault -RulePath $TestDrive } }
    )
}
BeforeAll {
    . (Join-Path $PSScriptRoot 'LabHelpers.ps1')
    $script:lab = Start-KsoLab
    $script:a = $lab.instances
    $script:incident = New-KsoLabAlert $lab $a[0]
    # An incident whose container was already restarted for it (by "another responder": this process, before the rows).
    $script:incident2 = New-KsoLabAlert $lab $a[2]
    Set-KsoLabContext $lab
    Restart-KeyService $a[2] -IncidentId $incident2 -Confirm:$false | Out-Null
    function script:Snapshot {
        [pscustomobject]@{
            Targets  = (@(Get-RingBalancerTarget -NoHealth).Target | Sort-Object) -join ','
            Audit    = @(Get-KeyServiceAuditLog).Count
            Restarts = (Get-KsoLabRestarts $lab $a[0]) + 1000 * (Get-KsoLabRestarts $lab $a[2])
            Notes    = (Invoke-RestMethod -Headers @{ Authorization = "Token token=$($lab.pagerDutyToken)" } -Uri "$($lab.pagerDutyUri)incidents/$incident/notes").notes.Count
        }
    }
}
AfterAll { Stop-KsoLab $script:lab }

Describe 'Bad input' {
    It '<Name> is <Id> and changes nothing' -ForEach $rows {
        Set-KsoLabContext $lab
        $before = Snapshot
        $err = $null
        try { & $Run -ErrorVariable err -ErrorAction SilentlyContinue 2>$null 3>$null } catch { $err = @($_) }
        $e = @($err | ForEach-Object { if ($_ -is [System.Management.Automation.ErrorRecord]) { $_ } elseif ($_.ErrorRecord) { $_.ErrorRecord } })[0]
        $e | Should -Not -BeNullOrEmpty -Because 'bad input must be an error'
        ($e.FullyQualifiedErrorId -split ',')[0] | Should -Be $Id
        $e.CategoryInfo.Category | Should -Not -Be 'NotSpecified'
        $message = if ($e.ErrorDetails.Message) { $e.ErrorDetails.Message } else { $e.Exception.Message }
        $message.Length | Should -BeLessThan 1200 -Because 'the input is clipped, never echoed whole'
        $message | Should -Not -Match '[\x00-\x08\x0B\x0C\x0E-\x1F\x7F\u202E]' -Because 'outside text is shown escaped, never raw'
        if ($Id -notlike 'Parameter*') { $e.ErrorDetails.RecommendedAction | Should -Not -BeNullOrEmpty -Because 'it says what to do' }
        $e.Exception.GetType().FullName | Should -Not -BeIn 'System.NullReferenceException', 'System.FormatException', 'System.ArgumentOutOfRangeException', 'System.IO.IOException', 'System.UnauthorizedAccessException'
        Set-KsoLabContext $lab
        $after = Snapshot
        $after.Targets | Should -Be $before.Targets
        $after.Audit | Should -Be $before.Audit
        $after.Restarts | Should -Be $before.Restarts
        $after.Notes | Should -Be $before.Notes
    }
}
