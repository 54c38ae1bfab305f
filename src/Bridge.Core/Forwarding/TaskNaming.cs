using System.Security.Cryptography;
using System.Text;

namespace Bridge.Core.Forwarding;

/// <summary>
/// Task ids from event identities: a SHA-256 of route, identity kind and value, in hex. The same event always maps
/// to the same id (so a redelivery meets ALREADY_EXISTS), ids are valid Cloud Tasks ids, and they spread evenly
/// (sequential names slow the service down).
/// </summary>
public static class TaskNaming
{
    public static string TaskId(string route, EventIdentity identity)
    {
        var input = Encoding.UTF8.GetBytes($"{route.ToLowerInvariant()}\n{identity.Kind}\n{identity.Value}");
        return Convert.ToHexStringLower(SHA256.HashData(input));
    }
}

/// <summary>What makes an event the same event when it comes again.</summary>
public sealed record EventIdentity(string Kind, string Value)
{
    public const string ServiceBusMessageId = "servicebus-message-id";
    public const string IdempotencyKey = "idempotency-key";
    public const string CloudEvent = "cloudevent";

    public static EventIdentity ForCloudEvent(string id, string source) => new(CloudEvent, $"{source}\n{id}");
}
