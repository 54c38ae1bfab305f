using Bridge.CloudTasks;
using Bridge.Core;
using Bridge.Core.Callback;
using Bridge.Dashboard.Internal;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OpenTelemetry.Trace;

namespace Bridge.Dashboard;

public static class DashboardServiceCollectionExtensions
{
    /// <summary>
    /// Adds the dashboard's services: an outcome sink that feeds its live view (added to <c>Bridge:Outcomes:Sinks</c>),
    /// a bounded in-memory span processor for journeys, the Service Bus explorer when a connection is given, and
    /// anti-forgery for its forms.
    /// </summary>
    public static IServiceCollection AddBridgeDashboard(this IServiceCollection services, Action<DashboardOptions>? configure = null)
    {
        services.AddBridgeDashboardPages(configure);

        // The feed is one more outcome sink, beside whatever the host configured.
        services.AddKeyedSingleton<IOutcomeSink>(OutcomeFeed.SinkName, (sp, _) => sp.GetRequiredService<OutcomeFeed>());
        services.PostConfigure<OutcomeOptions>(o =>
        {
            if (o.Sinks.Count == 0)
            {
                o.Sinks.Add(OutcomeOptions.LogSink); // what no sinks meant: keep it
            }

            if (!o.Sinks.Contains(OutcomeFeed.SinkName, StringComparer.OrdinalIgnoreCase))
            {
                o.Sinks.Add(OutcomeFeed.SinkName);
            }
        });
        services.ConfigureOpenTelemetryTracerProvider((sp, tracing) => tracing.AddProcessor(sp.GetRequiredService<SpanStore>()));
        return services;
    }

    /// <summary>
    /// Adds the dashboard with its settings from <c>Bridge:Dashboard</c>; the Service Bus part defaults to the bridge's
    /// own Service Bus connection (<c>BridgeServiceBus</c>, a connection string) and intake queue.
    /// </summary>
    public static IServiceCollection AddBridgeDashboard(this IServiceCollection services, IConfiguration configuration, Action<DashboardOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        return services.AddBridgeDashboard(o =>
        {
            configuration.GetSection(DashboardOptions.SectionName).Bind(o);
            if (string.IsNullOrEmpty(o.ServiceBusConnectionString) && ServiceBusConnection.FromConfiguration(configuration).ConnectionString is { Length: > 0 } connection)
            {
                o.ServiceBusConnectionString = connection;
            }

            if (configuration[ServiceBusConnection.QueueSetting] is { Length: > 0 } queue && !o.ServiceBusEntities.Contains(queue, StringComparer.OrdinalIgnoreCase))
            {
                o.ServiceBusEntities.Add(queue);
            }

            configure?.Invoke(o);
        });
    }

