using Azure.Messaging.ServiceBus;
using Bridge.Core.Intake;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.Configuration;

namespace Bridge.Functions.Functions;

/// <summary>
/// Service Bus → Cloud Tasks. Settles each message itself: complete once the task exists (created or
/// deduplicated), dead-letter with a machine-readable reason on permanent errors, abandon on transient ones so
/// Service Bus redelivers (and dead-letters after MaxDeliveryCount). Nothing is dropped.
/// </summary>
public sealed class ServiceBusForwardFunction(ServiceBusMessageHandler handler, IConfiguration configuration)
{
    // A flat name: the scale controller resolves %…% binding expressions against app settings, and has not always
    // mapped the colon form onto Bridge__ServiceBus__Queue, which can leave a scaled-to-zero app asleep.
    public const string QueueSetting = "BridgeServiceBusQueue";
    public const string ConnectionSetting = "BridgeServiceBus";

    [Function("ForwardServiceBusMessage")]
    public async Task RunAsync(
        [ServiceBusTrigger("%" + QueueSetting + "%", Connection = ConnectionSetting, AutoCompleteMessages = false)] ServiceBusReceivedMessage message,
        ServiceBusMessageActions messageActions,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(messageActions);
        var settlement = await handler.HandleAsync(ToMessageData(message), configuration[QueueSetting] ?? string.Empty, cancellationToken);
        switch (settlement.Action)
        {
            case SettlementAction.Complete:
                await messageActions.CompleteMessageAsync(message, cancellationToken);
                break;
            case SettlementAction.DeadLetter:
                await messageActions.DeadLetterMessageAsync(message, propertiesToModify: null, settlement.DeadLetterReason, settlement.DeadLetterDescription, cancellationToken);
                break;
            default:
                await messageActions.AbandonMessageAsync(message, propertiesToModify: null, cancellationToken);
                throw settlement.Error!; // the invocation is recorded as failed; Service Bus redelivers
        }
    }

    internal static ServiceBusMessageData ToMessageData(ServiceBusReceivedMessage message) => ServiceBusMessages.ToMessageData(message);
}
