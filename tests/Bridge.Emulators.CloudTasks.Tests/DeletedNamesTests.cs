using Bridge.CloudTasks.V2Beta3;
using Bridge.Emulators.CloudTasks.Internal;
using Grpc.Core;
using static Bridge.Emulators.CloudTasks.Tests.StateTestQueue;

namespace Bridge.Emulators.CloudTasks.Tests;

/// <summary>
/// A durable deletion (DeleteTask, or an attempt's success) appends the name's reservation to deleted_names instead
/// of writing it into the name-keyed task_tombstones at a random place. Whenever the folder is reopened every deleted
/// name is still reserved until its tombstone_ttl, even when task sequences were given out again after a restart;
/// the sweep takes the rows once they expired.
/// </summary>
public sealed class DeletedNamesTests : IDisposable
{
    private readonly DurableStateFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async System.Threading.Tasks.Task Deleted_and_dispatched_names_are_appended_reserved_after_a_restart_and_swept_after_the_ttl()
    {
        var store = _folder.OpenStore();
        using (var state = _folder.Open(store))
        {
            CreatePausedQueue(state);
            state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask("deleted") });
            state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask("dispatched") });
            state.DeleteTask(new DeleteTaskRequest { Name = $"{QueueName}/tasks/deleted" });

            // The other one is dispatched and succeeds.
            state.SetQueueState(QueueName, Queue.Types.State.Running);
            var work = Assert.Single(state.TakeDue(out _));
            Assert.Equal($"{QueueName}/tasks/dispatched", work.Task.Name);
            await state.CompleteAttempt(work, new DispatchResult(200, _folder.Clock.GetUtcNow(), null)).WaitAsync(TimeSpan.FromSeconds(60));

            Assert.Equal((2L, 0L), (Count("deleted_names"), Count("task_tombstones")));
        }

        store = _folder.OpenStore();
        using (var state = _folder.Open(store))
        {
            Assert.Empty(state.ListTasks(new ListTasksRequest { Parent = QueueName }).Tasks);
            AssertReserved(state, "deleted");
            AssertReserved(state, "dispatched");

            // Expired (the default tombstone_ttl is an hour), the rows go with the minute sweep and the names are free again.
            _folder.Clock.Advance(TimeSpan.FromHours(1) + TimeSpan.FromMinutes(1));
            state.TakeDue(out _); // the sweep is due
            await store.WhenDurable().WaitAsync(TimeSpan.FromSeconds(60));
            _ = store.PendingPurges; // a read on the writer: behind everything the sweep queued
            Assert.Equal(0, Count("deleted_names"));
            state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask("deleted") });
            state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask("dispatched") });
        }
    }

    [Fact]
    public void A_sequence_given_out_again_after_a_restart_does_not_end_an_earlier_deletions_reservation()
    {
        using (var state = _folder.Open())
        {
            CreatePausedQueue(state);
            state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask("first") });
            state.DeleteTask(new DeleteTaskRequest { Name = $"{QueueName}/tasks/first" });
        }

        // No task row is left, so the reopened state gives out the first task's sequence again.
        using (var state = _folder.Open())
        {
            state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask("second") });
            state.DeleteTask(new DeleteTaskRequest { Name = $"{QueueName}/tasks/second" });
        }

        using (var state = _folder.Open())
        {
            AssertReserved(state, "first");
            AssertReserved(state, "second");
        }

        Assert.Equal(2, Count("deleted_names"));
    }

    private static void AssertReserved(EmulatorState state, string id) =>
        Assert.Equal(StatusCode.AlreadyExists, Assert.Throws<RpcException>(() => state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask(id) })).StatusCode);

    /// <summary>Rows of a table, read beside the store (WAL lets a second connection read committed data).</summary>
    private long Count(string table)
    {
        using var db = new Microsoft.Data.Sqlite.SqliteConnection(new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder { DataSource = Path.Combine(_folder.Path, "cloudtasks-emulator.db"), Mode = Microsoft.Data.Sqlite.SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        db.Open();
        using var count = db.CreateCommand();
        count.CommandText = $"SELECT COUNT(*) FROM {table}";
        return (long)count.ExecuteScalar()!;
    }
}
