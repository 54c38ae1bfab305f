using System.Security.Cryptography;
using System.Text;
using Bridge.Core.Internal;
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

    /// <summary>
    /// Which creation of the task this is (the bridge stamps each task it creates): a task name can be reused once the
    /// old task's name expired, and that new task must not share the old one's outcome ids.
    /// </summary>
    public string? TaskInstance { get; init; }

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

    /// <summary>For deliveries: the payload's size in bytes, whether or not the outcome carries it.</summary>
    public int? PayloadSize { get; init; }

    /// <summary>The payload's SHA-256 (hex) when the outcome does not carry it.</summary>
    public string? PayloadSha256 { get; init; }

    /// <summary>The blob the payload is stored as, when it is too large to carry (with its size and SHA-256).</summary>
    public Uri? PayloadUri { get; init; }

    /// <summary>Why the payload is not carried, and where it is, when it is not carried.</summary>
    public string? PayloadNote { get; init; }

    /// <summary>
    /// Stable for the same task instance and status, so a call delivered twice gives the same id and the sink's
    /// duplicate detection (Service Bus MessageId) drops the repeat; another instance of the same task name, or another
    /// status, gives another id.
    /// </summary>
    public string Id
    {
        get
        {
            // The cache remembers what it was computed from: `with` copies it, and a copy with another status (the
            // final failure made from a delivery) must not keep the delivery's id.
            if (_id is not { } cached || cached.Status != Status || !ReferenceEquals(cached.TaskName, TaskName) || !ReferenceEquals(cached.Queue, Queue) || !ReferenceEquals(cached.Instance, TaskInstance))
            {
                _id = cached = (Status, TaskName, Queue, TaskInstance, ComputeId());
            }

            return cached.Id;
        }
    }

    private (OutcomeStatus Status, string TaskName, string? Queue, string? Instance, string Id)? _id;

    private string ComputeId()
    {
        // SHA-256 of the UTF-8 of "{Queue}\n{TaskName}\n{TaskInstance}\n{Status}", encoded part by part into one buffer
        // rather than through a string built per outcome (the parts are split by '\n', so the bytes are the same).
        var status = Status.ToString();
        var length = Encoding.UTF8.GetByteCount(Queue ?? string.Empty) + Encoding.UTF8.GetByteCount(TaskName) + Encoding.UTF8.GetByteCount(TaskInstance ?? string.Empty) + Encoding.UTF8.GetByteCount(status) + 3;
        var bytes = length <= 1024 ? stackalloc byte[length] : new byte[length];
        var written = Encoding.UTF8.GetBytes(Queue.AsSpan(), bytes);
        bytes[written++] = (byte)'\n';
        written += Encoding.UTF8.GetBytes(TaskName.AsSpan(), bytes[written..]);
        bytes[written++] = (byte)'\n';
        written += Encoding.UTF8.GetBytes(TaskInstance.AsSpan(), bytes[written..]);
        bytes[written++] = (byte)'\n';
        Encoding.UTF8.GetBytes(status.AsSpan(), bytes[written..]);
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(bytes, hash);
        return Convert.ToHexStringLower(hash[..16]);
    }

    public string Type => Status switch
    {
        // Constants, not built per call: the receiver tags every span with the type.
        OutcomeStatus.Delivered => "dev.bridge.task.delivered",
        OutcomeStatus.Succeeded => "dev.bridge.task.succeeded",
        OutcomeStatus.Failed => "dev.bridge.task.failed",
        _ => "dev.bridge.task." + Status.ToString().ToLowerInvariant(),
    };

    /// <summary>
    /// The outcome as a CloudEvent. Its data is a typed <see cref="OutcomeData"/>: each sink serializes it in its own
    /// format when it sends, so the receiver's hot path does no JSON work.
    /// </summary>
    public CloudEvent ToCloudEvent() => new()
    {
        Id = Id,
        Source = SourceUri,
        Type = Type,
        Subject = TaskName,
        Time = ReceivedAt,
        DataContentType = "application/json",
        Data = new OutcomeData(
            Status switch { OutcomeStatus.Delivered => "delivered", OutcomeStatus.Succeeded => "succeeded", _ => "failed" },
            TaskName, TaskInstance, Queue, Route, IdentityKind, CorrelationId, RetryCount, ExecutionCount, Eta, PreviousResponse, Detail, ReportedBy, ReceivedAt,
            Payload.IsEmpty ? null : Payload.ToArray(),
            Payload.IsEmpty && PayloadSha256 is null ? null : PayloadContentType,
            PayloadSize,
            PayloadSha256,
            PayloadUri,
            PayloadNote),
    };

    private static readonly Uri SourceUri = new(Source, UriKind.Relative);
}
