
namespace Bridge.Core.Forwarding;

/// <summary>What makes an event the same event when it comes again.</summary>
public sealed record EventIdentity(string Kind, string Value)
{
    public const string ServiceBusMessageId = "servicebus-message-id";
    public const string IdempotencyKey = "idempotency-key";
    public const string CloudEvent = "cloudevent";

    public static EventIdentity ForCloudEvent(string id, string source) => new(CloudEvent, $"{source}\n{id}");
}
