using Bridge.Core.Callback;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Bridge.Core.Internal;

/// <summary>Start-up check of the sinks: each one known (Core's or a keyed sink the host adds), each one complete.</summary>
internal sealed class OutcomeOptionsValidator(IServiceProvider services) : IValidateOptions<OutcomeOptions>
{
    public static string UnknownSink(string name) =>
        $"{OutcomeOptions.SectionName}:Sinks names '{name}'; known sinks: {OutcomeOptions.LogSink}, {OutcomeOptions.ServiceBusSink}, and those the host adds.";

    public ValidateOptionsResult Validate(string? name, OutcomeOptions options)
    {
        const string key = OutcomeOptions.SectionName;
        var errors = new List<string>();
        var keyed = services.GetService<IServiceProviderIsKeyedService>();
        foreach (var (sink, i) in options.Sinks.Select((sink, i) => (sink, i)))
        {
            if (string.IsNullOrWhiteSpace(sink))
            {
                errors.Add($"{key}:Sinks:{i} is empty.");
            }
            else if (!sink.Equals(OutcomeOptions.LogSink, StringComparison.OrdinalIgnoreCase)
                && !sink.Equals(OutcomeOptions.ServiceBusSink, StringComparison.OrdinalIgnoreCase)
                && keyed?.IsKeyedService(typeof(IOutcomeSink), sink) != true)
            {
                errors.Add(UnknownSink(sink));
            }
        }

        if (options.Sinks.Contains(OutcomeOptions.ServiceBusSink, StringComparer.OrdinalIgnoreCase))
        {
            if (string.IsNullOrEmpty(options.ServiceBusEntity))
            {
                errors.Add($"{key}:Sinks names ServiceBus, so {key}:ServiceBusEntity (the queue or topic) is required.");
            }

            if (string.IsNullOrEmpty(options.ServiceBusNamespace) && string.IsNullOrEmpty(options.ServiceBusConnectionString))
            {
                errors.Add($"{key}:Sinks names ServiceBus, so {key}:ServiceBusNamespace (or :ServiceBusConnectionString) is required.");
            }
        }

        if (options.MaxInlinePayloadBytes < 0)
        {
            errors.Add($"{key}:MaxInlinePayloadBytes {options.MaxInlinePayloadBytes} must be 0 (never inline) or more.");
        }

        ValidatePayloadStore(options.PayloadStore, errors);
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    /// <summary>Any PayloadStore key set means a store is wanted: then it must be complete. Never echoes a connection string.</summary>
    private static void ValidatePayloadStore(PayloadStoreOptions store, List<string> errors)
    {
        const string key = OutcomeOptions.SectionName + ":PayloadStore";
        if (!store.IsConfigured)
        {
            return;
        }

        var hasConnectionString = !string.IsNullOrEmpty(store.ConnectionString);
        if (store.BlobServiceUri is null && !hasConnectionString)
        {
            errors.Add($"{key} needs {key}:BlobServiceUri (keyless, e.g. https://account.blob.core.windows.net) or, for local use, {key}:ConnectionString.");
        }
        else if (store.BlobServiceUri is not null && hasConnectionString)
        {
            errors.Add($"{key} sets both BlobServiceUri and ConnectionString: set one (BlobServiceUri with the managed identity in Azure, ConnectionString for Azurite).");
        }
        else if (store.BlobServiceUri is { } uri)
        {
            if (!uri.IsAbsoluteUri || uri.Scheme != Uri.UriSchemeHttps)
            {
                errors.Add($"{key}:BlobServiceUri must be an absolute https URL (keyless tokens are only sent over TLS), not '{(uri.IsAbsoluteUri ? uri.GetLeftPart(UriPartial.Path) : "a relative URL")}'.");
            }
            else if (!string.IsNullOrEmpty(uri.Query) || !string.IsNullOrEmpty(uri.UserInfo))
            {
                errors.Add($"{key}:BlobServiceUri {uri.GetLeftPart(UriPartial.Path)} carries a query or credentials (a SAS?): the store signs in with the managed identity; give the bare endpoint.");
            }
        }

        if (string.IsNullOrEmpty(store.Container))
        {
            errors.Add($"{key}:Container (the blob container payloads go to) is required when a payload store is configured.");
        }
        else if (!IsContainerName(store.Container))
        {
            errors.Add($"{key}:Container '{(store.Container.Length <= 64 ? store.Container : store.Container[..61] + "...")}' is not a container name: 3 to 63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit.");
        }
    }

    private static bool IsContainerName(string name) =>
        name.Length is >= 3 and <= 63
        && name.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-')
        && name[0] != '-' && name[^1] != '-'
        && !name.Contains("--", StringComparison.Ordinal);
}
