using Azure.Identity;
using Azure.Messaging.ServiceBus;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Bridge.Core.Callback;

/// <summary>Outcome sinks, bound from <c>Bridge:Outcomes</c>.</summary>
public sealed class OutcomeOptions
{
    public const string SectionName = "Bridge:Outcomes";

    /// <summary><c>Log</c> (default) and/or <c>ServiceBus</c>.</summary>
    public List<string> Sinks { get; set; } = [];

    /// <summary>Keyless: the namespace, with the app's managed identity (or DefaultAzureCredential locally).</summary>
    public string? ServiceBusNamespace { get; set; }

    /// <summary>Alternative to <see cref="ServiceBusNamespace"/>, for local development.</summary>
    public string? ServiceBusConnectionString { get; set; }

    /// <summary>The queue or topic outcomes go to.</summary>
    public string? ServiceBusEntity { get; set; }

    public string? ManagedIdentityClientId { get; set; }
}

public static class CallbackServiceCollectionExtensions
{
    /// <summary>Registers the callback receiver, its token verifier and the outcome sinks, validated at start-up.</summary>
    public static IServiceCollection AddBridgeCallback(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<CallbackOptions>().Bind(configuration.GetSection(CallbackOptions.SectionName)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<CallbackOptions>, CallbackOptionsValidator>());
        services.AddOptions<OutcomeOptions>().Bind(configuration.GetSection(OutcomeOptions.SectionName)).Validate(
            o => !o.Sinks.Contains("ServiceBus", StringComparer.OrdinalIgnoreCase) || (!string.IsNullOrEmpty(o.ServiceBusEntity) && (!string.IsNullOrEmpty(o.ServiceBusNamespace) || !string.IsNullOrEmpty(o.ServiceBusConnectionString))),
            $"{OutcomeOptions.SectionName}:Sinks names ServiceBus, so {OutcomeOptions.SectionName}:ServiceBusEntity and :ServiceBusNamespace (or :ServiceBusConnectionString) are required.").ValidateOnStart();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp => new OidcTokenVerifier(sp.GetRequiredService<IOptions<CallbackOptions>>(), sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton<IOutcomeSink>(sp => new CompositeOutcomeSink(CreateSinks(sp)));
        services.TryAddSingleton(sp => new CallbackReceiver(
            sp.GetRequiredService<OidcTokenVerifier>(),
            sp.GetRequiredService<IOutcomeSink>(),
            sp.GetRequiredService<IOptions<CallbackOptions>>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<CallbackReceiver>>(),
            sp.GetService<Routing.RouteTable>(),
            sp.GetService<CloudTasks.CloudTasksClient>()));
        return services;
    }

    private static IEnumerable<IOutcomeSink> CreateSinks(IServiceProvider sp)
    {
        var options = sp.GetRequiredService<IOptions<OutcomeOptions>>().Value;
        var names = options.Sinks.Count == 0 ? ["Log"] : options.Sinks;
        foreach (var name in names.Distinct(StringComparer.OrdinalIgnoreCase))
        {
            if (name.Equals("Log", StringComparison.OrdinalIgnoreCase))
            {
                yield return new LogOutcomeSink(sp.GetRequiredService<ILogger<LogOutcomeSink>>());
            }
            else if (name.Equals("ServiceBus", StringComparison.OrdinalIgnoreCase))
            {
                var client = !string.IsNullOrEmpty(options.ServiceBusConnectionString)
                    ? new ServiceBusClient(options.ServiceBusConnectionString)
                    : new ServiceBusClient(options.ServiceBusNamespace, string.IsNullOrEmpty(options.ManagedIdentityClientId)
                        ? new DefaultAzureCredential()
                        : new ManagedIdentityCredential(ManagedIdentityId.FromUserAssignedClientId(options.ManagedIdentityClientId)));
                yield return new ServiceBusOutcomeSink(client.CreateSender(options.ServiceBusEntity));
            }
            else if (sp.GetKeyedService<IOutcomeSink>(name) is { } hosted)
            {
                yield return hosted; // a sink the host adds (the self-hosted runner's Local sink)
            }
            else
            {
                throw new InvalidOperationException($"{OutcomeOptions.SectionName}:Sinks names '{name}'; known sinks: Log, ServiceBus, and those the host adds.");
            }
        }
    }
}
