using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using CloudNative.CloudEvents;

namespace Bridge.Core.Callback;

public enum OutcomeStatus
{
    /// <summary>Cloud Tasks delivered a task to the bridge, and its payload was handed on.</summary>
    Delivered,

    /// <summary>A target reported that it processed the task.</summary>
    Succeeded,

    /// <summary>A target reported failure, or the bridge could not hand on a task on its last attempt.</summary>
    Failed,
}

/// <summary>What became of a task, as reported to the outcome sinks (as a CloudEvent).</summary>
public sealed record TaskOutcome
{
    public const string Source = "/bridge/callback";

    public required OutcomeStatus Status { get; init; }

    public required string TaskName { get; init; }

    public string? Queue { get; init; }

    public string? Route { get; init; }

    /// <summary>How the original event was identified (e.g. <c>servicebus-message-id</c>).</summary>
    public string? IdentityKind { get; init; }

    public string? CorrelationId { get; init; }

    public int? RetryCount { get; init; }

    public int? ExecutionCount { get; init; }

    public DateTimeOffset? Eta { get; init; }

    public int? PreviousResponse { get; init; }

    public string? Detail { get; init; }

    /// <summary>The service account whose token the call carried.</summary>
    public required string ReportedBy { get; init; }

    public required DateTimeOffset ReceivedAt { get; init; }

    /// <summary>For deliveries: the task's body and its content type.</summary>
    public ReadOnlyMemory<byte> Payload { get; init; }

    public string? PayloadContentType { get; init; }

    /// <summary>
    /// Stable for the same task and status, so a call delivered twice gives the same id and the sink's duplicate
    /// detection (Service Bus MessageId) drops the repeat.
    /// </summary>
    public string Id => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{Queue}\n{TaskName}\n{Status}")))[..32];

    public string Type => "dev.bridge.task." + Status.ToString().ToLowerInvariant();

    public CloudEvent ToCloudEvent()
    {
        var data = new Dictionary<string, object?>
        {
            ["status"] = Status.ToString().ToLowerInvariant(),
            ["taskName"] = TaskName,
            ["queue"] = Queue,
            ["route"] = Route,
            ["identityKind"] = IdentityKind,
            ["correlationId"] = CorrelationId,
            ["retryCount"] = RetryCount,
            ["executionCount"] = ExecutionCount,
            ["eta"] = Eta,
            ["previousResponse"] = PreviousResponse,
            ["detail"] = Detail,
            ["reportedBy"] = ReportedBy,
            ["receivedAt"] = ReceivedAt,
        };
        if (!Payload.IsEmpty)
        {
            data["payload"] = Convert.ToBase64String(Payload.Span);
            data["payloadContentType"] = PayloadContentType;
        }

        return new CloudEvent
        {
            Id = Id,
            Source = new Uri(Source, UriKind.Relative),
            Type = Type,
            Subject = TaskName,
            Time = ReceivedAt,
            DataContentType = "application/json",
            Data = JsonSerializer.SerializeToElement(data),
        };
    }
}
