using Bridge.Functions;
using Bridge.Hosting;
using Microsoft.Azure.Functions.Worker.Builder;
using Microsoft.Azure.Functions.Worker.OpenTelemetry;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

var builder = FunctionsApplication.CreateBuilder(args);
builder.ConfigureFunctionsWebApplication();
builder.Services.AddBridgeFunctions(builder.Configuration);

// host.json sets telemetryMode to OpenTelemetry, so the host and the worker share one trace.
builder.Services.AddOpenTelemetry().UseFunctionsWorkerDefaults().AddBridgeTelemetry(builder.Configuration);

builder.Build().Run();
