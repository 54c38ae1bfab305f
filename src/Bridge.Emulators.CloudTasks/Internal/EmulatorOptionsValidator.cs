using System.Net;
using Microsoft.Extensions.Options;

namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>Checks <see cref="EmulatorOptions"/> at start-up; each message names the setting and the bad value.</summary>
internal sealed class EmulatorOptionsValidator : IValidateOptions<EmulatorOptions>
{
    private const string Section = EmulatorOptions.SectionName + ":";

    public ValidateOptionsResult Validate(string? name, EmulatorOptions options)
    {
        var failures = new List<string>();
        CheckPort(failures, nameof(EmulatorOptions.Port), options.Port);
        CheckPort(failures, nameof(EmulatorOptions.HttpPort), options.HttpPort);
        if (options.Port != 0 && options.Port == options.HttpPort)
        {
            failures.Add($"{Section}{nameof(EmulatorOptions.Port)} and {Section}{nameof(EmulatorOptions.HttpPort)} are both {options.Port}; gRPC and HTTP need different ports.");
        }

        if (!TryParseListenAddress(options.ListenAddress, out _))
        {
            failures.Add($"{Section}{nameof(EmulatorOptions.ListenAddress)} '{options.ListenAddress}' is not an IP address or 'localhost'.");
        }

        if (!string.IsNullOrWhiteSpace(options.Issuer) && !IsHttpUrl(options.Issuer))
        {
            failures.Add($"{Section}{nameof(EmulatorOptions.Issuer)} '{options.Issuer}' must be an absolute http or https URL.");
        }

        if (!IsHttpUrl(options.AppEngineHost))
        {
            failures.Add($"{Section}{nameof(EmulatorOptions.AppEngineHost)} '{options.AppEngineHost}' must be an absolute http or https URL.");
        }

        if (!Enum.IsDefined(options.Durability))
        {
            failures.Add($"{Section}{nameof(EmulatorOptions.Durability)} '{options.Durability}' must be {DurabilityChoices}.");
        }

        if (options.QueueNameReuseDelay < TimeSpan.Zero)
        {
            failures.Add($"{Section}{nameof(EmulatorOptions.QueueNameReuseDelay)} '{options.QueueNameReuseDelay}' must not be negative.");
        }

        if (options.TokenLifetime <= TimeSpan.Zero || options.TokenLifetime > TimeSpan.FromHours(12))
        {
            failures.Add($"{Section}{nameof(EmulatorOptions.TokenLifetime)} '{options.TokenLifetime}' must be above zero and at most 12 hours.");
        }

        foreach (var queue in EmulatorOptions.SplitQueues(options.Queues))
        {
            if (EmulatorOptions.ToQueueName(queue) is null)
            {
                failures.Add($"{Section}{nameof(EmulatorOptions.Queues)} entry '{queue}' is not 'projects/<p>/locations/<l>/queues/<q>' or '<p>/<l>/<q>' with a valid queue id.");
            }
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    /// <summary>
    /// Checks the text of the durability setting before it is bound (binding a bad enum text throws an exception
    /// that would not say what to write instead); null when it is fine.
    /// </summary>
    public static string? CheckDurabilityText(string? value) =>
        value is null || (Enum.TryParse<EmulatorDurability>(value, ignoreCase: true, out var parsed) && Enum.IsDefined(parsed) && !char.IsAsciiDigit(value.TrimStart('-')[0]))
            ? null
            : $"{Section}{nameof(EmulatorOptions.Durability)} '{value}' must be {DurabilityChoices}.";

    private static string DurabilityChoices =>
        $"{nameof(EmulatorDurability.ProcessCrash)} (acknowledged changes survive SIGKILL) or {nameof(EmulatorDurability.PowerLoss)} (they survive a power loss too; every commit fsynced)";

    /// <summary>An IP address, or <c>localhost</c> (loopback).</summary>
    public static bool TryParseListenAddress(string? value, out IPAddress address)
    {
        if (string.Equals(value, "localhost", StringComparison.OrdinalIgnoreCase))
        {
            address = IPAddress.Loopback;
            return true;
        }

        return IPAddress.TryParse(value, out address!);
    }

    private static void CheckPort(List<string> failures, string key, int port)
    {
        if (port is < 0 or > 65535)
        {
            failures.Add($"{Section}{key} {port} must be between 0 (any free port) and 65535.");
        }
    }

    private static bool IsHttpUrl(string? value) =>
        Uri.TryCreate(value, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps);
}
