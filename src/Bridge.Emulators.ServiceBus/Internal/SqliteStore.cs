using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Data.Sqlite;

namespace Bridge.Emulators.ServiceBus.Internal;

/// <summary>
/// SQLite in WAL mode: once a send or settlement is acknowledged its transaction is committed to the log, and it
/// survives the process being killed at any moment. synchronous=NORMAL (no fsync per commit) is enough for that and four
/// times faster; only an operating system crash could lose the last commits. Locks are not kept: after a restart locked
/// messages are available again, with the delivery count they had.
/// </summary>
internal sealed class SqliteStore : IMessageStore
{
    readonly SqliteConnection db;
    SqliteTransaction? transaction;
    int batchDepth;
    long lastSequenceNumber;

    public SqliteStore(string directory)
    {
        Directory.CreateDirectory(directory);
        db = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = Path.Combine(directory, "servicebus-emulator.db"),
            Pooling = false,
        }.ToString());
        db.Open();
        Execute("""
            PRAGMA journal_mode=WAL;
            PRAGMA synchronous=NORMAL;
            CREATE TABLE IF NOT EXISTS messages (
                entity TEXT NOT NULL, seq INTEGER NOT NULL, state INTEGER NOT NULL, delivery_count INTEGER NOT NULL,
                enqueued INTEGER NOT NULL, scheduled INTEGER, expires INTEGER, message_id TEXT, deadletter_source TEXT,
                data BLOB NOT NULL, PRIMARY KEY (entity, seq));
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS rules (entity TEXT PRIMARY KEY, data TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS message_ids (entity TEXT NOT NULL, message_id TEXT NOT NULL, seen INTEGER NOT NULL,
                PRIMARY KEY (entity, message_id));
            """);
        using var command = db.CreateCommand();
        command.CommandText = "SELECT MAX(v) FROM (SELECT value AS v FROM meta WHERE key = 'last_seq' UNION ALL SELECT MAX(seq) FROM messages)";
        lastSequenceNumber = command.ExecuteScalar() is long l ? l : 0;
    }

    public long LastSequenceNumber => lastSequenceNumber;

    public void Upsert(string entityPath, BrokerMessage message)
    {
        using var batch = Batch();
        Execute(
            "INSERT OR REPLACE INTO messages(entity, seq, state, delivery_count, enqueued, scheduled, expires, message_id, deadletter_source, data) " +
            "VALUES ($e, $s, $st, $d, $en, $sc, $ex, $id, $dl, $data)",
            ("$e", entityPath),
            ("$s", message.SequenceNumber),
            ("$st", (int)message.State),
            ("$d", message.DeliveryCount),
            ("$en", message.EnqueuedTime.ToUnixTimeMilliseconds()),
            ("$sc", message.ScheduledEnqueueTime?.ToUnixTimeMilliseconds()),
            ("$ex", message.ExpiresAt?.ToUnixTimeMilliseconds()),
            ("$id", message.MessageId),
            ("$dl", message.DeadLetterSource),
            ("$data", message.Encoded));
        if (message.SequenceNumber > lastSequenceNumber)
        {
            lastSequenceNumber = message.SequenceNumber;
            Execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('last_seq', $v)", ("$v", lastSequenceNumber));
        }
    }

    public void Delete(string entityPath, long sequenceNumber)
    {
        using var batch = Batch();
        Execute("DELETE FROM messages WHERE entity = $e AND seq = $s", ("$e", entityPath), ("$s", sequenceNumber));
    }

    public IDisposable Batch()
    {
        if (batchDepth++ == 0)
        {
            transaction = db.BeginTransaction();
        }

        return new BatchScope(this);
    }

    sealed class BatchScope(SqliteStore store) : IDisposable
    {
        bool done;

        public void Dispose()
        {
            if (done)
            {
                return;
            }

            done = true;
            if (--store.batchDepth == 0)
            {
                var committing = store.transaction!;
                store.transaction = null;
                committing.Commit();
                committing.Dispose();
            }
        }
    }

    public IEnumerable<(string EntityPath, BrokerMessage Message)> Load()
    {
        var result = new List<(string, BrokerMessage)>();
        using var command = db.CreateCommand();
        command.CommandText = "SELECT entity, seq, state, delivery_count, enqueued, scheduled, expires, message_id, deadletter_source, data FROM messages ORDER BY seq";
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            result.Add((reader.GetString(0), new BrokerMessage
            {
                SequenceNumber = reader.GetInt64(1),
                State = (MessageState)reader.GetInt32(2),
                DeliveryCount = reader.GetInt32(3),
                EnqueuedTime = DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(4)),
                ScheduledEnqueueTime = reader.IsDBNull(5) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(5)),
                ExpiresAt = reader.IsDBNull(6) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(6)),
                MessageId = reader.IsDBNull(7) ? null : reader.GetString(7),
                DeadLetterSource = reader.IsDBNull(8) ? null : reader.GetString(8),
                Encoded = (byte[])reader[9],
            }));
        }

        return result;
    }

    public void RecordMessageId(string entityPath, string messageId, DateTimeOffset seen)
    {
        using var batch = Batch();
        Execute("INSERT OR REPLACE INTO message_ids(entity, message_id, seen) VALUES ($e, $m, $s)",
            ("$e", entityPath), ("$m", messageId), ("$s", seen.ToUnixTimeMilliseconds()));
    }

    public IEnumerable<(string EntityPath, string MessageId, DateTimeOffset Seen)> LoadMessageIds()
    {
        var result = new List<(string, string, DateTimeOffset)>();
        using var command = db.CreateCommand();
        command.CommandText = "SELECT entity, message_id, seen FROM message_ids";
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            result.Add((reader.GetString(0), reader.GetString(1), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(2))));
        }

        return result;
    }

    public void ForgetMessageIds(string entityPath, DateTimeOffset seenBefore)
    {
        using var batch = Batch();
        Execute("DELETE FROM message_ids WHERE entity = $e AND seen < $s", ("$e", entityPath), ("$s", seenBefore.ToUnixTimeMilliseconds()));
    }

    public void SaveRules(string subscriptionPath, IReadOnlyList<RuleDefinition> rules)
    {
        using var batch = Batch();
        Execute("INSERT OR REPLACE INTO rules(entity, data) VALUES ($e, $d)", ("$e", subscriptionPath), ("$d", StoredRules.Serialize(rules)));
    }

    public IEnumerable<(string SubscriptionPath, IReadOnlyList<RuleDefinition> Rules)> LoadRules()
    {
        var result = new List<(string, IReadOnlyList<RuleDefinition>)>();
        using var command = db.CreateCommand();
        command.CommandText = "SELECT entity, data FROM rules";
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            result.Add((reader.GetString(0), StoredRules.Deserialize(reader.GetString(1))));
        }

        return result;
    }

    void Execute(string sql, params (string Name, object? Value)[] parameters)
    {
        using var command = db.CreateCommand();
        command.CommandText = sql;
        command.Transaction = transaction;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        }

        command.ExecuteNonQuery();
    }

    public void Dispose()
    {
        transaction?.Dispose();
        db.Dispose();
    }
}

