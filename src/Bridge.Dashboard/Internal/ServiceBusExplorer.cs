using Azure.Messaging.ServiceBus;

namespace Bridge.Dashboard.Internal;

/// <summary>One row of counts; <paramref name="Exact"/>: read from the broker, else sampled by peeking (<paramref name="More"/>: beyond the sample).</summary>
internal sealed record EntityCounts(string Entity, long Active, long Scheduled, long DeadLettered, bool More, string? Error, bool Exact = false, bool IsTopic = false);

internal sealed record DeadLetter(long SequenceNumber, string? MessageId, string? Subject, string? Reason, string? Description, DateTimeOffset EnqueuedTime, int DeliveryCount, string? ContentType, BinaryData Body, IReadOnlyDictionary<string, object> Properties);

/// <summary>
/// Service Bus as the dashboard sees it, through the official client over AMQP (the local emulator serves no
/// management REST API): counts from the broker when it runs in this process, else by peeking (bounded, so sampled);
/// dead-letters browsed by peeking, resubmitted or discarded by receiving the one message with its sequence number.
/// </summary>
internal sealed class ServiceBusExplorer(string connectionString, Func<IEnumerable<string>> entities, Func<string, ServiceBusEntityCounts?>? exactCounts = null) : IAsyncDisposable
{
    /// <summary>Messages peeked per entity to count or list: enough locally; beyond it the count says "+".</summary>
    internal const int MaxPeek = 250;

    private const string SubscriptionsSegment = "/Subscriptions/";
    private readonly ServiceBusClient _client = new(connectionString, new ServiceBusClientOptions
    {
        RetryOptions = new ServiceBusRetryOptions { MaxRetries = 1, TryTimeout = TimeSpan.FromSeconds(10) },
    });

    /// <summary>Queues and subscriptions (not dead-letter queues, not topics), sorted.</summary>
    public IReadOnlyList<string> Entities()
    {
        var all = entities().ToList();
        var topics = TopicsOf(all);
        return [.. all
            .Where(e => !e.EndsWith("/$deadletterqueue", StringComparison.OrdinalIgnoreCase))
            .Where(e => !e.Contains('/', StringComparison.Ordinal) || e.Contains(SubscriptionsSegment, StringComparison.OrdinalIgnoreCase))
            .Where(e => !topics.Contains(e))
            .Distinct(StringComparer.OrdinalIgnoreCase)
            .Order(StringComparer.OrdinalIgnoreCase)];
    }

    /// <summary>Topics (entities with subscriptions): listed, with what is scheduled on them, only when the broker's counts are at hand.</summary>
    public IReadOnlyList<string> Topics() => exactCounts is null ? [] : [.. TopicsOf([.. entities()]).Order(StringComparer.OrdinalIgnoreCase)];

    private static HashSet<string> TopicsOf(List<string> all) => all
        .Select(e => e.IndexOf(SubscriptionsSegment, StringComparison.OrdinalIgnoreCase) is var split and > 0 ? e[..split] : null)
        .OfType<string>()
        .ToHashSet(StringComparer.OrdinalIgnoreCase);

    /// <summary>Whether counts come from the broker (exact) rather than from peeking.</summary>
    public bool HasExactCounts => exactCounts is not null;

    /// <summary>Only entities the dashboard lists may be touched.</summary>
    public bool IsKnown(string entity) => Entities().Contains(entity, StringComparer.OrdinalIgnoreCase);

    public async Task<EntityCounts> CountAsync(string entity, CancellationToken cancellationToken)
    {
        if (exactCounts?.Invoke(entity) is { } exact)
        {
            return new EntityCounts(entity, exact.Active, exact.Scheduled, exact.DeadLettered, false, null, Exact: true);
        }

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

    /// <summary>A topic's own count: messages scheduled on it that have not reached its subscriptions yet.</summary>
    public EntityCounts TopicCounts(string topic) => exactCounts?.Invoke(topic) is { } exact
        ? new EntityCounts(topic, exact.Active, exact.Scheduled, exact.DeadLettered, false, null, Exact: true, IsTopic: true)
        : new EntityCounts(topic, 0, 0, 0, false, "The broker has no such topic.", IsTopic: true);

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
