using System.Net;
using Azure.Monitor.OpenTelemetry.Exporter;
using Bridge.Core;
using Bridge.Core.Callback;
using Bridge.Core.Forwarding;
using Bridge.Core.Intake;
using Bridge.Core.Routing;
using Bridge.Core.Telemetry;
using Bridge.Emulators.CloudTasks;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;
using OpenTelemetry;
using OpenTelemetry.Trace;

namespace Bridge.Server;

/// <summary>Builds the self-hosted runner: configuration (with embedded defaults), services, endpoints.</summary>
public static class BridgeServerApp
{
    public const string DemoServiceAccount = "bridge-demo@local-project.iam.gserviceaccount.com";

    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(args);
        configure?.Invoke(builder);
        var server = builder.Configuration.GetSection(ServerOptions.SectionName).Get<ServerOptions>() ?? new ServerOptions();
        var embedded = server.EmbeddedEmulator ?? !PointsAtCloudTasks(builder.Configuration);
        if (embedded)
        {
            // Lowest precedence: anything the user sets still wins.
            var defaults = EmbeddedDefaults(server);
            builder.Configuration.Sources.Insert(0, new Microsoft.Extensions.Configuration.Memory.MemoryConfigurationSource { InitialData = defaults });
            builder.Services.AddCloudTasksEmulator(o =>
            {
                o.Port = server.EmulatorGrpcPort;
                o.HttpPort = server.Port;
                o.Issuer = $"http://localhost:{server.Port}";
                o.Data = server.EmulatorData;
            });
            server = builder.Configuration.GetSection(ServerOptions.SectionName).Get<ServerOptions>() ?? server;
        }

        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            var address = IPAddress.Parse(server.ListenAddress);
            kestrel.Listen(address, server.Port, l => l.Protocols = HttpProtocols.Http1);
            if (embedded)
            {
                kestrel.Listen(IPAddress.Loopback, server.EmulatorGrpcPort, l => l.Protocols = HttpProtocols.Http2);
            }

