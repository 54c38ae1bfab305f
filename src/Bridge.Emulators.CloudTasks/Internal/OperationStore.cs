using Bridge.CloudTasks.LongRunning;
using Google.Protobuf;
using Microsoft.Data.Sqlite;

namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>
/// The long-running operations batches return: kept (at most <see cref="MaxOperations"/>, the oldest dropped first),
/// found again by the request_id that started them, and, with a data folder, written to <c>operations.db</c> there
/// before the RPC answers. Its own lock: batches call the engine's single-task paths while no lock here is held.
/// </summary>
internal sealed class OperationStore : IDisposable
{
    /// <summary>Operations kept; past it the oldest are forgotten (GetOperation then answers NOT_FOUND).</summary>
    public const int MaxOperations = 10_000;

    private readonly Lock _gate = new();
    private readonly SortedDictionary<string, Entry> _byName = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Entry> _byRequestKey = new(StringComparer.Ordinal);
    private readonly SortedSet<(long Sequence, string Name)> _age = [];
    private readonly SqliteConnection? _db;
    private long _sequence;

    public OperationStore(string? dataDirectory)
    {
        if (string.IsNullOrWhiteSpace(dataDirectory))
        {
            return;
        }

        // The data folder is already locked by the task store (one process per folder).
        Directory.CreateDirectory(dataDirectory);
        _db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path.Combine(dataDirectory, "operations.db"), Pooling = false }.ToString());
        _db.Open();
        Execute("""
            PRAGMA journal_mode=WAL;
            PRAGMA synchronous=FULL;
            CREATE TABLE IF NOT EXISTS operations (name TEXT PRIMARY KEY, seq INTEGER NOT NULL, request_key TEXT, fingerprint TEXT NOT NULL, data BLOB NOT NULL);
            """);
        using var command = _db.CreateCommand();
        command.CommandText = "SELECT name, seq, request_key, fingerprint, data FROM operations ORDER BY seq";
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            var entry = new Entry(reader.GetString(0), reader.GetInt64(1), reader.IsDBNull(2) ? null : reader.GetString(2), reader.GetString(3))
            {
                Operation = Operation.Parser.ParseFrom((byte[])reader[4]),
            };
            entry.Done.TrySetResult();
            Index(entry);
            _sequence = Math.Max(_sequence, entry.Sequence);
        }
    }

    /// <summary>
    /// Starts an operation, or finds the one <paramref name="requestKey"/> already started. A new one is returned with
    /// <c>IsNew</c> true and must be finished with <see cref="Complete"/>; an existing one is returned as it stands
    /// (possibly still running). The same key with another <paramref name="fingerprint"/> is a different request
    /// reusing the id: INVALID_ARGUMENT.
    /// </summary>
    public (Operation Operation, bool IsNew) Begin(string name, string? requestKey, string fingerprint, Operation running)
    {
        lock (_gate)
        {
            if (requestKey is not null && _byRequestKey.TryGetValue(requestKey, out var existing))
            {
                if (existing.Fingerprint != fingerprint)
                {
                    throw Errors.InvalidArgument("request_id", "request_id was already used for a different request; use a new UUID for a new request.");
                }

                return (existing.Operation.Clone(), false);
            }

            var entry = new Entry(name, ++_sequence, requestKey, fingerprint) { Operation = running.Clone() };
            Index(entry);
            return (entry.Operation.Clone(), true);
        }
    }

    /// <summary>Records the finished operation (durably, when there is a data folder) and wakes its waiters.</summary>
    public void Complete(Operation done)
    {
        Entry? entry;
        lock (_gate)
        {
            if (!_byName.TryGetValue(done.Name, out entry))
            {
                return; // deleted or reset while it ran
            }

            entry.Operation = done.Clone();
            if (_db is not null)
            {
                Execute(
                    "INSERT OR REPLACE INTO operations(name, seq, request_key, fingerprint, data) VALUES ($n, $s, $k, $f, $d)",
                    ("$n", entry.Name), ("$s", entry.Sequence), ("$k", entry.RequestKey), ("$f", entry.Fingerprint), ("$d", done.ToByteArray()));
            }

            TrimOldest();
        }

        entry.Done.TrySetResult();
    }

    /// <summary>Forgets an operation that did not get as far as running (its batch was refused as a whole).</summary>
    public void Abandon(string name)
    {
        lock (_gate)
        {
            if (_byName.TryGetValue(name, out var entry))
            {
                Remove(entry);
                entry.Done.TrySetResult();
            }
        }
    }

    public Operation Get(string name)
    {
        lock (_gate)
        {
            return Require(name).Operation.Clone();
        }
    }

    /// <summary>The operations whose names start with <paramref name="prefix"/>, in name order, after <paramref name="after"/>.</summary>
    public List<Operation> List(string prefix, string after, int take)
    {
        lock (_gate)
        {
            return _byName.Where(e => e.Key.StartsWith(prefix, StringComparison.Ordinal) && string.CompareOrdinal(e.Key, after) > 0)
                .Take(take)
                .Select(e => e.Value.Operation.Clone())
                .ToList();
        }
    }

    public void Delete(string name)
    {
        lock (_gate)
        {
            Remove(Require(name));
        }
    }

    /// <summary>The operation once it is done, or as it stands when <paramref name="cancellationToken"/> fires.</summary>
    public async Task<Operation> WaitAsync(string name, CancellationToken cancellationToken)
    {
        Entry entry;
        lock (_gate)
        {
            entry = Require(name);
        }

        try
        {
            await entry.Done.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Timed out: WaitOperation answers the operation as it is, not an error.
        }

        lock (_gate)
        {
            return entry.Operation.Clone();
        }
    }

    public void Clear()
    {
        lock (_gate)
        {
            foreach (var entry in _byName.Values)
            {
                entry.Done.TrySetResult();
            }

            _byName.Clear();
            _byRequestKey.Clear();
            _age.Clear();
            if (_db is not null)
            {
                Execute("DELETE FROM operations");
            }
        }
    }

    public void Dispose() => _db?.Dispose();

    private Entry Require(string name) =>
        _byName.TryGetValue(name, out var entry) ? entry : throw Errors.NotFound($"Operation {name} does not exist (it may have been deleted, or dropped as one of the oldest).");

    private void Index(Entry entry)
    {
        _byName[entry.Name] = entry;
        _age.Add((entry.Sequence, entry.Name));
        if (entry.RequestKey is not null)
        {
            _byRequestKey[entry.RequestKey] = entry;
        }
    }

    private void Remove(Entry entry)
    {
        _byName.Remove(entry.Name);
        _age.Remove((entry.Sequence, entry.Name));
        if (entry.RequestKey is not null && _byRequestKey.TryGetValue(entry.RequestKey, out var indexed) && indexed == entry)
        {
            _byRequestKey.Remove(entry.RequestKey);
        }

        if (_db is not null)
        {
            Execute("DELETE FROM operations WHERE name = $n", ("$n", entry.Name));
        }
    }

    /// <summary>Drops the oldest finished operations past the bound; running ones are never dropped.</summary>
    private void TrimOldest()
    {
        while (_byName.Count > MaxOperations)
        {
            var oldest = _age.Select(a => _byName[a.Name]).FirstOrDefault(e => e.Operation.Done);
            if (oldest is null)
            {
                return;
            }

            Remove(oldest);
        }
    }

    private void Execute(string sql, params (string Name, object? Value)[] parameters)
    {
        using var command = _db!.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        }

        command.ExecuteNonQuery();
    }

    private sealed class Entry(string name, long sequence, string? requestKey, string fingerprint)
    {
        public string Name { get; } = name;

        public long Sequence { get; } = sequence;

        public string? RequestKey { get; } = requestKey;

        public string Fingerprint { get; } = fingerprint;

        public required Operation Operation { get; set; }

        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
