namespace Bridge.Core.Routing;

/// <summary>What to do with a schedule time beyond the service's 30-day horizon.</summary>
public enum SchedulePolicy
{
    /// <summary>A permanent error naming the time and the limit (default).</summary>
    Reject,

    /// <summary>Schedule at the horizon instead.</summary>
    Clamp,
}

/// <summary>Bridge's settings, bound from <c>Bridge</c> (app settings <c>Bridge__…</c>).</summary>
public sealed class BridgeOptions
{
    public const string SectionName = "Bridge";

    /// <summary>Cloud Tasks' own task limit is 1,048,569 bytes; this leaves room for the task's URL and headers.</summary>
    public const int DefaultMaxBodyBytes = 1_000_000;

    /// <summary>Routes by name; an event names its route by HTTP path or by its Service Bus entity.</summary>
    public Dictionary<string, RouteOptions> Routes { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>The route for events that select none; empty: such events are rejected as unknown-route.</summary>
    public string? DefaultRoute { get; set; }

    /// <summary>Project and location for routes whose <see cref="RouteOptions.Queue"/> is a bare queue id.</summary>
    public string? Project { get; set; }

    public string? Location { get; set; }

    /// <summary>Largest event body forwarded; larger ones are rejected before any call.</summary>
    public int MaxBodyBytes { get; set; } = DefaultMaxBodyBytes;

    /// <summary>Service Bus application property that names the route when several routes share an entity.</summary>
    public string RouteProperty { get; set; } = "bridge-route";

    /// <summary>Service Bus application property with an absolute schedule time (RFC 3339).</summary>
    public string ScheduleTimeProperty { get; set; } = "bridge-schedule-time";

    /// <summary>Service Bus application property with a delay (seconds, <c>hh:mm:ss</c> or ISO 8601 <c>PT5M</c>).</summary>
    public string DelayProperty { get; set; } = "bridge-delay";

    /// <summary>
    /// How long the first hand-back of a Service Bus message waits (and what HTTP intake's first Retry-After says)
    /// after Cloud Tasks failed transiently; each next one waits twice as long, up to <see cref="RetryMaxDelay"/>.
    /// </summary>
    public TimeSpan RetryInitialDelay { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The longest wait between two hand-backs; well under the hour Cloud Tasks keeps a task name taken.</summary>
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// HTTP intake: how long the first of several concurrent requests for one queue waits for others to go with it in
    /// one BatchCreateTasks call (each still gets its own answer). Zero (the default) forwards each request on its own;
    /// at most <see cref="MaxHttpCoalescingWindow"/>.
    /// </summary>
    public TimeSpan HttpCoalescingWindow { get; set; } = TimeSpan.Zero;

    /// <summary>The longest <see cref="HttpCoalescingWindow"/>: a request never waits longer than this for company.</summary>
    public static readonly TimeSpan MaxHttpCoalescingWindow = TimeSpan.FromMilliseconds(5);

    public BridgeOptions Clone()
    {
        var copy = (BridgeOptions)MemberwiseClone();
        copy.Routes = Routes.ToDictionary(r => r.Key, r => r.Value.Clone(), StringComparer.OrdinalIgnoreCase);
        return copy;
    }
}

/// <summary>One route: which queue, which target, which identity, which schedule, which inbound entity.</summary>
public sealed class RouteOptions
{
    /// <summary><c>projects/P/locations/L/queues/Q</c>, or <c>Q</c> with <see cref="BridgeOptions.Project"/> and <see cref="BridgeOptions.Location"/>.</summary>
    public string Queue { get; set; } = string.Empty;

    /// <summary>The URL the task calls.</summary>
    public string TargetUrl { get; set; } = string.Empty;

    /// <summary>POST (default), PUT, PATCH, GET, DELETE, HEAD, OPTIONS.</summary>
    public string HttpMethod { get; set; } = "POST";

    /// <summary>
    /// Static headers added to every task of the route, as indexed name/value pairs (<c>Headers:0:Name</c>,
    /// <c>Headers:0:Value</c>): a header name as a settings key (<c>Headers__X-Api-Version</c>) is not a valid app
    /// setting name on Linux, which allows only letters, digits, '.' and '_'.
    /// </summary>
    public List<RouteHeader> Headers { get; set; } = [];

    /// <summary>Service account the task's OIDC token names; empty: no token.</summary>
    public string? ServiceAccountEmail { get; set; }

    /// <summary>The token's audience; default: the target URL.</summary>
    public string? Audience { get; set; }

    /// <summary>
    /// Service accounts (<c>email</c> claim) allowed to report this route's outcomes (<c>succeeded</c>/<c>failed</c>)
    /// to the callback. Empty: nobody may report for this route. Dispatches of the route's tasks to the callback are
    /// accepted only from <see cref="ServiceAccountEmail"/>.
    /// </summary>
    public List<string> ReportingServiceAccounts { get; set; } = [];

    /// <summary>
    /// Accounts the route's tasks were signed as before <see cref="ServiceAccountEmail"/> was rotated: dispatches of
    /// tasks queued before the rotation are still accepted from them. Remove once those tasks have drained.
    /// </summary>
    public List<string> PreviousServiceAccounts { get; set; } = [];

    /// <summary>Delay for events that carry no schedule.</summary>
    public TimeSpan? DefaultDelay { get; set; }

    public SchedulePolicy SchedulePolicy { get; set; } = SchedulePolicy.Reject;

    /// <summary>How long Cloud Tasks waits for the target (15 s to 30 min); default the service's 10 min.</summary>
    public TimeSpan? DispatchDeadline { get; set; }

    /// <summary>Service Bus queue (or <c>topic/subscriptions/name</c>) whose messages take this route.</summary>
    public string? ServiceBusEntity { get; set; }

    /// <summary>When set, only messages with this <c>Subject</c> take the route.</summary>
    public string? ServiceBusSubject { get; set; }

    /// <summary>Service Bus application properties copied to task headers as <c>X-Bridge-Property-&lt;name&gt;</c>.</summary>
    public List<string> CarryProperties { get; set; } = [];

    /// <summary>HTTP request headers copied to the task as they are.</summary>
    public List<string> CarryHeaders { get; set; } = [];

    /// <summary>
    /// How long a Service Bus message whose task can't be created yet (Cloud Tasks unavailable, permission or queue
    /// not there yet) is handed back and tried again, counted from its first failure; then it is dead-lettered as
    /// <c>RetriesExhausted</c> with the last error.
    /// </summary>
    public TimeSpan RetryBudget { get; set; } = TimeSpan.FromHours(24);

    public RouteOptions Clone()
    {
        var copy = (RouteOptions)MemberwiseClone();
        copy.Headers = [.. Headers.Select(h => new RouteHeader { Name = h.Name, Value = h.Value })];
        copy.CarryProperties = [.. CarryProperties];
        copy.CarryHeaders = [.. CarryHeaders];
        copy.ReportingServiceAccounts = [.. ReportingServiceAccounts];
        copy.PreviousServiceAccounts = [.. PreviousServiceAccounts];
        return copy;
    }
}

/// <summary>One static header of a route's tasks.</summary>
public sealed class RouteHeader
{
    public string Name { get; set; } = string.Empty;

    public string Value { get; set; } = string.Empty;

    public void Deconstruct(out string name, out string value) => (name, value) = (Name, Value);
}
