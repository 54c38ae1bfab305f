using Bridge.CloudTasks.V2Beta3;
using Bridge.Emulators.CloudTasks.Internal;
using Grpc.Core;
using static Bridge.Emulators.CloudTasks.Tests.StateTestQueue;

namespace Bridge.Emulators.CloudTasks.Tests;

/// <summary>
/// A durable purge commits one small record and is acknowledged; the purged rows then move to purged_names a slice per
/// transaction. Whenever the process stops, a reopened folder has the purge whole: no purged task, every purged name
/// reserved, the tasks created after the purge kept.
/// </summary>
public sealed class DurablePurgeTests : IDisposable
{
    private const int Purged = 25_000; // many slices (SqliteStore.PurgeSliceRows each)
    private readonly DurableStateFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async System.Threading.Tasks.Task A_purge_stopped_before_its_rows_moved_is_whole_when_the_folder_is_reopened()
    {
        using (var state = _folder.Open())
        {
            CreatePausedQueue(state);
            await CreateAsync(state, "old", Purged);
            state.PurgeQueue(new PurgeQueueRequest { Name = QueueName });
            state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask("after") });
        } // stopping drops the slices still queued: most rows are still in the tasks table, under the record

        using (var state = _folder.Open())
        {
            Assert.Equal([$"{QueueName}/tasks/after"], state.ListTasks(new ListTasksRequest { Parent = QueueName }).Tasks.Select(t => t.Name));
            Assert.Equal(StatusCode.AlreadyExists, Assert.Throws<RpcException>(() => state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask("old0") })).StatusCode);
            Assert.Equal(StatusCode.AlreadyExists, Assert.Throws<RpcException>(() => state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask($"old{Purged - 1}") })).StatusCode);
        }
    }

    [Fact]
    public async System.Threading.Tasks.Task The_purged_rows_move_to_purged_names_a_slice_per_transaction_the_record_goes_with_the_last_and_the_sweep_takes_them_after_the_ttl()
    {
        var store = _folder.OpenStore();
        using (var state = _folder.Open(store))
        {
            CreatePausedQueue(state);
            await CreateAsync(state, "old", Purged);
            var commitsBefore = store.Commits;
            state.PurgeQueue(new PurgeQueueRequest { Name = QueueName });
            state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask("after") });

            Assert.Equal(0, AfterSlices(store));
            Assert.True(store.Commits - commitsBefore >= 4, $"{store.Commits - commitsBefore} commits for the purge of {Purged:N0}: not sliced");
            var stored = store.Load();
            Assert.Equal([$"{QueueName}/tasks/after"], stored.Tasks.Select(t => t.Name));
            Assert.Equal(Purged, stored.TaskTombstones.Count);

            // The names went to purged_names (appended in sequence order), not into the name-keyed task_tombstones:
            // random inserts there held every other call's commit for seconds behind each slice.
            Assert.Equal((Purged, 0L), (Count("purged_names"), Count("task_tombstones")));

            // Expired, they go with the minute sweep, in slices, and the names are free again.
            _folder.Clock.Advance(TimeSpan.FromHours(1) + TimeSpan.FromMinutes(1));
            state.TakeDue(out _);
            for (var look = 0; look < 100 && Count("purged_names") > 0; look++)
            {
                _ = store.PendingPurges; // a read on the writer: behind the sweep's slices queued so far
            }

            Assert.Equal(0, Count("purged_names"));
            Assert.Empty(store.Load().TaskTombstones);
            state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask("old0") });
        }
    }

    [Fact]
    public async System.Threading.Tasks.Task A_task_created_after_reopening_a_folder_whose_purge_is_still_moving_is_kept()
    {
        using (var state = _folder.Open())
        {
            CreatePausedQueue(state);
            await CreateAsync(state, "old", Purged);
            state.PurgeQueue(new PurgeQueueRequest { Name = QueueName });
        } // the purged rows are still in the tasks table, under the record: none is loaded, but their sequences are taken

        using (var state = _folder.Open())
        {
            state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask("fresh") });
        }

        using (var state = _folder.Open())
        {
            Assert.Equal([$"{QueueName}/tasks/fresh"], state.ListTasks(new ListTasksRequest { Parent = QueueName }).Tasks.Select(t => t.Name));
            Assert.Equal(StatusCode.AlreadyExists, Assert.Throws<RpcException>(() => state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask("old0") })).StatusCode);
        }
    }

    [Fact]
    public async System.Threading.Tasks.Task A_second_purge_after_reopening_keeps_the_first_purges_names_reserved()
    {
        var store = _folder.OpenStore();
        using (var state = _folder.Open(store))
        {
            CreatePausedQueue(state);
            await CreateAsync(state, "old", 3);
            state.PurgeQueue(new PurgeQueueRequest { Name = QueueName });
            Assert.Equal(0, AfterSlices(store)); // every purged name in purged_names, keyed by its task's sequence
        }

        store = _folder.OpenStore();
        using (var state = _folder.Open(store))
        {
            await CreateAsync(state, "new", 3); // no task is loaded: the sequences must still continue past the purged ones
            state.PurgeQueue(new PurgeQueueRequest { Name = QueueName });
            Assert.Equal(0, AfterSlices(store));
        }

        using (var state = _folder.Open())
        {
            foreach (var name in new[] { "old0", "old2", "new0", "new2" })
            {
                Assert.Equal(StatusCode.AlreadyExists, Assert.Throws<RpcException>(() => state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask(name) })).StatusCode);
            }
        }
    }

    /// <summary>Reads on the store's writer until no purge record is left (each read waits behind the slices queued before it); bounded.</summary>
    private static long AfterSlices(SqliteStore store)
    {
        var pending = 1L;
        for (var look = 0; look < 1000 && pending > 0; look++)
        {
            pending = store.PendingPurges;
        }

        return pending;
    }

    /// <summary>Rows of a table, read beside the open store (WAL lets a second connection read committed data).</summary>
    private long Count(string table)
    {
        using var db = new Microsoft.Data.Sqlite.SqliteConnection(new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder { DataSource = Path.Combine(_folder.Path, "cloudtasks-emulator.db"), Mode = Microsoft.Data.Sqlite.SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        db.Open();
        using var count = db.CreateCommand();
        count.CommandText = $"SELECT COUNT(*) FROM {table}";
        return (long)count.ExecuteScalar()!;
    }

    private static async System.Threading.Tasks.Task CreateAsync(EmulatorState state, string prefix, int count)
    {
        foreach (var chunk in Enumerable.Range(0, count).Chunk(1000))
        {
            var created = await state.CreateTasksAsync(QueueName, chunk.Select(i => new CreateTaskRequest { Parent = QueueName, Task = HttpTask(prefix + i) }).ToList());
            Assert.All(created, c => Assert.Null(c.Error));
        }
    }
}
