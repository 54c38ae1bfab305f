using Bridge.Core.Forwarding;
using Bridge.Core.Internal;
using Bridge.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Bridge.Core.Tests;

/// <summary>The shared <see cref="PipelineHarness"/> with Core's registration, and Core's services by name.</summary>
internal static class CoreHarness
{
    public static Task<PipelineHarness> StartAsync(bool paused = true, Action<Dictionary<string, string?>>? configure = null) =>
        PipelineHarness.StartAsync((services, configuration) => services.AddBridgeCore(configuration), paused, configure);

    extension(PipelineHarness harness)
    {
        public IEventForwarder Forwarder => harness.Services.GetRequiredService<IEventForwarder>();

        public HttpIntake Http => harness.Services.GetRequiredService<HttpIntake>();

        public ServiceBusIntake ServiceBus => harness.Services.GetRequiredService<ServiceBusIntake>();
    }
}
