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

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
