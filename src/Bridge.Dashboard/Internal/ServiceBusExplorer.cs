using Azure.Messaging.ServiceBus;

namespace Bridge.Dashboard.Internal;

internal sealed record EntityCounts(string Entity, int Active, int Scheduled, int DeadLettered, bool More, string? Error);

internal sealed record DeadLetter(long SequenceNumber, string? MessageId, string? Subject, string? Reason, string? Description, DateTimeOffset EnqueuedTime, int DeliveryCount, string? ContentType, BinaryData Body, IReadOnlyDictionary<string, object> Properties);

/// <summary>
/// Service Bus as the dashboard sees it, through the official client over AMQP only (the local emulator serves no
/// management REST API): counts by peeking (bounded), dead-letters browsed by peeking, resubmitted or discarded by
/// receiving the one message with its sequence number.
/// </summary>
internal sealed class ServiceBusExplorer(string connectionString, Func<IEnumerable<string>> entities) : IAsyncDisposable
{
    /// <summary>Messages peeked per entity to count or list: enough locally; beyond it the count says "+".</summary>
    internal const int MaxPeek = 250;

    private const string SubscriptionsSegment = "/Subscriptions/";
    private readonly ServiceBusClient _client = new(connectionString, new ServiceBusClientOptions
    {
        RetryOptions = new ServiceBusRetryOptions { MaxRetries = 1, TryTimeout = TimeSpan.FromSeconds(10) },
    });

    /// <summary>Queues and subscriptions (not dead-letter queues, not bare topics), sorted.</summary>
    public IReadOnlyList<string> Entities() => [.. entities()
        .Where(e => !e.EndsWith("/$deadletterqueue", StringComparison.OrdinalIgnoreCase))
        .Where(e => !e.Contains('/', StringComparison.Ordinal) || e.Contains(SubscriptionsSegment, StringComparison.OrdinalIgnoreCase))
        .Distinct(StringComparer.OrdinalIgnoreCase)
        .Order(StringComparer.OrdinalIgnoreCase)];

    /// <summary>Only entities the dashboard lists may be touched.</summary>
    public bool IsKnown(string entity) => Entities().Contains(entity, StringComparer.OrdinalIgnoreCase);

    public async Task<EntityCounts> CountAsync(string entity, CancellationToken cancellationToken)
    {
        try
        {
            var main = await PeekAsync(entity, deadLetter: false, cancellationToken);
            var dead = await PeekAsync(entity, deadLetter: true, cancellationToken);
            var scheduled = main.Count(m => m.State == ServiceBusMessageState.Scheduled);
            return new EntityCounts(entity, main.Count - scheduled, scheduled, dead.Count, main.Count >= MaxPeek || dead.Count >= MaxPeek, null);
        }
        catch (ServiceBusException ex)
        {
            return new EntityCounts(entity, 0, 0, 0, false, $"Service Bus answered {ex.Reason}.");
        }
    }

    public async Task<IReadOnlyList<DeadLetter>> DeadLettersAsync(string entity, CancellationToken cancellationToken) =>
        [.. (await PeekAsync(entity, deadLetter: true, cancellationToken)).Select(ToDeadLetter)];

    private static DeadLetter ToDeadLetter(ServiceBusReceivedMessage m) => new(m.SequenceNumber, m.MessageId, m.Subject, m.DeadLetterReason, m.DeadLetterErrorDescription,
        m.EnqueuedTime, m.DeliveryCount, m.ContentType, m.Body, m.ApplicationProperties.ToDictionary());

    private async Task<IReadOnlyList<ServiceBusReceivedMessage>> PeekAsync(string entity, bool deadLetter, CancellationToken cancellationToken)
    {
        await using var receiver = CreateReceiver(entity, deadLetter, ServiceBusReceiveMode.PeekLock);
        var all = new List<ServiceBusReceivedMessage>();
        long from = 0;
        while (all.Count < MaxPeek)
        {
            var batch = await receiver.PeekMessagesAsync(Math.Min(100, MaxPeek - all.Count), from, cancellationToken);
            if (batch.Count == 0)
            {
                break;
            }

            all.AddRange(batch);
            from = batch[^1].SequenceNumber + 1;
        }

        return all;
    }

    /// <summary>
    /// Receives the dead-letter with <paramref name="sequenceNumber"/> (others received on the way are abandoned
    /// unchanged), sends a copy to its entity when <paramref name="resubmit"/>, then completes it. False: not found.
    /// </summary>
    public async Task<bool> SettleDeadLetterAsync(string entity, long sequenceNumber, bool resubmit, CancellationToken cancellationToken)
    {
        await using var receiver = CreateReceiver(entity, deadLetter: true, ServiceBusReceiveMode.PeekLock);
        var passedOver = new List<ServiceBusReceivedMessage>();
        try
        {
            for (var round = 0; round < 10 && passedOver.Count < MaxPeek; round++)
            {
                var batch = await receiver.ReceiveMessagesAsync(50, TimeSpan.FromSeconds(2), cancellationToken);
                if (batch.Count == 0)
                {
                    return false;
                }

                foreach (var message in batch)
                {
                    if (message.SequenceNumber != sequenceNumber)
                    {
                        passedOver.Add(message);
                        continue;
                    }

                    if (resubmit)
                    {
                        var copy = new ServiceBusMessage(message);
                        // The copy starts over: the dead-letter bookkeeping stays with the discarded original.
                        copy.ApplicationProperties.Remove("DeadLetterReason");
                        copy.ApplicationProperties.Remove("DeadLetterErrorDescription");
                        await using var sender = _client.CreateSender(TopicOrQueue(entity));
                        await sender.SendMessageAsync(copy, cancellationToken);
                    }

                    await receiver.CompleteMessageAsync(message, cancellationToken);
                    return true;
                }
            }

            return false;
        }
        finally
        {
            foreach (var message in passedOver)
            {
                await receiver.AbandonMessageAsync(message, cancellationToken: CancellationToken.None);
            }
        }
    }

    private ServiceBusReceiver CreateReceiver(string entity, bool deadLetter, ServiceBusReceiveMode mode)
    {
        var options = new ServiceBusReceiverOptions { ReceiveMode = mode, SubQueue = deadLetter ? SubQueue.DeadLetter : SubQueue.None };
        var split = entity.IndexOf(SubscriptionsSegment, StringComparison.OrdinalIgnoreCase);
        return split < 0
            ? _client.CreateReceiver(entity, options)
            : _client.CreateReceiver(entity[..split], entity[(split + SubscriptionsSegment.Length)..], options);
    }

    private static string TopicOrQueue(string entity)
    {
        var split = entity.IndexOf(SubscriptionsSegment, StringComparison.OrdinalIgnoreCase);
        return split < 0 ? entity : entity[..split];
    }

    public ValueTask DisposeAsync() => _client.DisposeAsync();
}
