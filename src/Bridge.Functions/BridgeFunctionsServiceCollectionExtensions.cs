using Bridge.Functions.Internal;
using Bridge.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Bridge.Functions;

public static class BridgeFunctionsServiceCollectionExtensions
{
    /// <summary>The function app's services: what every host serves (<c>AddBridgeHosting</c>), validated at start-up.</summary>
    public static IServiceCollection AddBridgeFunctions(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddBridgeHosting(configuration);
        services.AddHostedService<ServiceBusHandBackCheck>();
        return services;
    }
}
