using Bridge.Core;
using Microsoft.Azure.Functions.Worker.Builder;
using Microsoft.Azure.Functions.Worker.OpenTelemetry;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenTelemetry;

var builder = FunctionsApplication.CreateBuilder(args);
builder.ConfigureFunctionsWebApplication();
builder.Services.AddBridgeCore(builder.Configuration);

// Traces and metrics of Bridge and its Cloud Tasks client, on top of the worker's own; exported over OTLP when
// OTEL_EXPORTER_OTLP_ENDPOINT is set (host.json sets telemetryMode to OpenTelemetry).
var telemetry = builder.Services.AddOpenTelemetry()
    .UseFunctionsWorkerDefaults()
    .WithTracing(t => t.AddSource("Bridge.Core", "Bridge.CloudTasks"))
    .WithMetrics(m => m.AddMeter("Bridge.Core"));
if (!string.IsNullOrEmpty(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]))
{
    telemetry.UseOtlpExporter();
}

builder.Build().Run();
