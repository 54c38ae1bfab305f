using System.Text.Json.Serialization;

namespace Bridge.Core.Internal;

/// <summary>The data of an outcome CloudEvent, as JSON: camelCase fields; the payload base64, or the blob it is stored as.</summary>
internal sealed record OutcomeData(
    [property: JsonPropertyName("status")] string Status,
    [property: JsonPropertyName("taskName")] string TaskName,
    [property: JsonPropertyName("taskInstance")] string? TaskInstance,
    [property: JsonPropertyName("queue")] string? Queue,
    [property: JsonPropertyName("route")] string? Route,
    [property: JsonPropertyName("identityKind")] string? IdentityKind,
    [property: JsonPropertyName("correlationId")] string? CorrelationId,
    [property: JsonPropertyName("retryCount")] int? RetryCount,
    [property: JsonPropertyName("executionCount")] int? ExecutionCount,
    [property: JsonPropertyName("eta")] DateTimeOffset? Eta,
    [property: JsonPropertyName("previousResponse")] int? PreviousResponse,
    [property: JsonPropertyName("detail")] string? Detail,
    [property: JsonPropertyName("reportedBy")] string ReportedBy,
    [property: JsonPropertyName("receivedAt")] DateTimeOffset ReceivedAt,
    [property: JsonPropertyName("payload")] byte[]? Payload,
    [property: JsonPropertyName("payloadContentType")] string? PayloadContentType,
    [property: JsonPropertyName("payloadSize")] int? PayloadSize,
    [property: JsonPropertyName("payloadSha256")] string? PayloadSha256,
    [property: JsonPropertyName("payloadUri")] Uri? PayloadUri,
    [property: JsonPropertyName("payloadNote")] string? PayloadNote);
