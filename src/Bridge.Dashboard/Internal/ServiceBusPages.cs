using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Bridge.Dashboard.Internal;

/// <summary>Service Bus queues and subscriptions with their counts; dead-letters browsed, resubmitted or discarded.</summary>
internal static class ServiceBusPages
{
    public static async Task<IResult> EntitiesAsync(HttpContext context, CancellationToken cancellationToken)
    {
        if (Explorer(context) is not { } explorer)
        {
            return NotConfigured(context);
        }

        var counts = new List<EntityCounts>();
        foreach (var entity in explorer.Entities())
        {
            counts.Add(await explorer.CountAsync(entity, cancellationToken));
        }

        var topics = explorer.Topics().Select(explorer.TopicCounts).ToList();
        var sampled = counts.Count(c => !c.Exact && c.Error is null);
        var how = sampled == 0
            ? Html.Of($"<p class=\"muted\">Counts are exact: read from the broker running in this process.</p>")
            : Html.Of($"<p class=\"muted\">Counts are sampled over AMQP: the first {ServiceBusExplorer.MaxPeek} messages of each queue and of its dead-letter queue are peeked ({sampled} of {counts.Count} entities counted this way); \"+\" marks an entity with more.</p>");
        var topicTable = topics.Count == 0
            ? Markup.Empty
            : Html.Of($"""
                <table>
                <caption>Topics</caption>
                <thead><tr><th scope="col">Topic</th><th scope="col" class="num">Scheduled on the topic</th><th scope="col" class="num">Subscriptions</th></tr></thead>
                <tbody>{Html.Each(topics, t => t.Error is not null
                    ? Html.Of($"<tr><th scope=\"row\">{t.Entity}</th><td colspan=\"2\" class=\"error\">{t.Error}</td></tr>")
                    : Html.Of($"<tr><th scope=\"row\">{t.Entity}</th><td class=\"num\">{t.Scheduled}</td><td class=\"num\">{counts.Count(c => c.Entity.StartsWith(t.Entity + "/Subscriptions/", StringComparison.OrdinalIgnoreCase))}</td></tr>"))}</tbody>
                </table>
                """);
        var body = counts.Count == 0
            ? Html.Of($"<p>No queues or subscriptions.</p>")
            : Html.Of($"""
                <table>
                <caption>Queues and subscriptions</caption>
                <thead><tr><th scope="col">Entity</th><th scope="col" class="num">Active</th><th scope="col" class="num">Scheduled</th><th scope="col" class="num">Dead-lettered</th></tr></thead>
                <tbody>{Html.Each(counts, Row)}</tbody>
                </table>
                {how}
                {topicTable}
                """);
        return Layout.Page(context, "Service Bus", "/servicebus", body);
    }

    private static Markup Row(EntityCounts c)
    {
        if (c.Error is not null)
        {
            return Html.Of($"<tr><th scope=\"row\">{c.Entity}</th><td colspan=\"3\" class=\"error\">{c.Error}</td></tr>");
        }

        var more = c.More ? "+" : string.Empty;
        var dead = c.DeadLettered == 0
            ? Html.Of($"0")
            : Html.Of($"<a href=\"/servicebus/deadletters?entity={Html.Url(c.Entity)}\" aria-label=\"{c.DeadLettered} dead-lettered in {c.Entity}\">{c.DeadLettered}{more}</a>");
        return Html.Of($"<tr><th scope=\"row\"><a href=\"/servicebus/deadletters?entity={Html.Url(c.Entity)}\">{c.Entity}</a></th><td class=\"num\">{c.Active}{more}</td><td class=\"num\">{c.Scheduled}{more}</td><td class=\"num\">{dead}</td></tr>");
    }

    public static async Task<IResult> DeadLettersAsync(HttpContext context, string? entity, long? sequenceNumber, bool body, CancellationToken cancellationToken)
    {
        if (Explorer(context) is not { } explorer)
        {
            return NotConfigured(context);
        }

        if (string.IsNullOrEmpty(entity) || !explorer.IsKnown(entity))
        {
            return Layout.Error(context, StatusCodes.Status404NotFound, "Dead-letters", $"'{entity}' is not a queue or subscription of this dashboard.");
        }

        var letters = await explorer.DeadLettersAsync(entity, cancellationToken);
        if (sequenceNumber is { } seq)
        {
            return letters.FirstOrDefault(l => l.SequenceNumber == seq) is { } letter
                ? Layout.Page(context, $"Dead-letter {seq} of {entity}", "/servicebus", Detail(context, entity, letter, body))
                : Layout.Error(context, StatusCodes.Status404NotFound, "Dead-letter", $"{entity} has no dead-letter with sequence number {seq} (it may have been resubmitted or discarded).");
        }

        var page = letters.Count == 0
            ? Html.Of($"<p>No dead-lettered messages in {entity}.</p>")
            : Html.Of($"""
                <table>
                <caption>Dead-lettered messages of {entity}</caption>
                <thead><tr><th scope="col" class="num">Sequence number</th><th scope="col">Message id</th><th scope="col">Reason</th><th scope="col">Description</th><th scope="col">Enqueued</th><th scope="col">Actions</th></tr></thead>
                <tbody>{Html.Each(letters, l => Html.Of($"<tr><th scope=\"row\" class=\"num\"><a href=\"{DetailUrl(entity, l.SequenceNumber)}\">{l.SequenceNumber}</a></th><td class=\"mono\">{l.MessageId ?? "—"}</td><td>{l.Reason ?? "—"}</td><td>{l.Description ?? string.Empty}</td><td>{Html.Time(l.EnqueuedTime)}</td><td>{Actions(context, entity, l.SequenceNumber, DeadLettersUrl(entity))}</td></tr>"))}</tbody>
                </table>
                """);
        return Layout.Page(context, $"Dead-letters of {entity}", "/servicebus", Html.Of($"<p><a href=\"/servicebus\">Back to Service Bus</a></p>{page}"));
    }

