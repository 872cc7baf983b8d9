using System;
using System.Management.Automation;
using KeyServiceOps.Core;
using KeyServiceOps.Commands;

namespace KeyServiceOps.Bases
{
    /// <summary>
    /// The one way an OpsException becomes a PowerShell ErrorRecord: scrubbed of the cmdlet's secrets, the id as the
    /// FullyQualifiedErrorId, the category by name, the remote answer appended, the advice as RecommendedAction.
    /// </summary>
    internal static class OpsErrorRecord
    {
        public static ErrorRecord From(OpsException e, Redactor redactor)
        {
            e = (redactor ?? Redactor.None).Scrub(e);
            if (!Enum.TryParse(e.Category.ToString(), out ErrorCategory cat)) cat = ErrorCategory.NotSpecified;
            var rec = new ErrorRecord(e, e.ErrorId, cat, e.TargetObject);
            // Text from outside (a server's answer, docker's stderr, a log line) never reaches the terminal raw (issue #26).
            var msg = SafeText.Lines(e.Message + (string.IsNullOrEmpty(e.Details) ? "" : $" Remote answer: {e.Details}"));
            rec.ErrorDetails = new ErrorDetails(msg) { RecommendedAction = SafeText.Lines(e.RecommendedAction) };
            return rec;
        }

        /// <summary>Bad input to a cmdlet parameter: the one shape every cmdlet's ThrowArgument raises.</summary>
        public static OpsException InvalidArgument(string errorId, string message, object target, string action)
            => new OpsException(errorId, OpsErrorCategory.InvalidArgument, message, target, recommendedAction: action);
    }
}
