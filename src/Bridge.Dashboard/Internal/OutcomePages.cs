using System.Net.ServerSentEvents;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Bridge.Dashboard.Internal;

/// <summary>Outcomes as they arrive: the latest on the page (readable without JavaScript), new ones by server-sent events.</summary>
internal static class OutcomePages
{
    private static readonly string[] Statuses = ["delivered", "succeeded", "failed"];

    public static IResult List(HttpContext context, string? route, string? status)
    {
        var state = context.RequestServices.GetRequiredService<DashboardState>();
        var all = state.Outcomes.Recent();
        var shown = all.Where(o => Matches(o, route, status)).Take(200).ToList();
        var routes = all.Select(o => o.Route).OfType<string>().Append(route ?? string.Empty).Where(r => r.Length > 0).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal);
        var filters = Html.Of($"""
            <form method="get" action="/outcomes" class="filters" aria-label="Filter outcomes">
            <div><label for="filter-route">Route</label><select id="filter-route" name="route"><option value="">any</option>{Html.Each(routes, r => Option(r, r == route))}</select></div>
            <div><label for="filter-status">Status</label><select id="filter-status" name="status"><option value="">any</option>{Html.Each(Statuses, s => Option(s, s == status))}</select></div>
            <div><button type="submit">Filter</button></div>
            </form>
            """);
        var stream = $"/outcomes/stream?route={Html.Url(route ?? string.Empty)}&status={Html.Url(status ?? string.Empty)}";
        var table = Html.Of($"""
            <table id="outcomes" data-stream="{stream}">
            <caption>Latest outcomes, newest first <span id="live-state" class="muted" role="status"></span></caption>
            <thead><tr><th scope="col">Received</th><th scope="col">Status</th><th scope="col">Route</th><th scope="col">Task</th><th scope="col">Correlation id</th><th scope="col" class="num">Retries</th><th scope="col">Detail</th><th scope="col">Journey</th></tr></thead>
            <tbody>{Html.Each(shown, Row)}</tbody>
            </table>
            {(shown.Count == 0 ? Html.Of($"<p id=\"no-outcomes\">No outcomes yet.</p>") : Markup.Empty)}
            """);
        return Layout.Page(context, "Outcomes", "/outcomes", Html.Of($"{filters}{table}"), liveOutcomes: true);
    }

    private static Markup Option(string value, bool selected) => selected
        ? Html.Of($"<option value=\"{value}\" selected>{value}</option>")
        : Html.Of($"<option value=\"{value}\">{value}</option>");

    internal static bool Matches(OutcomeView outcome, string? route, string? status) =>
        (string.IsNullOrEmpty(route) || string.Equals(outcome.Route, route, StringComparison.OrdinalIgnoreCase))
        && (string.IsNullOrEmpty(status) || string.Equals(outcome.Status, status, StringComparison.OrdinalIgnoreCase));

    private static Markup Row(OutcomeView o)
    {
        var taskId = o.TaskName[(o.TaskName.LastIndexOf('/') + 1)..];
        var task = o.Status == "failed"
            ? Html.Of($"<a class=\"mono\" href=\"/task?name={Html.Url(o.TaskName)}\">{taskId}</a> (<a href=\"/task?name={Html.Url(o.TaskName)}\">attempts</a>)")
            : Html.Of($"<a class=\"mono\" href=\"/task?name={Html.Url(o.TaskName)}\">{taskId}</a>");
        var journey = o.TraceId is null ? Html.Of($"—") : Html.Of($"<a href=\"/trace?id={o.TraceId}\">journey</a>");
        return Html.Of($"<tr><td>{Html.Time(o.ReceivedAt)}</td><td class=\"status-{o.Status}\">{o.Status}</td><td>{o.Route ?? "—"}</td><td>{task}</td><td class=\"mono\">{o.CorrelationId ?? "—"}</td><td class=\"num\">{o.RetryCount}</td><td>{o.Detail ?? string.Empty}</td><td>{journey}</td></tr>");
    }

    public static IResult Stream(HttpContext context, string? route, string? status)
    {
        var state = context.RequestServices.GetRequiredService<DashboardState>();
        context.Response.Headers.CacheControl = "no-store";
        return TypedResults.ServerSentEvents(Items(state.Outcomes, route, status, context.RequestAborted));
    }

    private static async IAsyncEnumerable<SseItem<OutcomeView>> Items(OutcomeFeed feed, string? route, string? status, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        // A comment line at once, so the browser knows the stream is open before the first outcome.
        yield return new SseItem<OutcomeView>(null!, "ready");
        var outcomes = feed.ListenAsync(cancellationToken).GetAsyncEnumerator(cancellationToken);
        try
        {
            while (true)
            {
                try
                {
                    if (!await outcomes.MoveNextAsync())
                    {
                        yield break;
                    }
                }
                catch (OperationCanceledException)
                {
                    yield break; // the page was closed
                }

                if (Matches(outcomes.Current, route, status))
                {
                    yield return new SseItem<OutcomeView>(outcomes.Current, "outcome") { EventId = outcomes.Current.Id };
                }
            }
        }
        finally
        {
            await outcomes.DisposeAsync();
        }
    }

    public const string Script = """
        // Live outcomes: rows are built with DOM text nodes only (never innerHTML), newest on top.
        (function () {
          var table = document.getElementById('outcomes');
          if (!table || !window.EventSource) { return; }
          var body = table.tBodies[0];
          var live = document.getElementById('live-state');
          var source = new EventSource(table.getAttribute('data-stream'));
          source.addEventListener('ready', function () { live.textContent = '(live)'; table.setAttribute('data-live', 'true'); });
          source.onerror = function () { live.textContent = '(reconnecting…)'; };
          function cell(row, text, cls) { var td = row.insertCell(-1); td.textContent = text == null ? '—' : String(text); if (cls) { td.className = cls; } return td; }
          function link(td, href, text, cls) { var a = document.createElement('a'); a.href = href; a.textContent = text; if (cls) { a.className = cls; } td.appendChild(a); return a; }
          source.addEventListener('outcome', function (e) {
            var o = JSON.parse(e.data);
            var none = document.getElementById('no-outcomes'); if (none) { none.remove(); }
            var row = body.insertRow(0);
            cell(row, o.receivedAt.replace('T', ' ').replace(/(\.\d{3})\d*/, '$1').replace('+00:00', 'Z'));
            cell(row, o.status, 'status-' + o.status);
            cell(row, o.route);
            var task = cell(row, ''); var href = '/task?name=' + encodeURIComponent(o.taskName);
            link(task, href, o.taskName.substring(o.taskName.lastIndexOf('/') + 1), 'mono');
            if (o.status === 'failed') { task.appendChild(document.createTextNode(' (')); link(task, href, 'attempts'); task.appendChild(document.createTextNode(')')); }
            cell(row, o.correlationId, 'mono');
            cell(row, o.retryCount, 'num');
            cell(row, o.detail || '');
            var journey = cell(row, '');
            if (o.traceId) { link(journey, '/trace?id=' + encodeURIComponent(o.traceId), 'journey'); } else { journey.textContent = '—'; }
            while (body.rows.length > 200) { body.deleteRow(-1); }
          });
        })();
        """;
}
