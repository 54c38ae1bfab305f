using System.Diagnostics;
using System.Text;
using Bridge.CloudTasks;
using Bridge.CloudTasks.V2Beta3;
using Bridge.Core.Forwarding;
using Bridge.Core.Routing;
using Google.Protobuf.WellKnownTypes;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using CloudTask = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.Dashboard.Internal;

/// <summary>Routes and their queues, the tasks of a queue, one task; pause, resume, purge, run now, delete; a test event.</summary>
internal static class QueuePages
{
    /// <summary>Tasks read per queue for counts and lists: enough for a local loop, bounded for a big queue.</summary>
    internal const int MaxTasksRead = 1000;
    internal const int MaxTestEventBytes = 64 * 1024;

    private static readonly FieldMask QueueWithStats = new() { Paths = { "name", "state", "rate_limits", "retry_config", "stats" } };

    private sealed record QueueRow(QueueName Name, IReadOnlyList<string> Routes, Queue? Queue, TaskCounts? Counts, string? Error);

    private sealed record TaskCounts(int Due, int Scheduled, bool More);

    public static async Task<IResult> OverviewAsync(HttpContext context, CancellationToken cancellationToken)
    {
        var state = context.RequestServices.GetRequiredService<DashboardState>();
        var client = context.RequestServices.GetService<CloudTasksClient>();
        if (client is null)
        {
            return Layout.Error(context, StatusCodes.Status404NotFound, "Queues", "No Cloud Tasks client is configured in this host.");
        }

        var routes = context.RequestServices.GetService<RouteTable>()?.All ?? [];
        var names = new List<QueueName>();
        foreach (var route in routes)
        {
            AddOnce(names, route.Queue);
        }

        var locations = routes.Select(r => r.Queue.Location.ToString()).Concat(state.Options.Locations).Concat(state.Options.LocationSource?.Invoke() ?? []).Distinct(StringComparer.Ordinal);
        var listErrors = new List<string>();
        foreach (var location in locations)
        {
            try
            {
                await foreach (var queue in client.ListQueues(new ListQueuesRequest { Parent = location, PageSize = 100 }).WithCancellation(cancellationToken))
                {
                    AddOnce(names, QueueName.Parse(queue.Name));
                    if (names.Count >= 200)
                    {
                        break;
                    }
                }
            }
            catch (CloudTasksException ex)
            {
                listErrors.Add($"Listing the queues of {location} failed: {ex.Reason}.");
            }
        }

        var now = context.RequestServices.GetRequiredService<TimeProvider>().GetUtcNow();
        var rows = new List<QueueRow>();
        foreach (var name in names)
        {
            var routeNames = routes.Where(r => r.Queue == name).Select(r => r.Name).Order(StringComparer.Ordinal).ToList();
            try
            {
                var queue = await client.GetQueueAsync(new GetQueueRequest { Name = name.ToString(), ReadMask = QueueWithStats }, cancellationToken: cancellationToken);
                rows.Add(new QueueRow(name, routeNames, queue, await CountAsync(client, name, now, cancellationToken), null));
            }
            catch (CloudTasksException ex)
            {
                rows.Add(new QueueRow(name, routeNames, null, null, ex.Reason == CloudTasksFailureReason.NotFound ? "The queue does not exist." : $"Cloud Tasks answered {ex.Reason}."));
            }
        }

        var routesHead = routes.Count == 0 ? Markup.Empty : Html.Of($"<th scope=\"col\">Routes</th>");
        var table = rows.Count == 0 ? Html.Of($"<p>No queues yet: create one (gcloud tasks queues create, or any client) and reload.</p>") : Html.Of($"""
            <table>
            <caption>{(routes.Count == 0 ? "Queues" : "Routes and their queues")}</caption>
            <thead><tr><th scope="col">Queue</th>{routesHead}<th scope="col">State</th><th scope="col" class="num">Max dispatches/s</th><th scope="col" class="num">Max concurrent</th><th scope="col" class="num">Max attempts</th><th scope="col" class="num">Tasks</th><th scope="col" class="num">Due</th><th scope="col" class="num">Scheduled</th><th scope="col" class="num">In flight</th><th scope="col">Actions</th></tr></thead>
            <tbody>{Html.Each(rows, row => Row(context, row, routes.Count > 0))}</tbody>
            </table>
            """);
        var errors = Html.Each(listErrors, e => Html.Of($"<p class=\"error\" role=\"alert\">{e}</p>"));
        var send = context.RequestServices.GetService<IEventForwarder>() is not null && routes.Count > 0 ? SendForm(context, routes) : Markup.Empty;
        return Layout.Page(context, "Queues", "/", Html.Of($"{errors}{table}{send}"));
    }

