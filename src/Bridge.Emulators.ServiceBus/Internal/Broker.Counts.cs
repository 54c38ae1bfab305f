namespace Bridge.Emulators.ServiceBus.Internal;

/// <summary>Read-only counts for tools (the dashboard): what the broker holds now, under its lock, without peeking.</summary>
internal sealed partial class Broker
{
    /// <summary>
    /// A queue's or subscription's active (locked and deferred included, as Service Bus counts them), scheduled and
    /// dead-lettered messages; a topic's messages scheduled on it. Null when there is no such entity.
    /// </summary>
    public EntityMessageCounts? CountMessages(string path)
    {
        var normalized = EntityAddress.Normalize(path);
        lock (gate)
        {
            if (receivable.TryGetValue(normalized, out var entity) && !entity.IsDeadLetterQueue)
            {
                var scheduled = entity.Messages.Values.Count(m => m.State == MessageState.Scheduled);
                return new EntityMessageCounts(entity.Messages.Count - scheduled, scheduled, entity.DeadLetterQueue?.Messages.Count ?? 0);
            }

            return sendable.TryGetValue(normalized, out var target) && target is TopicEntity topic
                ? new EntityMessageCounts(0, topic.Scheduled.Count, 0)
                : null;
        }
    }
}
