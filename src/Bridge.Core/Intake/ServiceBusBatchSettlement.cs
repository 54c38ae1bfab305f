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
        await Task.WhenAll(Enumerable.Range(0, messages.Count).Select(async i =>
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
        })).ConfigureAwait(false);

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
