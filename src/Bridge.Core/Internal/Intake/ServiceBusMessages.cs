using Azure.Messaging.ServiceBus;

namespace Bridge.Core.Internal;

/// <summary>The SDK's received message as the host-neutral record both hosts hand to Core.</summary>
internal static class ServiceBusMessages
{
    public static ServiceBusMessageData ToMessageData(ServiceBusReceivedMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        return new ServiceBusMessageData
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
    }
}
