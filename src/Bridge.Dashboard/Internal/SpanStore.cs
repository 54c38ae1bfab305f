using System.Diagnostics;
using OpenTelemetry;

namespace Bridge.Dashboard.Internal;

internal sealed record SpanView(
    string SpanId,
    string? ParentSpanId,
    string Name,
    string Source,
    ActivityKind Kind,
    DateTimeOffset Start,
    TimeSpan Duration,
    ActivityStatusCode Status,
    string? StatusDescription,
    IReadOnlyList<KeyValuePair<string, string>> Tags);

internal sealed record TraceView(string TraceId, IReadOnlyList<SpanView> Spans)
{
    public DateTimeOffset Start => Spans.Count == 0 ? default : Spans.Min(s => s.Start);

    public TimeSpan Duration => Spans.Count == 0 ? TimeSpan.Zero : Spans.Max(s => s.Start + s.Duration) - Start;

    /// <summary>The span without a parent in this trace, else the earliest.</summary>
    public SpanView? Root => Spans.Where(s => s.ParentSpanId is null || Spans.All(p => p.SpanId != s.ParentSpanId)).MinBy(s => s.Start);
}

/// <summary>
/// A bounded in-memory span processor: the spans of the latest traces, for the journey view. The dashboard's own
/// requests are left out, and only tags that describe the hop are kept (never bodies, tokens or full URLs).
/// </summary>
internal sealed class SpanStore(int maxTraces, int maxSpansPerTrace) : BaseProcessor<Activity>
{
    /// <summary>Set on the dashboard's own request spans, which are not kept.</summary>
    public const string DashboardTag = "bridge.dashboard";

    private static readonly string[] KeptTagPrefixes = ["bridge.", "cloudtasks.", "messaging.", "rpc.", "http.request.method", "http.response.status_code", "http.route", "error.type", "server.address", "server.port"];

    private readonly Lock _gate = new();
    private readonly Dictionary<ActivityTraceId, List<SpanView>> _traces = [];
    private readonly LinkedList<ActivityTraceId> _order = new();
    private readonly HashSet<ActivityTraceId> _ignored = [];
    private readonly Queue<ActivityTraceId> _ignoredOrder = new();

    /// <summary>
    /// Leaves out every span of the dashboard request's trace (its own Cloud Tasks calls, the emulator's server
    /// spans): they end before the tagged request span does, so the trace is marked when the request starts.
    /// </summary>
    public void Ignore(ActivityTraceId traceId)
    {
        lock (_gate)
        {
            if (_ignored.Add(traceId))
            {
                _ignoredOrder.Enqueue(traceId);
                while (_ignoredOrder.Count > 4 * maxTraces + 64)
                {
                    _ignored.Remove(_ignoredOrder.Dequeue());
                }
            }

            if (_traces.Remove(traceId))
            {
                _order.Remove(traceId);
            }
        }
    }

    public override void OnEnd(Activity data)
    {
        if (data is null || !data.Recorded || data.GetTagItem(DashboardTag) is not null)
        {
            return;
        }

        var tags = new List<KeyValuePair<string, string>>();
        foreach (var (key, value) in data.TagObjects)
        {
            if (value is not null && KeptTagPrefixes.Any(p => key.StartsWith(p, StringComparison.Ordinal)))
            {
                tags.Add(new(key, Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? string.Empty));
            }
        }

        var parent = data.ParentSpanId == default ? null : data.ParentSpanId.ToHexString();
        var span = new SpanView(data.SpanId.ToHexString(), parent, data.DisplayName, data.Source.Name, data.Kind,
            new DateTimeOffset(data.StartTimeUtc, TimeSpan.Zero), data.Duration, data.Status, data.StatusDescription, tags);
        lock (_gate)
        {
            if (_ignored.Contains(data.TraceId))
            {
                return;
            }

            if (!_traces.TryGetValue(data.TraceId, out var spans))
            {
                spans = [];
                _traces[data.TraceId] = spans;
                _order.AddLast(data.TraceId);
                while (_order.Count > maxTraces)
                {
                    _traces.Remove(_order.First!.Value);
                    _order.RemoveFirst();
                }
            }

            if (spans.Count < maxSpansPerTrace)
            {
                spans.Add(span);
            }
        }
    }

    public TraceView? Find(string traceId)
    {
        if (traceId is not { Length: 32 } || !traceId.All(char.IsAsciiHexDigitLower))
        {
            return null;
        }

        var id = ActivityTraceId.CreateFromString(traceId);
        lock (_gate)
        {
            return _traces.TryGetValue(id, out var spans) ? new TraceView(traceId, [.. spans.OrderBy(s => s.Start)]) : null;
        }
    }

    /// <summary>Newest first.</summary>
    public IReadOnlyList<TraceView> Recent(int count)
    {
        lock (_gate)
        {
            return [.. _order.Reverse().Take(count).Select(id => new TraceView(id.ToHexString(), [.. _traces[id].OrderBy(s => s.Start)]))];
        }
    }
}
