using System.Globalization;
using Bridge.CloudTasks;
using Bridge.CloudTasks.V2Beta3;
using Bridge.Core.Telemetry;
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

    public static async Task<IResult> TraceAsync(HttpContext context, string? id, string? task, CancellationToken cancellationToken)
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
        var pending = await PendingAsync(context, state, trace, task, cancellationToken);
        var body = Html.Of($"""
            <p>Trace <span class="mono">{trace.TraceId}</span>: {trace.Spans.Count} spans over {Html.Duration(trace.Duration)}, from {Html.Time(trace.Start)}.</p>
            {pending}
            <table>
            <caption>Every hop of the event, in the order it started</caption>
            <thead><tr><th scope="col" class="num">Start</th><th scope="col">Span</th><th scope="col" class="num">Duration</th><th scope="col">Component</th><th scope="col">Kind</th><th scope="col">Status</th><th scope="col">Attributes</th></tr></thead>
            <tbody>{rows}</tbody>
            </table>
            """);
        return Layout.Page(context, "Journey", "/traces", body);
    }

    /// <summary>
    /// When no outcome has reached the bridge for this event: the hops so far and what the journey waits for, from the
    /// task as its queue holds it now (scheduled, retrying, or gone without a callback).
    /// </summary>
    private static async Task<Markup> PendingAsync(HttpContext context, DashboardState state, TraceView trace, string? task, CancellationToken cancellationToken)
    {
        var hasOutcome = trace.Spans.Any(s => s.Tags.Any(t => t.Key == BridgeDiagnostics.Tags.OutcomeStatus))
            || state.Outcomes.Recent().Any(o => o.TraceId == trace.TraceId);
        if (hasOutcome)
        {
            return Markup.Empty;
        }

        var taskName = TaskName.TryParse(task, out var given) ? given.ToString()
            : trace.Spans.SelectMany(s => s.Tags).FirstOrDefault(t => t.Key == CloudTasksTelemetry.Tags.TaskName).Value;
        var forwarded = trace.Spans.Any(s => s.Name.StartsWith("forward", StringComparison.Ordinal));
        var created = trace.Spans.Any(s => s.Name.Contains("CreateTask", StringComparison.Ordinal));
        var dispatches = trace.Spans.Count(s => s.Name.StartsWith("cloudtasks dispatch", StringComparison.Ordinal));
        var waiting = await WaitingForAsync(context, taskName, cancellationToken);
        var taskLink = taskName is null ? Markup.Empty : Html.Of($" <a href=\"/task?name={Html.Url(taskName)}\">See the task</a>.");
        return Html.Of($"""
            <section aria-labelledby="pending-heading" class="pending">
            <h2 id="pending-heading">Pending: no outcome yet</h2>
            <ol>
            <li>Forward: {(forwarded ? "done" : "not kept")}</li>
            <li>CreateTask: {(created ? "done" : "not kept")}</li>
            <li>Dispatch attempts so far: {dispatches.ToString(CultureInfo.InvariantCulture)}</li>
            <li>Callback and outcome: pending</li>
            </ol>
            <p>{waiting}{taskLink}</p>
            </section>
            """);
    }

    private static async Task<string> WaitingForAsync(HttpContext context, string? taskName, CancellationToken cancellationToken)
    {
        const string NoCallback = "No outcome has reached the bridge: the task is still scheduled or retrying, or this route's callback is not configured.";
        if (taskName is null || context.RequestServices.GetService(typeof(CloudTasksClient)) is not CloudTasksClient client)
        {
            return NoCallback;
        }

        try
        {
            var task = await client.GetTaskAsync(new GetTaskRequest { Name = taskName, ResponseView = Bridge.CloudTasks.V2Beta3.Task.Types.View.Basic }, cancellationToken: cancellationToken);
            var next = Html.Time(task.ScheduleTime?.ToDateTimeOffset());
            if (task.DispatchCount == 0)
            {
                return $"Waiting for the first dispatch attempt: the task is scheduled for {next} and has not been attempted yet.";
            }

            var last = task.LastAttempt?.ResponseStatus is { } status ? $"{(Grpc.Core.StatusCode)status.Code} {status.Message}".Trim() : "no answer yet";
            return $"Waiting for a successful attempt: {task.DispatchCount.ToString(CultureInfo.InvariantCulture)} attempt(s) so far, the last answered {last}; the next attempt is at {next}.";
        }
        catch (CloudTasksException ex) when (ex.Reason == CloudTasksFailureReason.NotFound)
        {
            return "The task is no longer in its queue, yet no outcome reached the bridge: the outcome may still be on its way, or this route's callback is not configured.";
        }
        catch (CloudTasksException ex)
        {
            return $"{NoCallback} (Cloud Tasks answered {ex.Reason} when asked about the task.)";
        }
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
