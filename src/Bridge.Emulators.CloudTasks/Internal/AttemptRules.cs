using Bridge.CloudTasks.V2Beta3;
using Google.Rpc;

namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>How the service reads an attempt's HTTP answer: its status, whether it counts as an execution, the next wait.</summary>
internal static class AttemptRules
{
    /// <summary>The attempt's <c>response_status</c> for an HTTP status, as the service maps it.</summary>
    public static Google.Rpc.Status StatusFor(int httpStatus)
    {
        var code = httpStatus switch
        {
            >= 200 and < 300 => Code.Ok,
            400 => Code.InvalidArgument,
            401 => Code.Unauthenticated,
            403 => Code.PermissionDenied,
            404 => Code.NotFound,
            409 => Code.Aborted,
            429 => Code.ResourceExhausted,
            499 => Code.Cancelled,
            501 => Code.Unimplemented,
            503 => Code.Unavailable,
            504 => Code.DeadlineExceeded,
            >= 400 and < 500 => Code.FailedPrecondition,
            _ => Code.Internal,
        };
        return new Google.Rpc.Status { Code = (int)code, Message = $"HTTP status {httpStatus}" };
    }

    /// <summary>500 and 503 (and no answer) do not count towards X-CloudTasks-TaskExecutionCount.</summary>
    public static bool IsExecution(int? httpStatus) => httpStatus is { } status && status is not (500 or 503);

    public static bool IsSuccess(int? httpStatus) => httpStatus is >= 200 and < 300;

    /// <summary>
    /// The wait before the next attempt: the retry config's backoff, doubled (up to max_backoff) on the overload
    /// signals 429 and 503, and never shorter than the target's Retry-After.
    /// </summary>
    public static TimeSpan NextDelay(RetryConfig retry, int dispatchCount, int? httpStatus, TimeSpan? retryAfter)
    {
        var delay = Backoff.Delay(retry, dispatchCount);
        if (httpStatus is 429 or 503)
        {
            var doubled = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, retry.MaxBackoff.ToTimeSpan().Ticks));
            delay = doubled > delay ? doubled : delay;
            if (retryAfter is { } after && after > delay)
            {
                delay = after;
            }
        }

        return delay;
    }
}
