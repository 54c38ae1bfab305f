using Bridge.CloudTasks.DependencyInjection;
using Bridge.Core.Forwarding;
using Bridge.Core.Intake;
using Bridge.Core.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
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
        services.AddCloudTasksClient(section.GetSection("CloudTasks"));
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp => new RouteTable(sp.GetRequiredService<IOptions<BridgeOptions>>().Value));
        services.TryAddSingleton<IEventForwarder, EventForwarder>();
        services.TryAddSingleton<HttpIntake>();
        services.TryAddSingleton<ServiceBusIntake>();
        services.TryAddSingleton<ServiceBusMessageHandler>();
        return services;
    }
}
