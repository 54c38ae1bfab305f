using Azure.Messaging.ServiceBus;
using Bridge.Core.Forwarding;
using Bridge.Core.Intake;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.Configuration;

namespace Bridge.Functions.Functions;

/// <summary>
/// Service Bus → Cloud Tasks. Settles each message itself: complete once the task exists (created or
/// deduplicated), dead-letter with a machine-readable reason on permanent errors, abandon on transient ones so
/// Service Bus redelivers (and dead-letters after MaxDeliveryCount). Nothing is dropped.
/// </summary>
public sealed class ServiceBusForwardFunction(ServiceBusIntake intake, IEventForwarder forwarder, IConfiguration configuration)
{
    public const string QueueSetting = "Bridge:ServiceBus:Queue";
    public const string ConnectionSetting = "BridgeServiceBus";
    private const int MaxDeadLetterTextLength = 4096;

    [Function("ForwardServiceBusMessage")]
    public async Task RunAsync(
        [ServiceBusTrigger("%" + QueueSetting + "%", Connection = ConnectionSetting, AutoCompleteMessages = false)] ServiceBusReceivedMessage message,
        ServiceBusMessageActions messageActions,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(messageActions);
        var entity = configuration[QueueSetting] ?? string.Empty;
        try
        {
            var inbound = intake.Map(ToMessageData(message), entity);
            await forwarder.ForwardAsync(inbound, cancellationToken);
            await messageActions.CompleteMessageAsync(message, cancellationToken);
        }
        catch (ForwardingException ex) when (!ex.IsTransient)
        {
            await messageActions.DeadLetterMessageAsync(
                message,
                propertiesToModify: null,
                deadLetterReason: ex.ReasonCode,
                deadLetterErrorDescription: Truncate(ex.Message),
                cancellationToken: cancellationToken);
        }
        catch (ForwardingException)
        {
            await messageActions.AbandonMessageAsync(message, propertiesToModify: null, cancellationToken);
            throw;
        }
    }

    internal static ServiceBusMessageData ToMessageData(ServiceBusReceivedMessage message) => new()
    {
        MessageId = message.MessageId,
        Body = message.Body.ToMemory(),
        ContentType = message.ContentType,
        CorrelationId = message.CorrelationId,
        Subject = message.Subject,
        ApplicationProperties = message.ApplicationProperties,
        DeliveryCount = message.DeliveryCount,
        EnqueuedTime = message.EnqueuedTime,
    };

    private static string Truncate(string text) => text.Length <= MaxDeadLetterTextLength ? text : text[..MaxDeadLetterTextLength];
}
