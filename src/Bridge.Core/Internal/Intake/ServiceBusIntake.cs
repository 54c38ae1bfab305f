using System.Globalization;
using Bridge.Core.Forwarding;
using Bridge.Core.Routing;
using Microsoft.Extensions.Options;

namespace Bridge.Core.Internal;

/// <summary>A Service Bus message as the hosts hand it over (Functions binding data, or ServiceBusReceivedMessage).</summary>
internal sealed record ServiceBusMessageData
{
    public string? MessageId { get; init; }

    public ReadOnlyMemory<byte> Body { get; init; }

    public string? ContentType { get; init; }

    public string? CorrelationId { get; init; }

    public string? Subject { get; init; }

    public IReadOnlyDictionary<string, object?> ApplicationProperties { get; init; } = new Dictionary<string, object?>();

    public int DeliveryCount { get; init; }

    public DateTimeOffset? EnqueuedTime { get; init; }
}

/// <summary>Maps a Service Bus message on an entity to an inbound event: route, identity, schedule, carried properties.</summary>
internal sealed class ServiceBusIntake(RouteTable routes, IOptions<BridgeOptions> options)
{
    public const string PropertyHeaderPrefix = "X-Bridge-Property-";

    private readonly BridgeOptions _options = options.Value.Clone();

    /// <exception cref="ForwardingException">Unknown route or malformed properties (permanent).</exception>
    public InboundEvent Map(ServiceBusMessageData message, string entity)
    {
        ArgumentNullException.ThrowIfNull(message);
        var routeName = Text(message.ApplicationProperties, _options.RouteProperty);
        if (!routes.TryFindForServiceBus(entity, message.Subject, routeName, out var route))
        {
            throw new ForwardingException(ForwardingFailureReason.UnknownRoute, routeName is not null
                ? $"Property '{_options.RouteProperty}' names route '{routeName}', which is not configured."
                : $"No route takes messages from '{entity}'{(message.Subject is null ? string.Empty : $" with Subject '{message.Subject}'")}, and there is no default route.");
        }

        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var property in route.Options.CarryProperties)
        {
            if (Text(message.ApplicationProperties, property) is { } value)
            {
                headers[PropertyHeaderPrefix + property] = value;
            }
        }

        var traceParent = Text(message.ApplicationProperties, "traceparent") ?? Text(message.ApplicationProperties, "Diagnostic-Id");
        return new InboundEvent
        {
            Route = route.Name,
            Source = "servicebus",
            // A hand-back copy names the task by its original's MessageId, so the copies of one message are one task.
            Identity = (Text(message.ApplicationProperties, ServiceBusHandBack.OriginalMessageIdProperty) ?? message.MessageId) is { Length: > 0 } messageId
                ? new EventIdentity(EventIdentity.ServiceBusMessageId, messageId)
                : null,
            Body = message.Body,
            ContentType = message.ContentType,
            CorrelationId = message.CorrelationId ?? Text(message.ApplicationProperties, ServiceBusHandBack.OriginalMessageIdProperty) ?? message.MessageId,
            Headers = headers,
            TraceParent = IsTraceParent(traceParent) ? traceParent : null,
            Schedule = new ScheduleHint(
                Text(message.ApplicationProperties, _options.ScheduleTimeProperty), $"Property '{_options.ScheduleTimeProperty}'",
                Text(message.ApplicationProperties, _options.DelayProperty), $"Property '{_options.DelayProperty}'"),
        };
    }

    /// <summary>
    /// The message's trace context for spans after the forward (its settlement): the same properties
    /// <see cref="Map"/> reads, but never throwing, since a message <see cref="Map"/> refused is settled too.
    /// </summary>
    public static string? TraceParentOf(IReadOnlyDictionary<string, object?> properties)
    {
        ArgumentNullException.ThrowIfNull(properties);
        var traceParent = (properties.GetValueOrDefault("traceparent") ?? properties.GetValueOrDefault("Diagnostic-Id")) as string;
        return IsTraceParent(traceParent) ? traceParent : null;
    }

    private static bool IsTraceParent(string? value) => value is { Length: 55 } && value.StartsWith("00-", StringComparison.Ordinal);

    /// <summary>A property as text; Service Bus properties are typed, and only scalar types make sense here.</summary>
    private static string? Text(IReadOnlyDictionary<string, object?> properties, string name)
    {
        if (!properties.TryGetValue(name, out var value) || value is null)
        {
            return null;
        }

        return value switch
        {
            string s => s,
            DateTimeOffset d => d.ToString("O", CultureInfo.InvariantCulture),
            DateTime d => new DateTimeOffset(DateTime.SpecifyKind(d, d.Kind == DateTimeKind.Unspecified ? DateTimeKind.Utc : d.Kind)).ToString("O", CultureInfo.InvariantCulture),
            TimeSpan t => t.ToString("c", CultureInfo.InvariantCulture),
            Guid g => g.ToString(),
            bool b => b ? "true" : "false",
            IFormattable f and (int or long or short or byte or uint or ulong or ushort or sbyte or double or float or decimal) => f.ToString(null, CultureInfo.InvariantCulture),
            _ => throw new ForwardingException(ForwardingFailureReason.InvalidEvent, $"Property '{name}' has type {value.GetType().Name}, which can't be carried; use a string, number, boolean, time or GUID."),
        };
    }
}
