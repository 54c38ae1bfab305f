namespace Bridge.Core.Forwarding;

/// <summary>An event as Bridge forwards it, whatever it came in as (Service Bus message, HTTP body, CloudEvent).</summary>
public sealed record InboundEvent
{
    /// <summary>The route's name as configured.</summary>
    public required string Route { get; init; }

    /// <summary>The event's identity; null: the task gets a service-generated name and no deduplication.</summary>
    public EventIdentity? Identity { get; init; }

    public ReadOnlyMemory<byte> Body { get; init; }

    public string? ContentType { get; init; }

    /// <summary>Headers for the task besides the route's static ones (carried properties, CloudEvent attributes).</summary>
    public IReadOnlyDictionary<string, string> Headers { get; init; } = new Dictionary<string, string>();

    public ScheduleHint Schedule { get; init; } = ScheduleHint.None;

    /// <summary>Carried to the task (X-Bridge-Correlation-Id) so outcomes can be matched to their events.</summary>
    public string? CorrelationId { get; init; }

    /// <summary>W3C trace context that came with the event, for when the host did not start an activity from it.</summary>
    public string? TraceParent { get; init; }

    /// <summary>Where it came from, for telemetry: <c>servicebus</c>, <c>http</c>, <c>cloudevent</c>.</summary>
    public required string Source { get; init; }
}

/// <summary>What happened to a forwarded event.</summary>
public enum ForwardOutcome
{
    /// <summary>A new task was created.</summary>
    Created,

    /// <summary>The task already existed (a redelivery or a client retry): success, nothing new.</summary>
    Deduplicated,
}

public sealed record ForwardResult(ForwardOutcome Outcome, string TaskName, DateTimeOffset? ScheduleTime, string Route);
