using Bridge.CloudTasks.V2Beta3;
using Bridge.Emulators.CloudTasks.Internal;
using Google.Protobuf.WellKnownTypes;
using static Bridge.Emulators.CloudTasks.Tests.StateTestQueue;

namespace Bridge.Emulators.CloudTasks.Tests;

/// <summary>
/// Tasks older than their queue's task_ttl: the minute sweep walks them oldest first, stops at the first one not yet
/// expired, takes at most a slice per call, and removes exactly the expired ones, in memory and on disk. Expired
/// tombstone rows go from disk a slice per transaction.
/// </summary>
public sealed class TaskTtlSweepTests : IDisposable
{
    private static readonly TimeSpan TaskTtl = TimeSpan.FromHours(2);
    private readonly DurableStateFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public void Expired_tasks_are_swept_oldest_first_a_slice_per_call_and_younger_tasks_stay()
    {
        const int Old = 25_000; // two full slices of 10,000 and a partial one
        using var state = new EmulatorState(new InMemoryStore(), new EmulatorOptions(), _folder.Clock);
        CreatePausedQueue(state);
        CreateTasks(state, "old", Old);
        _folder.Clock.Advance(TimeSpan.FromHours(1));
        CreateTasks(state, "young", 3);

        _folder.Clock.Advance(TaskTtl - TimeSpan.FromHours(1) + TimeSpan.FromMinutes(1)); // the old ones expired, the young ones not
        var counts = new List<int>();
        for (var call = 0; call < 4; call++)
        {
            state.TakeDue(out _);
            counts.Add(TaskCount(state));
        }

        Assert.Equal([15_003, 5_003, 3, 3], counts);
        Assert.Equal(["young0", "young1", "young2"], TaskIds(state));
    }

    [Fact]
    public void The_sweep_removes_exactly_the_expired_tasks_on_disk_too_and_a_reopened_folder_has_only_the_rest()
    {
        using (var state = _folder.Open())
        {
            CreatePausedQueue(state);
            CreateTasks(state, "old", 5);
            _folder.Clock.Advance(TimeSpan.FromHours(1));
            CreateTasks(state, "young", 2);
            _folder.Clock.Advance(TaskTtl - TimeSpan.FromHours(1) + TimeSpan.FromMinutes(1));
            state.TakeDue(out _);
            Assert.Equal(["young0", "young1"], TaskIds(state));
        }

        using (var state = _folder.Open())
        {
            Assert.Equal(["young0", "young1"], TaskIds(state));

            // The swept names are reserved for tombstone_ttl, as a deleted task's are.
            var again = Assert.Throws<Grpc.Core.RpcException>(() => state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask("old0") }));
            Assert.Equal(Grpc.Core.StatusCode.AlreadyExists, again.StatusCode);
        }
    }

    [Fact]
    public async System.Threading.Tasks.Task Expired_tombstone_rows_leave_the_disk_a_slice_per_transaction_until_none_is_left()
    {
        const int Deleted = 25_000;
        var store = _folder.OpenStore();
        using (var state = _folder.Open(store))
        {
            CreatePausedQueue(state);
            var names = new List<string>(Deleted);
            foreach (var chunk in Enumerable.Range(0, Deleted).Chunk(1000))
            {
                var created = await state.CreateTasksAsync(QueueName, chunk.Select(i => new CreateTaskRequest { Parent = QueueName, Task = HttpTask($"t{i}") }).ToList());
                names.AddRange(created.Select(c => c.Task!.Name));
            }

            Assert.All(state.DeleteTasks(QueueName, names), Assert.Null);
            _folder.Clock.Advance(TimeSpan.FromHours(1) + TimeSpan.FromMinutes(1)); // past the default tombstone_ttl
            var commitsBefore = store.Commits;
            state.TakeDue(out _); // one sweep: the store goes on by itself, a slice per transaction

            var left = Deleted;
            for (var look = 0; look < 10 && left > 0; look++)
            {
                left = store.Load().TaskTombstones.Count; // runs on the writer, behind what is queued
            }

            Assert.Equal(0, left);
            Assert.True(store.Commits - commitsBefore >= 3, $"{store.Commits - commitsBefore} commits for {Deleted:N0} rows: not sliced");
        }
    }

    private static void CreatePausedQueue(EmulatorState state) =>
        StateTestQueue.CreatePausedQueue(state, q => q.TaskTtl = Duration.FromTimeSpan(TaskTtl));

    private static void CreateTasks(EmulatorState state, string prefix, int count)
    {
        for (var i = 0; i < count; i++)
        {
            state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask(prefix + i) });
        }
    }

    private static int TaskCount(EmulatorState state) =>
        state.GetQueue(new GetQueueRequest { Name = QueueName, ReadMask = new FieldMask { Paths = { "stats" } } }).Stats.TasksCount is var n ? (int)n : 0;

    private static List<string> TaskIds(EmulatorState state) =>
        state.ListTasks(new ListTasksRequest { Parent = QueueName, PageSize = 1000 }).Tasks.Select(t => t.Name[(t.Name.LastIndexOf('/') + 1)..]).Order(StringComparer.Ordinal).ToList();
}
