using Microsoft.Azure.Amqp;

namespace Bridge.Emulators.ServiceBus.Internal;

/// <summary>What the <c>$management</c> node asks of the broker.</summary>
internal sealed partial class Broker
{
    public const int MaxPeekCount = 1000;

    /// <summary>Messages from a sequence number on, in order, in any state (active, locked, deferred, scheduled).</summary>
    public List<byte[]> Peek(string path, long fromSequenceNumber, int count)
    {
        lock (gate)
        {
            var entity = receivable.GetValueOrDefault(path) ?? throw NotFound(path);
            var result = new List<byte[]>();
            foreach (var (sequenceNumber, message) in entity.Messages)
            {
                if (result.Count >= Math.Min(count, MaxPeekCount))
                {
                    break;
                }

                if (sequenceNumber >= fromSequenceNumber)
                {
                    using var peeked = MessageCodec.ForDelivery(message, peeked: true);
                    result.Add(MessageCodec.Encode(peeked));
                }
            }

            return result;
        }
    }

    public List<long> Schedule(string path, IReadOnlyList<(byte[] Message, DateTimeOffset? At)> messages)
    {
        var prepared = messages.Select(m => (Prepared: Prepare(m.Message), m.At)).ToList();
        var sequenceNumbers = new List<long>();
        lock (gate)
        {
            var target = sendable.GetValueOrDefault(path) ?? throw NotFound(path);
            using var batch = store.Batch();
            var now = Now;
            foreach (var ((encoded, messageId, scheduled, ttl), at) in prepared)
            {
                var message = NewMessage(encoded, messageId, ttl, target, now);
                sequenceNumbers.Add(message.SequenceNumber);
                if (IsDuplicate(target, messageId, now))
                {
                    continue;
                }

                Schedule(target, message, at ?? scheduled ?? now);
            }

            Rearm();
        }

        return sequenceNumbers;
    }

    /// <summary>Cancels scheduled messages; false when one of them is not (or no longer) scheduled.</summary>
    public bool CancelScheduled(string path, IEnumerable<long> sequenceNumbers)
    {
        lock (gate)
        {
            var target = sendable.GetValueOrDefault(path) ?? throw NotFound(path);
            using var batch = store.Batch();
            var allFound = true;
            foreach (var sequenceNumber in sequenceNumbers)
            {
                var removed = target switch
                {
                    TopicEntity topic => topic.Scheduled.Remove(sequenceNumber),
                    MessageEntity entity when entity.Messages.TryGetValue(sequenceNumber, out var m) && m.State == MessageState.Scheduled =>
                        entity.Messages.Remove(sequenceNumber),
                    _ => false,
                };
                if (removed)
                {
                    store.Delete(target.Path, sequenceNumber);
                }

                allFound &= removed;
            }

            return allFound;
        }
    }

    /// <summary>Deferred messages by sequence number, locked (or removed, in receive-and-delete mode).</summary>
    public List<(Guid LockToken, byte[] Message)> ReceiveDeferred(string path, IEnumerable<long> sequenceNumbers, bool receiveAndDelete)
    {
        lock (gate)
        {
            var entity = receivable.GetValueOrDefault(path) ?? throw NotFound(path);
            using var batch = store.Batch();
            var now = Now;
            var result = new List<(Guid, byte[])>();
            foreach (var sequenceNumber in sequenceNumbers)
            {
                if (!entity.Messages.TryGetValue(sequenceNumber, out var message) || message.State != MessageState.Deferred || message.IsLocked)
                {
                    throw new BrokerException("com.microsoft:message-not-found", $"Failed to lock one or more specified messages. The deferred message with sequence number {sequenceNumber} was not found on '{path}'.");
                }
            }

            foreach (var sequenceNumber in sequenceNumbers)
            {
                var message = entity.Messages[sequenceNumber];
                message.DeliveryCount++;
                var token = Guid.NewGuid();
                if (receiveAndDelete)
                {
                    entity.Messages.Remove(sequenceNumber);
                    store.Delete(entity.Path, sequenceNumber);
                }
                else
                {
                    Lock(entity, message, token, now);
                    store.Upsert(entity.Path, message);
                }

                using var delivered = MessageCodec.ForDelivery(message, peeked: false);
                result.Add((token, MessageCodec.Encode(delivered)));
            }

            Rearm();
            return result;
        }
    }

    /// <summary>Extends locks by the entity's lock duration; null when one of them is lost.</summary>
    public List<DateTime>? RenewLocks(string path, IEnumerable<Guid> lockTokens)
    {
        lock (gate)
        {
            var entity = receivable.GetValueOrDefault(path) ?? throw NotFound(path);
            var now = Now;
            var result = new List<DateTime>();
            foreach (var token in lockTokens)
            {
                if (!entity.Locks.TryGetValue(token, out var message) || message.LockedUntil <= now)
                {
                    return null;
                }

                message.LockedUntil = now + entity.Properties.LockDuration;
                result.Add(message.LockedUntil.UtcDateTime);
                Log.LockRenewed(logger, entity.Path, message.SequenceNumber);
            }

            return result;
        }
    }

    public IReadOnlyList<SubscriptionRule> Rules(string path)
    {
        lock (gate)
        {
            return [.. Subscription(path).Rules];
        }
    }

    public void AddRule(string path, RuleDefinition rule)
    {
        var filter = RuleFilter.From(rule);
        lock (gate)
        {
            var subscription = Subscription(path);
            if (subscription.Rules.Any(r => string.Equals(r.Name, rule.Name, StringComparison.OrdinalIgnoreCase)))
            {
                throw new BrokerException("com.microsoft:entity-already-exists", $"The rule '{rule.Name}' already exists on '{path}'.");
            }

            if (subscription.Rules.Count >= 2000)
            {
                throw new BrokerException(AmqpErrorCode.ResourceLimitExceeded.Value, $"'{path}' already has 2000 rules.");
            }

            subscription.Rules.Add(new SubscriptionRule(rule.Name, rule, filter, Now));
            store.SaveRules(subscription.Path, subscription.Rules.Select(r => r.Definition).ToList());
        }
    }

    public void RemoveRule(string path, string name)
    {
        lock (gate)
        {
            var subscription = Subscription(path);
            if (subscription.Rules.RemoveAll(r => string.Equals(r.Name, name, StringComparison.OrdinalIgnoreCase)) == 0)
            {
                throw new BrokerException(AmqpErrorCode.NotFound.Value, $"The rule '{name}' was not found on '{path}'.");
            }

            store.SaveRules(subscription.Path, subscription.Rules.Select(r => r.Definition).ToList());
        }
    }

    MessageEntity Subscription(string path) =>
        receivable.GetValueOrDefault(path) is { IsDeadLetterQueue: false } entity && path.Contains("/subscriptions/", StringComparison.Ordinal)
            ? entity
            : throw new BrokerException(AmqpErrorCode.NotFound.Value, $"'{path}' is not a subscription.");
}