            kestrel.Limits.MaxRequestBodySize = 2 * 1024 * 1024;
        });

        builder.Services.AddBridgeCore(builder.Configuration).AddBridgeCallback(builder.Configuration);
        var local = new LocalOutcomeSink(string.IsNullOrEmpty(server.OutcomesFile) ? null : server.OutcomesFile);
        builder.Services.AddSingleton(local).AddKeyedSingleton<IOutcomeSink>(LocalOutcomeSink.Name, local);
        if (ServiceBusIntakeService.IsConfigured(builder.Configuration))
        {
            builder.Services.AddHostedService<ServiceBusIntakeService>();
        }

        var telemetry = builder.Services.AddOpenTelemetry().WithTracing(t =>
        {
            t.AddSource("Bridge.Core", "Bridge.CloudTasks", "Bridge.Emulators.CloudTasks").AddAspNetCoreInstrumentation();
            if (builder.Environment.IsDevelopment())
            {
                t.AddConsoleExporter();
            }
        }).WithMetrics(m => m.AddMeter("Bridge.Core"));
        if (!string.IsNullOrEmpty(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]))
        {
            telemetry.UseOtlpExporter();
        }

        if (!string.IsNullOrEmpty(builder.Configuration["APPLICATIONINSIGHTS_CONNECTION_STRING"]))
        {
            var credential = AzureMonitorCredential.FromAuthenticationString(builder.Configuration[AzureMonitorCredential.SettingName]);
            telemetry.UseAzureMonitorExporter(o => o.Credential = credential);
        }

        var app = builder.Build();
        if (embedded)
        {
            app.MapCloudTasksEmulator();
        }

        MapApi(app, server);
        if (embedded)
        {
            // Before the server starts, so the first event finds its queue.
            var emulator = app.Services.GetRequiredService<CloudTasksEmulator>();
            emulator.UseHttpAddress(new Uri($"http://localhost:{server.Port}"));
            foreach (var route in app.Services.GetRequiredService<RouteTable>().All)
            {
                emulator.EnsureQueue(route.Queue.ToString());
            }

            app.Lifetime.ApplicationStarted.Register(() => Console.WriteLine($$"""

                Bridge is running with an embedded Cloud Tasks emulator (gRPC 127.0.0.1:{{server.EmulatorGrpcPort}}, OIDC issuer {{emulator.Issuer}}).
                  send an event:  curl -X POST http://localhost:{{server.Port}}/api/events/demo -H 'Content-Type: application/json' -H 'Idempotency-Key: order-1' -d '{"order":1}'
                  see outcomes:   curl http://localhost:{{server.Port}}/api/outcomes
                  health:         curl http://localhost:{{server.Port}}/api/health

                """));
        }

        return app;
    }

    /// <summary>Google Cloud or another emulator configured, or routes of the user's own: no embedded emulator.</summary>
    private static bool PointsAtCloudTasks(IConfiguration configuration) =>
        !string.IsNullOrEmpty(configuration["Bridge:CloudTasks:Endpoint"])
        || !string.IsNullOrEmpty(configuration["Bridge:CloudTasks:EmulatorHost"])
        || !string.IsNullOrEmpty(configuration[Bridge.CloudTasks.CloudTasksClient.EmulatorHostEnvironmentVariable])
        || configuration.GetSection("Bridge:Routes").GetChildren().Any();

    private static Dictionary<string, string?> EmbeddedDefaults(ServerOptions server)
    {
        var api = $"http://localhost:{server.Port}";
        return new Dictionary<string, string?>
        {
            ["Bridge:CloudTasks:EmulatorHost"] = $"127.0.0.1:{server.EmulatorGrpcPort}",
            ["Bridge:CloudTasks:EmulatorDetection"] = "None",
            ["Bridge:Project"] = "local-project",
            ["Bridge:Location"] = "local",
            ["Bridge:DefaultRoute"] = "demo",
            ["Bridge:Routes:demo:Queue"] = "demo",
            ["Bridge:Routes:demo:TargetUrl"] = $"{api}/api/tasks/callback",
            ["Bridge:Routes:demo:ServiceAccountEmail"] = DemoServiceAccount,
            ["Bridge:Callback:PublicUrl"] = $"{api}/api/tasks/callback",
            ["Bridge:Callback:AllowedServiceAccounts:0"] = DemoServiceAccount,
            ["Bridge:Callback:Issuers:0:Issuer"] = api,
            ["Bridge:Callback:Issuers:0:DiscoveryUrl"] = $"http://127.0.0.1:{server.Port}/.well-known/openid-configuration",
            ["Bridge:Outcomes:Sinks:0"] = "Log",
            ["Bridge:Outcomes:Sinks:1"] = LocalOutcomeSink.Name,
            ["Bridge:Server:ExposeOutcomes"] = "true",
        };
    }

    private static void MapApi(WebApplication app, ServerOptions server)
    {
        var api = app.MapGroup("/api");
        api.MapPost("/events/{route}", async (string route, HttpContext context, HttpIntake intake, IEventForwarder forwarder, IOptions<BridgeOptions> options) =>
        {
            var body = await ReadBodyAsync(context.Request, options.Value.MaxBodyBytes);
            try
            {
                if (body is null)
                {
                    throw new ForwardingException(ForwardingFailureReason.PayloadTooLarge, $"The body is larger than the limit of {options.Value.MaxBodyBytes} bytes.");
                }

                var result = await forwarder.ForwardAsync(intake.Map(route, Headers(context.Request), body, context.Request.ContentType), context.RequestAborted);
                return Results.Json(new { taskName = result.TaskName, route = result.Route, scheduleTime = result.ScheduleTime, deduplicated = result.Outcome == ForwardOutcome.Deduplicated }, statusCode: 202);
            }
            catch (ForwardingException ex)
            {
                if (ForwardingProblems.RetryAfterSeconds(ex) is { } seconds)
                {
                    context.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
                }

                return Results.Problem(ex.Message, statusCode: ForwardingProblems.StatusFor(ex.Reason), title: ex.ReasonCode, type: ForwardingProblems.TypeFor(ex.Reason),
                    extensions: new Dictionary<string, object?> { ["reason"] = ex.ReasonCode, ["transient"] = ex.IsTransient });
            }
        });

        api.MapPost("/tasks/callback", async (HttpContext context, CallbackReceiver receiver, IOptions<CallbackOptions> options) =>
        {
            var body = await ReadBodyAsync(context.Request, options.Value.MaxBodyBytes);
            var response = body is null
                ? new CallbackResponse(413, "PayloadTooLarge", null)
                : await receiver.HandleAsync(new CallbackRequest(Headers(context.Request), body, context.Request.ContentType), context.RequestAborted);
            if (response.Status == 401)
            {
                context.Response.Headers.WWWAuthenticate = "Bearer";
            }

            if (response.RetryAfter is { } delay)
            {
                context.Response.Headers.RetryAfter = ((int)Math.Ceiling(delay.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
            }

            return response.Reason is null
                ? Results.Json(new { outcomeId = response.OutcomeId }, statusCode: response.Status)
                : Results.Problem(statusCode: response.Status, title: response.Reason, type: "urn:bridge:callback:" + response.Reason, extensions: new Dictionary<string, object?> { ["reason"] = response.Reason });
        });

        api.MapGet("/health", (RouteTable routes) => Results.Json(new { status = "ok", routes = routes.All.Select(r => r.Name).Order(StringComparer.Ordinal).ToArray() }));

        if (server.ExposeOutcomes)
        {
            api.MapGet("/outcomes", (LocalOutcomeSink outcomes) => Results.Json(outcomes.Recent.Reverse()));
        }
    }

    private static Task<byte[]?> ReadBodyAsync(HttpRequest request, int limit) =>
        BoundedBody.ReadAsync(request.Body, request.ContentLength, limit, request.HttpContext.RequestAborted);

    private static Dictionary<string, string> Headers(HttpRequest request) =>
        request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase);
}
