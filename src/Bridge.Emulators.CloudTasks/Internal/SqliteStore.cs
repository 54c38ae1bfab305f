using Bridge.CloudTasks.Iam.V1;
using Bridge.CloudTasks.V2Beta3;
using Google.Protobuf;
using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>
/// SQLite in WAL mode. With <see cref="EmulatorDurability.ProcessCrash"/> (synchronous=NORMAL) a commit is written
/// to the WAL before it returns, so it survives the process being killed at any moment (SIGKILL), but the WAL is
/// fsynced only at checkpoints, so an OS crash or power loss may take back the last commits. With
/// <see cref="EmulatorDurability.PowerLoss"/> (synchronous=FULL) every commit is fsynced too.
/// Writes are queued in the order the state makes them (under its lock) and committed by one writer thread, which
/// puts everything queued meanwhile into one transaction (group commit): many calls share one fsync, and
/// <see cref="WhenDurable"/> tells each caller when its own writes are on disk.
/// <para>
/// Writes that a caller waits for (a CreateTask, a queue change: <see cref="WhenDurable"/>) are committed at once.
/// Writes that only background work waits for (a dispatched attempt's start and outcome:
/// <see cref="WhenDurableLater"/>) may wait up to <see cref="GatherWindow"/>, or until <see cref="GatherEnough"/>
/// writes are pending, so one commit carries many of them (each commit rewrites every page it touches: the tasks
/// table's last pages, an index page per queue, deleted_names); anything urgent arriving meanwhile commits everything
/// pending at once, and so does <see cref="Dispose"/>. The crash story is the one a SIGKILL before an outcome's commit
/// always had: killed within the window, the outcome is not on disk and the task is delivered again after a restart;
/// nothing acknowledged to a caller is ever in the window (a create is answered only after its commit).
/// </para>
/// <para>
/// Queuing a write does not wake the writer; asking for its commit does, once per commit (the first
/// <see cref="WhenDurable"/> or <see cref="WhenDurableLater"/> since the last commit; an urgent one also ends a
/// gathering wait). Every write the state makes is followed by one of them; a write nobody asks for is committed
/// within <see cref="DefaultUnannouncedBound"/> all the same.
/// </para>
/// </summary>
internal sealed class SqliteStore : IEmulatorStore
{
    /// <summary>Writes per transaction at most, so one huge batch does not delay everyone queued behind it.</summary>
    internal const int MaxBatch = 4096;

    /// <summary>How long writes nobody waits for may gather before they are committed (a latency bound, real time).</summary>
    internal static readonly TimeSpan DefaultGatherWindow = TimeSpan.FromMilliseconds(2);

    /// <summary>Pending writes that are enough for a commit of their own, window or not.</summary>
    internal const int GatherEnough = 256;

    /// <summary>
    /// How long the idle writer waits before it looks for writes nobody asked to commit (a write is announced by
    /// <see cref="WhenDurable"/> or <see cref="WhenDurableLater"/>, which wake the writer; queuing one does not): such a
    /// write is committed within this bound. A backstop: every write the state makes is followed by one of them.
    /// </summary>
    internal static readonly TimeSpan DefaultUnannouncedBound = TimeSpan.FromSeconds(1);

    private readonly SqliteConnection _db;
    private readonly FileStream _lock;
    private readonly Thread _writer;
    private readonly object _queueGate = new(); // a monitor: the writer waits on it for work
    private List<PendingWrite> _pending = [];
    private List<PendingWrite>? _spareBatch; // the writer's: the last batch's list, emptied, taken as the next pending list (one grown anew per commit cost ~100 B per dispatched success)
    private TaskCompletionSource _pendingCommit = NewCommit();
    private System.Threading.Tasks.Task _committing = System.Threading.Tasks.Task.CompletedTask;
    private bool _stopping;
    private bool _urgent; // a caller waits for what is pending: the writer commits it without gathering more
    private bool _requested; // someone waits for what is pending (urgent or not): the writer has been woken for it
    private long _writerWakeUps;
    private readonly long _gatherTicks; // Stopwatch ticks
    private readonly int _unannouncedMs;
    private long _commits;
    private long _failedCommits;
    private Exception? _failure; // set after a failed commit, until the state has taken the failed changes back
    private Action? _commitFailed;
    private SqliteTransaction? _tx; // only while the tasks table is created or migrated at open; commits use the statements below
    private SqliteCommand? _begin;
    private SqliteCommand? _commit;
    private SqliteCommand? _rollback;
    private RawStatement? _upsertTask;
    private RawStatement? _deleteTaskByName;
    private RawStatement? _upsertTombstone;

    /// <summary>Transactions committed so far (each one fsync): many writes share one.</summary>
    public long Commits => Interlocked.Read(ref _commits);

    /// <summary>Times the writer came back from waiting (woken or timed out), for tests and benches: wake-ups per commit.</summary>
    internal long WriterWakeUps => Interlocked.Read(ref _writerWakeUps);

    /// <summary>How long writes that only background work waits for may gather before their commit.</summary>
    internal TimeSpan GatherWindow { get; }

    /// <summary>
    /// Tests: runs on the writer inside each transaction, just before it commits; a throw fails that commit as a
    /// full disk would (the transaction is rolled back).
    /// </summary>
    internal Action? BeforeCommit { get; set; }

    public SqliteStore(string directory, EmulatorDurability durability = EmulatorDurability.ProcessCrash)
        : this(directory, durability, DefaultGatherWindow)
    {
    }

