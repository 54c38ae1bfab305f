using Azure.Messaging.ServiceBus;
using Microsoft.Azure.Functions.Worker;

namespace Bridge.Functions.Tests;

/// <summary>Records settlement the way a test would mock the official ServiceBusMessageActions; a batch settles concurrently.</summary>
public sealed class RecordingMessageActions : ServiceBusMessageActions
{
    private readonly Lock _gate = new();
    private readonly List<string> _calls = [];
    private readonly Dictionary<string, (string? Reason, string? Description)> _deadLetters = new(StringComparer.Ordinal);

    public IReadOnlyList<string> Calls
    {
        get
        {
            lock (_gate)
            {
                return [.. _calls];
            }
        }
    }

    /// <summary>The last dead-lettered message's reason.</summary>
    public string? DeadLetterReason { get; private set; }

    public string? DeadLetterDescription { get; private set; }

    /// <summary>Each dead-lettered message's reason and description, by MessageId.</summary>
    public (string? Reason, string? Description) DeadLetterOf(string messageId)
    {
        lock (_gate)
        {
            return _deadLetters[messageId];
        }
    }

    public override Task CompleteMessageAsync(ServiceBusReceivedMessage message, CancellationToken cancellationToken = default) => Record("complete:" + message.MessageId);

    public override Task AbandonMessageAsync(ServiceBusReceivedMessage message, IDictionary<string, object>? propertiesToModify = null, CancellationToken cancellationToken = default) =>
        Record("abandon:" + message.MessageId);

    public override Task DeadLetterMessageAsync(ServiceBusReceivedMessage message, Dictionary<string, object>? propertiesToModify = null, string? deadLetterReason = null, string? deadLetterErrorDescription = null, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            _deadLetters[message.MessageId] = (deadLetterReason, deadLetterErrorDescription);
            DeadLetterReason = deadLetterReason;
            DeadLetterDescription = deadLetterErrorDescription;
        }

        return Record("deadletter:" + message.MessageId);
    }

    private Task Record(string call)
    {
        lock (_gate)
        {
            _calls.Add(call);
        }

        return Task.CompletedTask;
    }
}
