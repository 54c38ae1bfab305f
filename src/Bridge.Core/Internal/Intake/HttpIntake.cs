using System.Text;
using System.Text.Json;
using Bridge.Core.Forwarding;
using Bridge.Core.Routing;
using CloudNative.CloudEvents;
using CloudNative.CloudEvents.SystemTextJson;

namespace Bridge.Core.Internal;

/// <summary>
/// Maps an HTTP request to an inbound event: raw bodies, JSON, and CloudEvents in structured
/// (<c>application/cloudevents+json</c>) or binary (<c>ce-*</c> headers) mode. A CloudEvent is forwarded in binary
/// mode, so the target receives a valid CloudEvent too.
/// </summary>
internal sealed class HttpIntake(RouteTable routes)
{
    public const string IdempotencyKeyHeader = "Idempotency-Key";
    public const string ScheduleTimeHeader = "X-Bridge-Schedule-Time";
    public const string DelayHeader = "X-Bridge-Delay";
    public const string CorrelationIdHeader = "X-Correlation-Id";

    /// <summary>CloudEvent extension attributes that carry a schedule (lower-case, as the spec requires).</summary>
    public const string ScheduleTimeExtension = "bridgescheduletime";
    public const string DelayExtension = "bridgedelay";

    private const int MaxIdempotencyKeyLength = 256;
    private static readonly JsonEventFormatter Formatter = new();

    /// <param name="routeName">The route named by the path (<c>/api/events/{route}</c>).</param>
    /// <param name="headers">Request headers, case-insensitive; repeated headers joined by commas.</param>
    /// <param name="body">The request body, already limited in size by the host.</param>
    /// <param name="contentType">The request's Content-Type, if any.</param>
    /// <exception cref="ForwardingException">Unknown route or a malformed event (permanent).</exception>
    public InboundEvent Map(string routeName, IReadOnlyDictionary<string, string> headers, ReadOnlyMemory<byte> body, string? contentType)
    {
        ArgumentNullException.ThrowIfNull(headers);
        if (!routes.TryFind(routeName, out var route))
        {
            throw new ForwardingException(ForwardingFailureReason.UnknownRoute, $"No route named '{routeName}'; configured: {string.Join(", ", routes.All.Select(r => r.Name))}.");
        }

        var carried = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var name in route.Options.CarryHeaders)
        {
            if (headers.TryGetValue(name, out var value))
            {
                carried[name] = value;
            }
        }

        var traceParent = headers.GetValueOrDefault("traceparent");
        if (contentType is not null && contentType.StartsWith("application/cloudevents-batch", StringComparison.OrdinalIgnoreCase))
        {
            throw new ForwardingException(ForwardingFailureReason.InvalidEvent, "CloudEvents batches are not accepted; send one event per request.");
        }

        if (contentType is not null && contentType.StartsWith("application/cloudevents", StringComparison.OrdinalIgnoreCase))
        {
            return FromCloudEvent(route, DecodeStructured(body, contentType), carried, traceParent, headers);
        }

        if (headers.ContainsKey("ce-specversion"))
        {
            return FromCloudEvent(route, DecodeBinary(headers, body, contentType), carried, traceParent, headers);
        }

        if (contentType is not null && IsJson(contentType))
        {
            RequireJson(body);
        }

        var key = headers.GetValueOrDefault(IdempotencyKeyHeader)?.Trim();
        if (key is { Length: > MaxIdempotencyKeyLength })
        {
            throw new ForwardingException(ForwardingFailureReason.InvalidEvent, $"{IdempotencyKeyHeader} is {key.Length} characters long; at most {MaxIdempotencyKeyLength} are allowed.");
        }

