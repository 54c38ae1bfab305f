using Microsoft.Azure.Amqp;
using Microsoft.Extensions.Logging;

namespace Bridge.Emulators.ServiceBus.Internal;

internal enum Settlement
{
    Complete,
    Abandon,
    Release,
    Defer,
    DeadLetter,
}

/// <summary>Why a send or a management request was refused, as an AMQP error condition and a message for the client.</summary>
internal sealed class BrokerException(string condition, string message) : Exception(message)
{
    public string Condition { get; } = condition;
}

/// <summary>
/// The entities and every rule of Service Bus the endpoint keeps: sequence numbers, locks and their expiry, delivery
/// counts, dead-lettering, scheduling, deferral, expiry, duplicate detection, topic fan-out and forwarding. One lock
/// guards all state; messages go onto links only after it is released (<see cref="Outbound"/>).
/// </summary>
internal sealed partial class Broker : IDisposable
{
    const int MaxForwardingHops = 4;
    public const string MaxDeliveryCountExceeded = "MaxDeliveryCountExceeded";
    public const string TtlExpired = "TTLExpiredException";
    public const string DefaultRuleName = "$Default";

    readonly object gate = new();
    readonly TimeProvider time;
    readonly IMessageStore store;
    readonly ILogger logger;
    readonly Dictionary<string, MessageEntity> receivable = new(StringComparer.OrdinalIgnoreCase);
    readonly Dictionary<string, SendTarget> sendable = new(StringComparer.OrdinalIgnoreCase);
    readonly PriorityQueue<Deadline, DateTimeOffset> deadlines = new();
    readonly ITimer timer;
    DateTimeOffset? armedFor;
    long lastSequenceNumber;
    bool disposed;

    enum DeadlineKind { LockExpiry, Activation, Expiry }

    readonly record struct Deadline(DeadlineKind Kind, SendTarget Entity, long SequenceNumber, Guid LockToken);