    private static Markup Detail(HttpContext context, string entity, DeadLetter letter, bool body)
    {
        var properties = Html.Each(letter.Properties.OrderBy(p => p.Key, StringComparer.Ordinal), p => Html.Of($"<tr><th scope=\"row\" class=\"mono\">{p.Key}</th><td class=\"mono\">{Convert.ToString(p.Value, CultureInfo.InvariantCulture)}</td></tr>"));
        var bodyPart = body
            ? Html.Of($"<h2>Body</h2><pre>{BodyText(letter.Body)}</pre>")
            : Html.Of($"<p><a href=\"{DetailUrl(entity, letter.SequenceNumber)}&amp;body=1\">Show the body</a></p>");
        return Html.Of($"""
            <p><a href="{DeadLettersUrl(entity)}">Back to the dead-letters of {entity}</a></p>
            <dl class="summary">
            <dt>Message id</dt><dd class="mono">{letter.MessageId ?? "—"}</dd>
            <dt>Subject</dt><dd>{letter.Subject ?? "—"}</dd>
            <dt>Dead-letter reason</dt><dd>{letter.Reason ?? "—"}</dd>
            <dt>Description</dt><dd>{letter.Description ?? "—"}</dd>
            <dt>Enqueued</dt><dd>{Html.Time(letter.EnqueuedTime)}</dd>
            <dt>Deliveries</dt><dd>{letter.DeliveryCount}</dd>
            <dt>Content type</dt><dd>{letter.ContentType ?? "—"}</dd>
            </dl>
            <p>{Actions(context, entity, letter.SequenceNumber, DeadLettersUrl(entity))}</p>
            <table><caption>Application properties</caption><thead><tr><th scope="col">Name</th><th scope="col">Value</th></tr></thead><tbody>{properties}</tbody></table>
            {bodyPart}
            """);
    }

    private static Markup Actions(HttpContext context, string entity, long sequenceNumber, string back)
    {
        var fields = new[] { ("entity", entity), ("sequenceNumber", sequenceNumber.ToString(CultureInfo.InvariantCulture)), ("back", back) };
        return Html.Of($"{Layout.Form(context, "/servicebus/resubmit", "Resubmit", fields, "primary", $"Resubmit message {sequenceNumber}")}{Layout.Form(context, "/servicebus/discard", "Discard", fields, "danger", $"Discard message {sequenceNumber}")}");
    }

    public static async Task<IResult> SettleAsync(HttpContext context, bool resubmit, CancellationToken cancellationToken)
    {
        if (Explorer(context) is not { } explorer)
        {
            return NotConfigured(context);
        }

        var form = await context.Request.ReadFormAsync(cancellationToken);
        var entity = form["entity"].ToString();
        if (!explorer.IsKnown(entity))
        {
            return Layout.Error(context, StatusCodes.Status404NotFound, "Dead-letter", $"'{entity}' is not a queue or subscription of this dashboard.");
        }

        if (!long.TryParse(form["sequenceNumber"], NumberStyles.None, CultureInfo.InvariantCulture, out var sequenceNumber))
        {
            return Layout.Error(context, StatusCodes.Status400BadRequest, "Dead-letter", $"'{form["sequenceNumber"]}' is not a sequence number.");
        }

        if (!await explorer.SettleDeadLetterAsync(entity, sequenceNumber, resubmit, cancellationToken))
        {
            return Layout.Error(context, StatusCodes.Status404NotFound, "Dead-letter", $"{entity} has no dead-letter with sequence number {sequenceNumber} (it may have been settled already).");
        }

        return Results.Redirect(QueuePages.WithNotice(form["back"].ToString(), resubmit ? "resubmitted" : "discarded"));
    }

    private static string DeadLettersUrl(string entity) => $"/servicebus/deadletters?entity={Html.Url(entity)}";

    private static string DetailUrl(string entity, long sequenceNumber) => $"{DeadLettersUrl(entity)}&seq={sequenceNumber.ToString(CultureInfo.InvariantCulture)}";

    private static ServiceBusExplorer? Explorer(HttpContext context) => context.RequestServices.GetRequiredService<DashboardState>().ServiceBus;

    private static IResult NotConfigured(HttpContext context) =>
        Layout.Error(context, StatusCodes.Status404NotFound, "Service Bus", "No Service Bus is configured for this dashboard (Bridge:Dashboard:ServiceBusConnectionString).");

    private static string BodyText(BinaryData body)
    {
        var bytes = body.ToArray();
        try
        {
            return bytes.Length == 0 ? "(empty)" : new UTF8Encoding(false, true).GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            return $"({bytes.Length} bytes, not UTF-8) " + Convert.ToBase64String(bytes);
        }
    }
}
