using System.Diagnostics;

namespace Bridge.Core.Internal;

/// <summary>Where a span Bridge starts for a received call (an event, a callback) hangs in the trace.</summary>
internal static class TraceParents
{
    /// <summary>
    /// The parent to pass to <see cref="ActivitySource.StartActivity(string, ActivityKind, ActivityContext, IEnumerable{KeyValuePair{string, object?}}?, IEnumerable{ActivityLink}?, DateTimeOffset)"/>:
    /// default (continue <see cref="Activity.Current"/>) when the host's current activity is one a listener records
    /// (the Functions worker's invocation, an instrumented ASP.NET Core request); otherwise the call's own trace
    /// context when it carries one. A host activity nobody records (ASP.NET Core starts one for its logging scopes when
    /// no instrumentation listens; a span its sampler dropped) would leave Bridge's span hanging off a span that is
    /// never exported, or dropped with it by a parent-based sampler, while the carried context is the event's own
    /// exported trace.
    /// </summary>
    public static ActivityContext Choose(string? traceParent, string? traceState)
    {
        var current = Activity.Current;
        if (current is null || !IsRecordedByAListener(current))
        {
            return ActivityContext.TryParse(traceParent, traceState, out var carried) ? carried : default;
        }

        return default;
    }

    // An activity created by hand (new Activity, as ASP.NET Core does for logging alone) has the unnamed default
    // source; one a listener sampled out has IsAllDataRequested false.
    private static bool IsRecordedByAListener(Activity activity) =>
        activity.Source.Name.Length > 0 && activity.IsAllDataRequested;
}