    /// <summary>
    /// Adds only what the pages need (options, anti-forgery, the Service Bus explorer when a connection is given): for
    /// a host that maps <see cref="MapCloudTasksDashboard"/> or <see cref="MapServiceBusDashboard"/> without the
    /// bridge's pipeline, such as a standalone emulator. Calling it more than once adds its services once.
    /// </summary>
    public static IServiceCollection AddBridgeDashboardPages(this IServiceCollection services, Action<DashboardOptions>? configure = null)
    {
        var options = services.AddOptions<DashboardOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        services.AddAntiforgery(o =>
        {
            o.Cookie.Name = "bridge-dashboard-antiforgery";
            o.Cookie.SameSite = SameSiteMode.Strict;
        });
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<DashboardOptions>>().Value;
            return new DashboardState(o, sp.GetRequiredService<OutcomeFeed>(), sp.GetRequiredService<SpanStore>(),
                string.IsNullOrEmpty(o.ServiceBusConnectionString) ? null : new ServiceBusExplorer(o.ServiceBusConnectionString, o.ServiceBusEntitySource ?? (() => o.ServiceBusEntities), o.ServiceBusCountSource));
        });
        services.TryAddSingleton(sp => new OutcomeFeed(Math.Max(1, sp.GetRequiredService<IOptions<DashboardOptions>>().Value.MaxOutcomes)));
        services.TryAddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<DashboardOptions>>().Value;
            return new SpanStore(Math.Max(1, o.MaxTraces), Math.Max(1, o.MaxSpansPerTrace));
        });
        return services;
    }

    /// <summary>
    /// Maps the whole dashboard at <c>/</c>: queues and tasks (with the test-event form), outcomes (and their live
    /// stream), journeys, Service Bus. Every endpoint answers loopback callers only unless
    /// <see cref="DashboardOptions.AllowRemoteRequest"/> says otherwise.
    /// </summary>
    public static IEndpointConventionBuilder MapBridgeDashboard(this IEndpointRouteBuilder endpoints)
    {
        var (ui, state) = Group(endpoints);
        MapCloudTasks(ui, state);
        ui.MapPost("/send", QueuePages.SendAsync);
        ui.MapGet("/outcomes", (HttpContext c, string? route, string? status) => OutcomePages.List(c, route, status));
        ui.MapGet("/outcomes/stream", (HttpContext c, string? route, string? status) => OutcomePages.Stream(c, route, status));
        ui.MapGet("/traces", JourneyPages.Recent);
        ui.MapGet("/trace", (HttpContext c, string? id, string? task, CancellationToken ct) => JourneyPages.TraceAsync(c, id, task, ct));
        MapServiceBus(ui, state);
        state.Parts |= DashboardParts.Outcomes | DashboardParts.Journeys;
        return ui;
    }

    /// <summary>
    /// Maps the Cloud Tasks pages alone at <c>/</c>: queues of <see cref="DashboardOptions.Locations"/> (and
    /// <see cref="DashboardOptions.LocationSource"/>) with pause, resume and purge; tasks with run now, delete and the
    /// body on request. Needs a <see cref="CloudTasksClient"/> in the services. Loopback only, as
    /// <see cref="MapBridgeDashboard"/>.
    /// </summary>
    public static IEndpointConventionBuilder MapCloudTasksDashboard(this IEndpointRouteBuilder endpoints)
    {
        var (ui, state) = Group(endpoints);
        MapCloudTasks(ui, state);
        return ui;
    }

    /// <summary>
    /// Maps the Service Bus pages alone under <c>/servicebus</c>: queues, topics and subscriptions with their counts;
    /// dead-letters browsed, resubmitted or discarded. Loopback only, as <see cref="MapBridgeDashboard"/>.
    /// </summary>
    public static IEndpointConventionBuilder MapServiceBusDashboard(this IEndpointRouteBuilder endpoints)
    {
        var (ui, state) = Group(endpoints);
        MapServiceBus(ui, state);
        return ui;
    }

    private static (RouteGroupBuilder Group, DashboardState State) Group(IEndpointRouteBuilder endpoints)
    {
        var options = endpoints.ServiceProvider.GetRequiredService<IOptions<DashboardOptions>>().Value;
        var state = endpoints.ServiceProvider.GetRequiredService<DashboardState>();
        var ui = endpoints.MapGroup(string.Empty).AddEndpointFilter(new AccessGuard(options)).ExcludeFromDescription();
        if (!state.AssetsMapped)
        {
            ui.MapGet(Layout.CssPath, () => Results.Text(Layout.Css, "text/css; charset=utf-8"));
            ui.MapGet(Layout.ScriptPath, () => Results.Text(OutcomePages.Script, "text/javascript; charset=utf-8"));
            state.AssetsMapped = true;
        }

        return (ui, state);
    }

    private static void MapCloudTasks(RouteGroupBuilder ui, DashboardState state)
    {
        ui.MapGet("/", QueuePages.OverviewAsync);
        ui.MapGet("/queue", (HttpContext c, string? name, CancellationToken ct) => QueuePages.QueueAsync(c, name, ct));
        ui.MapGet("/queue/purge", (HttpContext c, string? name, CancellationToken ct) => QueuePages.PurgeConfirmAsync(c, name, ct));
        ui.MapPost("/queue/pause", (HttpContext c, CancellationToken ct) => QueuePages.ActAsync(c, "pause", ct));
        ui.MapPost("/queue/resume", (HttpContext c, CancellationToken ct) => QueuePages.ActAsync(c, "resume", ct));
        ui.MapPost("/queue/purge", (HttpContext c, CancellationToken ct) => QueuePages.ActAsync(c, "purge", ct));
        ui.MapGet("/task", (HttpContext c, string? name, string? body, CancellationToken ct) => QueuePages.TaskAsync(c, name, body == "1", ct));
        ui.MapPost("/task/run", (HttpContext c, CancellationToken ct) => QueuePages.ActAsync(c, "run", ct));
        ui.MapPost("/task/delete", (HttpContext c, CancellationToken ct) => QueuePages.ActAsync(c, "delete", ct));
        state.Parts |= DashboardParts.CloudTasks;
    }

    private static void MapServiceBus(RouteGroupBuilder ui, DashboardState state)
    {
        ui.MapGet("/servicebus", ServiceBusPages.EntitiesAsync);
        ui.MapGet("/servicebus/deadletters", (HttpContext c, string? entity, string? seq, string? body, CancellationToken ct) =>
            ServiceBusPages.DeadLettersAsync(c, entity, long.TryParse(seq, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var s) ? s : null, body == "1", ct));
        ui.MapPost("/servicebus/resubmit", (HttpContext c, CancellationToken ct) => ServiceBusPages.SettleAsync(c, resubmit: true, ct));
        ui.MapPost("/servicebus/discard", (HttpContext c, CancellationToken ct) => ServiceBusPages.SettleAsync(c, resubmit: false, ct));
        state.Parts |= DashboardParts.ServiceBus;
    }
}
