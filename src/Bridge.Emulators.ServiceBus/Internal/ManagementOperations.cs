using System.Collections;
using Microsoft.Azure.Amqp;
using Microsoft.Azure.Amqp.Encoding;
using Microsoft.Azure.Amqp.Framing;

namespace Bridge.Emulators.ServiceBus.Internal;

/// <summary>
/// The <c>&lt;entity&gt;/$management</c> operations of Service Bus over AMQP: renew-lock, peek-message,
/// schedule-message, cancel-scheduled-message, receive-by-sequence-number and update-disposition. Answers carry
/// <c>statusCode</c>, <c>statusDescription</c> and, on failure, <c>errorCondition</c>.
/// </summary>
internal sealed class ManagementOperations(Broker broker)
{
    const string Vendor = "com.microsoft:";
    const int MaxItemsPerRequest = 5000;

    public AmqpMessage Handle(string entity, AmqpMessage request)
    {
        var operation = request.ApplicationProperties?.Map["operation"] as string;
        var body = request.ValueBody?.Value as AmqpMap;
        if (body is null && operation is not null && operation.StartsWith(Vendor, StringComparison.Ordinal))
        {
            return Error(400, Vendor + "argument-error", "The request body must be an AMQP map.");
        }

        try
        {
            return operation switch
            {
                Vendor + "renew-lock" => RenewLock(entity, body!),
                Vendor + "peek-message" => Peek(entity, body!),
                Vendor + "schedule-message" => Schedule(entity, body!),
                Vendor + "cancel-scheduled-message" => Cancel(entity, body!),
                Vendor + "receive-by-sequence-number" => ReceiveDeferred(entity, body!),
                Vendor + "update-disposition" => UpdateDisposition(entity, body!),
                Vendor + "add-rule" => AddRule(entity, body!),
                Vendor + "remove-rule" => RemoveRule(entity, body!),
                Vendor + "enumerate-rules" => EnumerateRules(entity, body!),
                _ => Error(501, AmqpErrorCode.NotImplemented.Value, $"The operation '{operation}' is not supported by this emulator."),
            };
        }
        catch (BrokerException e)
        {
            return Error(e.Condition == AmqpErrorCode.NotFound.Value || e.Condition == Vendor + "message-not-found" ? 404 : 400, e.Condition, e.Message);
        }
        catch (Exception e) when (e is InvalidCastException or ArgumentException or FormatException or NullReferenceException)
        {
            return Error(400, Vendor + "argument-error", $"The request for '{operation}' is malformed: {e.Message}");
        }
    }

    AmqpMessage RenewLock(string entity, AmqpMap body)
    {
        var expirations = broker.RenewLocks(entity, Items<Guid>(body[new MapKey("lock-tokens")], "lock-tokens"));
        return expirations is null
            ? Error(410, Vendor + "message-lock-lost", "The lock supplied is invalid. Either the lock expired, or the message has already been removed from the queue.")
            : Ok(new AmqpMap { [new MapKey("expirations")] = expirations.ToArray() });
    }

    AmqpMessage Peek(string entity, AmqpMap body)
    {
        var from = Convert.ToInt64(body[new MapKey("from-sequence-number")] ?? 0L, System.Globalization.CultureInfo.InvariantCulture);
        var count = Convert.ToInt32(body[new MapKey("message-count")] ?? 1, System.Globalization.CultureInfo.InvariantCulture);
        var messages = broker.Peek(entity, from, Math.Max(1, count));
        if (messages.Count == 0)
        {
            return Respond(204, "No messages to peek.", new AmqpMap(), null);
        }

        var list = messages.Select(m => (object)new AmqpMap { [new MapKey("message")] = new ArraySegment<byte>(m) }).ToList();
        return Ok(new AmqpMap { [new MapKey("messages")] = list });
    }

    AmqpMessage Schedule(string entity, AmqpMap body)
    {
        var messages = new List<(byte[], DateTimeOffset?)>();
        foreach (var entry in Items<AmqpMap>(body[new MapKey("messages")], "messages"))
        {
            messages.Add((MessageCodec.BytesOf(entry[new MapKey("message")]), null));
        }

        var sequenceNumbers = broker.Schedule(entity, messages);
        return Ok(new AmqpMap { [new MapKey("sequence-numbers")] = sequenceNumbers.ToArray() });
    }