/// <summary>Rules as JSON, application property values with their type so numbers stay numbers.</summary>
internal static class StoredRules
{
    public static string Serialize(IReadOnlyList<RuleDefinition> rules)
    {
        var array = new JsonArray();
        foreach (var rule in rules)
        {
            var node = new JsonObject { ["name"] = rule.Name, ["sql"] = rule.SqlExpression };
            if (rule.Correlation is { } c)
            {
                var properties = new JsonObject();
                foreach (var (key, value) in c.ApplicationProperties)
                {
                    properties[key] = value switch
                    {
                        null => null,
                        string s => new JsonObject { ["string"] = s },
                        bool b => new JsonObject { ["bool"] = b },
                        double or float or decimal => new JsonObject { ["double"] = Convert.ToDouble(value, System.Globalization.CultureInfo.InvariantCulture) },
                        _ => new JsonObject { ["long"] = Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture) },
                    };
                }

                node["correlation"] = new JsonObject
                {
                    ["correlationId"] = c.CorrelationId,
                    ["messageId"] = c.MessageId,
                    ["to"] = c.To,
                    ["replyTo"] = c.ReplyTo,
                    ["subject"] = c.Subject,
                    ["sessionId"] = c.SessionId,
                    ["replyToSessionId"] = c.ReplyToSessionId,
                    ["contentType"] = c.ContentType,
                    ["properties"] = properties,
                };
            }

            array.Add(node);
        }

        return array.ToJsonString();
    }

    public static IReadOnlyList<RuleDefinition> Deserialize(string json)
    {
        var result = new List<RuleDefinition>();
        foreach (var node in JsonNode.Parse(json)!.AsArray())
        {
            var rule = new RuleDefinition { Name = (string)node!["name"]!, SqlExpression = (string?)node["sql"] };
            if (node["correlation"] is JsonObject c)
            {
                rule.Correlation = new CorrelationFilterDefinition
                {
                    CorrelationId = (string?)c["correlationId"],
                    MessageId = (string?)c["messageId"],
                    To = (string?)c["to"],
                    ReplyTo = (string?)c["replyTo"],
                    Subject = (string?)c["subject"],
                    SessionId = (string?)c["sessionId"],
                    ReplyToSessionId = (string?)c["replyToSessionId"],
                    ContentType = (string?)c["contentType"],
                };
                foreach (var (key, value) in c["properties"]?.AsObject() ?? [])
                {
                    rule.Correlation.ApplicationProperties[key] = value switch
                    {
                        null => null,
                        JsonObject o when o["string"] is { } s => (string?)s,
                        JsonObject o when o["bool"] is { } b => (bool)b,
                        JsonObject o when o["double"] is { } d => (double)d,
                        JsonObject o when o["long"] is { } l => (long)l,
                        _ => throw new JsonException($"Stored rule '{rule.Name}' has an unreadable property '{key}'."),
                    };
                }
            }

            result.Add(rule);
        }

        return result;
    }
}
