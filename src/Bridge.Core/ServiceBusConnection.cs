using Azure.Identity;
using Azure.Messaging.ServiceBus;
using Microsoft.Extensions.Configuration;

namespace Bridge.Core;

/// <summary>
/// Where a Service Bus namespace is and how to sign in to it, and the one place a <see cref="ServiceBusClient"/> is
/// built: keyless with a managed identity (user-assigned by client id, else DefaultAzureCredential locally), or with a
/// connection string for local development. Reads the Functions host's conventions for a connection named
/// <c>BridgeServiceBus</c>: <c>BridgeServiceBus:fullyQualifiedNamespace</c> and <c>:clientId</c>, or the string itself.
/// </summary>
public sealed record ServiceBusConnection
{
    /// <summary>The connection's name: the Service Bus trigger's <c>Connection</c> and the runner's settings prefix.</summary>
    public const string DefaultName = "BridgeServiceBus";

    /// <summary>
    /// The queue (or <c>topic/Subscriptions/name</c>) intake receives from, in both hosts. A flat name: the scale
    /// controller resolves the trigger's %…% binding expression against app settings and has not always mapped the colon
    /// form onto <c>Bridge__ServiceBus__Queue</c>, which can leave a scaled-to-zero app asleep.
    /// </summary>
    public const string QueueSetting = "BridgeServiceBusQueue";

    /// <summary>
    /// The queue a topic subscription's messages are handed back to when their task can't be created yet (a copy sent
    /// to the topic would reach every subscription); both hosts receive from it too. Flat, like <see cref="QueueSetting"/>,
    /// for the function app's trigger. Unset: a subscription's message is abandoned instead (redelivered at once, and
    /// dead-lettered after the subscription's MaxDeliveryCount).
    /// </summary>
    public const string HandBackQueueSetting = "BridgeServiceBusHandBackQueue";

    /// <summary>The runner's processor concurrency.</summary>
    public const string MaxConcurrentCallsSetting = "Bridge:ServiceBus:MaxConcurrentCalls";

    public string? FullyQualifiedNamespace { get; init; }

    public string? ConnectionString { get; init; }

    public string? ManagedIdentityClientId { get; init; }

    public bool IsConfigured => !string.IsNullOrEmpty(FullyQualifiedNamespace) || !string.IsNullOrEmpty(ConnectionString);

    /// <summary>The connection named <paramref name="name"/> as the Functions host reads it.</summary>
    public static ServiceBusConnection FromConfiguration(IConfiguration configuration, string name = DefaultName)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var section = configuration.GetSection(name);
        return new ServiceBusConnection
        {
            FullyQualifiedNamespace = section["fullyQualifiedNamespace"],
            ConnectionString = section.Value,
            ManagedIdentityClientId = section["clientId"],
        };
    }

    /// <summary>A client for this connection; the connection string wins when both are set (local development).</summary>
    public ServiceBusClient CreateClient()
    {
        if (!string.IsNullOrEmpty(ConnectionString))
        {
            return new ServiceBusClient(ConnectionString);
        }

        if (string.IsNullOrEmpty(FullyQualifiedNamespace))
        {
            throw new InvalidOperationException("No Service Bus namespace or connection string is configured.");
        }

        return new ServiceBusClient(FullyQualifiedNamespace, string.IsNullOrEmpty(ManagedIdentityClientId)
            ? new DefaultAzureCredential()
            : new ManagedIdentityCredential(ManagedIdentityId.FromUserAssignedClientId(ManagedIdentityClientId)));
    }
}
