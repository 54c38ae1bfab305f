using Bridge.Core;
using Bridge.Core.Callback;
using Bridge.Core.Forwarding;
using Bridge.Core.Internal;
using Bridge.Core.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Bridge.Hosting;

public static class BridgeHostingServiceCollectionExtensions
{
    /// <summary>
    /// Everything a host serves: the forwarding pipeline, the callback receiver and <see cref="BridgeEndpoints"/>,
    /// with every option validated at start-up.
    /// </summary>
    public static IServiceCollection AddBridgeHosting(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddBridgeCore(configuration).AddBridgeCallback(configuration);
        services.TryAddSingleton(sp => new BridgeEndpoints(
            sp.GetRequiredService<HttpIntake>(),
            // Concurrent requests for one queue share BatchCreateTasks calls only when a window is configured.
            sp.GetRequiredService<IOptions<BridgeOptions>>().Value.HttpCoalescingWindow > TimeSpan.Zero ? sp.GetRequiredService<HttpEventCoalescer>() : sp.GetRequiredService<IEventForwarder>(),
            sp.GetRequiredService<RouteTable>(),
            sp.GetRequiredService<CallbackReceiver>(),
            sp.GetRequiredService<IOptions<BridgeOptions>>(),
            sp.GetRequiredService<IOptions<CallbackOptions>>(),
            sp.GetRequiredService<HttpRetryAfter>()));
        return services;
    }
}
