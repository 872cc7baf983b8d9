using System;

namespace KeyServiceOps.Core
{
    /// <summary>Names mirror System.Management.Automation.ErrorCategory so the cmdlet layer maps them by name.</summary>
    public enum OpsErrorCategory
    {
        NotSpecified, InvalidArgument, InvalidData, InvalidOperation, InvalidResult, ConnectionError,
        AuthenticationError, PermissionDenied, ObjectNotFound, ResourceExists, ResourceUnavailable,
        OperationTimeout, LimitsExceeded, SecurityError, ResourceBusy, NotInstalled, OperationStopped, ProtocolError, ReadError, InvalidType,
    }

    /// <summary>
    /// Every failure the core reports: a stable error id (never the message), a category,
    /// the item it concerns, remote detail (HTTP body, stderr) and what the operator should do.
    /// </summary>
    public class OpsException : Exception
    {
        public OpsException(string errorId, OpsErrorCategory category, string message,
            object target = null, string details = null, string recommendedAction = null, Exception inner = null)
            : base(SafeText.Lines(message), inner)
        {
            // Messages quote servers, docker and files: never a control sequence for whoever prints .Message (issue #26).
            ErrorId = errorId ?? throw new ArgumentNullException(nameof(errorId));
            Category = category;
            TargetObject = target is string text ? SafeText.Neutralize(text) : target;
            Details = SafeText.Lines(details);
            RecommendedAction = recommendedAction;
        }

        public string ErrorId { get; }
        public OpsErrorCategory Category { get; }
        public object TargetObject { get; }
        /// <summary>Remote stderr or an HTTP error body (already redacted).</summary>
        public string Details { get; }
        public string RecommendedAction { get; }

        /// <summary>The operation was stopped (Ctrl+C, a cancelled token): recognised by its category, never by the shape of its id.</summary>
        public bool IsCancellation => Category == OpsErrorCategory.OperationStopped;

        /// <summary>
        /// The request was sent (or may have been) and may have changed the remote: only its answer is missing or
        /// unreadable (a timeout, a dropped connection, a gateway 5xx or an HTML page). Never read as "nothing changed":
        /// the caller reconciles from the remote (Kong's listing, docker inspect) before the next step.
        /// </summary>
        public bool OutcomeUnknown { get; internal set; }

        internal OpsException MaybeApplied() { OutcomeUnknown = true; return this; }
        internal OpsException MaybeAppliedIf(bool condition) { if (condition) OutcomeUnknown = true; return this; }

        /// <summary>True for .NET's own cancellation and for ours.</summary>
        public static bool IsCancel(Exception e) => e is OperationCanceledException || (e is OpsException o && o.IsCancellation);
    }
}
