using System.Globalization;
using System.Text.Json;
using System.Xml;

namespace Bridge.Emulators.ServiceBus;

/// <summary>
/// Reads the official Service Bus emulator's Config.json (UserConfig → Namespaces → Queues / Topics → Subscriptions →
/// Rules) so users keep the file they have. Errors name the JSON path of the bad value.
/// </summary>
internal static class EmulatorConfigFile
{
    public static void ReadInto(string json, ServiceBusEmulatorOptions options)
    {
        using var document = JsonDocument.Parse(json, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        var userConfig = Property(document.RootElement, "UserConfig") ?? throw new FormatException("Config.json: 'UserConfig' is missing.");
        var namespaces = Property(userConfig, "Namespaces");
        if (namespaces is not { ValueKind: JsonValueKind.Array })
        {
            throw new FormatException("Config.json: 'UserConfig.Namespaces' must be an array.");
        }

        var n = 0;
        foreach (var ns in namespaces.Value.EnumerateArray())
        {
            var path = $"UserConfig.Namespaces[{n++}]";
            var q = 0;
            foreach (var queue in Array(ns, "Queues"))
            {
                var queuePath = $"{path}.Queues[{q++}]";
                options.Queues.Add(new QueueDefinition { Name = Name(queue, queuePath), Properties = ReadProperties(queue, queuePath) });
            }

            var t = 0;
            foreach (var topic in Array(ns, "Topics"))
            {
                var topicPath = $"{path}.Topics[{t++}]";
                var definition = new TopicDefinition { Name = Name(topic, topicPath), Properties = ReadProperties(topic, topicPath) };
                var s = 0;
                foreach (var subscription in Array(topic, "Subscriptions"))
                {
                    var subscriptionPath = $"{topicPath}.Subscriptions[{s++}]";
                    var sub = new SubscriptionDefinition { Name = Name(subscription, subscriptionPath), Properties = ReadProperties(subscription, subscriptionPath) };
                    var r = 0;
                    foreach (var rule in Array(subscription, "Rules"))
                    {
                        sub.Rules.Add(ReadRule(rule, $"{subscriptionPath}.Rules[{r++}]"));
                    }

                    definition.Subscriptions.Add(sub);
                }

                options.Topics.Add(definition);
            }
        }
    }

    static RuleDefinition ReadRule(JsonElement rule, string path)
    {
        var definition = new RuleDefinition { Name = Name(rule, path) };
        var properties = Property(rule, "Properties") ?? throw new FormatException($"Config.json: '{path}.Properties' is missing.");
        var filterType = String(properties, "FilterType", path + ".Properties");
        if (string.Equals(filterType, "Sql", StringComparison.OrdinalIgnoreCase))
        {
            var sql = Property(properties, "SqlFilter") ?? throw new FormatException($"Config.json: '{path}.Properties.SqlFilter' is missing.");
            definition.SqlExpression = String(sql, "SqlExpression", path + ".Properties.SqlFilter")
                ?? throw new FormatException($"Config.json: '{path}.Properties.SqlFilter.SqlExpression' is missing.");
        }
        else if (string.Equals(filterType, "Correlation", StringComparison.OrdinalIgnoreCase))
        {
            var c = Property(properties, "CorrelationFilter") ?? throw new FormatException($"Config.json: '{path}.Properties.CorrelationFilter' is missing.");
            var cpath = path + ".Properties.CorrelationFilter";
            var filter = new CorrelationFilterDefinition
            {
                CorrelationId = String(c, "CorrelationId", cpath),
                MessageId = String(c, "MessageId", cpath),
                To = String(c, "To", cpath),
                ReplyTo = String(c, "ReplyTo", cpath),
                Subject = String(c, "Label", cpath) ?? String(c, "Subject", cpath),
                SessionId = String(c, "SessionId", cpath),
                ReplyToSessionId = String(c, "ReplyToSessionId", cpath),
                ContentType = String(c, "ContentType", cpath),
            };
            if (Property(c, "Properties") is { ValueKind: JsonValueKind.Object } props)
            {
                foreach (var p in props.EnumerateObject())
                {
                    filter.ApplicationProperties[p.Name] = p.Value.ValueKind switch
                    {
                        JsonValueKind.String => p.Value.GetString(),
                        JsonValueKind.Number when p.Value.TryGetInt64(out var l) => l,
                        JsonValueKind.Number => p.Value.GetDouble(),
                        JsonValueKind.True => true,
                        JsonValueKind.False => false,
                        JsonValueKind.Null => null,
                        _ => throw new FormatException($"Config.json: '{cpath}.Properties.{p.Name}' must be a string, number or boolean."),
                    };
                }
            }

            definition.Correlation = filter;
        }
        else
        {
            throw new FormatException($"Config.json: '{path}.Properties.FilterType' must be 'Correlation' or 'Sql', not '{filterType}'.");
        }

        return definition;
    }

    static EntityProperties ReadProperties(JsonElement entity, string path)
    {
        var result = new EntityProperties();
        if (Property(entity, "Properties") is not { ValueKind: JsonValueKind.Object } p)
        {
            return result;
        }

        path += ".Properties";
        if (Duration(p, "LockDuration", path) is { } lockDuration)
        {
            result.LockDuration = lockDuration;
        }

        if (Property(p, "MaxDeliveryCount") is { } max)
        {
            result.MaxDeliveryCount = max.ValueKind == JsonValueKind.Number && max.TryGetInt32(out var m) && m >= 1
                ? m
                : throw new FormatException($"Config.json: '{path}.MaxDeliveryCount' must be a whole number of at least 1.");
        }

        result.DefaultMessageTimeToLive = Duration(p, "DefaultMessageTimeToLive", path);
        result.DeadLetteringOnMessageExpiration = Bool(p, "DeadLetteringOnMessageExpiration", path) ?? false;
        result.RequiresDuplicateDetection = Bool(p, "RequiresDuplicateDetection", path) ?? false;
        result.RequiresSession = Bool(p, "RequiresSession", path) ?? false;
        if (Duration(p, "DuplicateDetectionHistoryTimeWindow", path) is { } window)
        {
            result.DuplicateDetectionHistoryTimeWindow = window;
        }

        result.ForwardTo = NullIfEmpty(String(p, "ForwardTo", path));
        result.ForwardDeadLetteredMessagesTo = NullIfEmpty(String(p, "ForwardDeadLetteredMessagesTo", path));
        return result;
    }

    static string? NullIfEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;

    static IEnumerable<JsonElement> Array(JsonElement parent, string name) =>
        Property(parent, name) is { ValueKind: JsonValueKind.Array } array ? array.EnumerateArray() : [];

    static string Name(JsonElement entity, string path) =>
        NullIfEmpty(String(entity, "Name", path)) ?? throw new FormatException($"Config.json: '{path}.Name' is missing.");

    static JsonElement? Property(JsonElement parent, string name)
    {
        if (parent.ValueKind != JsonValueKind.Object)
        {
            return null;
        }

        foreach (var p in parent.EnumerateObject())
        {
            if (string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase))
            {
                return p.Value;
            }
        }

        return null;
    }

