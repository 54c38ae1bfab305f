using Bridge.CloudTasks.V2Beta3;
using Bridge.Emulators.CloudTasks.Internal;
using Grpc.Core;
using static Bridge.Emulators.CloudTasks.Tests.StateTestQueue;

namespace Bridge.Emulators.CloudTasks.Tests;

/// <summary>
/// Names of deleted tasks (one tombstone each, not a purge): reserved for the queue's tombstone_ttl, in memory and on
/// disk, then dropped by the minute sweep a bounded slice at a time.
/// </summary>
public sealed class TombstoneTests : IDisposable
{
    private static readonly TimeSpan TombstoneTtl = TimeSpan.FromHours(1); // the default
    private readonly DurableStateFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public void A_deleted_task_s_name_stays_reserved_across_a_restart_until_the_tombstone_ttl_and_its_row_is_swept_after_it()
    {
        using (var state = _folder.Open())
        {
            CreatePausedQueue(state);
            state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask("gone") });
            state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask("kept") });
            state.DeleteTask(new DeleteTaskRequest { Name = $"{QueueName}/tasks/gone" });
        }

        // Reopened just before the tombstone expires: the name is still taken, the other task still there.
        _folder.Clock.Advance(TombstoneTtl - TimeSpan.FromSeconds(1));
        using (var state = _folder.Open())
        {
            Assert.Equal(StatusCode.AlreadyExists, Assert.Throws<RpcException>(() => state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask("gone") })).StatusCode);
            Assert.Equal([$"{QueueName}/tasks/kept"], state.ListTasks(new ListTasksRequest { Parent = QueueName }).Tasks.Select(t => t.Name));

            // Past it and past the next minute sweep: the sweep drops the tombstone (the store's row too).
            _folder.Clock.Advance(TimeSpan.FromMinutes(2));
            state.TakeDue(out _);
        }

        var stored = LoadStored();
        Assert.Empty(stored.TaskTombstones);
        using (var state = _folder.Open())
        {
            state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask("gone") });
            Assert.Equal(2, state.ListTasks(new ListTasksRequest { Parent = QueueName }).Tasks.Count);
        }
    }

    [Fact]
    public void Expired_tombstones_are_swept_in_bounded_slices_one_per_call_until_none_is_left()
    {
        const int Deleted = 25_000; // two full slices of 10,000 and a partial one
        var store = new SweepCountingStore();
        using var state = new EmulatorState(store, new EmulatorOptions(), _folder.Clock);
        CreatePausedQueue(state);
        var names = new List<string>(Deleted);
        for (var i = 0; i < Deleted; i++)
        {
            names.Add(state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask($"t{i}") }).Name);
        }

        Assert.All(state.DeleteTasks(QueueName, names), Assert.Null);
        Assert.Equal(StatusCode.AlreadyExists, Assert.Throws<RpcException>(() => state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask("t24999") })).StatusCode);

        _folder.Clock.Advance(TombstoneTtl + TimeSpan.FromMinutes(1));
        var sweepsBefore = store.Sweeps;
        var sweeps = new List<int>();
        for (var call = 0; call < 5; call++)
        {
            state.TakeDue(out _);
            sweeps.Add(store.Sweeps - sweepsBefore);
        }

        // One slice per call while expired tombstones remain (three calls for 25,000), then none until the next minute.
        Assert.Equal([1, 2, 3, 3, 3], sweeps);
        state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask("t0") });
        state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask("t24999") });

        _folder.Clock.Advance(TimeSpan.FromMinutes(1));
        state.TakeDue(out _);
        Assert.Equal(4, store.Sweeps - sweepsBefore);
    }

    private StoredState LoadStored()
    {
        using var store = _folder.OpenStore();
        return store.Load();
    }

    /// <summary>The in-memory store, counting the sweeps (each sweep asks the store to drop its expired tombstones once).</summary>
    private sealed class SweepCountingStore : DelegatingEmulatorStore
    {
        public int Sweeps { get; private set; }

        public override void DeleteExpiredTombstones(DateTimeOffset now) => Sweeps++;
    }
}
