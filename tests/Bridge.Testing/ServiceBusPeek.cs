using Azure.Messaging.ServiceBus;

namespace Bridge.Testing;

/// <summary>What a Service Bus entity holds, read with the official client without settling anything.</summary>
public static class ServiceBusPeek
{
    /// <summary>The suffix that names an entity's dead-letter queue for <see cref="PeekAllAsync"/>.</summary>
    public const string DeadLetterQueue = "/$deadletterqueue";

    /// <summary>
    /// Every message (up to 500) of a queue or a subscription (<c>topic/subscriptions/name</c>), or of its dead-letter
    /// queue (<paramref name="path"/> ending in <see cref="DeadLetterQueue"/>), from the first sequence number on.
    /// </summary>
    public static async Task<IReadOnlyList<ServiceBusReceivedMessage>> PeekAllAsync(this ServiceBusClient client, string path)
    {
        var deadLetter = path.EndsWith(DeadLetterQueue, StringComparison.Ordinal);
        var entity = deadLetter ? path[..^DeadLetterQueue.Length] : path;
        var parts = entity.Split("/subscriptions/");
        var options = new ServiceBusReceiverOptions { SubQueue = deadLetter ? SubQueue.DeadLetter : SubQueue.None };
        await using var receiver = parts.Length == 2 ? client.CreateReceiver(parts[0], parts[1], options) : client.CreateReceiver(entity, options);
        return await receiver.PeekMessagesAsync(500, fromSequenceNumber: 0);
    }
}
