using Microsoft.Extensions.Options;

namespace Bridge.CloudTasks.Internal;

/// <summary>Start-up validation; every message names the configuration key that is wrong.</summary>
internal sealed class CloudTasksClientOptionsValidator : IValidateOptions<CloudTasksClientOptions>
{
    private const string Prefix = CloudTasksClientOptions.SectionName + ":";

    public ValidateOptionsResult Validate(string? name, CloudTasksClientOptions options)
    {
        var errors = new List<string>();
        if (!string.IsNullOrEmpty(options.EmulatorHost) && !IsHostPort(options.EmulatorHost))
        {
            errors.Add($"{Prefix}EmulatorHost '{options.EmulatorHost}' must be 'host:port'.");
        }

        if (!string.IsNullOrEmpty(options.Endpoint)
            && !(Uri.TryCreate(options.Endpoint, UriKind.Absolute, out var endpoint) && endpoint.Scheme == Uri.UriSchemeHttps)
            && !IsHostPort(options.Endpoint))
        {
            errors.Add($"{Prefix}Endpoint '{options.Endpoint}' must be 'https://host[:port]' or 'host:port'; use EmulatorHost for a plaintext emulator.");
        }

        if (options.Timeout is { } timeout && (timeout <= TimeSpan.Zero || timeout > TimeSpan.FromMinutes(10)))
        {
            errors.Add($"{Prefix}Timeout '{timeout}' must be above zero and at most 10 minutes.");
        }

        var usesEmulator = !string.IsNullOrEmpty(options.EmulatorHost);
        if (Ambiguity(options, options.EmulatorHost, Prefix + "EmulatorHost") is { } ambiguity)
        {
            errors.Add(ambiguity);
        }
        else if (options.EmulatorDetection != EmulatorDetection.None
            && Environment.GetEnvironmentVariable(CloudTasksClient.EmulatorHostEnvironmentVariable) is { Length: > 0 } fromEnvironment
            && Ambiguity(options, fromEnvironment, CloudTasksClient.EmulatorHostEnvironmentVariable) is { } environmentAmbiguity)
        {
            errors.Add(environmentAmbiguity);
        }

        if (!usesEmulator)
        {
            switch (options.Credential)
            {
                case CloudTasksCredentialSource.File when string.IsNullOrWhiteSpace(options.CredentialsPath):
                    errors.Add($"{Prefix}CredentialsPath is required when {Prefix}Credential is File.");
                    break;
                case CloudTasksCredentialSource.AzureWorkloadIdentity:
                    errors.AddRange(options.WorkloadIdentity.Validate(Prefix + "WorkloadIdentity:"));
                    break;
            }
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    /// <summary>
    /// An emulator (plaintext, no credentials) together with a production credential or endpoint: which one is meant
    /// is unclear, and guessing the emulator would silently drop the credential. Null when not ambiguous.
    /// </summary>
    internal static string? Ambiguity(CloudTasksClientOptions options, string? emulatorHost, string emulatorSource)
    {
        if (string.IsNullOrEmpty(emulatorHost))
        {
            return null;
        }

        var production = new List<string>();
        if (options.Credential != CloudTasksCredentialSource.ApplicationDefault)
        {
            production.Add($"{Prefix}Credential '{options.Credential}'");
        }

        if (!string.IsNullOrEmpty(options.Endpoint))
        {
            production.Add($"{Prefix}Endpoint '{options.Endpoint}'");
        }

        return production.Count == 0
            ? null
            : $"{emulatorSource} '{emulatorHost}' selects the emulator (plaintext, no credentials), but {string.Join(" and ", production)} select production: it is unclear which is meant. Remove one of them.";
    }

    private static bool IsHostPort(string value)
    {
        var colon = value.LastIndexOf(':');
        return colon > 0
            && !value.Contains('/', StringComparison.Ordinal)
            && int.TryParse(value.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port)
            && port is > 0 and <= 65535;
    }
}