        return new InboundEvent
        {
            Route = route.Name,
            Source = "http",
            Identity = string.IsNullOrEmpty(key) ? null : new EventIdentity(EventIdentity.IdempotencyKey, key),
            Body = body,
            ContentType = contentType,
            Headers = carried,
            CorrelationId = headers.GetValueOrDefault(CorrelationIdHeader) ?? key,
            TraceParent = traceParent,
            Schedule = new ScheduleHint(headers.GetValueOrDefault(ScheduleTimeHeader), $"Header {ScheduleTimeHeader}", headers.GetValueOrDefault(DelayHeader), $"Header {DelayHeader}"),
        };
    }

    private static InboundEvent FromCloudEvent(Route route, CloudEvent cloudEvent, Dictionary<string, string> carried, string? traceParent, IReadOnlyDictionary<string, string> headers)
    {
        if (!cloudEvent.IsValid)
        {
            var missing = cloudEvent.SpecVersion.RequiredAttributes.Where(a => cloudEvent[a] is null).Select(a => a.Name);
            throw new ForwardingException(ForwardingFailureReason.InvalidEvent, $"The CloudEvent lacks required attributes: {string.Join(", ", missing)}.");
        }

        var schedule = cloudEvent[ScheduleTimeExtension]?.ToString();
        var delay = cloudEvent[DelayExtension]?.ToString();

        // Forward in binary mode: ce-* headers, the data as the body, datacontenttype as Content-Type.
        carried["ce-specversion"] = cloudEvent.SpecVersion.VersionId;
        foreach (var (attribute, value) in cloudEvent.GetPopulatedAttributes())
        {
            if (attribute.Name is "datacontenttype" or ScheduleTimeExtension or DelayExtension)
            {
                continue;
            }

            carried["ce-" + attribute.Name] = attribute.Format(value);
        }

        return new InboundEvent
        {
            Route = route.Name,
            Source = "cloudevent",
            Identity = EventIdentity.ForCloudEvent(cloudEvent.Id!, cloudEvent.Source!.ToString()),
            Body = DataBytes(cloudEvent),
            ContentType = cloudEvent.DataContentType,
            Headers = carried,
            CorrelationId = headers.GetValueOrDefault(CorrelationIdHeader) ?? cloudEvent.Id,
            TraceParent = traceParent ?? cloudEvent["traceparent"]?.ToString(),
            Schedule = new ScheduleHint(schedule, $"CloudEvent attribute '{ScheduleTimeExtension}'", delay, $"CloudEvent attribute '{DelayExtension}'"),
        };
    }

    private static CloudEvent DecodeStructured(ReadOnlyMemory<byte> body, string contentType)
    {
        try
        {
            return Formatter.DecodeStructuredModeMessage(body, new System.Net.Mime.ContentType(contentType), extensionAttributes: null);
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException or JsonException or InvalidOperationException)
        {
            throw new ForwardingException(ForwardingFailureReason.InvalidEvent, $"The structured CloudEvent can't be read: {ex.Message}", ex);
        }
    }

    private static CloudEvent DecodeBinary(IReadOnlyDictionary<string, string> headers, ReadOnlyMemory<byte> body, string? contentType)
    {
        var version = CloudEventsSpecVersion.FromVersionId(headers["ce-specversion"])
            ?? throw new ForwardingException(ForwardingFailureReason.InvalidEvent, $"ce-specversion '{headers["ce-specversion"]}' is not a CloudEvents version this bridge knows (1.0).");
        var cloudEvent = new CloudEvent(version);
        try
        {
            foreach (var (name, value) in headers)
            {
                if (name.Length > 3 && name.StartsWith("ce-", StringComparison.OrdinalIgnoreCase) && !name.Equals("ce-specversion", StringComparison.OrdinalIgnoreCase))
                {
                    cloudEvent.SetAttributeFromString(name[3..].ToLowerInvariant(), Uri.UnescapeDataString(value));
                }
            }

            if (contentType is not null)
            {
                cloudEvent.DataContentType = contentType;
            }
        }
        catch (ArgumentException ex)
        {
            throw new ForwardingException(ForwardingFailureReason.InvalidEvent, $"A ce-* header is invalid: {ex.Message}", ex);
        }

        if (contentType is not null && IsJson(contentType))
        {
            RequireJson(body);
        }

        cloudEvent.Data = body.ToArray();
        return cloudEvent;
    }

    private static ReadOnlyMemory<byte> DataBytes(CloudEvent cloudEvent) => cloudEvent.Data switch
    {
        null => ReadOnlyMemory<byte>.Empty,
        byte[] bytes => bytes,
        string text => Encoding.UTF8.GetBytes(text),
        JsonElement json => JsonSerializer.SerializeToUtf8Bytes(json),
        var other => throw new ForwardingException(ForwardingFailureReason.InvalidEvent, $"CloudEvent data of type {other.GetType().Name} can't be forwarded."),
    };

    private static bool IsJson(string contentType)
    {
        var mediaType = contentType.Split(';')[0].Trim();
        return mediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase) || mediaType.EndsWith("+json", StringComparison.OrdinalIgnoreCase);
    }

    private static void RequireJson(ReadOnlyMemory<byte> body)
    {
        if (body.Span.Trim(" \t\r\n"u8).IsEmpty)
        {
            throw new ForwardingException(ForwardingFailureReason.InvalidEvent, "The body is declared as JSON but is empty.");
        }

        try
        {
            var reader = new Utf8JsonReader(body.Span);
            while (reader.Read())
            {
            }
        }
        catch (JsonException ex)
        {
            throw new ForwardingException(ForwardingFailureReason.InvalidEvent, $"The body is declared as JSON but is not valid JSON: {ex.Message}", ex);
        }
    }
}
