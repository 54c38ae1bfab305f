using System.Collections.Concurrent;
using Azure.Messaging.ServiceBus;
using Bridge.Testing;
using Microsoft.Azure.Functions.Worker;

namespace Bridge.Functions.Tests;

/// <summary>
/// What the Functions host's Service Bus trigger does for one batched function with manual settlement, over AMQP
/// against a real broker (the local emulator): receives peek-locked batches from the function's entity, invokes the
/// function with them and with message actions that settle through the same receiver (as the host's settlement
/// service does), and gives back what a failed invocation left unsettled. Records every settlement.
/// </summary>
internal sealed class ServiceBusTriggerDriver : IAsyncDisposable
{
    private readonly ServiceBusReceiver _receiver;
    private readonly Func<ServiceBusReceivedMessage[], ServiceBusMessageActions, CancellationToken, Task> _function;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentQueue<Settled> _settled = new();
    private readonly ConcurrentQueue<Exception> _failures = new();
    private readonly Task _loop;

    private ServiceBusTriggerDriver(ServiceBusReceiver receiver, Func<ServiceBusReceivedMessage[], ServiceBusMessageActions, CancellationToken, Task> function)
    {
        _receiver = receiver;
        _function = function;
        _loop = Task.Run(LoopAsync);
    }

    /// <summary>One settlement: what was done with which message (its MessageId and, for a copy, its original's).</summary>
    public sealed record Settled(string Action, string MessageId, string? OriginalMessageId, string? Reason);

    public IReadOnlyList<Settled> Settlements => [.. _settled];

    /// <summary>Invocations that threw (the host records them as failed).</summary>
    public IReadOnlyList<Exception> Failures => [.. _failures];

    /// <summary>Starts receiving from <paramref name="entity"/> (a queue, or <c>topic/subscriptions/name</c>) for <paramref name="function"/>.</summary>
    public static ServiceBusTriggerDriver Start(ServiceBusClient client, string entity, Func<ServiceBusReceivedMessage[], ServiceBusMessageActions, CancellationToken, Task> function)
    {
        ArgumentNullException.ThrowIfNull(client);
        var parts = entity.Split("/subscriptions/", StringSplitOptions.None);
        var receiver = parts.Length == 2 ? client.CreateReceiver(parts[0], parts[1]) : client.CreateReceiver(entity);
        return new ServiceBusTriggerDriver(receiver, function);
    }

    private async Task LoopAsync()
    {
        var stop = _stop.Token;
        while (!stop.IsCancellationRequested)
        {
            IReadOnlyList<ServiceBusReceivedMessage> batch;
            try
            {
                batch = await _receiver.ReceiveMessagesAsync(100, TimeSpan.FromSeconds(1), stop);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }

            if (batch.Count == 0)
            {
                continue;
            }

            var actions = new ReceiverActions(_receiver, _settled);
            try
            {
                await _function([.. batch], actions, stop);
            }
            catch (Exception ex) when (!stop.IsCancellationRequested)
            {
                _failures.Enqueue(ex);
                foreach (var message in batch.Where(m => !actions.IsSettled(m)))
                {
                    await _receiver.AbandonMessageAsync(message, cancellationToken: CancellationToken.None);
                }
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    public async ValueTask DisposeAsync() => await Teardown.AllAsync(() => _stop.CancelAsync(), () => _loop, _receiver, _stop);

    /// <summary>The host's message actions, as a test derives from the official class to observe settlement.</summary>
    private sealed class ReceiverActions(ServiceBusReceiver receiver, ConcurrentQueue<Settled> settled) : ServiceBusMessageActions
    {
        private readonly ConcurrentDictionary<long, bool> _done = new();

        public bool IsSettled(ServiceBusReceivedMessage message) => _done.ContainsKey(message.SequenceNumber);

        public override async Task CompleteMessageAsync(ServiceBusReceivedMessage message, CancellationToken cancellationToken = default)
        {
            await receiver.CompleteMessageAsync(message, cancellationToken);
            Record("complete", message, reason: null);
        }

        public override async Task AbandonMessageAsync(ServiceBusReceivedMessage message, IDictionary<string, object>? propertiesToModify = null, CancellationToken cancellationToken = default)
        {
            await receiver.AbandonMessageAsync(message, propertiesToModify, cancellationToken);
            Record("abandon", message, reason: null);
        }

        public override async Task DeadLetterMessageAsync(ServiceBusReceivedMessage message, Dictionary<string, object>? propertiesToModify = null, string? deadLetterReason = null, string? deadLetterErrorDescription = null, CancellationToken cancellationToken = default)
        {
            await (propertiesToModify is null
                ? receiver.DeadLetterMessageAsync(message, deadLetterReason, deadLetterErrorDescription, cancellationToken)
                : receiver.DeadLetterMessageAsync(message, propertiesToModify, deadLetterReason, deadLetterErrorDescription, cancellationToken));
            Record("deadletter", message, deadLetterReason);
        }

        private void Record(string action, ServiceBusReceivedMessage message, string? reason)
        {
            _done[message.SequenceNumber] = true;
            settled.Enqueue(new Settled(action, message.MessageId, message.ApplicationProperties.TryGetValue("bridge-original-message-id", out var original) ? original as string : null, reason));
        }
    }
}
