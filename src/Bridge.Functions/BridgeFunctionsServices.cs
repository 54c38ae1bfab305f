using Bridge.Core;
using Bridge.Core.Callback;
using Bridge.Core.Telemetry;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Azure.Monitor.OpenTelemetry.Exporter;
using OpenTelemetry;

namespace Bridge.Functions;

/// <summary>The function app's services, in one place so the tests build the same graph as Program.</summary>
public static class BridgeFunctionsServices
{
    public static IServiceCollection AddBridgeFunctions(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddBridgeCore(configuration);
        services.AddBridgeCallback(configuration);
        return services;
    }

    /// <summary>
    /// Traces and metrics of Bridge and its Cloud Tasks client, exported over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is
    /// set and to Azure Monitor when APPLICATIONINSIGHTS_CONNECTION_STRING is.
    /// </summary>
    public static IOpenTelemetryBuilder AddBridgeTelemetry(this IOpenTelemetryBuilder telemetry, IConfiguration configuration)
    {
        telemetry
            .WithTracing(t => t.AddSource("Bridge.Core", "Bridge.CloudTasks"))
            .WithMetrics(m => m.AddMeter("Bridge.Core"));
        if (!string.IsNullOrEmpty(configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]))
        {
            telemetry.UseOtlpExporter();
        }

        if (!string.IsNullOrEmpty(configuration["APPLICATIONINSIGHTS_CONNECTION_STRING"]))
        {
            var credential = AzureMonitorCredential.FromAuthenticationString(configuration[AzureMonitorCredential.SettingName]);
            telemetry.UseAzureMonitorExporter(o => o.Credential = credential);
        }

        return telemetry;
    }
}
