using Azure.Messaging.ServiceBus;
using Bridge.Core.Intake;
using Microsoft.Azure.Functions.Worker;

namespace Bridge.Functions.Internal;

/// <summary>
/// What both Service Bus functions do with the batch the host binds: the shared decision
/// (<see cref="ServiceBusMessageHandler"/>) for the entity the batch came from, settled through the host's message
/// actions and hand-back copies sent on the app's own senders.
/// </summary>
internal static class FunctionServiceBusIntake
{
    public static async Task RunAsync(ServiceBusMessageHandler handler, ServiceBusSenders senders, string entity, ServiceBusReceivedMessage[] messages, ServiceBusMessageActions messageActions, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(messages);
        ArgumentNullException.ThrowIfNull(messageActions);
        var settlers = messages.Select(m => new FunctionSettler(messageActions, m, senders)).ToArray();
        var settlements = await handler.HandleBatchAsync(messages, entity, settlers, cancellationToken);
        if (settlements.FirstOrDefault(s => s.Action == SettlementAction.Abandon) is { } abandoned)
        {
            throw abandoned.Error!; // the invocation is recorded as failed; Service Bus redelivers the abandoned ones
        }
    }

    /// <summary>Settlement through the Functions host's message actions.</summary>
    private sealed class FunctionSettler(ServiceBusMessageActions actions, ServiceBusReceivedMessage message, ServiceBusSenders senders) : IServiceBusSettler
    {
        public Task CompleteAsync(CancellationToken cancellationToken) => actions.CompleteMessageAsync(message, cancellationToken);

        public Task DeadLetterAsync(string reason, string description, CancellationToken cancellationToken) =>
            actions.DeadLetterMessageAsync(message, propertiesToModify: null, reason, description, cancellationToken);

        public Task AbandonAsync(CancellationToken cancellationToken) => actions.AbandonMessageAsync(message, propertiesToModify: null, cancellationToken);

        public Task ScheduleCopyAsync(string entity, ServiceBusMessage copy, CancellationToken cancellationToken) => senders.For(entity).SendMessageAsync(copy, cancellationToken);

        public ServiceBusSender? CopySender(string entity) => senders.For(entity);
    }
}