    private static void AddOnce(List<QueueName> names, QueueName name)
    {
        if (!names.Contains(name))
        {
            names.Add(name);
        }
    }

    private static async Task<TaskCounts> CountAsync(CloudTasksClient client, QueueName queue, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var (due, scheduled, read) = (0, 0, 0);
        await foreach (var task in client.ListTasks(new ListTasksRequest { Parent = queue.ToString(), PageSize = 1000, ResponseView = CloudTask.Types.View.Basic }).WithCancellation(cancellationToken))
        {
            if (++read > MaxTasksRead)
            {
                return new TaskCounts(due, scheduled, true);
            }

            if (task.ScheduleTime is { } at && at.ToDateTimeOffset() > now)
            {
                scheduled++;
            }
            else
            {
                due++;
            }
        }

        return new TaskCounts(due, scheduled, false);
    }

    private static Markup Row(HttpContext context, QueueRow row, bool withRoutes)
    {
        var link = Html.Of($"<a href=\"/queue?name={Html.Url(row.Name.ToString())}\">{row.Name.QueueId}</a> <span class=\"muted mono\">{row.Name.Location.ToString()}</span>");
        var routes = withRoutes ? Html.Of($"<td>{(row.Routes.Count == 0 ? "—" : string.Join(", ", row.Routes))}</td>") : Markup.Empty;
        if (row.Queue is not { } q)
        {
            return Html.Of($"<tr><th scope=\"row\">{link}</th>{routes}<td colspan=\"9\" class=\"error\">{row.Error}</td></tr>");
        }

        var more = row.Counts!.More ? "+" : string.Empty;
        return Html.Of($"""
            <tr><th scope="row">{link}</th>{routes}<td>{StateLabel(q.State)}</td>
            <td class="num">{q.RateLimits?.MaxDispatchesPerSecond}</td><td class="num">{q.RateLimits?.MaxConcurrentDispatches}</td><td class="num">{MaxAttempts(q)}</td>
            <td class="num">{q.Stats?.TasksCount}</td><td class="num">{row.Counts.Due}{more}</td><td class="num">{row.Counts.Scheduled}{more}</td><td class="num">{q.Stats?.ConcurrentDispatchesCount}</td>
            <td>{QueueActions(context, q, "/")}</td></tr>
            """);
    }

    private static string MaxAttempts(Queue queue) => queue.RetryConfig is { MaxAttempts: var n } ? (n < 0 ? "unlimited" : n.ToString(System.Globalization.CultureInfo.InvariantCulture)) : "—";

    private static Markup StateLabel(Queue.Types.State state)
    {
        var (text, css) = state switch
        {
            Queue.Types.State.Running => ("Running", "state-running"),
            Queue.Types.State.Paused => ("Paused", "state-paused"),
            Queue.Types.State.Disabled => ("Disabled", "state-disabled"),
            _ => ("Unknown", "muted"),
        };
        return Html.Of($"<span class=\"{css}\">{text}</span>");
    }

