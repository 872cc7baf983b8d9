using System;
using System.Collections.Generic;
using System.Collections.ObjectModel;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Host;
using System.Management.Automation.Runspaces;
using System.Security;
using System.Text;
using System.Text.RegularExpressions;

namespace KeyServiceOps.TestHost
{
    /// <summary>The result of one pipeline run in the hosted runspace.</summary>
    public sealed class ShellResult
    {
        public List<PSObject> Output { get; } = new List<PSObject>();
        public List<ErrorRecord> Errors { get; } = new List<ErrorRecord>();
        public List<string> Warnings { get; } = new List<string>();
        public List<string> Verbose { get; } = new List<string>();
        public List<string> Debug { get; } = new List<string>();
        public List<ProgressRecord> Progress { get; } = new List<ProgressRecord>();
        public List<string> Information { get; } = new List<string>();
        /// <summary>What reached the host: Out-Host, Write-Host, -WhatIf messages (ANSI stripped).</summary>
        public string HostText { get; set; }
        public Exception Terminating { get; set; }
        public IEnumerable<T> Objects<T>() => Output.Select(o => o.BaseObject).OfType<T>();
        public string AllStreamsText() => string.Join("\n", Output.Select(o => o?.ToString()).Concat(Errors.Select(e => e.ToString() + " " + e.ErrorDetails?.Message + " " + e.ErrorDetails?.RecommendedAction))
            .Concat(Warnings).Concat(Verbose).Concat(Debug).Concat(Information).Concat(Progress.Select(p => p.Activity + " " + p.StatusDescription)).Append(HostText));
    }

    /// <summary>
    /// A real PowerShell runspace (System.Management.Automation) with a custom host that captures
    /// everything the user would see; imports the staged module exactly as a user would.
    /// </summary>
    public sealed class HostedShell : IDisposable
    {
        private readonly CaptureHost _host = new CaptureHost();
        private readonly Runspace _rs;

        public HostedShell(bool importModule = true)
        {
            var iss = InitialSessionState.CreateDefault2();
            _rs = RunspaceFactory.CreateRunspace(_host, iss);
            _rs.Open();
            Run("$PSStyle.OutputRendering = 'PlainText'; $PSStyle.Formatting.TableHeader = ''; $ProgressPreference = 'Continue'");
            if (importModule)
            {
                var r = Run($"Import-Module '{ModuleManifest}' -ErrorAction Stop");
                if (r.Terminating != null || r.Errors.Count > 0)
                    throw new InvalidOperationException("Import-Module failed: " + (r.Terminating?.Message ?? r.Errors[0].ToString()));
                // Each hosted runspace stands for a fresh pwsh process: it starts from the environment, not from the
                // context another test set in this test process (new runspaces inherit that, as -Parallel ones should).
                r = Run("Set-KeyServiceOpsContext -Reset -Confirm:$false");
                if (r.Terminating != null || r.Errors.Count > 0)
                    throw new InvalidOperationException("Set-KeyServiceOpsContext -Reset failed: " + (r.Terminating?.Message ?? r.Errors[0].ToString()));
            }
        }

        public Runspace Runspace => _rs;
        /// <summary>Answers to confirmation prompts, in order (0 = Yes, 1 = Yes to All, 2 = No, 3 = No to All). Empty: default.</summary>
        public Queue<int> ConfirmAnswers => _host.Ui.Answers;
        public int PromptCount => _host.Ui.PromptCount;

        public static string RepoRoot
        {
            get
            {
                var d = new DirectoryInfo(AppContext.BaseDirectory);
                while (d != null && !File.Exists(Path.Combine(d.FullName, "KeyServiceOps.sln"))) d = d.Parent;
                return d?.FullName ?? throw new InvalidOperationException("Cannot find KeyServiceOps.sln above " + AppContext.BaseDirectory);
            }
        }

        public static string ModuleManifest
        {
            get
            {
                var p = Path.Combine(RepoRoot, "out", "KeyServiceOps", "KeyServiceOps.psd1");
                if (!File.Exists(p)) throw new InvalidOperationException($"The staged module is missing at {p}: run 'dotnet build KeyServiceOps.sln' first.");
                return p;
            }
        }

        public void SetVariable(string name, object value) => _rs.SessionStateProxy.SetVariable(name, value);