    /// <summary>
    /// Tests choose the gathering window (a long one shows that nothing urgent waits for it) and the bound for writes
    /// nobody asks to commit (a long one shows which writes are asked for).
    /// </summary>
    internal SqliteStore(string directory, EmulatorDurability durability, TimeSpan gatherWindow, TimeSpan? unannouncedBound = null)
    {
        GatherWindow = gatherWindow;
        _unannouncedMs = (int)Math.Min(int.MaxValue - 1, (unannouncedBound ?? DefaultUnannouncedBound).TotalMilliseconds);
        _gatherTicks = (long)(gatherWindow.TotalSeconds * System.Diagnostics.Stopwatch.Frequency);
        Directory.CreateDirectory(directory);
        _lock = LockFolder(directory);
        _db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path.Combine(directory, "cloudtasks-emulator.db"), Pooling = false }.ToString());
        _db.Open();
        // A checkpoint every 4,096 WAL pages (16 MB), not SQLite's 1,000: a page written by many commits (the tasks
        // table's last page) is copied into the database once per checkpoint, and each checkpoint is one fsync.
        Execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=" + (durability == EmulatorDurability.PowerLoss ? "FULL" : "NORMAL")
            + "; PRAGMA wal_autocheckpoint=4096; PRAGMA journal_size_limit=67108864; PRAGMA temp_store=MEMORY;");
        CreateOrMigrateTasksTable();
        Execute("""
            CREATE TABLE IF NOT EXISTS queues (name TEXT PRIMARY KEY, data BLOB NOT NULL);
            CREATE TABLE IF NOT EXISTS task_tombstones (name TEXT PRIMARY KEY, until INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS queue_tombstones (name TEXT PRIMARY KEY, until INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS policies (resource TEXT PRIMARY KEY, data BLOB NOT NULL);
            CREATE TABLE IF NOT EXISTS cmek (name TEXT PRIMARY KEY, data BLOB NOT NULL);
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE INDEX IF NOT EXISTS task_tombstones_by_until ON task_tombstones(until);
            CREATE TABLE IF NOT EXISTS purged_names (seq INTEGER PRIMARY KEY, name TEXT NOT NULL, until INTEGER NOT NULL);
            CREATE INDEX IF NOT EXISTS purged_names_by_until ON purged_names(until);
            CREATE TABLE IF NOT EXISTS deleted_names (id INTEGER PRIMARY KEY, name TEXT NOT NULL, until INTEGER NOT NULL);
            CREATE INDEX IF NOT EXISTS deleted_names_by_until ON deleted_names(until);
            CREATE TABLE IF NOT EXISTS purges (queue TEXT NOT NULL, through INTEGER NOT NULL, until INTEGER NOT NULL, PRIMARY KEY (queue, through));
            """);
        Enqueue(ResumePurges); // purges acknowledged before a restart whose rows are not all moved yet
        _urgent = true; // committed as the writer starts, not after a window: what comes next is the callers'
        _writer = new Thread(WriteLoop) { IsBackground = true, Name = "cloudtasks-emulator-store" };
        _writer.Start();
    }

    /// <summary>SQLite's synchronous setting on the writer's connection (1 NORMAL, 2 FULL): tests read it back.</summary>
    internal long Synchronous => OnWriter(() => ReadAll("PRAGMA synchronous", r => r.GetInt64(0))[0]);

    public StoredState Load() => OnWriter(() =>
    {
        var queues = ReadAll("SELECT data FROM queues", r => Queue.Parser.ParseFrom((byte[])r[0]));
        var queueNames = queues.ToDictionary(q => q.Name, q => q.Name, StringComparer.Ordinal); // one string per queue, shared by its tasks
        // A row under a purge record (its queue's, through a sequence at least its own) was purged: only its name is
        // kept, reserved until the purge's until, as the rows the purge's slices already moved to purged_names.
        var purged = new List<(string Name, DateTimeOffset Until)>();
        purged.AddRange(ReadAll(
            "SELECT t.name, MIN(p.until) FROM purges p JOIN tasks t ON t.queue = p.queue AND t.seq <= p.through GROUP BY t.seq",
            r => (r.GetString(0), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(1)))));
        purged.AddRange(ReadAll("SELECT name, until FROM purged_names", r => (r.GetString(0), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(1)))));
        purged.AddRange(ReadAll("SELECT name, until FROM deleted_names", r => (r.GetString(0), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(1)))));

        var tasks = ReadAll("SELECT t.queue, t.seq, t.executions, t.previous_response, t.first_attempt_at, t.data, t.name FROM tasks t WHERE NOT EXISTS (SELECT 1 FROM purges p WHERE p.queue = t.queue AND p.through >= t.seq)", r =>
        {
            var task = Bridge.CloudTasks.V2Beta3.Task.Parser.ParseFrom((byte[])r[5]);
            task.Name = r.GetString(6); // the data leaves the name out (rows written before that have it too)
            return new StoredTask
            {
                QueueName = queueNames.GetValueOrDefault(r.GetString(0)) ?? r.GetString(0),
                Sequence = r.GetInt64(1),
                ExecutionCount = r.GetInt32(2),
                PreviousResponse = r.GetInt32(3),
                FirstAttemptAt = r.IsDBNull(4) ? null : DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(4)),
                Task = task,
            };
        });
        var tombstones = ReadAll("SELECT name, until FROM task_tombstones", r => (r.GetString(0), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(1)))).ToDictionary(t => t.Item1, t => t.Item2);
        foreach (var (name, until) in purged)
        {
            tombstones[name] = tombstones.TryGetValue(name, out var other) && other > until ? other : until;
        }

        return new StoredState(
            queues,
            tasks,
            tombstones,
            ReadAll("SELECT name, until FROM queue_tombstones", r => (r.GetString(0), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(1)))).ToDictionary(t => t.Item1, t => t.Item2),
            ReadAll("SELECT resource, data FROM policies", r => (r.GetString(0), Policy.Parser.ParseFrom((byte[])r[1]))).ToDictionary(t => t.Item1, t => t.Item2),
            ReadAll("SELECT name, data FROM cmek", r => (r.GetString(0), CmekConfig.Parser.ParseFrom((byte[])r[1]))).ToDictionary(t => t.Item1, t => t.Item2),
            ReadAll(
                "SELECT MAX(last) FROM (SELECT MAX(seq) AS last FROM tasks UNION ALL SELECT MAX(seq) FROM purged_names UNION ALL SELECT MAX(through) FROM purges)",
                r => r.IsDBNull(0) ? 0L : r.GetInt64(0))[0]);
    });

    public void SaveQueue(Queue queue)
    {
        var (name, data) = (queue.Name, queue.ToByteArray());
        Enqueue(() => Execute("INSERT OR REPLACE INTO queues(name, data) VALUES ($n, $d)", ("$n", name), ("$d", data)));
    }

    public void DeleteQueue(string name, DateTimeOffset reservedUntil)
    {
        var until = reservedUntil.ToUnixTimeMilliseconds();
        Enqueue(() =>
        {
            Execute("DELETE FROM queues WHERE name = $n", ("$n", name));
            // Rows under a purge record stay for its slices, which move their names to purged_names.
            Execute("DELETE FROM tasks WHERE queue = $n AND seq > COALESCE((SELECT MAX(through) FROM purges WHERE queue = $n), 0)", ("$n", name));
            Execute("DELETE FROM policies WHERE resource = $n", ("$n", name));
            Execute("INSERT OR REPLACE INTO queue_tombstones(name, until) VALUES ($n, $u)", ("$n", name), ("$u", until));
        });
    }

    public void SaveTask(StoredTask task) => Enqueue(new PendingWrite(WriteKind.Upsert, Payload: Snapshot(task)));

    public SupersedableWrite? SaveTaskSupersedable(StoredTask task)
    {
        var write = new SupersedableWrite();
        Enqueue(new PendingWrite(WriteKind.UpsertSupersedable, Payload: new SupersedableRow(Snapshot(task), write)));
        Interlocked.Increment(ref _supersedableWrites);
        return write;
    }

    private long _supersededWrites;
    private long _supersedableWrites;

    /// <summary>Supersedable writes queued: attempt starts written because the attempt lasted (for tests and benches).</summary>
    internal long SupersedableWrites => Interlocked.Read(ref _supersedableWrites);

    /// <summary>Writes skipped because a later write of their row came before the writer ran them (for tests and benches).</summary>
    internal long SupersededWrites => Interlocked.Read(ref _supersededWrites);

    /// <summary>One queued write for them all (a batch): one entry of the group commit, not one per task.</summary>
    public void SaveTasks(IReadOnlyCollection<StoredTask> tasks)
    {
        var rows = new TaskRow[tasks.Count];
        var i = 0;
        foreach (var task in tasks)
        {
            rows[i++] = Snapshot(task);
        }

        Enqueue(new PendingWrite(WriteKind.UpsertMany, Payload: rows));
    }

    /// <summary>A snapshot taken now: the task object changes after this returns, the row must not.</summary>
    private static TaskRow Snapshot(StoredTask task) =>
        new(task.Name, task.QueueName, task.Sequence, task.ExecutionCount, task.PreviousResponse, task.FirstAttemptAt?.ToUnixTimeMilliseconds(), task.Serialized);

    /// <summary>
    /// By name alone (a task no longer in memory): the row is found among its queue's rows (the queue's index), as
    /// the rows are keyed by creation sequence. Rare (storage catching up after a failed commit); the usual deletions
    /// know the task and go by its key (<see cref="DeleteStoredTasks"/>).
    /// </summary>
    public void DeleteTasks(IReadOnlyCollection<string> names, DateTimeOffset reservedUntil)
    {
        var until = reservedUntil.ToUnixTimeMilliseconds();
        var rows = names.Select(n => (Name: n, Queue: QueueOf(n))).ToList();
        Enqueue(() =>
        {
            _deleteTaskByName ??= new RawStatement(_db.Handle!, "DELETE FROM tasks WHERE queue = ?1 AND name = ?2");
            foreach (var (name, queue) in rows)
            {
                _deleteTaskByName.Bind(1, queue);
                _deleteTaskByName.Bind(2, name);
                _deleteTaskByName.Execute();
                AddTombstone(name, until);
            }
        });
    }

    /// <summary>
    /// The reservation is appended to deleted_names (keyed by a rowid SQLite gives out in order), not written into
    /// task_tombstones, keyed by name: there every deletion (each dispatched task's success) went in at a random place of
    /// the name index, a page of it rewritten per deletion. Not keyed by the task's sequence as purged_names is: a
    /// deleted task's row is gone, so after a restart its sequence can be given out again (the state continues past
    /// the sequences still on disk), and a replaced row would end another name's reservation early. Load and the sweep read every table of reservations.
    /// </summary>
    public void DeleteStoredTasks(IReadOnlyCollection<StoredTask> tasks, DateTimeOffset reservedUntil)
    {
        var until = reservedUntil.ToUnixTimeMilliseconds();
        if (tasks.Count == 1)
        {
            foreach (var task in tasks)
            {
                Enqueue(new PendingWrite(WriteKind.Delete, Name: task.Name, Sequence: task.Sequence, Until: until)); // both fixed for a task's life
            }

            return;
        }

        var rows = new (string Name, long Sequence)[tasks.Count];
        var i = 0;
        foreach (var task in tasks)
        {
            rows[i++] = (task.Name, task.Sequence);
        }

        Enqueue(new PendingWrite(WriteKind.DeleteMany, Payload: rows, Until: until)); // one entry: one call's deletions are never split between commits
    }

    private void AddTombstone(string name, long until)
    {
        _upsertTombstone ??= new RawStatement(_db.Handle!, "INSERT OR REPLACE INTO task_tombstones(name, until) VALUES (?1, ?2)");
        _upsertTombstone.Bind(1, name);
        _upsertTombstone.Bind(2, until);
        _upsertTombstone.Execute();
    }

    private static string QueueOf(string taskName)
    {
        var end = taskName.LastIndexOf("/tasks/", StringComparison.Ordinal);
        return end < 0 ? taskName : taskName[..end];
    }

    /// <summary>
    /// The purge itself is one small row (the queue, the last sequence written for it, the reservation's end): from
    /// its commit on, every row of the queue up to that sequence counts as purged (<see cref="Load"/> reads them as
    /// tombstones), so the call is acknowledged after one short transaction and survives SIGKILL. The rows then move
    /// to purged_names a slice per transaction (<see cref="PurgeSlice"/>), behind other calls' writes, never one
    /// transaction of a million; a failed commit of the record takes nothing else with it.
    /// </summary>
    public void PurgeTasks(string queueName, IReadOnlyCollection<string> names, DateTimeOffset reservedUntil)
    {
        var until = reservedUntil.ToUnixTimeMilliseconds();
        Enqueue(() =>
        {
            var through = ReadAll("SELECT MAX(seq) FROM tasks WHERE queue = $q", r => r.IsDBNull(0) ? (long?)null : r.GetInt64(0), ("$q", queueName))[0];
            if (through is not { } last)
            {
                return; // nothing written for the queue: nothing to purge on disk
            }

            Execute("INSERT OR REPLACE INTO purges(queue, through, until) VALUES ($q, $t, $u)", ("$q", queueName), ("$t", last), ("$u", until));
            StartPurgeSlices(queueName, last, until);
        });
    }

    /// <summary>
    /// Rows moved per transaction by a purge's slices: other calls' commits wait behind a slice, so it stays small;
    /// the names append to purged_names, so smaller slices do not cost more in all (measured: 250 rows against 1,000
    /// halved the creates delayed over 50 ms while a 100,000-task purge moved, in the same total time).
    /// </summary>
    internal const int PurgeSliceRows = 250;

    /// <summary>Purge records whose slices are queued (touched on the writer only): one chain each.</summary>
    private readonly HashSet<(string Queue, long Through)> _purgesMoving = [];

    /// <summary>Tests: the purges whose rows are not all moved yet (read on the writer).</summary>
    internal long PendingPurges => OnWriter(() => ReadAll("SELECT COUNT(*) FROM purges", r => r.GetInt64(0))[0]);

    private void StartPurgeSlices(string queue, long through, long until)
    {
        if (_purgesMoving.Add((queue, through)))
        {
            EnqueueFromWriter(() => PurgeSlice(queue, through, until));
        }
    }

    /// <summary>On the writer: starts the slices of every purge record not already moving (at open, and at each sweep).</summary>
    private void ResumePurges()
    {
        foreach (var (queue, through, until) in ReadAll("SELECT queue, through, until FROM purges", r => (r.GetString(0), r.GetInt64(1), r.GetInt64(2))))
        {
            StartPurgeSlices(queue, through, until);
        }
    }

    /// <summary>
    /// The oldest slice of the purge's rows: names to purged_names, rows deleted by their key; when the last slice is
    /// done the record goes in the same transaction. Each transaction leaves the disk meaning the same thing.
    /// purged_names is keyed by the rows' own sequence, so a slice appends at its end: moved into task_tombstones (keyed
    /// by name) a slice wrote its names at random places, most of that B-tree's pages each time, and other calls'
    /// commits waited behind it (measured: creates waited seconds behind the slices of a 100,000-task purge).
    /// </summary>
    private void PurgeSlice(string queue, long through, long until)
    {
        var seqs = ReadAll("SELECT seq FROM tasks WHERE queue = $q AND seq <= $t ORDER BY seq LIMIT $n", r => r.GetInt64(0), ("$q", queue), ("$t", through), ("$n", PurgeSliceRows));
        if (seqs.Count > 0)
        {
            (string, object?)[] range = [("$q", queue), ("$lo", seqs[0]), ("$hi", seqs[^1]), ("$u", until)];
            Execute("INSERT OR REPLACE INTO purged_names(seq, name, until) SELECT seq, name, $u FROM tasks WHERE queue = $q AND seq BETWEEN $lo AND $hi", range);
            Execute("DELETE FROM tasks WHERE queue = $q AND seq BETWEEN $lo AND $hi", range[..3]);
        }

        if (seqs.Count == PurgeSliceRows)
        {
            EnqueueFromWriter(() => PurgeSlice(queue, through, until));
            return;
        }

        Execute("DELETE FROM purges WHERE queue = $q AND through = $t", ("$q", queue), ("$t", through));
        _purgesMoving.Remove((queue, through));
    }

    public void SavePolicy(string resource, Policy policy)
    {
        var data = policy.ToByteArray();
        Enqueue(() => Execute("INSERT OR REPLACE INTO policies(resource, data) VALUES ($r, $d)", ("$r", resource), ("$d", data)));
    }

    public void SaveCmekConfig(CmekConfig config)
    {
        var (name, data) = (config.Name, config.ToByteArray());
        Enqueue(() => Execute("INSERT OR REPLACE INTO cmek(name, data) VALUES ($n, $d)", ("$n", name), ("$d", data)));
    }

    /// <summary>Expired tombstone rows taken out per transaction at most: a purge's million expire together.</summary>
    internal const int TombstoneSlice = 10_000;

    /// <summary>
    /// Through the index on until, a slice per transaction: when a slice was full, the next one is queued behind
    /// whatever came meanwhile, so other calls' commits never wait behind the whole deletion.
    /// </summary>
    public void DeleteExpiredTombstones(DateTimeOffset now)
    {
        var ms = now.ToUnixTimeMilliseconds();
        Enqueue(() => Execute("DELETE FROM queue_tombstones WHERE until < $t", ("$t", ms)));
        Enqueue(() => DeleteTombstoneSlice(ms));
        Enqueue(ResumePurges); // slices dropped by a failed commit start again
        RequestCommit(); // nobody waits for the sweep: committed within the gathering window
    }

    private void DeleteTombstoneSlice(long ms)
    {
        var deleted = Execute(
            "DELETE FROM task_tombstones WHERE rowid IN (SELECT rowid FROM task_tombstones WHERE until < $t LIMIT $n)",
            ("$t", ms),
            ("$n", TombstoneSlice));
        var purgedDeleted = Execute(
            "DELETE FROM purged_names WHERE seq IN (SELECT seq FROM purged_names WHERE until < $t LIMIT $n)",
            ("$t", ms),
            ("$n", TombstoneSlice));
        var deletedNames = Execute(
            "DELETE FROM deleted_names WHERE id IN (SELECT id FROM deleted_names WHERE until < $t LIMIT $n)",
            ("$t", ms),
            ("$n", TombstoneSlice));
        if (deleted == TombstoneSlice || purgedDeleted == TombstoneSlice || deletedNames == TombstoneSlice)
        {
            EnqueueFromWriter(() => DeleteTombstoneSlice(ms));
        }
    }

    /// <summary>
    /// From a write, on the writer: more work for a later transaction. Dropped when stopping or after a failure (the
    /// next sweep queues it again), never thrown: that would fail the transaction it runs in.
    /// </summary>
    private void EnqueueFromWriter(Action write)
    {
        lock (_queueGate)
        {
            if (!_stopping && _failure is null)
            {
                _pending.Add(PendingWrite.Run(write)); // the writer looks at _pending again once this transaction ends
                _urgent = true; // the next slice of a long job goes at once, as before: a window per slice would add up
            }
        }
    }

    public void Clear() =>
        Enqueue(() => Execute("DELETE FROM queues; DELETE FROM tasks; DELETE FROM task_tombstones; DELETE FROM purged_names; DELETE FROM deleted_names; DELETE FROM queue_tombstones; DELETE FROM policies; DELETE FROM cmek; DELETE FROM purges;"));

    public System.Threading.Tasks.Task WhenDurable() => CommitWaited(urgent: true);

    public System.Threading.Tasks.Task WhenDurableLater() => CommitWaited(urgent: false);

    /// <summary>Writes nobody waits for, to commit as <see cref="WhenDurableLater"/> would, without a task to observe.</summary>
    private void RequestCommit()
    {
        lock (_queueGate)
        {
            if (_pending.Count > 0 && !_requested)
            {
                _requested = true;
                Monitor.Pulse(_queueGate);
            }
        }
    }

    private System.Threading.Tasks.Task CommitWaited(bool urgent)
    {
        lock (_queueGate)
        {
            if (_failure is not null)
            {
                return System.Threading.Tasks.Task.FromException(_failure); // the caller's writes were dropped (see Enqueue)
            }

            // Anything this caller queued is either still waiting (the next commit) or in the commit under way.
            if (_pending.Count == 0)
            {
                return _committing;
            }

            // One wake-up per commit: queuing a write does not wake the writer (its caller asks right after, and the
            // writer would only start a gathering wait to be woken again); the first request does, and an urgent one
            // ends a gathering wait. Later requests for the same commit find the writer already on its way.
            if (urgent && !_urgent)
            {
                _urgent = true;
                _requested = true;
                Monitor.Pulse(_queueGate); // an idle writer commits at once; a gathering one stops and commits everything pending
            }
            else if (!_requested)
            {
                _requested = true;
                Monitor.Pulse(_queueGate); // an idle writer starts gathering
            }

            return _pendingCommit.Task;
        }
    }

    public long FailedCommits => Interlocked.Read(ref _failedCommits);

    public void ResumeAfterFailure(long failedCommitsSeen)
    {
        lock (_queueGate)
        {
            if (_failedCommits == failedCommitsSeen)
            {
                _failure = null;
            }
        }
    }

    public void OnCommitFailed(Action handler) => _commitFailed = handler;

    public string GetOrCreateSigningKey(Func<string> create) => OnWriter(() =>
    {
        var existing = ReadAll("SELECT value FROM meta WHERE key = 'signing_key'", r => r.GetString(0)).FirstOrDefault();
        if (existing is not null)
        {
            return existing;
        }

        var key = create();
        Execute("INSERT INTO meta(key, value) VALUES ('signing_key', $v)", ("$v", key));
        return key;
    });

    public void Dispose()
    {
        lock (_queueGate)
        {
            _stopping = true;
            Monitor.PulseAll(_queueGate);
        }

        _writer.Join(); // everything queued is committed first
        _upsertTask?.Dispose();
        _deleteTaskByName?.Dispose();
        _upsertTombstone?.Dispose();
        foreach (var statement in _deleteTasksChunk.Concat(_appendDeletedNamesChunk))
        {
            statement?.Dispose();
        }

        _begin?.Dispose();
        _commit?.Dispose();
        _rollback?.Dispose();
        _db.Dispose();
        _lock.Dispose();
    }

    private void Enqueue(Action write) => Enqueue(PendingWrite.Run(write));

    private void Enqueue(PendingWrite write)
    {
        lock (_queueGate)
        {
            ObjectDisposedException.ThrowIf(_stopping, this);
            if (_failure is not null)
            {
                return; // made on top of changes whose commit failed and which are not yet taken back: dropped, and WhenDurable faults
            }

            _pending.Add(write);
            if (_pending.Count == GatherEnough)
            {
                Monitor.Pulse(_queueGate); // enough for a commit of their own, asked for or not
            }
        }
    }

    /// <summary>Runs a read (or a read-then-write) on the writer thread, after everything queued before it.</summary>
    private T OnWriter<T>(Func<T> work)
    {
        T result = default!;
        Enqueue(() => result = work());
        WhenDurable().GetAwaiter().GetResult();
        return result;
    }

    private void WriteLoop()
    {
        while (true)
        {
            List<PendingWrite> batch;
            TaskCompletionSource commit;
            lock (_queueGate)
            {
                var unannounced = false;
                while (!_stopping && !(_pending.Count > 0 && (_requested || _urgent || _pending.Count >= GatherEnough || unannounced)))
                {
                    // Timed even when nothing is pending: a write queued meanwhile that nobody asks for wakes nobody.
                    unannounced = !Monitor.Wait(_queueGate, _unannouncedMs) && _pending.Count > 0;
                    Interlocked.Increment(ref _writerWakeUps);
                }

                if (_pending.Count == 0)
                {
                    return; // stopping, and everything is written
                }

                if (!unannounced)
                {
                    GatherWhileNobodyWaits(); // unannounced writes waited long enough already
                }

                if (_pending.Count <= MaxBatch)
                {
                    batch = _pending;
                    _pending = _spareBatch ?? [];
                    _spareBatch = null;
                    commit = _pendingCommit;
                    _pendingCommit = NewCommit();
                    _urgent = false; // this commit takes everything an urgent caller waits for
                    _requested = false; // and everything anyone asked for: the next request wakes the writer again
                }
                else
                {
                    // Only part goes now; callers wait for the commit of the rest (which includes theirs), so a
                    // failure of this part must fail that commit too (see below). An urgent caller still is.
                    batch = _pending[..MaxBatch];
                    _pending.RemoveRange(0, MaxBatch);
                    commit = NewCommit();
                }

                _committing = commit.Task;
            }

            try
            {
                // BEGIN and COMMIT as statements prepared once: SqliteConnection.BeginTransaction parsed both anew and
                // made a transaction object per commit, a cost every commit pays however few calls it holds.
                _begin ??= Prepare("BEGIN IMMEDIATE");
                _begin.ExecuteNonQuery();
                RunWrites(batch);

                BeforeCommit?.Invoke();
                _commit ??= Prepare("COMMIT");
                _commit.ExecuteNonQuery();
                Interlocked.Increment(ref _commits);
                commit.TrySetResult();
            }
            catch (Exception ex)
            {
                RollBack();
                FailPending(commit, ex);
                _purgesMoving.Clear(); // their queued slices were dropped with everything pending; the next sweep starts them again
                _commitFailed?.Invoke();
            }

            if (batch.Capacity <= MaxBatch)
            {
                batch.Clear(); // lets go of the rows it held
                _spareBatch = batch;
            }
        }
    }

    /// <summary>
    /// Under <see cref="_queueGate"/>, with writes pending: while nobody waits for them (no <see cref="WhenDurable"/>
    /// since the last commit, no stop) and they are few, lets more join them, up to <see cref="GatherWindow"/> from
    /// now. Every wait is bounded by the window; an urgent caller, a stop or <see cref="GatherEnough"/> writes end it.
    /// </summary>
    private void GatherWhileNobodyWaits()
    {
        if (_urgent || _stopping || _pending.Count >= GatherEnough || _gatherTicks <= 0)
        {
            return;
        }

        var deadline = System.Diagnostics.Stopwatch.GetTimestamp() + _gatherTicks;
        while (!_urgent && !_stopping && _pending.Count < GatherEnough)
        {
            var left = deadline - System.Diagnostics.Stopwatch.GetTimestamp();
            if (left <= 0)
            {
                return;
            }

            Monitor.Wait(_queueGate, (int)Math.Ceiling(left * 1000.0 / System.Diagnostics.Stopwatch.Frequency)); // at least 1 ms: never a spin
            Interlocked.Increment(ref _writerWakeUps);
        }
    }

    /// <summary>Takes back a transaction still open after a failed write or commit (SQLite may have ended it already).</summary>
    private void RollBack()
    {
        if (raw.sqlite3_get_autocommit(_db.Handle) != 0)
        {
            return;
        }

        try
        {
            _rollback ??= Prepare("ROLLBACK");
            _rollback.ExecuteNonQuery();
        }
        catch (SqliteException)
        {
            // The connection is unusable: the next BEGIN fails too, so every later commit fails and nothing is acknowledged.
        }
    }

    /// <summary>
    /// After a commit failed, everything queued behind it fails too: those changes were made on top of the failed ones
    /// (a task in a queue whose creation was lost), and after a split commit the callers of the first part wait on the
    /// pending commit, which must not then succeed. Everything pending is dropped and its callers get the failure
    /// (they take their changes back), so what is on disk stays what the callers were told. Writes made later fail
    /// too until the state has taken the failed changes back (<see cref="ResumeAfterFailure"/>): a change made just
    /// before the failure was visible, on top of a failed one, may be queued only now. All in one section, the count
    /// last, so whoever sees the new count also sees every affected commit faulted.
    /// </summary>
    private void FailPending(TaskCompletionSource commit, Exception ex)
    {
        lock (_queueGate)
        {
            commit.TrySetException(ex);
            _pending = [];
            _urgent = false;
            _requested = false;
            var failed = _pendingCommit;
            _pendingCommit = NewCommit();
            failed.TrySetException(ex);
            _failure = ex;
            Interlocked.Increment(ref _failedCommits);
        }
    }

    /// <summary>
    /// The tasks table, keyed by creation sequence (the rowid): rows go in at the table's end, so a commit of many
    /// creates writes a few adjacent pages. Keyed by name (format 0, before), every create also went into a unique
    /// index at a random place (task ids are random): about one 4 KB page written (and often read) per create, twice
    /// (WAL, then checkpoint). A folder in format 0 is migrated in one transaction when opened.
    /// </summary>
    private void CreateOrMigrateTasksTable()
    {
        // 2: deletions' reservations are in deleted_names, which an emulator of format 1 does not read: it would free
        // those names early, so it must refuse the folder (below) rather than open it.
        const long Format = 2;
        var version = ReadAll("PRAGMA user_version", r => r.GetInt64(0))[0];
        if (version == Format)
        {
            return;
        }

        if (version > Format)
        {
            throw new DataFolderRefusedException($"The data folder was written by a newer emulator (format {version}; this one reads up to {Format}): run that emulator or a newer one, or give this one another --data folder.");
        }

        if (version == 1)
        {
            Execute($"PRAGMA user_version = {Format};"); // the rows stay as they are; deleted_names is created with the other tables
            return;
        }

        const string Columns = "seq INTEGER PRIMARY KEY, name TEXT NOT NULL, queue TEXT NOT NULL, executions INTEGER NOT NULL, previous_response INTEGER NOT NULL, first_attempt_at INTEGER, data BLOB NOT NULL";
        var keyedByName = ReadAll("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'tasks'", r => r.GetString(0)).Count > 0;
        _tx = _db.BeginTransaction();
        try
        {
            if (keyedByName)
            {
                Execute($"""
                    CREATE TABLE tasks_by_sequence ({Columns});
                    INSERT INTO tasks_by_sequence(seq, name, queue, executions, previous_response, first_attempt_at, data)
                        SELECT seq, name, queue, executions, previous_response, first_attempt_at, data FROM tasks ORDER BY seq;
                    DROP TABLE tasks;
                    ALTER TABLE tasks_by_sequence RENAME TO tasks;
                    """);
            }
            else
            {
                Execute($"CREATE TABLE tasks ({Columns});");
            }

            Execute($"CREATE INDEX tasks_by_queue ON tasks(queue); PRAGMA user_version = {Format};");
            _tx.Commit();
        }
        finally
        {
            _tx.Dispose();
            _tx = null;
        }
    }

    private void UpsertTask(TaskRow row)
    {
        _upsertTask ??= new RawStatement(
            _db.Handle!,
            "INSERT OR REPLACE INTO tasks(name, queue, seq, executions, previous_response, first_attempt_at, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"); // seq is the key
        _upsertTask.Bind(1, row.Name);
        _upsertTask.Bind(2, row.Queue);
        _upsertTask.Bind(3, row.Sequence);
        _upsertTask.Bind(4, row.Executions);
        _upsertTask.Bind(5, row.PreviousResponse);
        _upsertTask.Bind(6, row.FirstAttemptAt);
        _upsertTask.Bind(7, row.Data);
        _upsertTask.Execute();
    }

    private SqliteCommand Prepare(string sql, params string[] parameters)
    {
        var command = _db.CreateCommand();
        command.CommandText = sql;
        foreach (var name in parameters)
        {
            command.Parameters.Add(new SqliteParameter { ParameterName = name });
        }

        return command;
    }

    private static TaskCompletionSource NewCommit() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private sealed record TaskRow(string Name, string Queue, long Sequence, int Executions, int PreviousResponse, long? FirstAttemptAt, byte[] Data);

    private sealed record SupersedableRow(TaskRow Row, SupersedableWrite Write);

    private enum WriteKind : byte
    {
        Run, // Payload: an Action, run on the writer
        Upsert, // Payload: a TaskRow
        UpsertSupersedable, // Payload: a SupersedableRow
        UpsertMany, // Payload: TaskRow[]
        Delete, // a dispatched success: Name, Sequence, Until
        DeleteMany, // Payload: (string Name, long Sequence)[]; Until
    }

    /// <summary>
    /// A queued write. The frequent ones are data, not a closure and a delegate each: a dispatched success queues one
    /// of these and allocates nothing, and the writer runs consecutive deletions together (<see cref="RunDeletions"/>).
    /// </summary>
    private readonly record struct PendingWrite(WriteKind Kind, object? Payload = null, string? Name = null, long Sequence = 0, long Until = 0)
    {
        /// <summary>Work of any other kind, run on the writer as it is (rare writes: queues, policies, purges, the sweep).</summary>
        public static PendingWrite Run(Action work) => new(WriteKind.Run, Payload: work);
    }

    /// <summary>On the writer, inside the transaction: the batch's writes in the order they were queued.</summary>
    private void RunWrites(List<PendingWrite> batch)
    {
        var i = 0;
        while (i < batch.Count)
        {
            var write = batch[i];
            switch (write.Kind)
            {
                case WriteKind.Delete or WriteKind.DeleteMany:
                    i = RunDeletions(batch, i);
                    continue;
                case WriteKind.Upsert:
                    UpsertTask((TaskRow)write.Payload!);
                    break;
                case WriteKind.UpsertSupersedable:
                    var (row, supersedable) = (SupersedableRow)write.Payload!;
                    if (supersedable.TryRun())
                    {
                        UpsertTask(row);
                    }
                    else
                    {
                        Interlocked.Increment(ref _supersededWrites);
                    }

                    break;
                case WriteKind.UpsertMany:
                    foreach (var each in (TaskRow[])write.Payload!)
                    {
                        UpsertTask(each);
                    }

                    break;
                default:
                    ((Action)write.Payload!)();
                    break;
            }

            i++;
        }
    }

    /// <summary>Rows per multi-row deletion statement, largest first (a run of deletions is cut greedily into these).</summary>
    private static readonly int[] DeletionChunks = [64, 16, 4, 1];

    private readonly RawStatement?[] _deleteTasksChunk = new RawStatement?[DeletionChunks.Length];
    private readonly RawStatement?[] _appendDeletedNamesChunk = new RawStatement?[DeletionChunks.Length];
    private readonly List<(string Name, long Sequence, long Until)> _deletions = []; // the writer's, reused

    /// <summary>
    /// The run of deletions starting at <paramref name="start"/> (every one a dispatched success or a batch of them),
    /// as a few statements of up to 64 rows each instead of two per task: the rows by key from tasks, the names appended
    /// to deleted_names in the same order (so with the same ids as one by one). Nothing else is in the run, and its two
    /// tables are apart, so the disk ends as it did when each ran alone. Returns the index after the run.
    /// </summary>
    private int RunDeletions(List<PendingWrite> batch, int start)
    {
        _deletions.Clear();
        var end = start;
        for (; end < batch.Count; end++)
        {
            var write = batch[end];
            if (write.Kind == WriteKind.Delete)
            {
                _deletions.Add((write.Name!, write.Sequence, write.Until));
            }
            else if (write.Kind == WriteKind.DeleteMany)
            {
                foreach (var (name, sequence) in ((string Name, long Sequence)[])write.Payload!)
                {
                    _deletions.Add((name, sequence, write.Until));
                }
            }
            else
            {
                break;
            }
        }

        var done = 0;
        for (var size = 0; size < DeletionChunks.Length; size++)
        {
            var rows = DeletionChunks[size];
            while (_deletions.Count - done >= rows)
            {
                var delete = _deleteTasksChunk[size] ??= new RawStatement(_db.Handle!, "DELETE FROM tasks WHERE seq IN (" + string.Join(", ", Enumerable.Range(1, rows).Select(p => "?" + p)) + ")");
                var append = _appendDeletedNamesChunk[size] ??= new RawStatement(_db.Handle!, "INSERT INTO deleted_names(name, until) VALUES " + string.Join(", ", Enumerable.Range(0, rows).Select(r => $"(?{(2 * r) + 1}, ?{(2 * r) + 2})")));
                for (var r = 0; r < rows; r++)
                {
                    var (name, sequence, until) = _deletions[done + r];
                    delete.Bind(r + 1, sequence);
                    append.Bind((2 * r) + 1, name);
                    append.Bind((2 * r) + 2, until);
                }

                delete.Execute();
                append.Execute();
                done += rows;
            }
        }

        _deletions.Clear();
        return end;
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
            throw new DataFolderRefusedException($"The data folder {Path.GetFullPath(directory)} is in use by another emulator process; give each emulator its own --data folder.", ex);
        }
    }

    private int Execute(string sql, params (string Name, object? Value)[] parameters)
    {
        using var command = _db.CreateCommand();
        command.Transaction = _tx;
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        }

        return command.ExecuteNonQuery();
    }

    private List<T> ReadAll<T>(string sql, Func<SqliteDataReader, T> map, params (string Name, object? Value)[] parameters)
    {
        using var command = _db.CreateCommand();
        command.Transaction = _tx;
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        }

        using var reader = command.ExecuteReader();
        var result = new List<T>();
        while (reader.Read())
        {
            result.Add(map(reader));
        }

        return result;
    }
}

/// <summary>
/// The data folder cannot be used: another emulator process holds it, or a newer emulator wrote it. The message says
/// which and what to do; the emulator prints it as one line and stops.
/// </summary>
internal sealed class DataFolderRefusedException(string message, Exception? inner = null) : IOException(message, inner);
