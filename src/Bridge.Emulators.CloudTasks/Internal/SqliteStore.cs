using Bridge.CloudTasks.Iam.V1;
using Bridge.CloudTasks.V2Beta3;
using Google.Protobuf;
using Microsoft.Data.Sqlite;

namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>
/// SQLite in WAL mode with synchronous=FULL: a committed write survives the process being killed at any moment.
/// One connection, used under the state's lock.
/// </summary>
internal sealed class SqliteStore : IEmulatorStore
{
    private readonly SqliteConnection _db;
    private SqliteTransaction? _tx;

    private readonly FileStream _lock;

    public SqliteStore(string directory)
    {
        Directory.CreateDirectory(directory);
        _lock = LockFolder(directory);
        _db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path.Combine(directory, "cloudtasks-emulator.db"), Pooling = false }.ToString());
        _db.Open();
        Execute("""
            PRAGMA journal_mode=WAL;
            PRAGMA synchronous=FULL;
            CREATE TABLE IF NOT EXISTS queues (name TEXT PRIMARY KEY, data BLOB NOT NULL);
            CREATE TABLE IF NOT EXISTS tasks (name TEXT PRIMARY KEY, queue TEXT NOT NULL, seq INTEGER NOT NULL, executions INTEGER NOT NULL,
                previous_response INTEGER NOT NULL, first_attempt_at INTEGER, data BLOB NOT NULL);
            CREATE INDEX IF NOT EXISTS tasks_by_queue ON tasks(queue);
            CREATE TABLE IF NOT EXISTS task_tombstones (name TEXT PRIMARY KEY, until INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS queue_tombstones (name TEXT PRIMARY KEY, until INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS policies (resource TEXT PRIMARY KEY, data BLOB NOT NULL);
            CREATE TABLE IF NOT EXISTS cmek (name TEXT PRIMARY KEY, data BLOB NOT NULL);
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            """);
    }

    public StoredState Load()
    {
        var queues = ReadAll("SELECT data FROM queues", r => Queue.Parser.ParseFrom((byte[])r[0]));
        var tasks = ReadAll("SELECT queue, seq, executions, previous_response, first_attempt_at, data FROM tasks", r => new StoredTask
        {
            QueueName = r.GetString(0),
            Sequence = r.GetInt64(1),
            ExecutionCount = r.GetInt32(2),
            PreviousResponse = r.GetInt32(3),
            FirstAttemptAt = r.IsDBNull(4) ? null : DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(4)),
            Task = Bridge.CloudTasks.V2Beta3.Task.Parser.ParseFrom((byte[])r[5]),
        });
        return new StoredState(
            queues,
            tasks,
            ReadAll("SELECT name, until FROM task_tombstones", r => (r.GetString(0), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(1)))).ToDictionary(t => t.Item1, t => t.Item2),
            ReadAll("SELECT name, until FROM queue_tombstones", r => (r.GetString(0), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(1)))).ToDictionary(t => t.Item1, t => t.Item2),
            ReadAll("SELECT resource, data FROM policies", r => (r.GetString(0), Policy.Parser.ParseFrom((byte[])r[1]))).ToDictionary(t => t.Item1, t => t.Item2),
            ReadAll("SELECT name, data FROM cmek", r => (r.GetString(0), CmekConfig.Parser.ParseFrom((byte[])r[1]))).ToDictionary(t => t.Item1, t => t.Item2));
    }

    public void SaveQueue(Queue queue) =>
        Execute("INSERT OR REPLACE INTO queues(name, data) VALUES ($n, $d)", ("$n", queue.Name), ("$d", queue.ToByteArray()));

    public void DeleteQueue(string name, DateTimeOffset reservedUntil)
    {
        InTransaction(() =>
        {
            Execute("DELETE FROM queues WHERE name = $n", ("$n", name));
            Execute("DELETE FROM tasks WHERE queue = $n", ("$n", name));
            Execute("DELETE FROM policies WHERE resource = $n", ("$n", name));
            Execute("INSERT OR REPLACE INTO queue_tombstones(name, until) VALUES ($n, $u)", ("$n", name), ("$u", reservedUntil.ToUnixTimeMilliseconds()));
        });
    }

    public void SaveTask(StoredTask task) => SaveTasks([task]);

    public void SaveTasks(IReadOnlyCollection<StoredTask> tasks)
    {
        InTransaction(() =>
        {
            foreach (var t in tasks)
            {
                Execute(
                "INSERT OR REPLACE INTO tasks(name, queue, seq, executions, previous_response, first_attempt_at, data) VALUES ($n, $q, $s, $e, $p, $f, $d)",
                ("$n", t.Name),
                ("$q", t.QueueName),
                ("$s", t.Sequence),
                ("$e", t.ExecutionCount),
                ("$p", t.PreviousResponse),
                ("$f", t.FirstAttemptAt?.ToUnixTimeMilliseconds()),
                ("$d", t.Task.ToByteArray()));
            }
        });
    }

    public void DeleteTasks(IReadOnlyCollection<string> names, DateTimeOffset reservedUntil)
    {
        InTransaction(() =>
        {
            foreach (var name in names)
            {
                Execute("DELETE FROM tasks WHERE name = $n", ("$n", name));
                Execute("INSERT OR REPLACE INTO task_tombstones(name, until) VALUES ($n, $u)", ("$n", name), ("$u", reservedUntil.ToUnixTimeMilliseconds()));
            }
        });
    }

    public void SavePolicy(string resource, Policy policy) =>
        Execute("INSERT OR REPLACE INTO policies(resource, data) VALUES ($r, $d)", ("$r", resource), ("$d", policy.ToByteArray()));

    public void SaveCmekConfig(CmekConfig config) =>
        Execute("INSERT OR REPLACE INTO cmek(name, data) VALUES ($n, $d)", ("$n", config.Name), ("$d", config.ToByteArray()));

    public void DeleteExpiredTombstones(DateTimeOffset now)
    {
        var ms = now.ToUnixTimeMilliseconds();
        Execute("DELETE FROM task_tombstones WHERE until < $t; DELETE FROM queue_tombstones WHERE until < $t", ("$t", ms));
    }

    public void Clear() =>
        Execute("DELETE FROM queues; DELETE FROM tasks; DELETE FROM task_tombstones; DELETE FROM queue_tombstones; DELETE FROM policies; DELETE FROM cmek;");

    public string GetOrCreateSigningKey(Func<string> create)
    {
        var existing = ReadAll("SELECT value FROM meta WHERE key = 'signing_key'", r => r.GetString(0)).FirstOrDefault();
        if (existing is not null)
        {
            return existing;
        }

        var key = create();
        Execute("INSERT INTO meta(key, value) VALUES ('signing_key', $v)", ("$v", key));
        return key;
    }

    public void Dispose()
    {
        _db.Dispose();
        _lock.Dispose();
    }

    /// <summary>
    /// One process per folder: two writers would each keep their own view of the queues and overwrite each other's
    /// rows. An exclusive lock on a file in the folder (released by the OS when the process dies, even by SIGKILL).
    /// </summary>
    private static FileStream LockFolder(string directory)
    {
        var path = Path.Combine(directory, "cloudtasks-emulator.lock");
        try
        {
            return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException ex)
        {
            throw new DataFolderInUseException($"The data folder {Path.GetFullPath(directory)} is in use by another emulator process; give each emulator its own --data folder.", ex);
        }
    }

    private void InTransaction(Action work)
    {
        _tx = _db.BeginTransaction();
        try
        {
            work();
            _tx.Commit();
        }
        finally
        {
            _tx.Dispose();
            _tx = null;
        }
    }

    private void Execute(string sql, params (string Name, object? Value)[] parameters)
    {
        using var command = _db.CreateCommand();
        command.Transaction = _tx;
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        }

        command.ExecuteNonQuery();
    }

    private List<T> ReadAll<T>(string sql, Func<SqliteDataReader, T> map)
    {
        using var command = _db.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        var result = new List<T>();
        while (reader.Read())
        {
            result.Add(map(reader));
        }

        return result;
    }
}

/// <summary>Another emulator process holds the data folder.</summary>
internal sealed class DataFolderInUseException(string message, Exception inner) : IOException(message, inner);
