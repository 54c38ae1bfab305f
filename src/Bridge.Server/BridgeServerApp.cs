using System.Net;
using Bridge.Core;
using Bridge.Core.Callback;
using Bridge.Core.Routing;
using Bridge.Dashboard;
using Bridge.Emulators.CloudTasks;
using Bridge.Emulators.ServiceBus;
using Bridge.Hosting;
using Bridge.Server.Internal;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;
using OpenTelemetry;
using OpenTelemetry.Trace;

namespace Bridge.Server;

/// <summary>Builds the self-hosted runner: configuration (with embedded defaults), services, endpoints.</summary>
public static class BridgeServerApp
{
    public const string DemoServiceAccount = "bridge-demo@local-project.iam.gserviceaccount.com";

    /// <summary>The host setting that turns off watching the settings files for changes.</summary>
    internal const string ReadSettingsOnce = "--hostBuilder:reloadConfigOnChange=false";

    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        // Settings files are read once, not watched (a later argument can still turn it on): a reload watch on the content
        // root watches every folder under it (inotify on Linux), an EmulatorData folder there included, and then every
        // write of the embedded emulators' stores woke the watcher's thread.
        var builder = WebApplication.CreateBuilder([ReadSettingsOnce, .. args]);
        configure?.Invoke(builder);
        var server = ReadServerOptions(builder.Configuration);
        var embedded = server.EmbeddedEmulator ?? !PointsAtCloudTasks(builder.Configuration);
        var embeddedServiceBus = embedded && (server.EmbeddedServiceBus ?? !PointsAtServiceBus(builder.Configuration));
        var intake = IntakeSettings.Read(builder.Configuration);
        IntakeSettings.EnsureProtected(intake, IPAddress.Parse(server.ListenAddress), server.Port, builder.Configuration);
        if (embedded && IPAddress.Parse(server.ListenAddress) is var address && !IPAddress.IsLoopback(address)
            && !address.Equals(IPAddress.Any) && !address.Equals(IPAddress.IPv6Any))
        {
            // The embedded emulator dispatches to, and serves its keys from, this server through localhost.
            throw new OptionsValidationException(ServerOptions.SectionName, typeof(ServerOptions),
            [
                $"{ServerOptions.SectionName}:ListenAddress '{server.ListenAddress}' leaves the embedded emulator no loopback way in: listen on 0.0.0.0, :: or a loopback address, or point the runner at another Cloud Tasks ({ServerOptions.SectionName}:EmbeddedEmulator=false).",
            ]);
        }

        if (!embedded && builder.Configuration[Bridge.CloudTasks.CloudTasksClient.EmulatorHostEnvironmentVariable] is { Length: > 0 } emulatorHost
            && string.IsNullOrEmpty(builder.Configuration["Bridge:CloudTasks:EmulatorHost"]))
        {
            // The client through DI ignores CLOUD_TASKS_EMULATOR_HOST (as GAX does); the runner has always honoured it, so it
            // becomes the configured emulator host (lowest precedence) instead of silently meaning production.
            builder.Configuration.Sources.Insert(0, new Microsoft.Extensions.Configuration.Memory.MemoryConfigurationSource
            {
                InitialData = new Dictionary<string, string?> { ["Bridge:CloudTasks:EmulatorHost"] = emulatorHost },
            });
        }

        // Bound here, before anything depends on the port: a port in use is one clear error, and port 0 is known at once.
        var api = ListenerSocket.Bind(IPAddress.Parse(server.ListenAddress), server.Port, ServerOptions.SectionName + ":Port");
        ListenerSocket? grpc = null;
        try
        {
            grpc = embedded ? ListenerSocket.Bind(IPAddress.Loopback, server.EmulatorGrpcPort, ServerOptions.SectionName + ":EmulatorGrpcPort") : null;
            if (embeddedServiceBus && server.ServiceBusPort != 0)
            {
                // Only a check (a fixed port is released at once): the Service Bus emulator binds it when the host starts.
                ListenerSocket.Bind(IPAddress.Loopback, server.ServiceBusPort, ServerOptions.SectionName + ":ServiceBusPort").Dispose();
            }
        }
        catch (PortInUseException)
        {
            api.Dispose();
            grpc?.Dispose();
            throw;
        }

