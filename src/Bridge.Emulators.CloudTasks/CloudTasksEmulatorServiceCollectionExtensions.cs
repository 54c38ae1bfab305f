using System.Text.Json;
using Bridge.Emulators.CloudTasks.Internal;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Bridge.Emulators.CloudTasks;

public static class CloudTasksEmulatorServiceCollectionExtensions
{
    /// <summary>Adds the Cloud Tasks emulator's services: state, store, dispatcher, OIDC issuer, gRPC with JSON transcoding.</summary>
    public static IServiceCollection AddCloudTasksEmulator(this IServiceCollection services, Action<EmulatorOptions>? configure = null)
    {
        var options = services.AddOptions<EmulatorOptions>().ValidateOnStart();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<EmulatorOptions>, EmulatorOptionsValidator>());

        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<IEmulatorStore>(sp =>
        {
            var o = sp.GetRequiredService<IOptions<EmulatorOptions>>().Value;
            return string.IsNullOrWhiteSpace(o.Data) ? new InMemoryStore() : new SqliteStore(o.Data, o.Durability);
        });
        services.TryAddSingleton(sp => new EmulatorState(
            sp.GetRequiredService<IEmulatorStore>(),
            sp.GetRequiredService<IOptions<EmulatorOptions>>().Value.Clone(),
            sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton(sp => new OperationStore(sp.GetRequiredService<IOptions<EmulatorOptions>>().Value.Data));
        services.TryAddSingleton(sp => new BatchOperations(sp.GetRequiredService<EmulatorState>(), sp.GetRequiredService<OperationStore>(), sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton(sp => new EmulatorFaults(sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton(sp => new CloudTasksEmulator(sp.GetRequiredService<EmulatorState>(), sp.GetRequiredService<IOptions<EmulatorOptions>>().Value.Clone(), sp.GetRequiredService<OperationStore>())
        {
            Faults = sp.GetRequiredService<EmulatorFaults>(),
        });
        services.TryAddSingleton(sp =>
        {
            var emulator = sp.GetRequiredService<CloudTasksEmulator>();
            var o = sp.GetRequiredService<IOptions<EmulatorOptions>>().Value;
            var key = sp.GetRequiredService<IEmulatorStore>().GetOrCreateSigningKey(OidcIssuer.CreateSigningKeyPem);
            return new OidcIssuer(key, () => emulator.Issuer, sp.GetRequiredService<TimeProvider>(), o.TokenLifetime);
        });
        services.TryAddSingleton(sp => new Dispatcher(
            sp.GetRequiredService<EmulatorState>(),
            sp.GetRequiredService<OidcIssuer>(),
            sp.GetRequiredService<IOptions<EmulatorOptions>>().Value.Clone(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<Dispatcher>>()));
        services.AddHostedService(sp => sp.GetRequiredService<Dispatcher>());
        services.AddTransient<IStartupFilter, ErrorEnvelopeStartupFilter>();
        services.AddTransient<IStartupFilter, FaultStartupFilter>();
        services.TryAddSingleton<FaultInterceptor>();
        services.Configure<Grpc.AspNetCore.Server.GrpcServiceOptions>(o => o.Interceptors.Add<FaultInterceptor>());
        // REST errors carry google.rpc details (BadRequest); the JSON writer must know their types.
        // Batches' operations carry their metadata and response as Any: the JSON writer must know those types too.
        // The Operations proto's own bindings (/v1/{name=operations/**}) become regex routes, which a slim host lacks.
        services.Configure<RouteOptions>(o => o.SetParameterPolicy<Microsoft.AspNetCore.Routing.Constraints.RegexInlineRouteConstraint>("regex"));
        services.AddGrpc(o => o.MaxReceiveMessageSize = BatchOperations.MaxGrpcMessageBytes).AddJsonTranscoding(o => o.TypeRegistry = OperationsRest.Types);
        return services;
    }

    /// <summary>
    /// Maps the CloudTasks gRPC service (and its REST routes), the Operations service of its batches, OIDC discovery and JWKS, <c>/health</c>, and the test
    /// endpoints <c>POST /admin/reset</c>, <c>POST /admin/wait-idle?queue=&amp;timeoutSeconds=</c> and fault injection
    /// under <c>/admin/faults</c> (see <see cref="EmulatorFaults"/>).
    /// </summary>
    public static IEndpointRouteBuilder MapCloudTasksEmulator(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGrpcService<CloudTasksService>();
        endpoints.MapGrpcService<CloudTasksV2Service>();
        endpoints.MapGrpcService<LocationsService>();
        endpoints.MapGrpcService<OperationsService>();
        OperationsRest.Map(endpoints);
        var issuer = endpoints.ServiceProvider.GetRequiredService<OidcIssuer>();
        var emulator = endpoints.ServiceProvider.GetRequiredService<CloudTasksEmulator>();
        var json = new JsonSerializerOptions { WriteIndented = false };
        endpoints.MapGet(OidcIssuer.DiscoveryPath, () => Results.Json(issuer.DiscoveryDocument(), json));
        endpoints.MapGet(OidcIssuer.JwksPath, () => Results.Json(issuer.Jwks(), json));
        endpoints.MapGet("/health", () => Results.Json(new { status = "ok" }));
        endpoints.MapPost("/admin/reset", () =>
        {
            emulator.Reset();
            return Results.NoContent();
        });
        FaultAdminEndpoints.Map(endpoints, endpoints.ServiceProvider.GetRequiredService<EmulatorFaults>());
        endpoints.MapPost("/admin/wait-idle", async (string? queue, int? timeoutSeconds, CancellationToken ct) =>
        {
            try
            {
                await emulator.WaitForIdleAsync(queue, TimeSpan.FromSeconds(timeoutSeconds ?? 30), ct);
                return Results.NoContent();
            }
            catch (TimeoutException ex)
            {
                return Results.Problem(ex.Message, statusCode: StatusCodes.Status408RequestTimeout);
            }
        });
        return endpoints;
    }

    /// <summary>Creates the queues named in <see cref="EmulatorOptions.Queues"/> that don't exist yet.</summary>
    public static void CreateConfiguredQueues(this IServiceProvider services)
    {
        var state = services.GetRequiredService<EmulatorState>();
        var names = services.GetRequiredService<IOptions<EmulatorOptions>>().Value.Queues;
        foreach (var raw in EmulatorOptions.SplitQueues(names))
        {
            var queue = EmulatorOptions.ToQueueName(raw) ?? throw new OptionsValidationException(EmulatorOptions.SectionName, typeof(EmulatorOptions), [$"Emulator:Queues entry '{raw}' is not a queue name."]);
            state.EnsureQueue(queue);
        }
    }

    /// <summary>Puts the injected outage in front of everything, so an unreachable API does no work at all.</summary>
    private sealed class FaultStartupFilter : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.UseMiddleware<UnreachableMiddleware>();
            next(app);
        };
    }

    /// <summary>Puts the REST error envelope (and the base64 alphabet fix of REST bodies) first in the pipeline of any app that hosts the emulator.</summary>
    private sealed class ErrorEnvelopeStartupFilter : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.UseMiddleware<GoogleErrorEnvelopeMiddleware>();
            app.UseMiddleware<UrlSafeBase64Middleware>();
            next(app);
        };
    }
}
