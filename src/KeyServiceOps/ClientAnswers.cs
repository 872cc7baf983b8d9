using System;
using KeyServiceOps.Core;
using KeyServiceOps.Core.CentralLogs;
using KeyServiceOps.Core.PagerDuty;
using KeyServiceOps.Core.RingBalancer;
using KeyServiceOps.Bases;

namespace KeyServiceOps
{
    /// <summary>
    /// The last net for a server's 2xx JSON of an unexpected shape (issue #26 row 5): the clients check the shapes they
    /// read (objects, lists, a target's text, an incident's id) and answer ...InvalidResponse; a cast or child access on
    /// a value of another type that slipped past them is turned into the same typed error of the client it came from,
    /// never a raw .NET exception. Known by the exception's type and the client in its stack.
    /// </summary>
    public static class ClientAnswers
    {
        public static OpsException Translate(Exception e)
        {
            if (e == null || e is OpsException) return e as OpsException;
            if (!(JsonShape.IsWrongShape(e) || e is NullReferenceException)) return null;
            var stack = e.StackTrace ?? "";
            if (stack.Contains("KeyServiceOps.Core.RingBalancer.KongClient")) return KongClient.Malformed(e);
            if (stack.Contains("KeyServiceOps.Core.PagerDuty.PagerDutyClient")) return PagerDutyClient.Malformed(e);
            if (stack.Contains("KeyServiceOps.Core.CentralLogs.CentralLogClient")) return CentralLogClient.Malformed(e);
            return null;
        }
    }
}