    private static Markup QueueActions(HttpContext context, Queue queue, string back)
    {
        var name = QueueName.Parse(queue.Name);
        var toggle = queue.State == Queue.Types.State.Paused
            ? Layout.Form(context, "/queue/resume", "Resume", [("name", queue.Name), ("back", back)], label: $"Resume queue {name.QueueId}")
            : Layout.Form(context, "/queue/pause", "Pause", [("name", queue.Name), ("back", back)], label: $"Pause queue {name.QueueId}");
        return Html.Of($"{toggle}<a href=\"/queue/purge?name={Html.Url(queue.Name)}\" aria-label=\"Purge queue {name.QueueId}\">Purge</a>");
    }

    private static Markup SendForm(HttpContext context, IReadOnlyCollection<Route> routes) => Html.Of($"""
        <section aria-labelledby="send-heading">
        <h2 id="send-heading">Send a test event</h2>
        <form method="post" action="/send" class="stack">
        {Layout.TokenField(context)}
        <label for="send-route">Route</label>
        <select id="send-route" name="route">{Html.Each(routes.OrderBy(r => r.Name, StringComparer.Ordinal), r => Html.Of($"<option value=\"{r.Name}\">{r.Name} → {r.Queue.QueueId}</option>"))}</select>
        <label for="send-key">Idempotency key <span class="muted">(optional: the same key twice is deduplicated)</span></label>
        <input id="send-key" name="idempotencyKey" maxlength="500" autocomplete="off">
        <label for="send-delay">Delay <span class="muted">(optional: seconds, hh:mm:ss or ISO 8601 such as PT5M)</span></label>
        <input id="send-delay" name="delay" maxlength="40" autocomplete="off">
        <label for="send-body">Body (JSON)</label>
        <textarea id="send-body" name="body" rows="4" maxlength="{MaxTestEventBytes}">{"{\"hello\":\"bridge\"}"}</textarea>
        <button type="submit" class="primary">Send event</button>
        </form>
        </section>
        """);

    public static async Task<IResult> SendAsync(HttpContext context, CancellationToken cancellationToken)
    {
        var forwarder = context.RequestServices.GetService<IEventForwarder>();
        var routes = context.RequestServices.GetService<RouteTable>();
        if (forwarder is null || routes is null)
        {
            return Layout.Error(context, StatusCodes.Status404NotFound, "Send a test event", "This host does not forward events.");
        }

        var form = await context.Request.ReadFormAsync(cancellationToken);
        var routeName = form["route"].ToString();
        if (!routes.TryFind(routeName, out var route) || routeName.Length == 0)
        {
            return Layout.Error(context, StatusCodes.Status400BadRequest, "Send a test event", $"There is no route named '{routeName}'.");
        }

        var body = Encoding.UTF8.GetBytes(form["body"].ToString());
        if (body.Length > MaxTestEventBytes)
        {
            return Layout.Error(context, StatusCodes.Status413PayloadTooLarge, "Send a test event", $"The body is {body.Length} bytes; a test event may have at most {MaxTestEventBytes}.");
        }

        var key = form["idempotencyKey"].ToString().Trim();
        var delay = form["delay"].ToString().Trim();
        var inbound = new InboundEvent
        {
            Route = route.Name,
            Identity = key.Length == 0 ? null : new EventIdentity(EventIdentity.IdempotencyKey, key),
            CorrelationId = key.Length == 0 ? null : key,
            Body = body,
            ContentType = "application/json",
            Schedule = delay.Length == 0 ? ScheduleHint.None : new ScheduleHint(null, string.Empty, delay, "the Delay field"),
            Source = "http",
        };

        // The event starts its own trace, as one from outside would: its journey is not the dashboard's request.
        var previous = Activity.Current;
        Activity.Current = null;
        ForwardResult result;
        try
        {
            result = await forwarder.ForwardAsync(inbound, cancellationToken);
        }
        catch (ForwardingException ex)
        {
            return Layout.Error(context, ex.IsTransient ? StatusCodes.Status503ServiceUnavailable : StatusCodes.Status422UnprocessableEntity,
                "Send a test event", $"The event was not forwarded: {ex.ReasonCode}. {ex.Message}");
        }
        finally
        {
            Activity.Current = previous;
        }

        return Results.Redirect($"/queue?name={Html.Url(route.Queue.ToString())}&notice=sent&task={Html.Url(result.TaskName)}");
    }