        server.Port = api.Port;
        server.EmulatorGrpcPort = grpc?.Port ?? server.EmulatorGrpcPort;
        if (embedded)
        {
            // Lowest precedence: anything the user sets still wins.
            var defaults = EmbeddedDefaults(server);
            if (embeddedServiceBus)
            {
                AddEmbeddedServiceBus(builder.Services, defaults, server.ServiceBusPort, server.ServiceBusDataFolder);
            }

            builder.Configuration.Sources.Insert(0, new Microsoft.Extensions.Configuration.Memory.MemoryConfigurationSource { InitialData = defaults });
            builder.Services.AddCloudTasksEmulator(o =>
            {
                o.Port = server.EmulatorGrpcPort;
                o.HttpPort = server.Port;
                o.Issuer = $"http://localhost:{server.Port}";
                o.Data = server.EmulatorData;
            });
            // The dashboard at /: loopback, and beyond it callers the intake authentication accepts.
            builder.Services.AddBridgeDashboard(builder.Configuration, o => o.AllowRemoteRequest = IntakeAuthentication.AllowsRemote);
            if (embeddedServiceBus)
            {
                // The broker is in this process: exact counts and every entity, not a peeked sample.
                builder.Services.AddOptions<DashboardOptions>().Configure<ServiceBusEmulatorHost>((o, sb) =>
                {
                    o.ServiceBusEntitySource = () => sb.Emulator?.Entities ?? [];
                    o.ServiceBusCountSource = entity => sb.Emulator?.GetMessageCounts(entity) is { } c ? new ServiceBusEntityCounts(c.Active, c.Scheduled, c.DeadLettered) : null;
                });
            }

            var (port, grpcPort) = (server.Port, server.EmulatorGrpcPort);
            server = ReadServerOptions(builder.Configuration);
            (server.Port, server.EmulatorGrpcPort) = (port, grpcPort);
        }

        // The options as running: the bound ports, not the configured 0.
        builder.Services.AddOptions<ServerOptions>().Bind(builder.Configuration.GetSection(ServerOptions.SectionName))
            .Configure(o => (o.Port, o.EmulatorGrpcPort) = (server.Port, server.EmulatorGrpcPort)).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<ServerOptions>, ServerOptionsValidator>();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            api.ListenOn(kestrel, HttpProtocols.Http1);
            if (grpc is not null)
            {
                grpc.ListenOn(kestrel, HttpProtocols.Http2);
            }