    AmqpMessage Cancel(string entity, AmqpMap body) =>
        broker.CancelScheduled(entity, Items<long>(body[new MapKey("sequence-numbers")], "sequence-numbers"))
            ? Ok(new AmqpMap())
            : Error(404, Vendor + "message-not-found", "One or more of the scheduled messages were not found.");

    AmqpMessage ReceiveDeferred(string entity, AmqpMap body)
    {
        var receiveAndDelete = body[new MapKey("receiver-settle-mode")] is uint mode && mode == 0;
        var received = broker.ReceiveDeferred(entity, Items<long>(body[new MapKey("sequence-numbers")], "sequence-numbers"), receiveAndDelete);
        var list = received.Select(m => (object)new AmqpMap
        {
            [new MapKey("lock-token")] = m.LockToken,
            [new MapKey("message")] = new ArraySegment<byte>(m.Message),
        }).ToList();
        return Ok(new AmqpMap { [new MapKey("messages")] = list });
    }

    AmqpMessage UpdateDisposition(string entity, AmqpMap body)
    {
        var status = body[new MapKey("disposition-status")] as string;
        Settlement settlement = status switch
        {
            "completed" => Settlement.Complete,
            "abandoned" => Settlement.Abandon,
            "suspended" => Settlement.DeadLetter,
            "defered" or "deferred" => Settlement.Defer,
            _ => throw new ArgumentException($"disposition-status '{status}' is not completed, abandoned, suspended or defered."),
        };
        Dictionary<string, object?>? properties = null;
        if (body[new MapKey("properties-to-modify")] is AmqpMap map)
        {
            properties = map.ToDictionary(p => p.Key.ToString(), p => (object?)p.Value, StringComparer.Ordinal);
        }

        var allSettled = true;
        foreach (var token in Items<Guid>(body[new MapKey("lock-tokens")], "lock-tokens"))
        {
            allSettled &= broker.Settle(entity, token, settlement, properties, body[new MapKey("deadletter-reason")] as string, body[new MapKey("deadletter-description")] as string, out var outbound);
            Broker.Flush(outbound);
        }

        return allSettled
            ? Ok(new AmqpMap())
            : Error(410, Vendor + "message-lock-lost", "The lock supplied is invalid. Either the lock expired, or the message has already been removed from the queue.");
    }

    AmqpMessage AddRule(string entity, AmqpMap body)
    {
        var name = body[new MapKey("rule-name")] as string ?? throw new ArgumentException("'rule-name' is missing.");
        var description = body[new MapKey("rule-description")] as AmqpMap ?? throw new ArgumentException("'rule-description' is missing.");
        if (description[new MapKey("sql-rule-action")] is AmqpMap { Count: > 0 })
        {
            return Error(501, AmqpErrorCode.NotImplemented.Value, "SQL rule actions are not supported by this emulator.");
        }

        var rule = new RuleDefinition { Name = name };
        if (description[new MapKey("sql-filter")] is AmqpMap sql)
        {
            rule.SqlExpression = sql[new MapKey("expression")] as string ?? throw new ArgumentException("'sql-filter' has no 'expression'.");
        }
        else if (description[new MapKey("correlation-filter")] is AmqpMap correlation)
        {
            string? Text(string key) => correlation[new MapKey(key)] as string;
            rule.Correlation = new CorrelationFilterDefinition
            {
                CorrelationId = Text("correlation-id"),
                MessageId = Text("message-id"),
                To = Text("to"),
                ReplyTo = Text("reply-to"),
                Subject = Text("label"),
                SessionId = Text("session-id"),
                ReplyToSessionId = Text("reply-to-session-id"),
                ContentType = Text("content-type"),
            };
            if (correlation[new MapKey("properties")] is AmqpMap properties)
            {
                foreach (var pair in properties)
                {
                    rule.Correlation.ApplicationProperties[pair.Key.ToString()] = pair.Value;
                }
            }
        }
        else
        {
            throw new ArgumentException("'rule-description' has neither 'sql-filter' nor 'correlation-filter'.");
        }

        broker.AddRule(entity, rule);
        return Ok(new AmqpMap());
    }

