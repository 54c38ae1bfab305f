using Azure.Messaging.ServiceBus;
using Bridge.Core;
using Bridge.Core.Intake;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.Configuration;

namespace Bridge.Functions.Functions;

/// <summary>
/// Service Bus → Cloud Tasks. Settles each message itself: complete once the task exists (created or
/// deduplicated), dead-letter with a machine-readable reason on permanent errors, hand transient ones back for later
/// (a scheduled copy, then complete) until the route's retry budget is spent. Nothing is dropped.
/// </summary>
public sealed class ServiceBusForwardFunction(ServiceBusMessageHandler handler, ServiceBusSenders senders, IConfiguration configuration)
{
    public const string QueueSetting = ServiceBusConnection.QueueSetting;
    public const string ConnectionSetting = ServiceBusConnection.DefaultName;

    [Function("ForwardServiceBusMessage")]
    public async Task RunAsync(
        [ServiceBusTrigger("%" + QueueSetting + "%", Connection = ConnectionSetting, AutoCompleteMessages = false)] ServiceBusReceivedMessage message,
        ServiceBusMessageActions messageActions,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(messageActions);
        var entity = configuration[QueueSetting] ?? string.Empty;
        var settlement = await handler.HandleAsync(message, entity, new FunctionSettler(messageActions, message, senders), cancellationToken);
        if (settlement.Action == SettlementAction.Abandon)
        {
            throw settlement.Error!; // the invocation is recorded as failed; Service Bus redelivers
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
    }
}
