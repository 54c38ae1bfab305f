using Bridge.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Bridge.Functions;

public static class BridgeFunctionsServiceCollectionExtensions
{
    /// <summary>The function app's services: the forwarding pipeline and the callback receiver, validated at start-up.</summary>
    public static IServiceCollection AddBridgeFunctions(this IServiceCollection services, IConfiguration configuration) =>
        services.AddBridgeCore(configuration).AddBridgeCallback(configuration);
}
