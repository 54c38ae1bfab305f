using Azure.Messaging.ServiceBus;
using Bridge.Core;
using Bridge.Core.Intake;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.Configuration;

namespace Bridge.Functions.Functions;

/// <summary>
/// Service Bus → Cloud Tasks in batches (up to host.json's <c>maxMessageBatchSize</c>, forwarded with BatchCreateTasks
/// per queue). Settles each message itself, on its own result: complete once the task exists (created or
/// deduplicated), dead-letter with a machine-readable reason on permanent errors, hand transient ones back for later
/// (a scheduled copy, then complete) until the route's retry budget is spent. Nothing is dropped.
/// </summary>
public sealed class ServiceBusForwardFunction(ServiceBusMessageHandler handler, ServiceBusSenders senders, IConfiguration configuration)
{
    public const string QueueSetting = ServiceBusConnection.QueueSetting;
    public const string ConnectionSetting = ServiceBusConnection.DefaultName;

    [Function("ForwardServiceBusMessage")]
    public async Task RunAsync(
        [ServiceBusTrigger("%" + QueueSetting + "%", Connection = ConnectionSetting, AutoCompleteMessages = false, IsBatched = true)] ServiceBusReceivedMessage[] messages,
        ServiceBusMessageActions messageActions,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(messages);
        ArgumentNullException.ThrowIfNull(messageActions);
        var entity = configuration[QueueSetting] ?? string.Empty;
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
