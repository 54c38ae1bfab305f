using System.Buffers;
using Bridge.Core.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Bridge.Core.Internal;

/// <summary>
/// Start-up validation of the hand-back queue (<see cref="ServiceBusConnection.HandBackQueueSetting"/>), a flat app
/// setting beside the intake entity's, checked with the routes: it must be a plain queue, and not one that fresh
/// messages arrive on, since every message on it is taken for a hand-back copy naming its origin.
/// </summary>
internal sealed class HandBackQueueValidator(IConfiguration configuration) : IValidateOptions<BridgeOptions>
{
    /// <summary>Service Bus' queue name limit.</summary>
    private const int MaxQueueNameLength = 260;

    private static readonly SearchValues<char> QueueNameChars = SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_");

    public ValidateOptionsResult Validate(string? name, BridgeOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var queue = configuration[ServiceBusConnection.HandBackQueueSetting];
        if (string.IsNullOrEmpty(queue))
        {
            return ValidateOptionsResult.Success;
        }

        const string setting = ServiceBusConnection.HandBackQueueSetting;
        if (queue.Length > MaxQueueNameLength || queue.AsSpan().ContainsAnyExcept(QueueNameChars))
        {
            return ValidateOptionsResult.Fail($"{setting} '{queue}' must be a queue's name: at most {MaxQueueNameLength} letters, digits, '.', '-' or '_' (not a topic subscription).");
        }

        if (string.Equals(queue, configuration[ServiceBusConnection.QueueSetting], StringComparison.OrdinalIgnoreCase))
        {
            return ValidateOptionsResult.Fail($"{setting} '{queue}' is also {ServiceBusConnection.QueueSetting}: the hand-back queue must be a queue of its own, which only the bridge sends to.");
        }

        foreach (var (routeName, route) in options.Routes)
        {
            if (string.Equals(queue, route.ServiceBusEntity, StringComparison.OrdinalIgnoreCase))
            {
                return ValidateOptionsResult.Fail($"{setting} '{queue}' is also {BridgeOptions.SectionName}:Routes:{routeName}:ServiceBusEntity: the hand-back queue must be a queue of its own, which only the bridge sends to.");
            }
        }

        return ValidateOptionsResult.Success;
    }
}
