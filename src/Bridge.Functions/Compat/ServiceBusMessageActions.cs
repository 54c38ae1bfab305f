using Azure.Messaging.ServiceBus;

// Same namespace and members as the official ServiceBusMessageActions, so function code is identical in both builds.
namespace Microsoft.Azure.Functions.Worker;

/// <summary>
/// Stand-in for the official settlement API where its package can't be restored. It can't reach a host, so every
/// call fails; tests derive from it (as they would mock the official class) to observe settlement.
/// </summary>
public class ServiceBusMessageActions
{
    protected ServiceBusMessageActions()
    {
    }

    public virtual Task CompleteMessageAsync(ServiceBusReceivedMessage message, CancellationToken cancellationToken = default) => throw NotAvailable();

    public virtual Task AbandonMessageAsync(ServiceBusReceivedMessage message, IDictionary<string, object>? propertiesToModify = default, CancellationToken cancellationToken = default) => throw NotAvailable();

    public virtual Task DeadLetterMessageAsync(ServiceBusReceivedMessage message, Dictionary<string, object>? propertiesToModify = default, string? deadLetterReason = default, string? deadLetterErrorDescription = default, CancellationToken cancellationToken = default) => throw NotAvailable();

    private static NotSupportedException NotAvailable() =>
        new("Message settlement needs the official Service Bus extension: build with -p:UseOfficialServiceBusExtension=true.");
}
