using Bridge.CloudTasks.V2Beta3;

namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>Retry rules of the real service for one task's failed attempt.</summary>
internal static class Backoff
{
    /// <summary>
    /// The wait after the <paramref name="attempts"/>-th failed attempt (1-based): <c>min_backoff</c>, doubled
    /// <c>max_doublings</c> times, then growing linearly by <c>2^max_doublings × min_backoff</c>, capped at
    /// <c>max_backoff</c>. With min 10 s, max 300 s, 3 doublings: 10, 20, 40, 80, 160, 240, 300, 300 s.
    /// </summary>
    public static TimeSpan Delay(RetryConfig config, int attempts)
    {
        var min = config.MinBackoff.ToTimeSpan();
        var max = config.MaxBackoff.ToTimeSpan();
        var k = Math.Max(0, attempts - 1);
        var doublings = Math.Max(0, config.MaxDoublings);
        double seconds = k <= doublings
            ? min.TotalSeconds * Math.Pow(2, k)
            : min.TotalSeconds * Math.Pow(2, doublings) * (1 + (k - doublings));
        return seconds >= max.TotalSeconds ? max : TimeSpan.FromSeconds(seconds);
    }

    /// <summary>
    /// Retrying stops once every configured limit is reached: <c>max_attempts</c> (-1: none) and
    /// <c>max_retry_duration</c> since the first attempt (zero: none).
    /// </summary>
    public static bool IsExhausted(RetryConfig config, int attempts, TimeSpan sinceFirstAttempt)
    {
        var attemptsReached = config.MaxAttempts != -1 && attempts >= config.MaxAttempts;
        var maxDuration = config.MaxRetryDuration?.ToTimeSpan() ?? TimeSpan.Zero;
        var durationReached = maxDuration <= TimeSpan.Zero || sinceFirstAttempt >= maxDuration;
        if (config.MaxAttempts == -1)
        {
            return maxDuration > TimeSpan.Zero && sinceFirstAttempt >= maxDuration;
        }

        return attemptsReached && durationReached;
    }
}