    static string? String(JsonElement parent, string name, string path) => Property(parent, name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.Null } => null,
        { ValueKind: JsonValueKind.String } s => s.GetString(),
        _ => throw new FormatException($"Config.json: '{path}.{name}' must be a string."),
    };

    static bool? Bool(JsonElement parent, string name, string path) => Property(parent, name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.True } => true,
        { ValueKind: JsonValueKind.False } => false,
        { ValueKind: JsonValueKind.String } s when bool.TryParse(s.GetString(), out var b) => b,
        _ => throw new FormatException($"Config.json: '{path}.{name}' must be true or false."),
    };

    // ISO 8601 durations ("PT1M", "P14D") as the official file uses; "hh:mm:ss" is accepted too.
    static TimeSpan? Duration(JsonElement parent, string name, string path)
    {
        var text = String(parent, name, path);
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }

        try
        {
            var value = text.StartsWith('P') || text.StartsWith("-P", StringComparison.Ordinal)
                ? XmlConvert.ToTimeSpan(text)
                : TimeSpan.Parse(text, CultureInfo.InvariantCulture);
            return value > TimeSpan.Zero ? value : throw new FormatException();
        }
        catch (Exception e) when (e is FormatException or OverflowException)
        {
            throw new FormatException($"Config.json: '{path}.{name}' must be a positive ISO 8601 duration such as 'PT1M', not '{text}'.");
        }
    }
}
