using Bridge.CloudTasks.V2Beta3;
using Bridge.Emulators.CloudTasks.Internal;
using Bridge.Testing;
using Grpc.Core;
using Microsoft.Data.Sqlite;
using TaskMessage = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.Emulators.CloudTasks.Tests;

/// <summary>
/// What a failed commit leaves behind on the write side (the SQLite store's hook fails commits as a full disk would):
/// changes nobody waits for (the minute sweep's) are taken back too, a declared queue's creation gives back the name
/// reservation it took, and nothing made after the failure can build on a change that is being taken back. Also the
/// store's task rows, keyed by creation sequence: folders written with rows keyed by name are migrated when opened.
/// </summary>
public sealed class FailedCommitUndoTests : IDisposable
{
    private const string Location = "projects/p/locations/l";
    private const string QueueName = Location + "/queues/q";
    private const string OtherQueueName = Location + "/queues/other";
    private readonly DurableStateFolder _folder = new();
    private readonly EmulatorOptions _options = new() { QueueNameReuseDelay = TimeSpan.FromHours(1) };
    private SqliteStore? _store;
    private EmulatorState? _state;
    private int _failing; // 1: every commit fails; 2: the next commit fails, later ones hold

    public void Dispose() => Teardown.All(_state, _folder);

    [Fact]
    public void The_minute_sweeps_removals_come_back_when_their_commit_fails()
    {
        var state = Open();
        CreatePausedQueueWithTasks(state, 2);
        _folder.Clock.Advance(QueueRules.DefaultTaskTtl + TimeSpan.FromDays(1)); // both tasks expired: the next call sweeps them

        Volatile.Write(ref _failing, 1);
        AssertUnavailable(() => state.CreateQueue(new CreateQueueRequest { Parent = Location, Queue = new Queue { Name = OtherQueueName } }));

        Assert.Equal([TaskName(0), TaskName(1)], TaskNames(state)); // not dropped from memory while the disk still has them
        Assert.Equal(TaskName(1), state.GetTask(new GetTaskRequest { Name = TaskName(1) }).Name);
        state = Reopen();
        Assert.Equal([TaskName(0), TaskName(1)], TaskNames(state));

        // With the disk healthy the next sweep takes them, in memory and on disk.
        _folder.Clock.Advance(TimeSpan.FromMinutes(1));
        state.CreateQueue(new CreateQueueRequest { Parent = Location, Queue = new Queue { Name = OtherQueueName } });
        Assert.Empty(TaskNames(state));
        state = Reopen();
        Assert.Empty(TaskNames(state));
    }

    [Fact]
    public void A_declared_queue_whose_creation_fails_keeps_the_name_reserved()
    {
        var state = Open();
        state.CreateQueue(new CreateQueueRequest { Parent = Location, Queue = new Queue { Name = QueueName } });
        state.DeleteQueue(new DeleteQueueRequest { Name = QueueName }); // the name is reserved for an hour

        Volatile.Write(ref _failing, 1);
        AssertUnavailable(() => state.EnsureQueue(Bridge.CloudTasks.QueueName.Parse(QueueName)));

        AssertStatus(StatusCode.NotFound, () => state.GetQueue(new GetQueueRequest { Name = QueueName }));
        AssertStatus(StatusCode.FailedPrecondition, () => state.CreateQueue(new CreateQueueRequest { Parent = Location, Queue = new Queue { Name = QueueName } }));
        state.EnsureQueue(Bridge.CloudTasks.QueueName.Parse(QueueName)); // the declaration still wins once the disk is healthy
        Assert.Equal(QueueName, state.GetQueue(new GetQueueRequest { Name = QueueName }).Name);
    }

