using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Bridge.Dashboard.Internal;

/// <summary>The page frame: landmarks, navigation, one h1, the notice of the last action; forms with their anti-forgery token.</summary>
internal static class Layout
{
    public const string CssPath = "/dashboard/assets/site.css";
    public const string ScriptPath = "/dashboard/assets/outcomes.js";

    private static readonly (string Path, string Label, DashboardParts Part)[] Sections =
    [
        ("/", "Queues", DashboardParts.CloudTasks),
        ("/outcomes", "Outcomes", DashboardParts.Outcomes),
        ("/servicebus", "Service Bus", DashboardParts.ServiceBus),
        ("/traces", "Journeys", DashboardParts.Journeys),
    ];

    private static readonly Dictionary<string, string> Notices = new(StringComparer.Ordinal)
    {
        ["paused"] = "The queue is paused: no task is dispatched until it is resumed.",
        ["resumed"] = "The queue is resumed.",
        ["purged"] = "The queue was purged: its tasks are being deleted.",
        ["run"] = "The task was sent for dispatch now.",
        ["deleted"] = "The task was deleted.",
        ["sent"] = "The event was forwarded.",
        ["resubmitted"] = "The message was sent again to its entity and removed from the dead-letter queue.",
        ["discarded"] = "The message was removed from the dead-letter queue.",
    };

    public static IResult Page(HttpContext context, string title, string section, Markup body, int statusCode = StatusCodes.Status200OK, bool liveOutcomes = false)
    {
        var options = context.RequestServices.GetRequiredService<DashboardState>();
        var nav = Html.Each(Sections.Where(s => options.Parts.HasFlag(s.Part) && (s.Part != DashboardParts.ServiceBus || options.ServiceBus is not null)), s => s.Path == section
            ? Html.Of($"<li><a href=\"{s.Path}\" aria-current=\"page\">{s.Label}</a></li>")
            : Html.Of($"<li><a href=\"{s.Path}\">{s.Label}</a></li>"));
        var notice = context.Request.Query["notice"].ToString() is { Length: > 0 } code && Notices.TryGetValue(code, out var text)
            ? Html.Of($"<p class=\"notice\" role=\"status\">{text}</p>")
            : Markup.Empty;
        var script = liveOutcomes ? Html.Of($"<script src=\"{ScriptPath}\" defer></script>") : Markup.Empty;
        var page = Html.Of($"""
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>{title} · Bridge dashboard</title>
            <link rel="stylesheet" href="{CssPath}">
            {script}
            </head>
            <body>
            <a class="skip" href="#main">Skip to content</a>
            <header>
            <p class="brand">Bridge dashboard</p>
            <nav aria-label="Sections"><ul>{nav}</ul></nav>
            </header>
            <main id="main" tabindex="-1">
            <h1>{title}</h1>
            {notice}
            {body}
            </main>
            <footer><p>{Footer(options.Parts)}</p></footer>
            </body>
            </html>
            """);
        return Results.Content(page.Value, "text/html; charset=utf-8", statusCode: statusCode);
    }

    private static string Footer(DashboardParts parts) => parts switch
    {
        DashboardParts.CloudTasks => "Local view of the Cloud Tasks emulator: queues and tasks. Pages refresh on reload.",
        DashboardParts.ServiceBus => "Local view of the Service Bus emulator: queues, topics, subscriptions and dead-letters. Pages refresh on reload.",
        _ => "Local view of the bridge: queues, tasks, outcomes and journeys. Pages refresh on reload; outcomes arrive live.",
    };

    public static IResult Error(HttpContext context, int statusCode, string title, string message) =>
        Page(context, title, string.Empty, Html.Of($"<p class=\"error\" role=\"alert\">{message}</p><p><a href=\"/\">Back to the dashboard</a></p>"), statusCode);

    /// <summary>A POST form with its anti-forgery token; <paramref name="fields"/> are hidden inputs.</summary>
    public static Markup Form(HttpContext context, string action, string button, IEnumerable<(string Name, string Value)> fields, string? buttonClass = null, string? label = null)
    {
        var token = Token(context);
        var hidden = Html.Each(fields, f => Html.Of($"<input type=\"hidden\" name=\"{f.Name}\" value=\"{f.Value}\">"));
        var aria = label is null ? Markup.Empty : Html.Of($" aria-label=\"{label}\"");
        return Html.Of($"<form method=\"post\" action=\"{action}\" class=\"inline\"><input type=\"hidden\" name=\"{token.FormFieldName}\" value=\"{token.RequestToken}\">{hidden}<button type=\"submit\" class=\"{buttonClass ?? string.Empty}\"{aria}>{button}</button></form>");
    }

