using System.Globalization;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Bridge.Dashboard.Internal;

/// <summary>One event's journey (forward → CreateTask → each dispatch → callback → outcome) from the spans kept in memory.</summary>
internal static class JourneyPages
{
    public static IResult Recent(HttpContext context)
    {
        var state = context.RequestServices.GetRequiredService<DashboardState>();
        var traces = state.Spans.Recent(100);
        var body = traces.Count == 0
            ? Html.Of($"<p>No journeys kept yet: send an event.</p>")
            : Html.Of($"""
                <table>
                <caption>Latest traces the bridge kept, newest first</caption>
                <thead><tr><th scope="col">Started</th><th scope="col">First span</th><th scope="col" class="num">Spans</th><th scope="col" class="num">Duration</th><th scope="col">Errors</th></tr></thead>
                <tbody>{Html.Each(traces, t => Html.Of($"<tr><td>{Html.Time(t.Start)}</td><th scope=\"row\"><a href=\"/trace?id={t.TraceId}\">{t.Root?.Name ?? t.TraceId}</a></th><td class=\"num\">{t.Spans.Count}</td><td class=\"num\">{Html.Duration(t.Duration)}</td><td>{(t.Spans.Any(s => s.Status == System.Diagnostics.ActivityStatusCode.Error) ? "yes" : "no")}</td></tr>"))}</tbody>
                </table>
                """);
        return Layout.Page(context, "Journeys", "/traces", body);
    }

    public static IResult Trace(HttpContext context, string? id)
    {
        var state = context.RequestServices.GetRequiredService<DashboardState>();
        if (state.Spans.Find(id ?? string.Empty) is not { } trace)
        {
            var status = id is { Length: 32 } && id.All(char.IsAsciiHexDigitLower) ? StatusCodes.Status404NotFound : StatusCodes.Status400BadRequest;
            return Layout.Error(context, status, "Journey", status == StatusCodes.Status400BadRequest
                ? $"'{id}' is not a trace id (32 lowercase hex digits)."
                : "This trace is not kept (any more): only the latest traces are kept in memory.");
        }

        var depth = Depths(trace);
        var total = Math.Max(trace.Duration.TotalMilliseconds, 0.001);
        var rows = Html.Each(trace.Spans, s =>
        {
            var offset = s.Start - trace.Start;
            var indent = depth[s.SpanId] * 1.25;
            var width = Math.Max(s.Duration.TotalMilliseconds / total * 200, 1); // px of a 200 px scale: the whole trace
            var tags = Html.Each(s.Tags, t => Html.Of($"<span class=\"mono\">{t.Key}={t.Value}</span> "));
            var status = s.Status == System.Diagnostics.ActivityStatusCode.Error ? Html.Of($"<span class=\"status-failed\">error {s.StatusDescription ?? string.Empty}</span>") : Html.Of($"ok");
            return Html.Of($"""
                <tr><td class="num">+{Html.Duration(offset)}</td><th scope="row" style="padding-left:{indent.ToString("0.##", CultureInfo.InvariantCulture)}rem">{s.Name}</th><td class="num">{Html.Duration(s.Duration)} <span class="bar" style="width:{width.ToString("0.#", CultureInfo.InvariantCulture)}px" aria-hidden="true"></span></td><td>{s.Source}</td><td>{s.Kind.ToString()}</td><td>{status}</td><td>{tags}</td></tr>
                """);
        });
        var body = Html.Of($"""
            <p>Trace <span class="mono">{trace.TraceId}</span>: {trace.Spans.Count} spans over {Html.Duration(trace.Duration)}, from {Html.Time(trace.Start)}.</p>
            <table>
            <caption>Every hop of the event, in the order it started</caption>
            <thead><tr><th scope="col" class="num">Start</th><th scope="col">Span</th><th scope="col" class="num">Duration</th><th scope="col">Component</th><th scope="col">Kind</th><th scope="col">Status</th><th scope="col">Attributes</th></tr></thead>
            <tbody>{rows}</tbody>
            </table>
            """);
        return Layout.Page(context, "Journey", "/traces", body);
    }

    private static Dictionary<string, int> Depths(TraceView trace)
    {
        var byId = trace.Spans.GroupBy(s => s.SpanId, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        var depths = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var span in trace.Spans)
        {
            var (depth, current) = (0, span);
            while (current.ParentSpanId is { } parent && byId.TryGetValue(parent, out var up) && depth < 32)
            {
                (depth, current) = (depth + 1, up);
            }

            depths[span.SpanId] = depth;
        }

        return depths;
    }
}