    public static async Task<IResult> QueueAsync(HttpContext context, string? name, CancellationToken cancellationToken)
    {
        if (!QueueName.TryParse(name, out var queueName))
        {
            return Layout.Error(context, StatusCodes.Status400BadRequest, "Queue", $"'{name}' is not a queue name (projects/P/locations/L/queues/Q).");
        }

        var client = context.RequestServices.GetRequiredService<CloudTasksClient>();
        Queue queue;
        try
        {
            queue = await client.GetQueueAsync(new GetQueueRequest { Name = queueName.ToString(), ReadMask = QueueWithStats }, cancellationToken: cancellationToken);
        }
        catch (CloudTasksException ex) when (ex.Reason == CloudTasksFailureReason.NotFound)
        {
            return Layout.Error(context, StatusCodes.Status404NotFound, "Queue", $"The queue {queueName} does not exist.");
        }

        var now = context.RequestServices.GetRequiredService<TimeProvider>().GetUtcNow();
        var tasks = new List<CloudTask>();
        await foreach (var task in client.ListTasks(new ListTasksRequest { Parent = queueName.ToString(), PageSize = 1000, ResponseView = CloudTask.Types.View.Basic }).WithCancellation(cancellationToken))
        {
            tasks.Add(task);
            if (tasks.Count >= MaxTasksRead)
            {
                break;
            }
        }

        var back = $"/queue?name={Html.Url(queueName.ToString())}";
        var rows = Html.Each(tasks.OrderBy(t => t.ScheduleTime?.ToDateTimeOffset() ?? DateTimeOffset.MinValue), t => TaskRow(context, t, now, back));
        var summary = Html.Of($"""
            <dl class="summary">
            <dt>State</dt><dd>{StateLabel(queue.State)} {QueueActions(context, queue, back)}</dd>
            <dt>Rate limits</dt><dd>{queue.RateLimits?.MaxDispatchesPerSecond} dispatches/s, {queue.RateLimits?.MaxConcurrentDispatches} at once, burst {queue.RateLimits?.MaxBurstSize}</dd>
            <dt>Retries</dt><dd>max attempts {MaxAttempts(queue)}, backoff {queue.RetryConfig?.MinBackoff?.ToTimeSpan().TotalSeconds}–{queue.RetryConfig?.MaxBackoff?.ToTimeSpan().TotalSeconds} s</dd>
            <dt>Tasks</dt><dd>{queue.Stats?.TasksCount} ({queue.Stats?.ConcurrentDispatchesCount} in flight, {queue.Stats?.ExecutedLastMinuteCount} dispatched in the last minute)</dd>
            </dl>
            """);
        var table = tasks.Count == 0
            ? Html.Of($"<p>No tasks in this queue.</p>")
            : Html.Of($"""
                <table>
                <caption>Tasks of {queueName.QueueId}{(tasks.Count >= MaxTasksRead ? $" (first {MaxTasksRead})" : string.Empty)}</caption>
                <thead><tr><th scope="col">Task</th><th scope="col">Schedule time</th><th scope="col" class="num">Attempts</th><th scope="col">Last response</th><th scope="col">Next attempt</th><th scope="col">Actions</th></tr></thead>
                <tbody>{rows}</tbody>
                </table>
                """);
        return Layout.Page(context, $"Queue {queueName.QueueId}", "/", Html.Of($"<p class=\"mono\">{queueName.ToString()}</p>{summary}<h2>Tasks</h2>{table}"));
    }