    AmqpMessage RemoveRule(string entity, AmqpMap body)
    {
        broker.RemoveRule(entity, body[new MapKey("rule-name")] as string ?? throw new ArgumentException("'rule-name' is missing."));
        return Ok(new AmqpMap());
    }

    // Rule descriptions go back as the described types Service Bus uses (com.microsoft:rule-description:list etc.).
    // The filter codes are the ones the SDKs register, which are one hex digit shorter than the others.
    const ulong RuleDescriptionCode = 0x0000013700000004;
    const ulong EmptyRuleActionCode = 0x0000013700000005;
    const ulong SqlFilterCode = 0x000001370000006;
    const ulong TrueFilterCode = 0x000001370000007;
    const ulong FalseFilterCode = 0x000001370000008;
    const ulong CorrelationFilterCode = 0x000001370000009;

    AmqpMessage EnumerateRules(string entity, AmqpMap body)
    {
        var skip = Convert.ToInt32(body[new MapKey("skip")] ?? 0, System.Globalization.CultureInfo.InvariantCulture);
        var top = Convert.ToInt32(body[new MapKey("top")] ?? int.MaxValue, System.Globalization.CultureInfo.InvariantCulture);
        var rules = broker.Rules(entity).Skip(Math.Max(0, skip)).Take(Math.Max(0, top)).ToList();
        if (rules.Count == 0)
        {
            return Respond(204, "No rules.", new AmqpMap(), null);
        }

        var list = rules.Select(r => (object)new AmqpMap
        {
            [new MapKey("rule-description")] = new DescribedType(RuleDescriptionCode, new List<object?>
            {
                FilterOf(r.Definition),
                new DescribedType(EmptyRuleActionCode, new List<object?>()),
                r.Name,
                r.CreatedAt.UtcDateTime,
            }),
        }).ToList();
        return Ok(new AmqpMap { [new MapKey("rules")] = list });
    }

    static DescribedType FilterOf(RuleDefinition rule)
    {
        if (rule.Correlation is { } c)
        {
            var properties = new AmqpMap();
            foreach (var (key, value) in c.ApplicationProperties)
            {
                properties[new MapKey(key)] = value;
            }

            return new DescribedType(CorrelationFilterCode, new List<object?>
            {
                c.CorrelationId, c.MessageId, c.To, c.ReplyTo, c.Subject, c.SessionId, c.ReplyToSessionId, c.ContentType, properties,
            });
        }

        return rule.SqlExpression?.Replace(" ", "", StringComparison.Ordinal) switch
        {
            "1=1" => new DescribedType(TrueFilterCode, new List<object?>()),
            "1=0" => new DescribedType(FalseFilterCode, new List<object?>()),
            _ => new DescribedType(SqlFilterCode, new List<object?> { rule.SqlExpression, 20 }),
        };
    }

    static List<T> Items<T>(object? value, string name)
    {
        var items = value switch
        {
            T single => [single],
            IEnumerable enumerable and not string => enumerable.Cast<object>().Select(o => o is T t ? t : throw new ArgumentException($"'{name}' holds a {o?.GetType().Name ?? "null"}, not a {typeof(T).Name}.")).ToList(),
            _ => throw new ArgumentException($"'{name}' is missing."),
        };
        return items.Count <= MaxItemsPerRequest ? items : throw new ArgumentException($"'{name}' holds more than {MaxItemsPerRequest} items.");
    }

    static AmqpMessage Ok(AmqpMap body) => Respond(200, "OK", body, null);

    public static AmqpMessage Error(int status, string condition, string description) => Respond(status, description, null, condition);

    static AmqpMessage Respond(int status, string description, AmqpMap? body, string? condition)
    {
        var response = body is null ? AmqpMessage.Create() : AmqpMessage.Create(new AmqpValue { Value = body });
        response.ApplicationProperties.Map["statusCode"] = status;
        response.ApplicationProperties.Map["statusDescription"] = description;
        if (condition is not null)
        {
            response.ApplicationProperties.Map["errorCondition"] = new AmqpSymbol(condition);
        }

        return response;
    }
}
