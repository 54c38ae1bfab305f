using System.Runtime.ExceptionServices;
using Azure.Messaging.ServiceBus;
using Bridge.CloudTasks;
using Bridge.Core.Forwarding;
using Bridge.Core.Internal;
using Bridge.Core.Routing;
using Microsoft.Extensions.Logging;

namespace Bridge.Core.Intake;

/// <summary>
/// The batched half of the one decision both hosts share: a batch of messages forwarded together (BatchCreateTasks
/// per queue), each message then settled on its own result exactly as <see cref="HandleAsync"/> settles a single one.
/// A batch never settles a message on another message's result, and a malformed message affects only itself.
/// </summary>
public sealed partial class ServiceBusMessageHandler
{
    /// <summary>Messages per batch at most: one BatchCreateTasks call's worth.</summary>
    public const int MaxBatchSize = CloudTasksClient.MaxBatchCreateRequests;

    private readonly IBatchEventForwarder? _batchForwarder;

    internal ServiceBusMessageHandler(ServiceBusIntake intake, IEventForwarder forwarder, IBatchEventForwarder batchForwarder, RouteTable routes, BridgeOptions options, TimeProvider time, ILogger<ServiceBusMessageHandler>? logger = null, string? handBackQueue = null)
        : this(intake, forwarder, routes, options, time, logger, handBackQueue)
    {
        _batchForwarder = batchForwarder;
    }

    /// <summary>
    /// Forwards <paramref name="messages"/> together and settles each through its own settler (index-aligned with
    /// the messages); returns what was done with each. Every message is settled (or tried) even when another's
    /// settlement fails; such failures are thrown together afterwards, and the host gives those messages back.
    /// </summary>
    public async Task<IReadOnlyList<Settlement>> HandleBatchAsync(IReadOnlyList<ServiceBusReceivedMessage> messages, string entity, IReadOnlyList<IServiceBusSettler> settlers, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(messages);
        ArgumentNullException.ThrowIfNull(settlers);
        if (settlers.Count != messages.Count)
        {
            throw new ArgumentException($"One settler per message: {messages.Count} messages, {settlers.Count} settlers.", nameof(settlers));
        }

        var data = messages.Select(ServiceBusMessages.ToMessageData).ToList();
        var settlements = await DecideBatchAsync(data, entity, cancellationToken).ConfigureAwait(false);
        var failures = new Exception?[messages.Count];

        // Hand-backs whose host gives a sender go out together, per entity; everything else is settled one by one.
        var alone = new List<int>();
        var together = new Dictionary<string, (ServiceBusSender Sender, List<int> Indices)>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < messages.Count; i++)
        {
            if (settlements[i].Action == SettlementAction.HandBack)
            {
                var target = settlements[i].HandBackEntity ?? entity;
                if (!together.TryGetValue(target, out var group) && settlers[i].CopySender(target) is { } sender)
                {
                    group = (sender, []);
                    together[target] = group;
                }

                if (group.Sender is not null)
                {
                    group.Indices.Add(i);
                    continue;
                }
            }

            alone.Add(i);
        }

        var work = alone.Select(async i =>
        {
            try
            {
                await SettleAsync(messages[i], data[i], entity, settlements[i], settlers[i], cancellationToken).ConfigureAwait(false);
            }
#pragma warning disable CA1031 // each message's settlement stands alone; the failures are rethrown below
            catch (Exception ex)
#pragma warning restore CA1031
            {
                failures[i] = ex;
            }
        }).Concat(together.Select(g => HandBackTogetherAsync(g.Key, g.Value.Sender, g.Value.Indices, messages, data, entity, settlements, settlers, failures, cancellationToken)));
        await Task.WhenAll(work).ConfigureAwait(false);

        var failed = failures.OfType<Exception>().ToList();
        if (failed.Count == 1)
        {
            ExceptionDispatchInfo.Throw(failed[0]);
        }
        else if (failed.Count > 1)
        {
            throw new AggregateException($"{failed.Count} of {messages.Count} messages of the batch could not be settled.", failed);
        }