            kestrel.Limits.MaxRequestBodySize = 2 * 1024 * 1024;
        });

        builder.Services.AddBridgeHosting(builder.Configuration);
        IntakeAuthentication.Add(builder.Services, intake);
        var local = new LocalOutcomeSink(string.IsNullOrEmpty(server.OutcomesFile) ? null : server.OutcomesFile);
        builder.Services.AddSingleton(local).AddKeyedSingleton<IOutcomeSink>(LocalOutcomeSink.Name, local);
        if (ServiceBusIntakeService.IsConfigured(builder.Configuration))
        {
            ServiceBusIntakeSettingsValidator.ThrowIfInvalid(builder.Configuration);
            builder.Services.AddHostedService<ServiceBusIntakeService>();
        }

        builder.Services.AddOpenTelemetry().AddBridgeTelemetry(builder.Configuration).WithTracing(t =>
        {
            // The runner also hosts the HTTP server (and, embedded, the emulator): their spans belong to the same traces.
            t.AddSource(CloudTasksEmulatorTelemetry.SourceName).AddAspNetCoreInstrumentation();
            if (builder.Environment.IsDevelopment())
            {
                t.AddConsoleExporter();
            }
        });

        var app = builder.Build();
        app.Lifetime.ApplicationStopped.Register(() =>
        {
            api.Dispose();
            grpc?.Dispose();
        });
        if (embedded)
        {
            var emulatorEndpoints = app.MapGroup(string.Empty);
            emulatorEndpoints.MapCloudTasksEmulator();
            LoopbackOnly.Mark(emulatorEndpoints);
            LoopbackOnly.Use(app);
            app.MapBridgeDashboard().RequireIntakeBeyondLoopback(intake);
        }

        IntakeSettings.WarnIfOpen(intake, app);
        MapApi(app, server, intake);
        if (embedded)
        {
            // Before the server starts, so the first event finds its queue.
            var emulator = app.Services.GetRequiredService<CloudTasksEmulator>();
            emulator.UseHttpAddress(new Uri($"http://localhost:{server.Port}"));
            foreach (var route in app.Services.GetRequiredService<RouteTable>().All)
            {
                emulator.EnsureQueue(route.Queue.ToString());
            }

            app.Lifetime.ApplicationStarted.Register(() => Console.WriteLine(Banner(server, emulator.Issuer, app.Services.GetService<ServiceBusEmulatorHost>()?.Emulator)));
        }

        return app;
    }

    /// <summary>The runner's settings, validated now: they decide what is bound before the host is built.</summary>
    private static ServerOptions ReadServerOptions(IConfiguration configuration)
    {
        var server = configuration.GetSection(ServerOptions.SectionName).Get<ServerOptions>() ?? new ServerOptions();
        var result = new ServerOptionsValidator().Validate(null, server);
        return result.Failed ? throw new OptionsValidationException(ServerOptions.SectionName, typeof(ServerOptions), result.Failures) : server;
    }

    /// <summary>The embedded Service Bus endpoint's connection string: the official emulator's convention and key.</summary>
    public static string EmbeddedServiceBusConnectionString(int port) =>
        $"Endpoint=sb://localhost:{port};SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={ServiceBusEmulatorOptions.DefaultSasKey};UseDevelopmentEmulator=true;";

    /// <summary>
    /// The Service Bus emulator as a hosted service registered before the intake, so it is listening when the intake
    /// starts and still there while the intake drains on stop. With port 0 the intake reads the bound port from it.
    /// </summary>
    private static void AddEmbeddedServiceBus(IServiceCollection services, Dictionary<string, string?> defaults, int port, string? data)
    {
        services.AddServiceBusEmulator(o =>
        {
            o.Port = port;
            o.ListenAddress = "127.0.0.1";
            o.DataDirectory = data;
            o.Queues.Add(new QueueDefinition { Name = ServerOptions.DemoServiceBusQueue });
            o.Queues.Add(new QueueDefinition { Name = ServerOptions.DemoHandBackQueue });
        });
        defaults[ServiceBusConnection.DefaultName] = EmbeddedServiceBusConnectionString(port);
        defaults[ServiceBusConnection.QueueSetting] = ServerOptions.DemoServiceBusQueue;
        defaults["Bridge:Routes:demo:ServiceBusEntity"] = ServerOptions.DemoServiceBusQueue;
    }

    /// <summary>A Service Bus namespace or intake queue of the user's own: no embedded Service Bus emulator.</summary>
    private static bool PointsAtServiceBus(IConfiguration configuration) =>
        !string.IsNullOrEmpty(configuration[ServiceBusConnection.QueueSetting]) || ServiceBusConnection.FromConfiguration(configuration).IsConfigured;

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

    private static string Banner(ServerOptions server, string issuer, ServiceBusEmulator? serviceBus)
    {
        var sendMessage = serviceBus is null ? string.Empty : $$"""

              send a Service Bus message (official .NET SDK) to {{ServerOptions.DemoServiceBusQueue}}:
                              dotnet run --project src/Bridge.Server -- send{{(serviceBus.Port == ServerOptions.DefaultServiceBusPort ? string.Empty : $" --port {serviceBus.Port}")}} --message-id order-2 '{"order":2}'
            """;
        var serviceBusLine = serviceBus is null ? string.Empty : $$"""

            and an embedded Service Bus emulator (AMQP 127.0.0.1:{{serviceBus.Port}}, queue {{ServerOptions.DemoServiceBusQueue}} → route demo; connection string {{serviceBus.ConnectionString}}).
            """;
        return $$"""

            Bridge is running with an embedded Cloud Tasks emulator (gRPC 127.0.0.1:{{server.EmulatorGrpcPort}}, OIDC issuer {{issuer}}){{serviceBusLine}}
              send an event:  curl -X POST http://localhost:{{server.Port}}/api/events/demo -H 'Content-Type: application/json' -H 'Idempotency-Key: order-1' -d '{"order":1}'{{sendMessage}}
              see outcomes:   curl http://localhost:{{server.Port}}/api/outcomes
              health:         curl http://localhost:{{server.Port}}/api/health
              dashboard:      http://localhost:{{server.Port}}/

            """;
    }

    private static void MapApi(WebApplication app, ServerOptions server, IntakeAuthenticationOptions intake)
    {
        var api = app.MapGroup("/" + BridgeEndpoints.RoutePrefix);
        api.MapPost(BridgeEndpoints.EventsRoute, (HttpRequest request, string route, BridgeEndpoints endpoints) => endpoints.ForwardEventAsync(request, route)).RequireIntake(intake);
        api.MapPost(BridgeEndpoints.CallbackRoute, (HttpRequest request, BridgeEndpoints endpoints) => endpoints.ReceiveCallbackAsync(request));
        api.MapGet(BridgeEndpoints.HealthRoute, (BridgeEndpoints endpoints) => endpoints.Health());
        api.MapGet(BridgeEndpoints.HealthDetailsRoute, (BridgeEndpoints endpoints) => endpoints.HealthDetails()).RequireIntake(intake);
        if (server.ExposeOutcomes)
        {
            api.MapGet("/outcomes", (LocalOutcomeSink outcomes) => Results.Json(outcomes.Recent.Reverse())).RequireIntake(intake);
        }
    }
}
