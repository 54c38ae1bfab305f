using Azure.Monitor.OpenTelemetry.Exporter;
using Bridge.CloudTasks;
using Bridge.Core.Telemetry;
using Microsoft.Extensions.Configuration;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace Bridge.Hosting;

public static class BridgeTelemetryExtensions
{
    public const string OtlpEndpointSetting = "OTEL_EXPORTER_OTLP_ENDPOINT";
    public const string AzureMonitorConnectionSetting = "APPLICATIONINSIGHTS_CONNECTION_STRING";

    /// <summary>
    /// Traces and metrics of Bridge, its Cloud Tasks client and every outgoing HTTP call (dispatches, OIDC discovery
    /// and keys, token exchanges), so each span of an event's trace has its parent exported too. Exported over OTLP
    /// when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set, to Azure Monitor when <c>APPLICATIONINSIGHTS_CONNECTION_STRING</c>
    /// is (signing in with Entra ID when <c>APPLICATIONINSIGHTS_AUTHENTICATION_STRING</c> says so).
    /// </summary>
    public static IOpenTelemetryBuilder AddBridgeTelemetry(this IOpenTelemetryBuilder telemetry, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(telemetry);
        ArgumentNullException.ThrowIfNull(configuration);
        telemetry
            .WithTracing(t => t.AddSource(BridgeDiagnostics.SourceName, CloudTasksTelemetry.SourceName).AddHttpClientInstrumentation())
            .WithMetrics(m => m.AddMeter(BridgeDiagnostics.SourceName, CloudTasksTelemetry.SourceName));
        if (!string.IsNullOrEmpty(configuration[OtlpEndpointSetting]))
        {
            telemetry.UseOtlpExporter();
        }

        if (!string.IsNullOrEmpty(configuration[AzureMonitorConnectionSetting]))
        {
            var credential = AzureMonitorCredential.FromAuthenticationString(configuration[AzureMonitorCredential.SettingName]);
            telemetry.UseAzureMonitorExporter(o => o.Credential = credential);
        }

        return telemetry;
    }
}