    /// <summary>The hidden anti-forgery field, for forms with visible fields.</summary>
    public static Markup TokenField(HttpContext context)
    {
        var token = Token(context);
        return Html.Of($"<input type=\"hidden\" name=\"{token.FormFieldName}\" value=\"{token.RequestToken}\">");
    }

    private static AntiforgeryTokenSet Token(HttpContext context)
    {
        if (context.Items[typeof(AntiforgeryTokenSet)] is AntiforgeryTokenSet cached)
        {
            return cached;
        }

        var tokens = context.RequestServices.GetRequiredService<IAntiforgery>().GetAndStoreTokens(context);
        context.Items[typeof(AntiforgeryTokenSet)] = tokens;
        return tokens;
    }

    public const string Css = """
        :root { color-scheme: light; --fg: #1b1f24; --muted: #4b5563; --bg: #ffffff; --line: #d0d7de; --accent: #0b57d0; --bad: #b3261e; --good: #146c2e; --warn: #8a5300; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
        header { display: flex; flex-wrap: wrap; align-items: center; gap: 1rem; padding: .5rem 1.5rem; border-bottom: 1px solid var(--line); background: #f6f8fa; }
        .brand { font-weight: 700; margin: 0; }
        nav ul { display: flex; gap: 1rem; list-style: none; margin: 0; padding: 0; }
        nav a { color: var(--accent); text-decoration: none; padding: .25rem .5rem; border-radius: 4px; }
        nav a[aria-current="page"] { background: var(--accent); color: #fff; }
        main { padding: 1rem 1.5rem; max-width: 1400px; }
        h1 { font-size: 1.5rem; margin: .5rem 0 1rem; }
        h2 { font-size: 1.2rem; margin: 1.5rem 0 .5rem; }
        a { color: var(--accent); }
        a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible, textarea:focus-visible, main:focus-visible { outline: 3px solid #f59e0b; outline-offset: 2px; }
        table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; font-size: 14px; }
        caption { text-align: left; font-weight: 600; padding: .25rem 0; }
        th, td { border-bottom: 1px solid var(--line); padding: .35rem .5rem; text-align: left; vertical-align: top; }
        th { background: #f6f8fa; }
        td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
        code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 13px; word-break: break-all; }
        pre { background: #f6f8fa; border: 1px solid var(--line); padding: .75rem; overflow: auto; max-height: 30rem; }
        .inline { display: inline; margin: 0 .25rem 0 0; }
        button { font: inherit; padding: .2rem .7rem; border: 1px solid var(--accent); background: #fff; color: var(--accent); border-radius: 4px; cursor: pointer; }
        button.danger { border-color: var(--bad); color: var(--bad); }
        button.primary { background: var(--accent); color: #fff; }
        .state-running { color: var(--good); font-weight: 600; }
        .state-paused, .state-disabled { color: var(--warn); font-weight: 600; }
        .status-failed { color: var(--bad); font-weight: 600; }
        .status-succeeded, .status-delivered { color: var(--good); font-weight: 600; }
        .notice { border-left: 4px solid var(--good); background: #edf7ee; padding: .5rem .75rem; }
        .error { border-left: 4px solid var(--bad); background: #fdecea; padding: .5rem .75rem; }
        .muted { color: var(--muted); }
        .skip { position: absolute; left: -999px; top: 0; background: #fff; padding: .5rem; }
        .skip:focus { left: 0; }
        form.stack label { display: block; font-weight: 600; margin: .5rem 0 .2rem; }
        form.stack input, form.stack select, form.stack textarea { font: inherit; padding: .3rem; border: 1px solid #6b7280; border-radius: 4px; width: 100%; max-width: 40rem; }
        form.stack button { display: block; margin-top: .75rem; }
        .filters { display: flex; flex-wrap: wrap; gap: 1rem; align-items: end; }
        .filters label { font-weight: 600; display: block; }
        .filters select { font: inherit; padding: .2rem; }
        .bar { display: inline-block; height: .6rem; background: var(--accent); min-width: 2px; vertical-align: middle; }
        footer { padding: 1rem 1.5rem; border-top: 1px solid var(--line); color: var(--muted); font-size: 13px; }
        """;
}