        public ShellResult Run(string script, IDictionary<string, object> variables = null)
        {
            if (variables != null) foreach (var kv in variables) SetVariable(kv.Key, kv.Value);
            _host.Ui.Buffer.Clear();
            var result = new ShellResult();
            using (var ps = PowerShell.Create())
            {
                ps.Runspace = _rs;
                ps.AddScript(script);
                try
                {
                    var output = ps.Invoke();
                    result.Output.AddRange(output);
                }
                catch (RuntimeException e) { result.Terminating = e; if (e.ErrorRecord != null) result.Errors.Add(e.ErrorRecord); }
                result.Errors.AddRange(ps.Streams.Error);
                result.Warnings.AddRange(ps.Streams.Warning.Select(w => w.Message));
                result.Verbose.AddRange(ps.Streams.Verbose.Select(w => w.Message));
                result.Debug.AddRange(ps.Streams.Debug.Select(w => w.Message));
                result.Progress.AddRange(ps.Streams.Progress);
                result.Information.AddRange(ps.Streams.Information.Select(i => i.MessageData?.ToString()));
            }
            result.HostText = Regex.Replace(_host.Ui.Buffer.ToString(), @"\x1b\[[0-9;?]*[A-Za-z]", "");
            return result;
        }

        public void Dispose() { _rs.Dispose(); }

        private sealed class CaptureHost : PSHost
        {
            public readonly CaptureUi Ui = new CaptureUi();
            private readonly Guid _id = Guid.NewGuid();
            public override string Name => "KeyServiceOpsTestHost";
            public override Version Version => new Version(1, 0);
            public override Guid InstanceId => _id;
            public override PSHostUserInterface UI => Ui;
            public override CultureInfo CurrentCulture => CultureInfo.InvariantCulture;
            public override CultureInfo CurrentUICulture => CultureInfo.InvariantCulture;
            public override void SetShouldExit(int exitCode) { }
            public override void EnterNestedPrompt() => throw new NotSupportedException();
            public override void ExitNestedPrompt() => throw new NotSupportedException();
            public override void NotifyBeginApplication() { }
            public override void NotifyEndApplication() { }
        }

        private sealed class CaptureUi : PSHostUserInterface
        {
            public readonly StringBuilder Buffer = new StringBuilder();
            public readonly Queue<int> Answers = new Queue<int>();
            public int PromptCount;
            private readonly CaptureRawUi _raw = new CaptureRawUi();
            public override PSHostRawUserInterface RawUI => _raw;
            public override string ReadLine() => "";
            public override SecureString ReadLineAsSecureString() => new SecureString();
            public override void Write(string value) { lock (Buffer) Buffer.Append(value); }
            public override void Write(ConsoleColor f, ConsoleColor b, string value) => Write(value);
            public override void WriteLine(string value) => Write(value + "\n");
            public override void WriteErrorLine(string value) => Write(value + "\n");
            public override void WriteDebugLine(string message) { }
            public override void WriteProgress(long sourceId, ProgressRecord record) { }
            public override void WriteVerboseLine(string message) { }
            public override void WriteWarningLine(string message) { }
            public override Dictionary<string, PSObject> Prompt(string caption, string message, Collection<FieldDescription> descriptions) => new Dictionary<string, PSObject>();
            public override PSCredential PromptForCredential(string caption, string message, string userName, string targetName) => throw new NotSupportedException();
            public override PSCredential PromptForCredential(string caption, string message, string userName, string targetName, PSCredentialTypes allowedCredentialTypes, PSCredentialUIOptions options) => throw new NotSupportedException();
            public override int PromptForChoice(string caption, string message, Collection<ChoiceDescription> choices, int defaultChoice)
            {
                PromptCount++;
                Write($"PROMPT: {caption} {message}\n");
                return Answers.Count > 0 ? Answers.Dequeue() : defaultChoice;
            }
        }

        private sealed class CaptureRawUi : PSHostRawUserInterface
        {
            public override ConsoleColor BackgroundColor { get; set; } = ConsoleColor.Black;
            public override ConsoleColor ForegroundColor { get; set; } = ConsoleColor.White;
            public override Size BufferSize { get; set; } = new Size(120, 3000);
            public override Coordinates CursorPosition { get; set; }
            public override int CursorSize { get; set; }
            public override bool KeyAvailable => false;
            public override Size MaxPhysicalWindowSize => new Size(120, 100);
            public override Size MaxWindowSize => new Size(120, 100);
            public override Coordinates WindowPosition { get; set; }
            public override Size WindowSize { get; set; } = new Size(120, 100);
            public override string WindowTitle { get; set; } = "";
            public override void FlushInputBuffer() { }
            public override BufferCell[,] GetBufferContents(Rectangle rectangle) => new BufferCell[0, 0];
            public override KeyInfo ReadKey(ReadKeyOptions options) => throw new NotSupportedException();
            public override void ScrollBufferContents(Rectangle source, Coordinates destination, Rectangle clip, BufferCell fill) { }
            public override void SetBufferContents(Coordinates origin, BufferCell[,] contents) { }
            public override void SetBufferContents(Rectangle rectangle, BufferCell fill) { }
        }
    }
}
