using Bridge.Hosting;
using Microsoft.Azure.Functions.Worker.Builder;
using Microsoft.Azure.Functions.Worker.OpenTelemetry;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Bridge.Functions;

/// <summary>Builds the function app's host: what Program runs, and what the tests build.</summary>
public static class BridgeFunctionsApp
{
    public static IHost Build(string[] args, Action<FunctionsApplicationBuilder>? configure = null)
    {
        var builder = FunctionsApplication.CreateBuilder(args);
        configure?.Invoke(builder);
        builder.ConfigureFunctionsWebApplication();
        builder.Services.AddBridgeFunctions(builder.Configuration);

        // host.json sets telemetryMode to OpenTelemetry, so the host and the worker share one trace.
        builder.Services.AddOpenTelemetry().UseFunctionsWorkerDefaults().AddBridgeTelemetry(builder.Configuration);
        return builder.Build();
    }
}