    public Broker(ServiceBusEmulatorOptions options, IMessageStore store, TimeProvider time, ILogger logger)
    {
        this.time = time;
        this.store = store;
        this.logger = logger;
        foreach (var queue in options.Queues)
        {
            var entity = AddEntity(EntityAddress.Normalize(queue.Name), queue.Properties, []);
            sendable[entity.Path] = entity;
        }

        foreach (var topic in options.Topics)
        {
            var path = EntityAddress.Normalize(topic.Name);
            var entity = new TopicEntity(path, topic.Properties.Clone());
            foreach (var subscription in topic.Subscriptions)
            {
                var definitions = subscription.Rules.Count == 0 ? [new RuleDefinition { Name = DefaultRuleName, SqlExpression = "1=1" }] : subscription.Rules;
                var rules = definitions.Select(r => new SubscriptionRule(r.Name, r.Clone(), RuleFilter.From(r), time.GetUtcNow())).ToList();
                entity.Subscriptions.Add(AddEntity($"{path}/subscriptions/{EntityAddress.Normalize(subscription.Name)}", subscription.Properties, rules));
            }

            sendable[path] = entity;
        }

        foreach (var (_, target) in sendable)
        {
            foreach (var forward in new[] { target.Properties.ForwardTo, target.Properties.ForwardDeadLetteredMessagesTo })
            {
                if (forward is not null && !sendable.ContainsKey(EntityAddress.Normalize(forward)))
                {
                    throw new InvalidOperationException($"Entity '{target.Path}' forwards to '{forward}', which is not a queue or topic here.");
                }
            }
        }

        foreach (var (_, entity) in receivable)
        {
            foreach (var forward in new[] { entity.Properties.ForwardTo, entity.Properties.ForwardDeadLetteredMessagesTo })
            {
                if (!entity.IsDeadLetterQueue && forward is not null && !sendable.ContainsKey(EntityAddress.Normalize(forward)))
                {
                    throw new InvalidOperationException($"Entity '{entity.Path}' forwards to '{forward}', which is not a queue or topic here.");
                }
            }
        }

        timer = time.CreateTimer(_ => OnTimer(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        Restore();
    }

    MessageEntity AddEntity(string path, EntityProperties properties, List<SubscriptionRule> rules)
    {
        if (string.IsNullOrEmpty(path) || receivable.ContainsKey(path) || sendable.ContainsKey(path))
        {
            throw new InvalidOperationException($"Entity name '{path}' is empty or used twice.");
        }

        if (properties.RequiresSession)
        {
            throw new InvalidOperationException($"Entity '{path}' requires sessions, which this emulator does not serve yet.");
        }

        if (properties.MaxDeliveryCount < 1 || properties.LockDuration <= TimeSpan.Zero || properties.LockDuration > TimeSpan.FromMinutes(5))
        {
            throw new InvalidOperationException(
                $"Entity '{path}': MaxDeliveryCount ({properties.MaxDeliveryCount}) must be at least 1 and LockDuration ({properties.LockDuration}) more than 0 and at most 5 minutes.");
        }

        var entity = new MessageEntity(path, properties.Clone(), isDeadLetterQueue: false) { Rules = rules };
        entity.DeadLetterQueue = new MessageEntity(path + "/$deadletterqueue", entity.Properties, isDeadLetterQueue: true);
        receivable[entity.Path] = entity;
        receivable[entity.DeadLetterQueue.Path] = entity.DeadLetterQueue;
        return entity;
    }

    public bool CanSendTo(string path) => sendable.ContainsKey(path);

    public bool CanReceiveFrom(string path) => receivable.ContainsKey(path);

    public bool IsEntityOrSubQueue(string path) => sendable.ContainsKey(path) || receivable.ContainsKey(path);

    public IReadOnlyCollection<string> EntityPaths => [.. sendable.Keys, .. receivable.Keys.Where(k => !sendable.ContainsKey(k))];

    DateTimeOffset Now => time.GetUtcNow();

    // ---------------------------------------------------------------- sending

    /// <summary>Accepts messages sent to a queue or topic (already unbatched). Throws <see cref="BrokerException"/> to refuse them all.</summary>
    public List<Outbound> Send(string path, IReadOnlyList<byte[]> messages)
    {
        var prepared = messages.Select(Prepare).ToList();
        var outbound = new List<Outbound>();
        lock (gate)
        {
            var target = sendable.GetValueOrDefault(path) ?? throw NotFound(path);
            using var batch = store.Batch();
            var now = Now;
            foreach (var (encoded, messageId, scheduled, ttl) in prepared)
            {
                if (IsDuplicate(target, messageId, now))
                {
                    continue;
                }

                var message = NewMessage(encoded, messageId, ttl, target, now);
                if (scheduled is { } at && at > now)
                {
                    Schedule(target, message, at);
                }
                else
                {
                    Route(target, message, now, outbound, hops: 0);
                }
            }

            Rearm();
        }

        return outbound;
    }

    static (byte[] Encoded, string? MessageId, DateTimeOffset? Scheduled, TimeSpan? Ttl) Prepare(byte[] sent)
    {
        using var message = MessageCodec.Decode(sent);
        DateTimeOffset? scheduled = null;
        if (message.MessageAnnotations?.Map[MessageCodec.ScheduledEnqueueTimeName] is DateTime at)
        {
            scheduled = new DateTimeOffset(DateTime.SpecifyKind(at, DateTimeKind.Utc));
        }

        TimeSpan? ttl = message.Header?.Ttl is { } ms ? TimeSpan.FromMilliseconds(ms) : null;
        var messageId = message.Properties?.MessageId?.ToString();
        return (MessageCodec.Canonicalize(sent), messageId, scheduled, ttl);
    }

    BrokerMessage NewMessage(byte[] encoded, string? messageId, TimeSpan? ttl, SendTarget target, DateTimeOffset now)
    {
        var lifetime = (ttl, target.Properties.DefaultMessageTimeToLive) switch
        {
            ({ } a, { } b) => a < b ? a : b,
            ({ } a, null) => a,
            (null, { } b) => b,
            _ => (TimeSpan?)null,
        };
        return new BrokerMessage
        {
            SequenceNumber = ++lastSequenceNumber,
            Encoded = encoded,
            MessageId = messageId,
            EnqueuedTime = now,
            ExpiresAt = lifetime is { } l && l < DateTimeOffset.MaxValue - now ? now + l : null,
        };
    }

    bool IsDuplicate(SendTarget target, string? messageId, DateTimeOffset now)
    {
        if (!target.Properties.RequiresDuplicateDetection || messageId is null)
        {
            return false;
        }

        var window = target.Properties.DuplicateDetectionHistoryTimeWindow;
        if (target.DuplicateHistory.TryGetValue(messageId, out var seen) && now - seen < window)
        {
            Log.DuplicateDropped(logger, target.Path);
            return true;
        }

        if (target.DuplicateHistory.Count > 10_000)
        {
            foreach (var old in target.DuplicateHistory.Where(p => now - p.Value >= window).Select(p => p.Key).ToList())
            {
                target.DuplicateHistory.Remove(old);
            }

            store.ForgetMessageIds(target.Path, now - window);
        }

        target.DuplicateHistory[messageId] = now;
        store.RecordMessageId(target.Path, messageId, now);
        return false;
    }

    void Schedule(SendTarget target, BrokerMessage message, DateTimeOffset at)
    {
        message.State = MessageState.Scheduled;
        message.ScheduledEnqueueTime = at;
        switch (target)
        {
            case TopicEntity topic:
                topic.Scheduled[message.SequenceNumber] = message;
                break;
            case MessageEntity entity:
                entity.Messages[message.SequenceNumber] = message;
                break;
        }

        store.Upsert(target.Path, message);
        deadlines.Enqueue(new Deadline(DeadlineKind.Activation, target, message.SequenceNumber, Guid.Empty), at);
    }

    void Route(SendTarget target, BrokerMessage message, DateTimeOffset now, List<Outbound> outbound, int hops)
    {
        if (target.Properties.ForwardTo is { } forward && hops < MaxForwardingHops &&
            sendable.TryGetValue(EntityAddress.Normalize(forward), out var next) && next != target)
        {
            Route(next, message, now, outbound, hops + 1);
            return;
        }

        switch (target)
        {
            case TopicEntity topic:
                var view = topic.Subscriptions.Count > 0 ? MessageCodec.View(message.Encoded) : null;
                foreach (var subscription in topic.Subscriptions)
                {
                    if (subscription.Rules.Any(r => r.Filter.Matches(view!)))
                    {
                        var copy = message.CopyForEntity(++lastSequenceNumber, now);
                        copy.ScheduledEnqueueTime = message.ScheduledEnqueueTime;
                        Route(subscription, copy, now, outbound, hops);
                    }
                }

                break;
            case MessageEntity entity:
                message.State = MessageState.Active;
                message.EnqueuedTime = now;
                entity.Messages[message.SequenceNumber] = message;
                entity.Available.Add(message.SequenceNumber);
                if (message.ExpiresAt is { } expiresAt && !entity.IsDeadLetterQueue)
                {
                    deadlines.Enqueue(new Deadline(DeadlineKind.Expiry, entity, message.SequenceNumber, Guid.Empty), expiresAt);
                }

                store.Upsert(entity.Path, message);
                Dispatch(entity, now, outbound);
                break;
        }
    }

    // ---------------------------------------------------------------- receiving

    public Consumer CreateConsumer(string path, SendingAmqpLink link, bool receiveAndDelete)
    {
        lock (gate)
        {
            var entity = receivable.GetValueOrDefault(path) ?? throw NotFound(path);
            var consumer = new Consumer(entity, link, receiveAndDelete);
            entity.Consumers.Add(consumer);
            return consumer;
        }
    }

    public void RemoveConsumer(Consumer consumer)
    {
        lock (gate)
        {
            consumer.Entity.Consumers.Remove(consumer);
            consumer.Credit = 0;
        }
    }

    /// <summary>The client granted credit (or asked to drain it): send what is available now.</summary>
    public List<Outbound> OnCredit(Consumer consumer, uint credit)
    {
        var outbound = new List<Outbound>();
        lock (gate)
        {
            using var batch = store.Batch();
            consumer.Credit = Math.Min(consumer.Credit + credit, int.MaxValue);
            Dispatch(consumer.Entity, Now, outbound);
            Rearm();
        }

        return outbound;
    }

    public void OnDrained(Consumer consumer)
    {
        lock (gate)
        {
            consumer.Credit = 0;
        }
    }

    void Dispatch(MessageEntity entity, DateTimeOffset now, List<Outbound> outbound)
    {
        while (entity.Available.Count > 0)
        {
            var consumer = NextConsumerWithCredit(entity);
            if (consumer is null)
            {
                return;
            }

            var sequenceNumber = entity.Available.Min;
            entity.Available.Remove(sequenceNumber);
            var message = entity.Messages[sequenceNumber];
            if (message.ExpiresAt is { } expiresAt && expiresAt <= now && !entity.IsDeadLetterQueue)
            {
                Expire(entity, message, now, outbound);
                continue;
            }

            consumer.Credit--;
            message.DeliveryCount++;
            var tag = Guid.NewGuid();
            if (consumer.ReceiveAndDelete)
            {
                entity.Messages.Remove(sequenceNumber);
                store.Delete(entity.Path, sequenceNumber);
                outbound.Add(new Outbound(consumer.Link, MessageCodec.ForDelivery(message, peeked: false), new ArraySegment<byte>(tag.ToByteArray())));
                continue;
            }

            Lock(entity, message, tag, now);
            var delivery = MessageCodec.ForDelivery(message, peeked: false);
            store.Upsert(entity.Path, message);
            outbound.Add(new Outbound(consumer.Link, delivery, new ArraySegment<byte>(tag.ToByteArray())));
        }
    }

    Consumer? NextConsumerWithCredit(MessageEntity entity)
    {
        var count = entity.Consumers.Count;
        for (var i = 0; i < count; i++)
        {
            var consumer = entity.Consumers[(entity.NextConsumer + i) % count];
            if (consumer.Credit > 0)
            {
                entity.NextConsumer = (entity.NextConsumer + i + 1) % count;
                return consumer;
            }
        }

        return null;
    }

    void Lock(MessageEntity entity, BrokerMessage message, Guid token, DateTimeOffset now)
    {
        message.LockToken = token;
        message.LockedUntil = now + entity.Properties.LockDuration;
        entity.Locks[token] = message;
        deadlines.Enqueue(new Deadline(DeadlineKind.LockExpiry, entity, message.SequenceNumber, token), message.LockedUntil);
    }

    // ---------------------------------------------------------------- settling

    /// <summary>Settles a locked message. False when the lock is unknown or has expired (the client's MessageLockLost).</summary>
    public bool Settle(
        string path,
        Guid lockToken,
        Settlement settlement,
        IReadOnlyDictionary<string, object?>? propertiesToModify,
        string? deadLetterReason,
        string? deadLetterDescription,
        out List<Outbound> outbound)
    {
        outbound = [];
        lock (gate)
        {
            var entity = receivable.GetValueOrDefault(path) ?? throw NotFound(path);
            using var batch = store.Batch();
            var now = Now;
            if (!entity.Locks.TryGetValue(lockToken, out var message))
            {
                return false;
            }

            if (message.LockedUntil <= now)
            {
                Unlock(entity, message, now, outbound, countsAsDelivery: true);
                Rearm();
                return false;
            }

            entity.Locks.Remove(lockToken);
            message.LockToken = Guid.Empty;
            var changes = new List<KeyValuePair<string, object?>>();
            if (propertiesToModify is not null)
            {
                changes.AddRange(propertiesToModify);
            }

            switch (settlement)
            {
                case Settlement.Complete:
                    entity.Messages.Remove(message.SequenceNumber);
                    store.Delete(entity.Path, message.SequenceNumber);
                    break;
                case Settlement.Abandon:
                    Modify(message, changes);
                    Unlock(entity, message, now, outbound, countsAsDelivery: true);
                    break;
                case Settlement.Release:
                    // AMQP released: the receiver never looked at it, so the delivery does not count.
                    message.DeliveryCount = Math.Max(0, message.DeliveryCount - 1);
                    Unlock(entity, message, now, outbound, countsAsDelivery: false);
                    break;
                case Settlement.Defer:
                    Modify(message, changes);
                    message.State = MessageState.Deferred;
                    entity.Available.Remove(message.SequenceNumber);
                    store.Upsert(entity.Path, message);
                    break;
                case Settlement.DeadLetter:
                    if (deadLetterReason is not null)
                    {
                        changes.Add(new(MessageCodec.DeadLetterReasonProperty, deadLetterReason));
                    }

                    if (deadLetterDescription is not null)
                    {
                        changes.Add(new(MessageCodec.DeadLetterDescriptionProperty, deadLetterDescription));
                    }

                    Modify(message, changes);
                    if (entity.IsDeadLetterQueue)
                    {
                        // There is no dead-letter queue of a dead-letter queue: the message stays, nothing is lost.
                        Unlock(entity, message, now, outbound, countsAsDelivery: false);
                    }
                    else
                    {
                        DeadLetter(entity, message, now, outbound);
                    }

                    break;
            }

            Dispatch(entity, now, outbound);
            Rearm();
            return true;
        }
    }

    static void Modify(BrokerMessage message, List<KeyValuePair<string, object?>> changes)
    {
        if (changes.Count > 0)
        {
            message.Encoded = MessageCodec.WithApplicationProperties(message.Encoded, changes);
        }
    }

    /// <summary>A lock ends without settlement (abandon or expiry): the message is available again, or dead-lettered after MaxDeliveryCount deliveries.</summary>
    void Unlock(MessageEntity entity, BrokerMessage message, DateTimeOffset now, List<Outbound> outbound, bool countsAsDelivery)
    {
        entity.Locks.Remove(message.LockToken);
        message.LockToken = Guid.Empty;
        if (countsAsDelivery && !entity.IsDeadLetterQueue && message.DeliveryCount >= entity.Properties.MaxDeliveryCount)
        {
            message.Encoded = MessageCodec.WithApplicationProperties(message.Encoded,
            [
                new(MessageCodec.DeadLetterReasonProperty, MaxDeliveryCountExceeded),
                new(MessageCodec.DeadLetterDescriptionProperty, $"Message could not be consumed after {entity.Properties.MaxDeliveryCount} delivery attempts."),
            ]);
            DeadLetter(entity, message, now, outbound);
            return;
        }

        if (message.State == MessageState.Active)
        {
            if (message.ExpiresAt is { } expiresAt && expiresAt <= now && !entity.IsDeadLetterQueue)
            {
                Expire(entity, message, now, outbound);
                return;
            }

            entity.Available.Add(message.SequenceNumber);
        }

        store.Upsert(entity.Path, message);
        Dispatch(entity, now, outbound);
    }

    void DeadLetter(MessageEntity entity, BrokerMessage message, DateTimeOffset now, List<Outbound> outbound)
    {
        entity.Messages.Remove(message.SequenceNumber);
        entity.Available.Remove(message.SequenceNumber);
        store.Delete(entity.Path, message.SequenceNumber);
        message.State = MessageState.Active;
        message.ExpiresAt = null;
        if (entity.IsDeadLetterQueue)
        {
            return;
        }

        if (entity.Properties.ForwardDeadLetteredMessagesTo is { } forward && sendable.TryGetValue(EntityAddress.Normalize(forward), out var target))
        {
            message.DeadLetterSource = entity.Path;
            Route(target, message, now, outbound, hops: 0);
            return;
        }

        Route(entity.DeadLetterQueue!, message, now, outbound, hops: 0);
        Log.DeadLettered(logger, entity.Path, message.SequenceNumber);
    }

    void Expire(MessageEntity entity, BrokerMessage message, DateTimeOffset now, List<Outbound> outbound)
    {
        if (entity.Properties.DeadLetteringOnMessageExpiration)
        {
            message.Encoded = MessageCodec.WithApplicationProperties(message.Encoded,
            [
                new(MessageCodec.DeadLetterReasonProperty, TtlExpired),
                new(MessageCodec.DeadLetterDescriptionProperty, "The message expired and was dead lettered."),
            ]);
            DeadLetter(entity, message, now, outbound);
            return;
        }

        entity.Messages.Remove(message.SequenceNumber);
        entity.Available.Remove(message.SequenceNumber);
        store.Delete(entity.Path, message.SequenceNumber);
    }

    // ---------------------------------------------------------------- time

    void Rearm()
    {
        if (disposed || !deadlines.TryPeek(out _, out var due))
        {
            return;
        }

        if (armedFor is { } armed && armed <= due)
        {
            return;
        }

        armedFor = due;
        var delay = due - Now;
        timer.Change(delay > TimeSpan.Zero ? delay : TimeSpan.Zero, Timeout.InfiniteTimeSpan);
    }

    void OnTimer()
    {
        var outbound = new List<Outbound>();
        lock (gate)
        {
            if (disposed)
            {
                return;
            }

            armedFor = null;
            using var batch = store.Batch();
            var now = Now;
            while (deadlines.TryPeek(out var deadline, out var due) && due <= now)
            {
                deadlines.Dequeue();
                OnDeadline(deadline, now, outbound);
            }

            Rearm();
        }

        Flush(outbound);
    }

    void OnDeadline(Deadline deadline, DateTimeOffset now, List<Outbound> outbound)
    {
        switch (deadline.Kind, deadline.Entity)
        {
            case (DeadlineKind.LockExpiry, MessageEntity entity):
                if (entity.Locks.TryGetValue(deadline.LockToken, out var locked) && locked.LockedUntil <= now)
                {
                    Log.LockExpired(logger, entity.Path, locked.SequenceNumber);
                    Unlock(entity, locked, now, outbound, countsAsDelivery: true);
                }
                else if (locked is not null)
                {
                    deadlines.Enqueue(deadline, locked.LockedUntil);
                }

                break;
            case (DeadlineKind.Expiry, MessageEntity entity):
                if (entity.Messages.TryGetValue(deadline.SequenceNumber, out var expiring) && !expiring.IsLocked &&
                    expiring.ExpiresAt is { } at && at <= now)
                {
                    Expire(entity, expiring, now, outbound);
                }

                break;
            case (DeadlineKind.Activation, MessageEntity entity):
                if (entity.Messages.TryGetValue(deadline.SequenceNumber, out var scheduled) && scheduled.State == MessageState.Scheduled)
                {
                    entity.Messages.Remove(scheduled.SequenceNumber);
                    Route(entity, scheduled, now, outbound, hops: 0);
                }

                break;
            case (DeadlineKind.Activation, TopicEntity topic):
                if (topic.Scheduled.Remove(deadline.SequenceNumber, out var topicMessage))
                {
                    store.Delete(topic.Path, topicMessage.SequenceNumber);
                    Route(topic, topicMessage, now, outbound, hops: 0);
                }

                break;
        }
    }

    /// <summary>Puts messages on their links; a link that closed meanwhile just drops them (their locks expire as usual).</summary>
    public static void Flush(List<Outbound> outbound)
    {
        foreach (var (link, message, tag) in outbound)
        {
            try
            {
                link.SendMessageNoWait(message, tag, AmqpConstants.NullBinary);
            }
            catch (Exception e) when (e is InvalidOperationException or ObjectDisposedException or AmqpException)
            {
                message.Dispose();
            }
        }
    }

    static BrokerException NotFound(string path) =>
        new(AmqpErrorCode.NotFound.Value, $"The messaging entity '{path}' could not be found.");

    public void Dispose()
    {
        lock (gate)
        {
            disposed = true;
        }

        timer.Dispose();
        store.Dispose();
    }

    void Restore()
    {
        var now = Now;
        lastSequenceNumber = store.LastSequenceNumber;
        foreach (var (path, messageId, seen) in store.LoadMessageIds())
        {
            if (sendable.TryGetValue(path, out var target) && now - seen < target.Properties.DuplicateDetectionHistoryTimeWindow)
            {
                target.DuplicateHistory[messageId] = seen;
            }
        }

        foreach (var (path, rules) in store.LoadRules())
        {
            if (receivable.TryGetValue(path, out var subscription) && !subscription.IsDeadLetterQueue)
            {
                subscription.Rules.Clear();
                subscription.Rules.AddRange(rules.Select(r => new SubscriptionRule(r.Name, r, RuleFilter.From(r), now)));
            }
        }

        foreach (var target in sendable.Values)
        {
            store.ForgetMessageIds(target.Path, now - target.Properties.DuplicateDetectionHistoryTimeWindow);
        }

        foreach (var (path, message) in store.Load())
        {
            lastSequenceNumber = Math.Max(lastSequenceNumber, message.SequenceNumber);
            if (receivable.TryGetValue(path, out var entity))
            {
                entity.Messages[message.SequenceNumber] = message;
                switch (message.State)
                {
                    case MessageState.Active:
                        entity.Available.Add(message.SequenceNumber);
                        if (message.ExpiresAt is { } expiresAt && !entity.IsDeadLetterQueue)
                        {
                            deadlines.Enqueue(new Deadline(DeadlineKind.Expiry, entity, message.SequenceNumber, Guid.Empty), expiresAt);
                        }

                        break;
                    case MessageState.Scheduled:
                        deadlines.Enqueue(new Deadline(DeadlineKind.Activation, entity, message.SequenceNumber, Guid.Empty), message.ScheduledEnqueueTime ?? now);
                        break;
                }
            }
            else if (sendable.TryGetValue(path, out var target) && target is TopicEntity topic && message.State == MessageState.Scheduled)
            {
                topic.Scheduled[message.SequenceNumber] = message;
                deadlines.Enqueue(new Deadline(DeadlineKind.Activation, topic, message.SequenceNumber, Guid.Empty), message.ScheduledEnqueueTime ?? now);
            }
        }

        lock (gate)
        {
            Rearm();
        }
    }

    static partial class Log
    {
        [LoggerMessage(EventId = 1, Level = LogLevel.Debug, Message = "Duplicate message dropped on {Entity}")]
        public static partial void DuplicateDropped(ILogger logger, string entity);

        [LoggerMessage(EventId = 2, Level = LogLevel.Debug, Message = "Message {SequenceNumber} of {Entity} dead-lettered")]
        public static partial void DeadLettered(ILogger logger, string entity, long sequenceNumber);

        [LoggerMessage(EventId = 3, Level = LogLevel.Debug, Message = "Lock on message {SequenceNumber} of {Entity} expired")]
        public static partial void LockExpired(ILogger logger, string entity, long sequenceNumber);

        // Lets tests (and users at Debug) see a processor's auto-renewal happen, rather than waiting out a lock.
        [LoggerMessage(EventId = 4, Level = LogLevel.Debug, Message = "Lock on message {SequenceNumber} of {Entity} renewed")]
        public static partial void LockRenewed(ILogger logger, string entity, long sequenceNumber);
    }
}
