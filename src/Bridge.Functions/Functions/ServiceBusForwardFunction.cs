using Azure.Messaging.ServiceBus;
using Bridge.Core;
using Bridge.Core.Intake;
using Bridge.Functions.Internal;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.Configuration;

namespace Bridge.Functions.Functions;

/// <summary>
/// Service Bus → Cloud Tasks in batches (up to host.json's <c>maxMessageBatchSize</c>, forwarded with BatchCreateTasks
/// per queue). Settles each message itself, on its own result: complete once the task exists (created or
/// deduplicated), dead-letter with a machine-readable reason on permanent errors, hand transient ones back for later
/// (a scheduled copy, then complete) until the route's retry budget is spent. Nothing is dropped. A topic
/// subscription's copies go to the hand-back queue instead, which <see cref="ServiceBusHandBackFunction"/> consumes.
/// </summary>
public sealed class ServiceBusForwardFunction(ServiceBusMessageHandler handler, ServiceBusSenders senders, IConfiguration configuration)
{
    public const string QueueSetting = ServiceBusConnection.QueueSetting;
    public const string ConnectionSetting = ServiceBusConnection.DefaultName;

    [Function("ForwardServiceBusMessage")]
    public Task RunAsync(
        [ServiceBusTrigger("%" + QueueSetting + "%", Connection = ConnectionSetting, AutoCompleteMessages = false, IsBatched = true)] ServiceBusReceivedMessage[] messages,
        ServiceBusMessageActions messageActions,
        CancellationToken cancellationToken) =>
        FunctionServiceBusIntake.RunAsync(handler, senders, configuration[QueueSetting] ?? string.Empty, messages, messageActions, cancellationToken);
}
