using System;
using System.Globalization;
using System.Threading.Tasks;
using Polly;
using Polly.Retry;

namespace KeyServiceOps.Core
{
    /// <summary>
    /// The one retry policy for HTTP APIs that shed load (PagerDuty, the central log service): 429, 408 and
    /// 5xx are retried with exponential, jittered back-off, bounded by <c>maxDelay</c>; a server's
    /// ratelimit-reset or Retry-After (seconds) is honoured within the same bound. Cancellable.
    /// </summary>
    public static class HttpRetry
    {
        /// <param name="retryAmbiguous">Also retry answers after which the request may have been applied (5xx, 408): never
        /// for a request that is not idempotent (a PagerDuty note sent twice is two notes); 429 is always retried.</param>
        public static ResiliencePipeline<RestResponse> Build(string service, int maxRetries, TimeSpan baseDelay, TimeSpan maxDelay, IOpsLog log, bool retryAmbiguous = true)
        {
            log = log ?? NullOpsLog.Instance;
            // Polly requires at least one attempt: "no retries" is the empty pipeline (the completers use it).
            if (maxRetries <= 0) return ResiliencePipeline<RestResponse>.Empty;
            return new ResiliencePipelineBuilder<RestResponse>()
                .AddRetry(new RetryStrategyOptions<RestResponse>
                {
                    ShouldHandle = new PredicateBuilder<RestResponse>().HandleResult(r => r.Status == 429 || (retryAmbiguous && (r.Status == 408 || r.Status >= 500))),
                    MaxRetryAttempts = Math.Max(0, maxRetries),
                    BackoffType = DelayBackoffType.Exponential,
                    UseJitter = true,
                    Delay = baseDelay,
                    MaxDelay = maxDelay,
                    DelayGenerator = args =>
                    {
                        var r = args.Outcome.Result;
                        var reset = r?.Header("ratelimit-reset") ?? r?.Header("Retry-After");
                        if (reset != null && double.TryParse(reset, NumberStyles.Float, CultureInfo.InvariantCulture, out var s) && s >= 0)
                        {
                            // Honour the server's reset, with a little jitter, never past the bound.
                            var d = TimeSpan.FromSeconds(Math.Min(s, maxDelay.TotalSeconds)) + TimeSpan.FromMilliseconds(new Random().Next(0, 100));
                            return new ValueTask<TimeSpan?>(d);
                        }
                        return new ValueTask<TimeSpan?>((TimeSpan?)null);
                    },
                    OnRetry = args =>
                    {
                        log.Verbose($"{service} answered {args.Outcome.Result?.Status}; retry {args.AttemptNumber + 1} of {maxRetries} in {args.RetryDelay.TotalMilliseconds:0} ms.");
                        // A back-off of seconds is a wait the operator sees (a progress bar with a countdown), not a frozen screen.
                        var activity = $"Waiting for {service}";
                        WaitProgress.Waiting(log, activity, $"it answered {args.Outcome.Result?.Status}: retry {args.AttemptNumber + 1} of {maxRetries}", args.RetryDelay);
                        _ = Task.Delay(args.RetryDelay).ContinueWith(_ => WaitProgress.Over(log, activity), TaskScheduler.Default);
                        return default;
                    },
                })
                .Build();
        }
    }
}
