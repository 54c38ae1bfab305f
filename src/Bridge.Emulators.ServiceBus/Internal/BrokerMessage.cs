namespace Bridge.Emulators.ServiceBus.Internal;

internal enum MessageState
{
    Active = 0,
    Deferred = 1,
    Scheduled = 2,
}

/// <summary>
/// A message held by an entity: the client's encoded message (without the annotations the broker adds on the way out)
/// and the broker's bookkeeping. Guarded by the broker's lock.
/// </summary>
internal sealed class BrokerMessage
{
    public required long SequenceNumber { get; set; }

    public required byte[] Encoded { get; set; }

    public string? MessageId { get; init; }

    public required DateTimeOffset EnqueuedTime { get; set; }

    public DateTimeOffset? ScheduledEnqueueTime { get; set; }

    public DateTimeOffset? ExpiresAt { get; set; }

    /// <summary>How many times the message has been handed out under a lock (or deleted on receipt).</summary>
    public int DeliveryCount { get; set; }

    public MessageState State { get; set; }

    public string? DeadLetterSource { get; set; }

    public Guid LockToken { get; set; }

    public DateTimeOffset LockedUntil { get; set; }

    public bool IsLocked => LockToken != Guid.Empty;

    public BrokerMessage CopyForEntity(long sequenceNumber, DateTimeOffset now) => new()
    {
        SequenceNumber = sequenceNumber,
        Encoded = Encoded,
        MessageId = MessageId,
        EnqueuedTime = now,
        ExpiresAt = ExpiresAt,
        State = MessageState.Active,
    };
}
