namespace Bridge.Dashboard.Internal;

/// <summary>What the pages share: the options as started, the outcome feed, the kept spans, Service Bus when configured.</summary>
internal sealed class DashboardState(DashboardOptions options, OutcomeFeed outcomes, SpanStore spans, ServiceBusExplorer? serviceBus) : IAsyncDisposable
{
    public DashboardOptions Options { get; } = options;

    public OutcomeFeed Outcomes { get; } = outcomes;

    public SpanStore Spans { get; } = spans;

    public ServiceBusExplorer? ServiceBus { get; } = serviceBus;

    public ValueTask DisposeAsync() => ServiceBus?.DisposeAsync() ?? ValueTask.CompletedTask;
}
