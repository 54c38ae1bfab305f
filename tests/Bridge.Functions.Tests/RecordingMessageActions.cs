using Azure.Messaging.ServiceBus;
using Microsoft.Azure.Functions.Worker;

namespace Bridge.Functions.Tests;

/// <summary>Records settlement the way a test would mock the official ServiceBusMessageActions.</summary>
public sealed class RecordingMessageActions : ServiceBusMessageActions
{
    public List<string> Calls { get; } = [];

    public string? DeadLetterReason { get; private set; }

    public string? DeadLetterDescription { get; private set; }

    public override Task CompleteMessageAsync(ServiceBusReceivedMessage message, CancellationToken cancellationToken = default)
    {
        Calls.Add("complete:" + message.MessageId);
        return Task.CompletedTask;
    }

    public override Task AbandonMessageAsync(ServiceBusReceivedMessage message, IDictionary<string, object>? propertiesToModify = null, CancellationToken cancellationToken = default)
    {
        Calls.Add("abandon:" + message.MessageId);
        return Task.CompletedTask;
    }

    public override Task DeadLetterMessageAsync(ServiceBusReceivedMessage message, Dictionary<string, object>? propertiesToModify = null, string? deadLetterReason = null, string? deadLetterErrorDescription = null, CancellationToken cancellationToken = default)
    {
        Calls.Add("deadletter:" + message.MessageId);
        DeadLetterReason = deadLetterReason;
        DeadLetterDescription = deadLetterErrorDescription;
        return Task.CompletedTask;
    }
}
