using Grpc.Core;

namespace Bridge.CloudTasks;

/// <summary>
/// How one RPC is called: its overall timeout (the deadline sent to the server, shared by all attempts) and its
/// retry policy. Null members fall back to the client's per-method defaults.
/// </summary>
public sealed record CallSettings
{
    public TimeSpan? Timeout { get; init; }

    public RetrySettings? Retry { get; init; }

    /// <summary>Extra request metadata (e.g. a quota project header).</summary>
    public IReadOnlyDictionary<string, string>? Headers { get; init; }

    public static CallSettings FromTimeout(TimeSpan timeout) => new() { Timeout = timeout };

    public static CallSettings FromRetry(RetrySettings retry) => new() { Retry = retry };

    /// <summary>This call's settings, with gaps filled from <paramref name="defaults"/>.</summary>
    public CallSettings MergedWith(CallSettings? defaults) => defaults is null ? this : new CallSettings
    {
        Timeout = Timeout ?? defaults.Timeout,
        Retry = Retry ?? defaults.Retry,
        Headers = Headers ?? defaults.Headers,
    };
}

/// <summary>
/// Exponential backoff with jitter, like the official clients: the first retry waits up to
/// <see cref="InitialBackoff"/>, each next one <see cref="BackoffMultiplier"/> times longer, capped at
/// <see cref="MaxBackoff"/>; each wait is drawn at random from (0, backoff] so many clients don't retry in step.
/// </summary>
public sealed record RetrySettings
{
    public RetrySettings(int maxAttempts, TimeSpan initialBackoff, TimeSpan maxBackoff, double backoffMultiplier, params StatusCode[] retryableStatusCodes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxAttempts, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(initialBackoff, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBackoff, initialBackoff);
        ArgumentOutOfRangeException.ThrowIfLessThan(backoffMultiplier, 1.0);
        MaxAttempts = maxAttempts;
        InitialBackoff = initialBackoff;
        MaxBackoff = maxBackoff;
        BackoffMultiplier = backoffMultiplier;
        RetryableStatusCodes = retryableStatusCodes.ToHashSet();
    }

    /// <summary>Attempts in all, the first included; 1 means no retry.</summary>
    public int MaxAttempts { get; init; }

    public TimeSpan InitialBackoff { get; init; }

    public TimeSpan MaxBackoff { get; init; }

    public double BackoffMultiplier { get; init; }

    public IReadOnlySet<StatusCode> RetryableStatusCodes { get; init; }

    /// <summary>Disables jitter; for tests that need exact waits.</summary>
    public bool Jitter { get; init; } = true;

    /// <summary>One attempt only.</summary>
    public static RetrySettings None { get; } = new(1, TimeSpan.Zero, TimeSpan.Zero, 1.0);

    /// <summary>The official clients' policy for idempotent Cloud Tasks RPCs.</summary>
    public static RetrySettings IdempotentDefault { get; } = new(
        maxAttempts: 5,
        initialBackoff: TimeSpan.FromMilliseconds(100),
        maxBackoff: TimeSpan.FromSeconds(10),
        backoffMultiplier: 1.3,
        StatusCode.Unavailable,
        StatusCode.DeadlineExceeded);

    public bool ShouldRetry(StatusCode code, int attemptsMade) =>
        attemptsMade < MaxAttempts && RetryableStatusCodes.Contains(code);

    /// <summary>The ceiling of the wait before retry number <paramref name="retry"/> (1-based).</summary>
    public TimeSpan BackoffCeiling(int retry)
    {
        var ticks = InitialBackoff.Ticks * Math.Pow(BackoffMultiplier, retry - 1);
        return ticks >= MaxBackoff.Ticks ? MaxBackoff : TimeSpan.FromTicks((long)ticks);
    }

    /// <summary>The actual wait before retry number <paramref name="retry"/>.</summary>
    public TimeSpan Delay(int retry, Random random)
    {
        var ceiling = BackoffCeiling(retry);
        return Jitter ? TimeSpan.FromTicks((long)(ceiling.Ticks * (1.0 - random.NextDouble()))) : ceiling;
    }
}
