using Azure.Messaging.ServiceBus;
using Bridge.Core.Callback;
using CloudNative.CloudEvents;
using CloudNative.CloudEvents.SystemTextJson;
using Microsoft.Extensions.Logging;

namespace Bridge.Core.Internal;

/// <summary>
/// Writes each outcome as a structured log entry: without the payload (only its size) unless
/// <see cref="OutcomeOptions.LogPayloads"/> asks for it, since payloads are the senders' data, not the operators'.
/// </summary>
internal sealed partial class LogOutcomeSink(ILogger<LogOutcomeSink> logger, bool logPayloads = false) : IOutcomeSink
{
    public Task PublishAsync(TaskOutcome outcome, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(outcome);
        var data = (OutcomeData)outcome.ToCloudEvent().Data!;
        if (!logPayloads)
        {
            data = data with { Payload = null };
        }

        LogOutcome(outcome.Type, outcome.TaskName, outcome.Id, outcome.PayloadSize ?? outcome.Payload.Length, System.Text.Json.JsonSerializer.Serialize(data));
        return Task.CompletedTask;
    }

    [LoggerMessage(EventId = 200, Level = LogLevel.Information, Message = "Task outcome {Type} for {TaskName} ({OutcomeId}, payload {PayloadBytes} bytes): {Data}")]
    private partial void LogOutcome(string type, string? taskName, string outcomeId, int payloadBytes, string? data);
}

/// <summary>
/// Sends each outcome to a Service Bus queue or topic as a structured CloudEvent; the outcome id is the MessageId,
/// so an entity with duplicate detection drops repeats.
/// </summary>
internal sealed class ServiceBusOutcomeSink(ServiceBusSender sender) : IOutcomeSink
{
    private static readonly JsonEventFormatter Formatter = new();

    public async Task PublishAsync(TaskOutcome outcome, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(outcome);
        await sender.SendMessageAsync(ToMessage(outcome.ToCloudEvent()), cancellationToken).ConfigureAwait(false);
    }

    public static ServiceBusMessage ToMessage(CloudEvent outcome)
    {
        var body = Formatter.EncodeStructuredModeMessage(outcome, out var contentType);
        var message = new ServiceBusMessage(body)
        {
            MessageId = outcome.Id,
            ContentType = contentType.ToString(),
            Subject = outcome.Type,
        };
        message.ApplicationProperties["cloudEvents:type"] = outcome.Type;
        message.ApplicationProperties["cloudEvents:subject"] = outcome.Subject;
        return message;
    }
}

/// <summary>Hands each outcome to every configured sink; it is delivered once all of them have it.</summary>
internal sealed class CompositeOutcomeSink(IEnumerable<IOutcomeSink> sinks) : IOutcomeSink
{
    private readonly IOutcomeSink[] _sinks = sinks.ToArray();

    public async Task PublishAsync(TaskOutcome outcome, CancellationToken cancellationToken)
    {
        foreach (var sink in _sinks)
        {
            await sink.PublishAsync(outcome, cancellationToken).ConfigureAwait(false);
        }
    }
}
