using Microsoft.AspNetCore.Http;

namespace Bridge.Dashboard;

/// <summary>What the dashboard shows and who may see it.</summary>
public sealed class DashboardOptions
{
    public const string SectionName = "Bridge:Dashboard";

    /// <summary>
    /// Cloud Tasks locations (<c>projects/P/locations/L</c>) whose queues are listed besides the routes' own (the
    /// standalone emulator has no routes: it names its locations here).
    /// </summary>
    public List<string> Locations { get; set; } = [];

    /// <summary>Locations known only at run time (a standalone emulator's, as queues are made); listed besides <see cref="Locations"/>.</summary>
    public Func<IEnumerable<string>>? LocationSource { get; set; }

    /// <summary>A Service Bus connection string (the local emulator's); none: the Service Bus part is not shown.</summary>
    public string? ServiceBusConnectionString { get; set; }

    /// <summary>
    /// Service Bus entities shown: queues (<c>orders</c>) and subscriptions (<c>topic/Subscriptions/sub</c>).
    /// </summary>
    public List<string> ServiceBusEntities { get; set; } = [];

    /// <summary>Where the entity list comes from when it is known only at run time (an embedded emulator); wins over <see cref="ServiceBusEntities"/>.</summary>
    public Func<IEnumerable<string>>? ServiceBusEntitySource { get; set; }

    /// <summary>
    /// Exact counts of an entity (queue, topic or subscription path) read from a broker in this process (the embedded
    /// or standalone Service Bus emulator); null, or null for an entity: counted by peeking over AMQP (sampled).
    /// </summary>
    public Func<string, ServiceBusEntityCounts?>? ServiceBusCountSource { get; set; }

    /// <summary>Traces kept for the journey view; the oldest is dropped first.</summary>
    public int MaxTraces { get; set; } = 200;

    /// <summary>Spans kept per trace.</summary>
    public int MaxSpansPerTrace { get; set; } = 100;

    /// <summary>Outcomes kept for the outcomes view.</summary>
    public int MaxOutcomes { get; set; } = 500;

    /// <summary>
    /// Decides whether a request from another machine may use the dashboard. Null (the default): only loopback
    /// clients, with a loopback Host header, are served. A host that authenticates its callers (intake
    /// authentication) sets this to accept authenticated ones.
    /// </summary>
    public Func<HttpContext, bool>? AllowRemoteRequest { get; set; }
}

/// <summary>An entity's message counts as its broker keeps them: active (locked ones included), scheduled, dead-lettered.</summary>
public sealed record ServiceBusEntityCounts(long Active, long Scheduled, long DeadLettered);
