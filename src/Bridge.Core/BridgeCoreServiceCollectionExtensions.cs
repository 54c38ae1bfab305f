using Bridge.CloudTasks;
using Bridge.Core.Callback;
using Bridge.Core.Forwarding;
using Bridge.Core.Intake;
using Bridge.Core.Internal;
using Bridge.Core.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Bridge.Core;

public static class BridgeCoreServiceCollectionExtensions
{
    /// <summary>
    /// Registers the forwarding pipeline and its Cloud Tasks client from the <c>Bridge</c> configuration section
    /// (routes under <c>Bridge:Routes</c>, the client under <c>Bridge:CloudTasks</c>), validated at start-up.
    /// </summary>
    public static IServiceCollection AddBridgeCore(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var section = configuration.GetSection(BridgeOptions.SectionName);
        services.AddOptions<BridgeOptions>().Bind(section).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<BridgeOptions>, BridgeOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<BridgeOptions>>(new HandBackQueueValidator(configuration)));
        services.AddCloudTasksClient(section.GetSection("CloudTasks"));
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp => new RouteTable(sp.GetRequiredService<IOptions<BridgeOptions>>().Value));
        services.TryAddSingleton<IEventForwarder, EventForwarder>();
        services.TryAddSingleton<IBatchEventForwarder, BatchEventForwarder>();
        services.TryAddSingleton<HttpEventCoalescer>();
        services.TryAddSingleton<HttpIntake>();
        services.TryAddSingleton<HttpRetryAfter>();
        services.TryAddSingleton<ServiceBusIntake>();
        services.TryAddSingleton(_ => new ServiceBusSenders(ServiceBusConnection.FromConfiguration(configuration)));
        services.TryAddSingleton(sp => new ServiceBusMessageHandler(
            sp.GetRequiredService<ServiceBusIntake>(),
            sp.GetRequiredService<IEventForwarder>(),
            sp.GetRequiredService<IBatchEventForwarder>(),
            sp.GetRequiredService<RouteTable>(),
            sp.GetRequiredService<IOptions<BridgeOptions>>().Value,
            sp.GetRequiredService<TimeProvider>(),
            sp.GetService<ILogger<ServiceBusMessageHandler>>(),
            configuration[ServiceBusConnection.HandBackQueueSetting]));
        return services;
    }

    /// <summary>Registers the callback receiver, its token verifier and the outcome sinks, validated at start-up.</summary>
    public static IServiceCollection AddBridgeCallback(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<CallbackOptions>().Bind(configuration.GetSection(CallbackOptions.SectionName)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<CallbackOptions>, CallbackOptionsValidator>());
        services.AddOptions<OutcomeOptions>().Bind(configuration.GetSection(OutcomeOptions.SectionName)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<OutcomeOptions>, OutcomeOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(_ => new ServiceBusSenders(ServiceBusConnection.FromConfiguration(configuration)));
        services.TryAddSingleton(sp => new OidcTokenVerifier(sp.GetRequiredService<IOptions<CallbackOptions>>(), sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton<IOutcomeSink>(sp => new CompositeOutcomeSink(CreateSinks(sp)));
        services.TryAddSingleton(sp => new CallbackReceiver(
            sp.GetRequiredService<OidcTokenVerifier>(),
            sp.GetRequiredService<IOutcomeSink>(),
            sp.GetRequiredService<IOptions<CallbackOptions>>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<CallbackReceiver>>(),
            sp.GetService<Routing.RouteTable>(),
            sp.GetService<CloudTasksClient>(),
            sp.GetRequiredService<IOptions<OutcomeOptions>>(),
            CreatePayloadStore(sp.GetRequiredService<IOptions<OutcomeOptions>>().Value)));
        return services;
    }

    /// <summary>The payload store, if <c>Bridge:Outcomes:PayloadStore</c> names one; without, large payloads' outcomes carry size and SHA-256 only.</summary>
    private static BlobPayloadStore? CreatePayloadStore(OutcomeOptions options) =>
        options.PayloadStore.IsConfigured ? BlobPayloadStore.Create(options.PayloadStore, options.ManagedIdentityClientId) : null;

    private static IEnumerable<IOutcomeSink> CreateSinks(IServiceProvider sp)
    {
        var options = sp.GetRequiredService<IOptions<OutcomeOptions>>().Value;
        var names = options.Sinks.Count == 0 ? [OutcomeOptions.LogSink] : options.Sinks;
        foreach (var name in names.Distinct(StringComparer.OrdinalIgnoreCase))
        {
            if (name.Equals(OutcomeOptions.LogSink, StringComparison.OrdinalIgnoreCase))
            {
                yield return new LogOutcomeSink(sp.GetRequiredService<ILogger<LogOutcomeSink>>(), options.LogPayloads);
            }
            else if (name.Equals(OutcomeOptions.ServiceBusSink, StringComparison.OrdinalIgnoreCase))
            {
                // The senders' client for the namespace: the same connection as hand-backs when it is the same namespace.
                var target = new ServiceBusConnection
                {
                    FullyQualifiedNamespace = options.ServiceBusNamespace,
                    ConnectionString = options.ServiceBusConnectionString,
                    ManagedIdentityClientId = options.ManagedIdentityClientId,
                };
                yield return new ServiceBusOutcomeSink(sp.GetRequiredService<ServiceBusSenders>().For(target, options.ServiceBusEntity!));
            }
            else if (sp.GetKeyedService<IOutcomeSink>(name) is { } hosted)
            {
                yield return hosted; // a sink the host adds (the self-hosted runner's Local sink)
            }
            else
            {
                throw new InvalidOperationException(OutcomeOptionsValidator.UnknownSink(name)); // the validator refuses it at start-up first
            }
        }
    }
}
