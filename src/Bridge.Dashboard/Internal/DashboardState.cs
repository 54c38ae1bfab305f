namespace Bridge.Dashboard.Internal;

/// <summary>The dashboard's pieces; each host maps the ones it has, and the navigation shows only those.</summary>
[Flags]
internal enum DashboardParts
{
    None = 0,
    CloudTasks = 1,
    Outcomes = 2,
    Journeys = 4,
    ServiceBus = 8,
}

/// <summary>What the pages share: the options as started, the outcome feed, the kept spans, Service Bus when configured.</summary>
internal sealed class DashboardState(DashboardOptions options, OutcomeFeed outcomes, SpanStore spans, ServiceBusExplorer? serviceBus) : IAsyncDisposable
{
    public DashboardOptions Options { get; } = options;

    public OutcomeFeed Outcomes { get; } = outcomes;

    public SpanStore Spans { get; } = spans;

    public ServiceBusExplorer? ServiceBus { get; } = serviceBus;

    /// <summary>The pieces mapped so far (set while endpoints are mapped, before the host starts).</summary>
    public DashboardParts Parts { get; set; }

    /// <summary>Whether the shared stylesheet and script are mapped already (once per host).</summary>
    public bool AssetsMapped { get; set; }

    public ValueTask DisposeAsync() => ServiceBus?.DisposeAsync() ?? ValueTask.CompletedTask;
}