    private static Markup TaskRow(HttpContext context, CloudTask task, DateTimeOffset now, string back)
    {
        var name = TaskName.Parse(task.Name);
        var schedule = task.ScheduleTime?.ToDateTimeOffset();
        var next = schedule is { } s && s > now ? Html.Time(s) : (task.DispatchCount > 0 || task.LastAttempt?.DispatchTime is not null) && task.LastAttempt?.ResponseTime is null ? "dispatching" : "due now";
        return Html.Of($"""
            <tr><th scope="row"><a class="mono" href="/task?name={Html.Url(task.Name)}">{name.TaskId}</a></th>
            <td>{Html.Time(schedule)}</td><td class="num">{task.DispatchCount}</td><td>{Response(task.LastAttempt)}</td><td>{next}</td>
            <td>{Layout.Form(context, "/task/run", "Run now", [("name", task.Name), ("back", back)], label: $"Run now: task {name.TaskId}")}{Layout.Form(context, "/task/delete", "Delete", [("name", task.Name), ("back", back)], "danger", $"Delete task {name.TaskId}")}</td></tr>
            """);
    }

    private static string Response(Attempt? attempt) => attempt switch
    {
        null => "—",
        { ResponseStatus: { } status } => $"{(Grpc.Core.StatusCode)status.Code} {status.Message} at {Html.Time(attempt.ResponseTime?.ToDateTimeOffset())}",
        { DispatchTime: not null } => $"dispatched at {Html.Time(attempt.DispatchTime.ToDateTimeOffset())}, no response yet",
        _ => "—",
    };

    public static async Task<IResult> TaskAsync(HttpContext context, string? name, bool body, CancellationToken cancellationToken)
    {
        if (!TaskName.TryParse(name, out var taskName))
        {
            return Layout.Error(context, StatusCodes.Status400BadRequest, "Task", $"'{name}' is not a task name (projects/P/locations/L/queues/Q/tasks/T).");
        }

        var client = context.RequestServices.GetRequiredService<CloudTasksClient>();
        CloudTask task;
        try
        {
            task = await client.GetTaskAsync(new GetTaskRequest { Name = taskName.ToString(), ResponseView = body ? CloudTask.Types.View.Full : CloudTask.Types.View.Basic }, cancellationToken: cancellationToken);
        }
        catch (CloudTasksException ex) when (ex.Reason == CloudTasksFailureReason.NotFound)
        {
            // A task that succeeded (or failed for the last time) is gone from Cloud Tasks; its journey may still be kept.
            var journeys = JourneyLinks(context, taskName.ToString());
            return Layout.Page(context, $"Task {taskName.TaskId}", "/", Html.Of($"<p class=\"error\" role=\"alert\">The task no longer exists in its queue (it was dispatched for the last time, or deleted).</p>{journeys}"), StatusCodes.Status404NotFound);
        }

        var back = $"/task?name={Html.Url(task.Name)}";
        var http = task.HttpRequest;
        var headers = http is null ? Markup.Empty : Html.Each(http.Headers.OrderBy(h => h.Key, StringComparer.OrdinalIgnoreCase), h => Html.Of($"<tr><th scope=\"row\" class=\"mono\">{h.Key}</th><td class=\"mono\">{(IsSensitive(h.Key) ? "(hidden)" : h.Value)}</td></tr>"));
        var traceId = http is not null && http.Headers.TryGetValue("traceparent", out var traceparent) ? TraceIdOf(traceparent) : null;
        var bodyPart = body
            ? Html.Of($"<h2>Body</h2><pre>{BodyText(http?.Body.ToByteArray() ?? task.AppEngineHttpRequest?.Body.ToByteArray() ?? [])}</pre>")
            : Html.Of($"<p><a href=\"/task?name={Html.Url(task.Name)}&amp;body=1\">Show the body</a></p>");
        var journey = traceId is null ? Markup.Empty : Html.Of($"<p><a href=\"/trace?id={traceId}&amp;task={Html.Url(task.Name)}\">See this event's journey</a></p>");
        var page = Html.Of($"""
            <p class="mono">{task.Name}</p>
            <p>{Layout.Form(context, "/task/run", "Run now", [("name", task.Name), ("back", back)])}{Layout.Form(context, "/task/delete", "Delete", [("name", task.Name), ("back", $"/queue?name={Html.Url(taskName.Queue.ToString())}")], "danger")} <a href="/queue?name={Html.Url(taskName.Queue.ToString())}">Back to queue {taskName.QueueId}</a></p>
            {journey}
            <h2>Attempts</h2>
            <table>
            <caption>Dispatch attempts ({task.DispatchCount} dispatched, {task.ResponseCount} answered)</caption>
            <thead><tr><th scope="col">Attempt</th><th scope="col">Scheduled</th><th scope="col">Dispatched</th><th scope="col">Answered</th><th scope="col">Response</th></tr></thead>
            <tbody>{AttemptRow("First", task.FirstAttempt)}{AttemptRow("Last", task.LastAttempt)}</tbody>
            </table>
            <h2>Schedule</h2>
            <dl class="summary"><dt>Next attempt</dt><dd>{Html.Time(task.ScheduleTime?.ToDateTimeOffset())}</dd><dt>Created</dt><dd>{Html.Time(task.CreateTime?.ToDateTimeOffset())}</dd><dt>Dispatch deadline</dt><dd>{task.DispatchDeadline?.ToTimeSpan().TotalSeconds} s</dd></dl>
            <h2>Request</h2>
            <p>{http?.HttpMethod.ToString()} <span class="mono">{http?.Url}</span></p>
            <table><caption>Headers</caption><thead><tr><th scope="col">Name</th><th scope="col">Value</th></tr></thead><tbody>{headers}</tbody></table>
            {bodyPart}
            """);
        return Layout.Page(context, $"Task {taskName.TaskId}", "/", page);
    }