    [Fact]
    public void A_call_made_after_a_failed_commit_but_before_its_undo_does_not_build_on_the_failed_change()
    {
        var state = Open();
        state.CreateQueue(new CreateQueueRequest { Parent = Location, Queue = new Queue { Name = OtherQueueName } });
        StatusCode? laterCall = null;
        state.BeforeUndo = () =>
        {
            // The queue's creation has failed on disk, its caller has not yet taken it back: a create in that queue now.
            state.BeforeUndo = null;
            try
            {
                state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask(0) });
                laterCall = StatusCode.OK;
            }
            catch (RpcException ex)
            {
                laterCall = ex.StatusCode;
            }
        };

        Volatile.Write(ref _failing, 2); // only the queue's commit fails: a later write would commit
        AssertUnavailable(() => state.CreateQueue(new CreateQueueRequest { Parent = Location, Queue = new Queue { Name = QueueName } }));

        Assert.Equal(StatusCode.NotFound, laterCall); // the failed creation was taken back first
        AssertStatus(StatusCode.NotFound, () => state.GetQueue(new GetQueueRequest { Name = QueueName }));
        state = Reopen();
        AssertStatus(StatusCode.NotFound, () => state.GetQueue(new GetQueueRequest { Name = QueueName }));
        state.CreateQueue(new CreateQueueRequest { Parent = Location, Queue = new Queue { Name = QueueName } }); // writes commit again
        state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask(0) });
        Assert.Equal([TaskName(0)], TaskNames(Reopen()));
    }

    [Fact]
    public async System.Threading.Tasks.Task Writes_made_after_a_failed_commit_fail_until_the_failed_changes_are_taken_back()
    {
        using var store = new SqliteStore(_folder.Path) { BeforeCommit = FailIfAsked };
        store.Load();
        var failures = store.FailedCommits;
        Volatile.Write(ref _failing, 2);
        store.SaveQueue(new Queue { Name = QueueName });
        await Assert.ThrowsAsync<IOException>(() => store.WhenDurable().WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal(failures + 1, store.FailedCommits);

        store.SaveQueue(new Queue { Name = OtherQueueName }); // built on a change not yet taken back: refused
        await Assert.ThrowsAsync<IOException>(() => store.WhenDurable().WaitAsync(TimeSpan.FromSeconds(60)));

        store.ResumeAfterFailure(failures + 1);
        store.SaveQueue(new Queue { Name = OtherQueueName });
        await store.WhenDurable().WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal([OtherQueueName], store.Load().Queues.Select(q => q.Name));
    }

    [Fact]
    public void A_folder_whose_task_rows_are_keyed_by_name_is_migrated_when_opened()
    {
        WriteNameKeyedFolder([(TaskName(0), 5), (TaskName(1), 9), (TaskName(2), 7)]);

        var state = Open();
        Assert.Equal([TaskName(0), TaskName(2), TaskName(1)], TaskNames(state)); // creation order: by sequence
        Assert.Equal("body-1", state.GetTask(new GetTaskRequest { Name = TaskName(1), ResponseView = TaskMessage.Types.View.Full }).HttpRequest.Body.ToStringUtf8());
        state.DeleteTask(new DeleteTaskRequest { Name = TaskName(2) });
        state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask(3) });

        state = Reopen();
        Assert.Equal([TaskName(0), TaskName(1), TaskName(3)], TaskNames(state));
        AssertStatus(StatusCode.AlreadyExists, () => state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask(2) })); // its tombstone
        state.Dispose();
        _state = null;
        using var db = new SqliteConnection($"Data Source={Path.Combine(_folder.Path, "cloudtasks-emulator.db")};Pooling=False");
        db.Open();
        using var version = db.CreateCommand();
        version.CommandText = "PRAGMA user_version";
        Assert.Equal(2L, (long)version.ExecuteScalar()!);
    }

    [Theory]
    [InlineData(1L, 2L)] // format 1 (before deleted_names): opened, and marked so an emulator of format 1 refuses it from now on
    [InlineData(2L, 2L)]
    public void A_folder_of_an_older_format_is_opened_and_marked_with_this_format(long written, long expected)
    {
        Open().CreateQueue(new CreateQueueRequest { Parent = Location, Queue = new Queue { Name = OtherQueueName } });
        _state!.Dispose();
        _state = null;
        SetUserVersion(written);

        var state = Open();
        Assert.Contains(state.ListQueues(new ListQueuesRequest { Parent = Location }).Queues, q => q.Name == OtherQueueName);
        state.Dispose();
        _state = null;
        Assert.Equal(expected, ReadUserVersion());
    }

    [Fact]
    public void A_folder_written_by_a_newer_emulator_is_refused_with_a_message_naming_its_format()
    {
        Open().Dispose();
        _state = null;
        SetUserVersion(3);

        var refused = Assert.Throws<DataFolderRefusedException>(() => new SqliteStore(_folder.Path).Dispose());
        Assert.Contains("newer emulator (format 3", refused.Message, StringComparison.Ordinal);
    }

    private void SetUserVersion(long version)
    {
        using var db = new SqliteConnection($"Data Source={Path.Combine(_folder.Path, "cloudtasks-emulator.db")};Pooling=False");
        db.Open();
        using var set = db.CreateCommand();
        set.CommandText = $"PRAGMA user_version = {version}";
        set.ExecuteNonQuery();
    }

    private long ReadUserVersion()
    {
        using var db = new SqliteConnection($"Data Source={Path.Combine(_folder.Path, "cloudtasks-emulator.db")};Pooling=False");
        db.Open();
        using var read = db.CreateCommand();
        read.CommandText = "PRAGMA user_version";
        return (long)read.ExecuteScalar()!;
    }

    /// <summary>A data folder as the emulator wrote it before (tasks keyed by name, format 0), with one paused queue.</summary>
    private void WriteNameKeyedFolder(IReadOnlyList<(string Name, long Sequence)> tasks)
    {
        Directory.CreateDirectory(_folder.Path);
        using var db = new SqliteConnection($"Data Source={Path.Combine(_folder.Path, "cloudtasks-emulator.db")};Pooling=False");
        db.Open();
        using var schema = db.CreateCommand();
        schema.CommandText = """
            PRAGMA journal_mode=WAL;
            CREATE TABLE queues (name TEXT PRIMARY KEY, data BLOB NOT NULL);
            CREATE TABLE tasks (name TEXT PRIMARY KEY, queue TEXT NOT NULL, seq INTEGER NOT NULL, executions INTEGER NOT NULL,
                previous_response INTEGER NOT NULL, first_attempt_at INTEGER, data BLOB NOT NULL);
            CREATE INDEX tasks_by_queue ON tasks(queue);
            CREATE TABLE task_tombstones (name TEXT PRIMARY KEY, until INTEGER NOT NULL);
            CREATE TABLE queue_tombstones (name TEXT PRIMARY KEY, until INTEGER NOT NULL);
            CREATE TABLE policies (resource TEXT PRIMARY KEY, data BLOB NOT NULL);
            CREATE TABLE cmek (name TEXT PRIMARY KEY, data BLOB NOT NULL);
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            """;
        schema.ExecuteNonQuery();
        var queue = new Queue { Name = QueueName, State = Queue.Types.State.Paused };
        QueueRules.ApplyDefaults(queue);
        using var insertQueue = db.CreateCommand();
        insertQueue.CommandText = "INSERT INTO queues(name, data) VALUES ($n, $d)";
        insertQueue.Parameters.AddWithValue("$n", QueueName);
        insertQueue.Parameters.AddWithValue("$d", Google.Protobuf.MessageExtensions.ToByteArray(queue));
        insertQueue.ExecuteNonQuery();
        foreach (var (name, sequence) in tasks)
        {
            var task = HttpTask(int.Parse(name[(name.LastIndexOf('t') + 1)..], System.Globalization.CultureInfo.InvariantCulture));
            task.CreateTime = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(_folder.Clock.GetUtcNow());
            task.ScheduleTime = task.CreateTime;
            var stored = new StoredTask { Task = task, QueueName = QueueName };
            using var insert = db.CreateCommand();
            insert.CommandText = "INSERT INTO tasks(name, queue, seq, executions, previous_response, first_attempt_at, data) VALUES ($n, $q, $s, 0, 0, NULL, $d)";
            insert.Parameters.AddWithValue("$n", name);
            insert.Parameters.AddWithValue("$q", QueueName);
            insert.Parameters.AddWithValue("$s", sequence);
            insert.Parameters.AddWithValue("$d", stored.Serialized);
            insert.ExecuteNonQuery();
        }
    }

    private EmulatorState Open()
    {
        _store = new SqliteStore(_folder.Path) { BeforeCommit = FailIfAsked };
        _state = _folder.Open(_store, _options);
        return _state;
    }

    private EmulatorState Reopen()
    {
        _state?.Dispose();
        return Open();
    }

    private void FailIfAsked()
    {
        if (Volatile.Read(ref _failing) == 1 || Interlocked.CompareExchange(ref _failing, 0, 2) == 2)
        {
            throw new IOException("disk full");
        }
    }

    private void CreatePausedQueueWithTasks(EmulatorState state, int count)
    {
        state.CreateQueue(new CreateQueueRequest { Parent = Location, Queue = new Queue { Name = QueueName } });
        state.SetQueueState(QueueName, Queue.Types.State.Paused);
        for (var i = 0; i < count; i++)
        {
            state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask(i) });
        }
    }

    private void AssertUnavailable(Action call)
    {
        var error = Assert.Throws<RpcException>(call);
        Volatile.Write(ref _failing, 0);
        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
    }

    private static void AssertStatus(StatusCode expected, Action call) => Assert.Equal(expected, Assert.Throws<RpcException>(call).StatusCode);

    private static List<string> TaskNames(EmulatorState state) =>
        state.ListTasks(new ListTasksRequest { Parent = QueueName, PageSize = 1000 }).Tasks.Select(t => t.Name).ToList();

    private static string TaskName(int i) => $"{QueueName}/tasks/t{i}";

    private static TaskMessage HttpTask(int i) =>
        new() { Name = TaskName(i), HttpRequest = new HttpRequest { Url = "http://127.0.0.1:9/x", Body = Google.Protobuf.ByteString.CopyFromUtf8($"body-{i}") } };
}
