using System.Globalization;
using Bridge.Core;
using Bridge.Core.Intake;
using Microsoft.Extensions.Options;

namespace Bridge.Server;

/// <summary>
/// Start-up check of the runner's Service Bus intake settings, before anything listens: one clear message per bad
/// value (the SDK would otherwise fail at the first receive, or the configuration binder with a conversion error).
/// </summary>
internal static class ServiceBusIntakeSettingsValidator
{
    /// <summary>Receive loops (batches under way at once); more only queue up on the forwarder and hold locks.</summary>
    public const int MaxConcurrentCallsLimit = 64;

    /// <summary>Prefetched messages are locked while they wait; beyond this they mostly lose their locks.</summary>
    public const int MaxPrefetchCount = 10_000;

    public static void ThrowIfInvalid(IConfiguration configuration)
    {
        var errors = new List<string>();
        Check(configuration, ServiceBusConnection.MaxConcurrentCallsSetting, 1, MaxConcurrentCallsLimit, "batches under way at once", errors);
        Check(configuration, ServiceBusIntakeService.MaxBatchSizeSetting, 1, ServiceBusMessageHandler.MaxBatchSize, "messages per batch, one BatchCreateTasks call's worth", errors);
        Check(configuration, ServiceBusIntakeService.PrefetchCountSetting, 0, MaxPrefetchCount, "messages fetched ahead, 0 for none", errors);
        if (errors.Count > 0)
        {
            throw new OptionsValidationException("Bridge:ServiceBus", typeof(ServiceBusConnection), errors);
        }
    }

    private static void Check(IConfiguration configuration, string key, int min, int max, string meaning, List<string> errors)
    {
        if (configuration[key] is not { } text)
        {
            return;
        }

        if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
        {
            errors.Add($"{key} '{text}' must be a whole number from {min} to {max} ({meaning}).");
        }
    }
}