    private static Markup AttemptRow(string label, Attempt? attempt) => attempt is null
        ? Html.Of($"<tr><th scope=\"row\">{label}</th><td colspan=\"4\" class=\"muted\">none yet</td></tr>")
        : Html.Of($"<tr><th scope=\"row\">{label}</th><td>{Html.Time(attempt.ScheduleTime?.ToDateTimeOffset())}</td><td>{Html.Time(attempt.DispatchTime?.ToDateTimeOffset())}</td><td>{Html.Time(attempt.ResponseTime?.ToDateTimeOffset())}</td><td>{(attempt.ResponseStatus is { } s ? $"{(Grpc.Core.StatusCode)s.Code} {s.Message}" : "—")}</td></tr>");

    private static Markup JourneyLinks(HttpContext context, string taskName)
    {
        var state = context.RequestServices.GetRequiredService<DashboardState>();
        var traces = state.Outcomes.Recent().Where(o => o.TaskName == taskName && o.TraceId is not null).Select(o => o.TraceId!).Distinct(StringComparer.Ordinal).ToList();
        return traces.Count == 0 ? Markup.Empty : Html.Of($"<p>{Html.Each(traces, t => Html.Of($"<a href=\"/trace?id={t}\">See this event's journey</a> "))}</p>");
    }

    internal static string? TraceIdOf(string traceparent)
    {
        var parts = traceparent.Split('-');
        return parts.Length >= 3 && parts[1].Length == 32 ? parts[1].ToLowerInvariant() : null;
    }

    private static bool IsSensitive(string header) =>
        header.Contains("authorization", StringComparison.OrdinalIgnoreCase) || header.Contains("key", StringComparison.OrdinalIgnoreCase)
        || header.Contains("secret", StringComparison.OrdinalIgnoreCase) || header.Contains("token", StringComparison.OrdinalIgnoreCase)
        || header.Contains("cookie", StringComparison.OrdinalIgnoreCase);

    private static string BodyText(byte[] body)
    {
        if (body.Length == 0)
        {
            return "(empty)";
        }

        try
        {
            return new UTF8Encoding(false, true).GetString(body);
        }
        catch (DecoderFallbackException)
        {
            return $"({body.Length} bytes, not UTF-8) " + Convert.ToBase64String(body);
        }
    }

    public static async Task<IResult> PurgeConfirmAsync(HttpContext context, string? name, CancellationToken cancellationToken)
    {
        if (!QueueName.TryParse(name, out var queueName))
        {
            return Layout.Error(context, StatusCodes.Status400BadRequest, "Purge", $"'{name}' is not a queue name.");
        }

        var client = context.RequestServices.GetRequiredService<CloudTasksClient>();
        try
        {
            var queue = await client.GetQueueAsync(new GetQueueRequest { Name = queueName.ToString(), ReadMask = QueueWithStats }, cancellationToken: cancellationToken);
            var body = Html.Of($"""
                <p>Purging deletes every task in queue <strong>{queueName.QueueId}</strong> ({queue.Stats?.TasksCount} now). Tasks already dispatched may still finish. This cannot be undone.</p>
                <p>{Layout.Form(context, "/queue/purge", $"Purge {queueName.QueueId}", [("name", queueName.ToString()), ("back", "/")], "danger")} <a href="/">Cancel</a></p>
                """);
            return Layout.Page(context, $"Purge queue {queueName.QueueId}?", "/", body);
        }
        catch (CloudTasksException ex) when (ex.Reason == CloudTasksFailureReason.NotFound)
        {
            return Layout.Error(context, StatusCodes.Status404NotFound, "Purge", $"The queue {queueName} does not exist.");
        }
    }

    /// <summary>Pause, resume, purge, run now and delete: POSTed forms, then back where the person was.</summary>
    public static async Task<IResult> ActAsync(HttpContext context, string action, CancellationToken cancellationToken)
    {
        var form = await context.Request.ReadFormAsync(cancellationToken);
        var name = form["name"].ToString();
        var client = context.RequestServices.GetRequiredService<CloudTasksClient>();
        string notice;
        try
        {
            switch (action)
            {
                case "pause" or "resume" or "purge":
                    if (!QueueName.TryParse(name, out var queue))
                    {
                        return Layout.Error(context, StatusCodes.Status400BadRequest, "Queue", $"'{name}' is not a queue name.");
                    }

                    _ = action switch
                    {
                        "pause" => await client.PauseQueueAsync(new PauseQueueRequest { Name = queue.ToString() }, cancellationToken: cancellationToken),
                        "resume" => await client.ResumeQueueAsync(new ResumeQueueRequest { Name = queue.ToString() }, cancellationToken: cancellationToken),
                        _ => await client.PurgeQueueAsync(new PurgeQueueRequest { Name = queue.ToString() }, cancellationToken: cancellationToken),
                    };
                    notice = action switch { "pause" => "paused", "resume" => "resumed", _ => "purged" };
                    break;
                default:
                    if (!TaskName.TryParse(name, out var task))
                    {
                        return Layout.Error(context, StatusCodes.Status400BadRequest, "Task", $"'{name}' is not a task name.");
                    }

                    if (action == "run")
                    {
                        await client.RunTaskAsync(new RunTaskRequest { Name = task.ToString(), ResponseView = CloudTask.Types.View.Basic }, cancellationToken: cancellationToken);
                        notice = "run";
                    }
                    else
                    {
                        await client.DeleteTaskAsync(new DeleteTaskRequest { Name = task.ToString() }, cancellationToken: cancellationToken);
                        notice = "deleted";
                    }

                    break;
            }
        }
        catch (CloudTasksException ex) when (!ex.IsTransient)
        {
            var status = ex.Reason == CloudTasksFailureReason.NotFound ? StatusCodes.Status404NotFound : StatusCodes.Status409Conflict;
            return Layout.Error(context, status, "Not done", $"Cloud Tasks refused to {action} {name}: {ex.Reason}. {ex.Message}");
        }

        return Results.Redirect(WithNotice(form["back"].ToString(), notice));
    }

    /// <summary>Back to a page of this dashboard only: a path, never another site.</summary>
    internal static string WithNotice(string back, string notice)
    {
        var path = back.StartsWith('/') && !back.StartsWith("//", StringComparison.Ordinal) && !back.Contains('\\', StringComparison.Ordinal) ? back : "/";
        return path + (path.Contains('?', StringComparison.Ordinal) ? "&" : "?") + "notice=" + notice;
    }
}
