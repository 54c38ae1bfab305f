using Bridge.Core.Routing;
using Bridge.Functions.Internal;
using Bridge.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Bridge.Functions;

public static class BridgeFunctionsServiceCollectionExtensions
{
    /// <summary>The function app's services: what every host serves (<c>AddBridgeHosting</c>), validated at start-up.</summary>
    public static IServiceCollection AddBridgeFunctions(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddBridgeHosting(configuration);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<BridgeOptions>>(new FunctionsHandBackQueueValidator(configuration)));
        services.AddHostedService<ServiceBusHandBackCheck>();
        return services;
    }
}
