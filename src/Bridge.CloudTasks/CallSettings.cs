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
/// Retries stop at the call's deadline (<see cref="CallSettings.Timeout"/>) or after <see cref="MaxAttempts"/>,
/// whichever comes first; the published policies have no attempt cap (<see cref="UnlimitedAttempts"/>).
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

    /// <summary>No attempt cap: retries go on until the call's deadline, as in Google's generated clients.</summary>
    public const int UnlimitedAttempts = int.MaxValue;

    /// <summary>Attempts in all, the first included; 1 means no retry, <see cref="UnlimitedAttempts"/> no cap.</summary>
    public int MaxAttempts { get; init; }

    public TimeSpan InitialBackoff { get; init; }

    public TimeSpan MaxBackoff { get; init; }

    public double BackoffMultiplier { get; init; }

    public IReadOnlySet<StatusCode> RetryableStatusCodes { get; init; }

    /// <summary>Disables jitter; for tests that need exact waits.</summary>
    public bool Jitter { get; init; } = true;

    /// <summary>One attempt only.</summary>
    public static RetrySettings None { get; } = new(1, TimeSpan.Zero, TimeSpan.Zero, 1.0);

    /// <summary>
    /// The published policy for idempotent Cloud Tasks RPCs (cloudtasks_grpc_service_config.json, v2beta3): 0.1 s
    /// growing ×1.3 to 10 s, UNAVAILABLE and DEADLINE_EXCEEDED, no attempt cap: retried until the call's deadline.
    /// </summary>
    public static RetrySettings IdempotentDefault { get; } = new(
        maxAttempts: UnlimitedAttempts,
        initialBackoff: TimeSpan.FromMilliseconds(100),
        maxBackoff: TimeSpan.FromSeconds(10),
        backoffMultiplier: 1.3,
        StatusCode.Unavailable,
        StatusCode.DeadlineExceeded);

    /// <summary>
    /// The published policy of google.longrunning.Operations' GetOperation, ListOperations, CancelOperation and
    /// DeleteOperation (longrunning_grpc_service_config.json): 5 attempts, 0.5 s doubling to 10 s, UNAVAILABLE only.
    /// </summary>
    public static RetrySettings OperationsDefault { get; } = new(
        maxAttempts: 5,
        initialBackoff: TimeSpan.FromMilliseconds(500),
        maxBackoff: TimeSpan.FromSeconds(10),
        backoffMultiplier: 2.0,
        StatusCode.Unavailable);

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

/// <summary>
/// How a long-running operation is awaited: the first poll after <see cref="InitialDelay"/>, each next one
/// <see cref="DelayMultiplier"/> times later, at most <see cref="MaxDelay"/> apart, and no longer than
/// <see cref="Timeout"/> in all (then the wait fails with DEADLINE_EXCEEDED; the operation itself goes on).
/// </summary>
public sealed record PollSettings
{
    public PollSettings(TimeSpan timeout, TimeSpan initialDelay, double delayMultiplier, TimeSpan maxDelay)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(timeout, TimeSpan.Zero);
        // A zero first delay with a multiplier would poll in a tight loop.
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(initialDelay, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(delayMultiplier, 1.0);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxDelay, initialDelay);
        Timeout = timeout;
        InitialDelay = initialDelay;
        DelayMultiplier = delayMultiplier;
        MaxDelay = maxDelay;
    }

    /// <summary>How long to wait for completion in all, polls included.</summary>
    public TimeSpan Timeout { get; init; }

    public TimeSpan InitialDelay { get; init; }

    public double DelayMultiplier { get; init; }

    public TimeSpan MaxDelay { get; init; }

    /// <summary>
    /// The official Node.js client's backoff for long-running operations (100 ms, ×1.3, at most 60 s apart), bounded
    /// by the 24 h the generated .NET clients wait. A batch usually completes in one call, so the first poll comes soon.
    /// </summary>
    public static PollSettings Default { get; } = new(TimeSpan.FromHours(24), TimeSpan.FromMilliseconds(100), 1.3, TimeSpan.FromSeconds(60));

    /// <summary>The wait before poll number <paramref name="poll"/> (1-based).</summary>
    public TimeSpan DelayBefore(int poll)
    {
        var ticks = InitialDelay.Ticks * Math.Pow(DelayMultiplier, poll - 1);
        return ticks >= MaxDelay.Ticks ? MaxDelay : TimeSpan.FromTicks((long)ticks);
    }
}