        return settlements;
    }

    /// <summary>
    /// Hands the messages at <paramref name="indices"/> back to <paramref name="target"/> together: their copies in
    /// as few ServiceBusMessageBatch as the size limit allows, and once a batch is sent, its messages' originals
    /// completed. The per-message guarantee stays: no original is completed before its copy is sent, and a batch
    /// that can't be sent leaves its messages unsettled (recorded in <paramref name="failures"/>; the host gives
    /// them back). A copy too large for a batch of its own is sent alone, so the broker's refusal names it.
    /// </summary>
    private async Task HandBackTogetherAsync(
        string target,
        ServiceBusSender sender,
        List<int> indices,
        IReadOnlyList<ServiceBusReceivedMessage> messages,
        IReadOnlyList<ServiceBusMessageData> data,
        string entity,
        IReadOnlyList<Settlement> settlements,
        IReadOnlyList<IServiceBusSettler> settlers,
        Exception?[] failures,
        CancellationToken cancellationToken)
    {
        var pending = new List<int>();
        ServiceBusMessageBatch? batch = null;
        try
        {
            foreach (var i in indices)
            {
                try
                {
                    var (_, copy) = HandBackCopy(messages[i], entity, settlements[i]);
                    batch ??= await sender.CreateMessageBatchAsync(cancellationToken).ConfigureAwait(false);
                    if (batch.TryAddMessage(copy))
                    {
                        pending.Add(i);
                        continue;
                    }

                    if (pending.Count > 0)
                    {
                        // The batch is full: send it, and start the next with this copy.
                        await SendThenCompleteAsync(batch, pending).ConfigureAwait(false);
                        batch.Dispose();
                        batch = null;
                        pending = [];
                        batch = await sender.CreateMessageBatchAsync(cancellationToken).ConfigureAwait(false);
                        if (batch.TryAddMessage(copy))
                        {
                            pending.Add(i);
                            continue;
                        }
                    }

                    await sender.SendMessageAsync(copy, cancellationToken).ConfigureAwait(false);
                    await CompleteHandedBackTracedAsync(i).ConfigureAwait(false);
                }
#pragma warning disable CA1031 // each message's settlement stands alone; the failures are rethrown by the caller
                catch (Exception ex)
#pragma warning restore CA1031
                {
                    failures[i] = ex;
                }
            }

            if (batch is not null && pending.Count > 0)
            {
                await SendThenCompleteAsync(batch, pending).ConfigureAwait(false);
            }
        }
        finally
        {
            batch?.Dispose();
        }

        async Task SendThenCompleteAsync(ServiceBusMessageBatch copies, List<int> sent)
        {
            try
            {
                await sender.SendMessagesAsync(copies, cancellationToken).ConfigureAwait(false);
            }
#pragma warning disable CA1031 // none of these copies is known to be sent: none of their originals is completed
            catch (Exception ex)
#pragma warning restore CA1031
            {
                foreach (var i in sent)
                {
                    failures[i] = ex;
                }

                return;
            }

            await Task.WhenAll(sent.Select(async i =>
            {
                try
                {
                    await CompleteHandedBackTracedAsync(i).ConfigureAwait(false);
                }
#pragma warning disable CA1031 // the copy is sent; the original comes back and deduplicates against it
                catch (Exception ex)
#pragma warning restore CA1031
                {
                    failures[i] = ex;
                }
            })).ConfigureAwait(false);
        }

        // Its copy sent with others, the message's settle span covers completing the original.
        async Task CompleteHandedBackTracedAsync(int i)
        {
            var route = RouteFor(data[i], entity, settlements[i]);
            using var span = ServiceBusSettleSpans.Start(messages[i], data[i].ApplicationProperties, entity, route, settlements[i]);
            try
            {
                await CompleteHandedBackAsync(messages[i], route, target, settlements[i], settlers[i], span, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                ServiceBusSettleSpans.Failed(span, ex);
                throw;
            }
        }
    }

    /// <summary>
    /// Forwards the messages together and says how to settle each, without settling: one decision per message, in
    /// order, each from that message's own result.
    /// </summary>
    internal async Task<IReadOnlyList<Settlement>> DecideBatchAsync(IReadOnlyList<ServiceBusMessageData> messages, string entity, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(messages);
        if (_batchForwarder is null || messages.Count == 1
            || (HandBackQueue is not null && string.Equals(entity, HandBackQueue, StringComparison.OrdinalIgnoreCase)))
        {
            // One message needs no long-running operation: CreateTask is the cheaper call for it. Copies on the
            // hand-back queue each name their own origin (and route), so they are decided one by one.
            return await Task.WhenAll(messages.Select(m => DecideAsync(m, entity, cancellationToken))).ConfigureAwait(false);
        }

        var decisions = new Settlement?[messages.Count];
        var events = new List<InboundEvent>(messages.Count);
        var indices = new List<int>(messages.Count);
        for (var i = 0; i < messages.Count; i++)
        {
            try
            {
                events.Add(_intake.Map(messages[i], entity));
                indices.Add(i);
            }
            catch (ForwardingException ex)
            {
                decisions[i] = DecideFailure(messages[i], entity, ex);
            }
        }

        if (events.Count > 0)
        {
            var results = await _batchForwarder.ForwardBatchAsync(events, cancellationToken).ConfigureAwait(false);
            if (results.Count != events.Count)
            {
                throw new InvalidOperationException($"The batch forwarder returned {results.Count} results for {events.Count} events.");
            }

            for (var j = 0; j < results.Count; j++)
            {
                var i = indices[j];
                decisions[i] = results[j] is { Succeeded: true, Forwarded: { } forwarded }
                    ? new Settlement(SettlementAction.Complete, forwarded) { OriginEntity = entity }
                    : DecideFailure(messages[i], entity, results[j].Failure ?? new ForwardingException(ForwardingFailureReason.CloudTasksUnavailable, "The batch forwarder gave no result for this message."));
            }
        }

        return decisions.Select(d => d!).ToList();
    }

    /// <summary>The same choice as <see cref="DecideAsync"/>'s for a failed forward.</summary>
    private Settlement DecideFailure(ServiceBusMessageData message, string entity, ForwardingException error) =>
        ServiceBusHandBack.IsRetriedWithinBudget(error)
            ? DecideRetry(message, entity, entity, error)
            : new Settlement(SettlementAction.DeadLetter, Error: error) { OriginEntity = entity };
}
