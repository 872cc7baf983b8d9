using System;
using System.Collections.Generic;
using System.Globalization;

namespace KeyServiceOps.Lab.Estate
{
    /// <summary>Why a simulated api_key_service container exited.</summary>
    public enum FaultScenario { CipherDependency, IamDependency, OutOfMemory, PortInUse, CleanCrash }

    /// <summary>
    /// The log lines each fault writes, in the shape a Go service with logrus writes them: requests and
    /// start-up on stdout, errors on stderr. The lines are made up for the lab; the patterns are the usual ones.
    /// </summary>
    public static class FaultScenarios
    {
        private static string Ts(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff", CultureInfo.InvariantCulture) + "00Z";

        private static LogLine Stdout(DateTimeOffset t, string text) => new LogLine { Time = t, Stderr = false, Text = text };
        private static LogLine Stderr(DateTimeOffset t, string text) => new LogLine { Time = t, Stderr = true, Text = text };

        public static IEnumerable<LogLine> Startup(DateTimeOffset t)
        {
            yield return Stdout(t, $"time=\"{Ts(t)}\" level=info msg=\"api_key_service starting\" version=3.14.2 commit=9f2c1ab");
            yield return Stdout(t.AddMilliseconds(5), $"time=\"{Ts(t.AddMilliseconds(5))}\" level=info msg=\"loading configuration from cipher service\" url=\"https://cipher.internal:9443/v1/config/api_key_service\"");
        }

        /// <summary>The lines, the exit code and whether the kernel's OOM killer ended it.</summary>
        public static (List<LogLine> lines, int exitCode, bool oomKilled) Lines(FaultScenario s, DateTimeOffset t, bool withStartup = true)
        {
            var l = new List<LogLine>();
            if (withStartup) l.AddRange(Startup(t));
            var t1 = t.AddMilliseconds(100); var t2 = t.AddMilliseconds(200); var t3 = t.AddMilliseconds(300);
            switch (s)
            {
                case FaultScenario.CipherDependency:
                    for (int i = 1; i <= 3; i++)
                        l.Add(Stderr(t1.AddMilliseconds(i * 20), $"time=\"{Ts(t1.AddMilliseconds(i * 20))}\" level=error msg=\"cipher: failed to fetch configuration\" error=\"GET https://cipher.internal:9443/v1/config/api_key_service: 503 Service Unavailable\" attempt={i}"));
                    l.Add(Stderr(t2, $"time=\"{Ts(t2)}\" level=fatal msg=\"cannot start without configuration from cipher service\""));
                    return (l, 1, false);
                case FaultScenario.IamDependency:
                    l.Add(Stdout(t1, $"time=\"{Ts(t1)}\" level=info msg=\"configuration loaded\" keys=42"));
                    l.Add(Stderr(t2, $"time=\"{Ts(t2)}\" level=error msg=\"iam: token request failed\" error=\"POST https://iam.cloud.ibm.com/identity/token: 400 Bad Request: BXNIM0415E: Provided API key could not be found\""));
                    l.Add(Stderr(t3, $"time=\"{Ts(t3)}\" level=fatal msg=\"unable to obtain IAM access token for the service ID, exiting\""));
                    return (l, 1, false);
                case FaultScenario.OutOfMemory:
                    l.Add(Stdout(t1, $"time=\"{Ts(t1)}\" level=info msg=\"configuration loaded\" keys=42"));
                    l.Add(Stdout(t1.AddMilliseconds(10), $"time=\"{Ts(t1.AddMilliseconds(10))}\" level=info msg=\"http server listening\" addr=\"0.0.0.0:8888\""));
                    l.Add(Stderr(t2, $"time=\"{Ts(t2)}\" level=warning msg=\"heap usage high\" heap_mb=1986 limit_mb=2048"));
                    l.Add(Stderr(t3, "fatal error: runtime: out of memory"));
                    l.Add(Stderr(t3, "runtime stack:"));
                    l.Add(Stderr(t3, "runtime.throw({0x9a3f21?, 0x2030?})"));
                    return (l, 137, true);
                case FaultScenario.PortInUse:
                    l.Add(Stdout(t1, $"time=\"{Ts(t1)}\" level=info msg=\"configuration loaded\" keys=42"));
                    l.Add(Stderr(t2, $"time=\"{Ts(t2)}\" level=fatal msg=\"http server failed\" error=\"listen tcp 0.0.0.0:8888: bind: address already in use\""));
                    return (l, 1, false);
                case FaultScenario.CleanCrash:
                    l.Add(Stdout(t1, $"time=\"{Ts(t1)}\" level=info msg=\"configuration loaded\" keys=42"));
                    l.Add(Stdout(t1.AddMilliseconds(10), $"time=\"{Ts(t1.AddMilliseconds(10))}\" level=info msg=\"http server listening\" addr=\"0.0.0.0:8888\""));
                    l.Add(Stderr(t2, "panic: runtime error: invalid memory address or nil pointer dereference"));
                    l.Add(Stderr(t2, "[signal SIGSEGV: segmentation violation code=0x1 addr=0x18 pc=0x8c3f2a]"));
                    l.Add(Stderr(t2, "goroutine 4127 [running]:"));
                    l.Add(Stderr(t2, "example.com/apiplatform/api_key_service/internal/handler.(*KeyHandler).Validate(0xc000192000, {0xa81c40, 0xc0004b6000})"));
                    return (l, 2, false);
                default:
                    throw new ArgumentOutOfRangeException(nameof(s));
            }
        }
    }
}
