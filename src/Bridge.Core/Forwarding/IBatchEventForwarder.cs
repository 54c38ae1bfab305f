namespace Bridge.Core.Forwarding;

/// <summary>
/// Forwards a group of events with as few calls as it can: events for the same queue go together in
/// BatchCreateTasks calls (at most 100 tasks and a bounded size each). Each event gets its own result; one event's
/// failure is never reported for another (a whole call refused as invalid is retried one event at a time).
/// </summary>
public interface IBatchEventForwarder
{
    /// <returns>One result per event, in the order of <paramref name="events"/>. Never throws for an event's failure.</returns>
    Task<IReadOnlyList<BatchForwardResult>> ForwardBatchAsync(IReadOnlyList<InboundEvent> events, CancellationToken cancellationToken = default);
}

/// <summary>What became of one event of a batch; the caller settles the event on it.</summary>
public enum BatchForwardStatus
{
    /// <summary>A new task was created.</summary>
    Created,

    /// <summary>Its task already existed (a redelivery or a retry): success, nothing new.</summary>
    AlreadyExisted,

    /// <summary>It can never be forwarded as it is (dead-letter it with <see cref="BatchForwardResult.Failure"/>'s reason).</summary>
    PermanentFailure,

    /// <summary>It may be forwarded later (let the failure policy retry it).</summary>
    TransientFailure,
}

/// <summary>One event's result: <see cref="Forwarded"/> on success, <see cref="Failure"/> otherwise.</summary>
public sealed record BatchForwardResult
{
    private BatchForwardResult(BatchForwardStatus status, ForwardResult? forwarded, ForwardingException? failure)
    {
        Status = status;
        Forwarded = forwarded;
        Failure = failure;
    }

    public BatchForwardStatus Status { get; }

    public ForwardResult? Forwarded { get; }

    public ForwardingException? Failure { get; }

    /// <summary>Created or already existed: the event is in Cloud Tasks.</summary>
    public bool Succeeded => Status is BatchForwardStatus.Created or BatchForwardStatus.AlreadyExisted;

    public static BatchForwardResult Success(ForwardResult forwarded)
    {
        ArgumentNullException.ThrowIfNull(forwarded);
        return new(forwarded.Outcome == ForwardOutcome.Created ? BatchForwardStatus.Created : BatchForwardStatus.AlreadyExisted, forwarded, null);
    }

    public static BatchForwardResult Failed(ForwardingException failure)
    {
        ArgumentNullException.ThrowIfNull(failure);
        return new(failure.IsTransient ? BatchForwardStatus.TransientFailure : BatchForwardStatus.PermanentFailure, null, failure);
    }
}
