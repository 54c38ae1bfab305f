using Bridge.CloudTasks.V2Beta3;
using Bridge.Emulators.CloudTasks.Internal;
using Grpc.Core;
using Microsoft.Extensions.Time.Testing;
using Task = System.Threading.Tasks.Task;
using TaskMessage = Bridge.CloudTasks.V2Beta3.Task;
using static Bridge.Emulators.CloudTasks.Tests.StateTestQueue;

namespace Bridge.Emulators.CloudTasks.Tests;

/// <summary>The engine at scale: group commit, a failed commit, purge in slices, the indexed sweep.</summary>
public sealed class EngineScaleTests : IDisposable
{
    private readonly DurableStateFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task Concurrent_creates_share_commits_and_every_acknowledged_one_is_there_after_a_reopen()
    {
        const int Count = 200;
        var store = _folder.OpenStore();
        using (var state = _folder.Open(store))
        {
            CreatePausedQueue(state);
            var before = store.Commits;

            // Started together: they queue up behind the first commit and go to disk together.
            await Task.WhenAll(Enumerable.Range(0, Count).Select(i => state.CreateTaskAsync(new CreateTaskRequest { Parent = QueueName, Task = HttpTask($"t{i}") })));

            var commits = store.Commits - before;
            Assert.True(commits < Count / 2, $"{Count} creates took {commits} commits");
        }

        using var reopened = _folder.Open();
        var (tasks, _) = reopened.ListTasks(new ListTasksRequest { Parent = QueueName, PageSize = 1000 });
        Assert.Equal(Count, tasks.Count);
    }

    [Fact]
    public async Task A_create_whose_commit_fails_is_an_error_and_the_task_is_taken_back()
    {
        var store = new CommitFailingStore();
        using var state = new EmulatorState(store, new EmulatorOptions(), _folder.Clock);
        CreatePausedQueue(state);

        store.FailNextCommit = true;
        var failed = await Assert.ThrowsAsync<RpcException>(() => state.CreateTaskAsync(new CreateTaskRequest { Parent = QueueName, Task = HttpTask("lost") }));
        Assert.Equal(StatusCode.Unavailable, failed.StatusCode);
        Assert.Contains("IOException", failed.Status.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain("disk full", failed.Status.Detail, StringComparison.Ordinal); // the cause's text may quote data: not passed on

        Assert.Equal(StatusCode.NotFound, Assert.Throws<RpcException>(() => state.GetTask(new GetTaskRequest { Name = QueueName + "/tasks/lost" })).StatusCode);
        Assert.True(state.IsIdle(QueueName));
        await state.CreateTaskAsync(new CreateTaskRequest { Parent = QueueName, Task = HttpTask("lost") }); // the name was never taken
    }

    [Fact]
    public async Task A_batch_goes_in_as_one_write_with_each_failure_at_its_index_and_the_others_created()
    {
        var store = new CommitFailingStore();
        using var state = new EmulatorState(store, new EmulatorOptions(), _folder.Clock);
        CreatePausedQueue(state);
        await state.CreateTaskAsync(new CreateTaskRequest { Parent = QueueName, Task = HttpTask("exists") });
        var before = (store.SaveTaskCalls, store.SaveTasksCalls, store.WhenDurableCalls);
        var requests = Enumerable.Range(0, 100).Select(i => new CreateTaskRequest { Task = HttpTask($"t{i}") }).ToList();
        requests[3].Task = HttpTask("exists");                                      // created earlier
        requests[50].Task = HttpTask("t7");                                        // twice in the batch: the first one wins
        requests[60].Task = new TaskMessage { Name = QueueName + "/tasks/bad" };  // no payload
        requests[70].Task = new TaskMessage { Name = StateTestQueue.Location + "/queues/other/tasks/x", HttpRequest = new HttpRequest { Url = "http://127.0.0.1:9/x" } };

        var outcomes = await state.CreateTasksAsync(QueueName, requests);

        Assert.Equal(100, outcomes.Count);
        Assert.Equal(StatusCode.AlreadyExists, outcomes[3].Error!.StatusCode);
        Assert.Equal(StatusCode.AlreadyExists, outcomes[50].Error!.StatusCode);
        Assert.Equal(StatusCode.InvalidArgument, outcomes[60].Error!.StatusCode);
        Assert.Equal(StatusCode.InvalidArgument, outcomes[70].Error!.StatusCode);
        var created = outcomes.Where(o => o.Task is not null).Select(o => o.Task!.Name).ToList();
        Assert.Equal(96, created.Count);
        Assert.Equal(QueueName + "/tasks/t7", outcomes[7].Task!.Name);
        Assert.Equal(97, state.ListTasks(new ListTasksRequest { Parent = QueueName, PageSize = 1000 }).Tasks.Count);

        // One write of all the created tasks, one wait for durability: one entry of one group commit.
        Assert.Equal(before.SaveTaskCalls, store.SaveTaskCalls);
        Assert.Equal(before.SaveTasksCalls + 1, store.SaveTasksCalls);
        Assert.Equal(96, store.LastSaveTasksCount);
        Assert.Equal(before.WhenDurableCalls + 1, store.WhenDurableCalls);
    }

    [Fact]
    public async Task A_batch_whose_commit_fails_is_unavailable_as_a_whole_and_none_of_its_tasks_stays()
    {
        var store = new CommitFailingStore();
        using var state = new EmulatorState(store, new EmulatorOptions(), _folder.Clock);
        CreatePausedQueue(state);
        var requests = Enumerable.Range(0, 10).Select(i => new CreateTaskRequest { Task = HttpTask($"t{i}") }).ToList();

        store.FailNextCommit = true;
        var failed = await Assert.ThrowsAsync<RpcException>(() => state.CreateTasksAsync(QueueName, requests));

        Assert.Equal(StatusCode.Unavailable, failed.StatusCode);
        Assert.Empty(state.ListTasks(new ListTasksRequest { Parent = QueueName }).Tasks);
        Assert.True(state.IsIdle(QueueName));
        var retried = await state.CreateTasksAsync(QueueName, requests); // no name was taken
        Assert.All(retried, o => Assert.NotNull(o.Task));
    }

    [Fact]
    public async Task A_durable_batch_is_one_commit_and_is_there_after_a_reopen()
    {
        var store = _folder.OpenStore();
        using (var state = _folder.Open(store))
        {
            CreatePausedQueue(state);
            state.GetQueue(new GetQueueRequest { Name = QueueName });
            var before = store.Commits;

            var outcomes = await state.CreateTasksAsync(QueueName, Enumerable.Range(0, 100).Select(i => new CreateTaskRequest { Task = HttpTask($"t{i}") }).ToList());

            Assert.All(outcomes, o => Assert.NotNull(o.Task));
            Assert.Equal(before + 1, store.Commits);
        }

        using var reopened = _folder.Open();
        Assert.Equal(100, reopened.ListTasks(new ListTasksRequest { Parent = QueueName, PageSize = 1000 }).Tasks.Count);
    }

    [Fact]
    public async Task Calls_on_other_queues_and_new_tasks_complete_while_a_purge_waits_for_its_commit()
    {
        const string Other = StateTestQueue.Location + "/queues/other";
        var store = new CommitFailingStore();
        using var state = new EmulatorState(store, new EmulatorOptions(), _folder.Clock);
        CreatePausedQueue(state);
        state.CreateQueue(new CreateQueueRequest { Parent = StateTestQueue.Location, Queue = new Queue { Name = Other } });
        state.SetQueueState(Other, Queue.Types.State.Paused);
        await state.CreateTasksAsync(QueueName, Enumerable.Range(0, 50_000).Select(i => new CreateTaskRequest { Task = HttpTask($"t{i}") }).ToList());

        store.HoldPurgeCommit();
        var purge = Task.Run(() => state.PurgeQueue(new PurgeQueueRequest { Name = QueueName }));
        await store.PurgeCommitAwaited.WaitAsync(TimeSpan.FromSeconds(60));

        // The purge is under way (not acknowledged); the engine serves everyone else meanwhile.
        Assert.False(purge.IsCompleted);
        Assert.Equal(Other, state.GetQueue(new GetQueueRequest { Name = Other }).Name);
        await state.CreateTaskAsync(new CreateTaskRequest { Parent = Other, Task = WithQueue(HttpTask("o1"), Other) });
        await state.CreateTaskAsync(new CreateTaskRequest { Parent = QueueName, Task = HttpTask("after-purge") });
        Assert.Equal(StatusCode.AlreadyExists, (await Assert.ThrowsAsync<RpcException>(() => state.CreateTaskAsync(new CreateTaskRequest { Parent = QueueName, Task = HttpTask("t49999") }))).StatusCode);
        Assert.False(purge.IsCompleted);

        store.ReleasePurgeCommit();
        await purge.WaitAsync(TimeSpan.FromSeconds(60));

        // Created after the purge call: kept. Purged names: still reserved.
        Assert.Equal([QueueName + "/tasks/after-purge"], state.ListTasks(new ListTasksRequest { Parent = QueueName }).Tasks.Select(t => t.Name));
        Assert.Equal(StatusCode.AlreadyExists, (await Assert.ThrowsAsync<RpcException>(() => state.CreateTaskAsync(new CreateTaskRequest { Parent = QueueName, Task = HttpTask("t0") }))).StatusCode);
        Assert.Single(state.ListTasks(new ListTasksRequest { Parent = Other }).Tasks);
    }

    [Fact]
    public void Purged_names_stay_reserved_for_the_tombstone_ttl_and_are_free_after_it()
    {
        using var state = new EmulatorState(new InMemoryStore(), new EmulatorOptions(), _folder.Clock);
        CreatePausedQueue(state);
        for (var i = 0; i < 10_000; i++)
        {
            state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask($"t{i}") });
        }

        var purged = state.PurgeQueue(new PurgeQueueRequest { Name = QueueName });

        Assert.Equal(_folder.Clock.GetUtcNow(), purged.PurgeTime.ToDateTimeOffset());
        Assert.Empty(state.ListTasks(new ListTasksRequest { Parent = QueueName }).Tasks);
        Assert.True(state.IsIdle(QueueName));
        Assert.Equal(StatusCode.AlreadyExists, Assert.Throws<RpcException>(() => state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask("t9999") })).StatusCode);

        _folder.Clock.Advance(TimeSpan.FromHours(1) + TimeSpan.FromMinutes(1)); // the default tombstone_ttl, and the next sweep

        state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask("t0") });
        state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask("t9999") });
        Assert.Equal(2, state.ListTasks(new ListTasksRequest { Parent = QueueName }).Tasks.Count);
    }

    [Fact]
    public void Tasks_older_than_the_task_ttl_are_swept_and_younger_ones_stay()
    {
        using var state = new EmulatorState(new InMemoryStore(), new EmulatorOptions(), _folder.Clock);
        CreatePausedQueue(state, q => q.TaskTtl = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromDays(1)));
        state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask("old") });
        _folder.Clock.Advance(TimeSpan.FromHours(12));
        state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask("young") });

        _folder.Clock.Advance(TimeSpan.FromHours(12) + TimeSpan.FromMinutes(1));
        state.TakeDue(out _); // sweeps

        var names = state.ListTasks(new ListTasksRequest { Parent = QueueName }).Tasks.Select(t => t.Name).ToList();
        Assert.Equal([QueueName + "/tasks/young"], names);

        _folder.Clock.Advance(TimeSpan.FromHours(12));
        state.TakeDue(out _);
        Assert.Empty(state.ListTasks(new ListTasksRequest { Parent = QueueName }).Tasks);
    }

    [Fact]
    public void Tasks_list_in_creation_order_page_by_page_and_a_token_stays_good_across_deletions()
    {
        using var state = new EmulatorState(new InMemoryStore(), new EmulatorOptions(), _folder.Clock);
        CreatePausedQueue(state);
        var created = Enumerable.Range(0, 25).Select(i => $"{QueueName}/tasks/t{24 - i:D2}").ToList(); // names sort the other way round
        foreach (var name in created)
        {
            state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = HttpTask(name[(name.LastIndexOf('/') + 1)..]) });
        }

        var (first, token) = state.ListTasks(new ListTasksRequest { Parent = QueueName, PageSize = 10 });
        state.DeleteTask(new DeleteTaskRequest { Name = created[3] });  // already listed
        state.DeleteTask(new DeleteTaskRequest { Name = created[10] }); // the first of the next page
        var listed = first.Select(t => t.Name).ToList();
        while (token.Length > 0)
        {
            var (page, next) = state.ListTasks(new ListTasksRequest { Parent = QueueName, PageSize = 10, PageToken = token });
            Assert.True(page.Count is > 0 and <= 10);
            listed.AddRange(page.Select(t => t.Name));
            token = next;
        }

        Assert.Equal(created.Where((_, i) => i != 10), listed);
        Assert.Equal(StatusCode.InvalidArgument, Assert.Throws<RpcException>(() => state.ListTasks(new ListTasksRequest { Parent = QueueName, PageToken = "bm90LWEtdG9rZW4=" })).StatusCode);
    }

    private static TaskMessage HttpTask(string id) =>
        new() { Name = $"{QueueName}/tasks/{id}", HttpRequest = new HttpRequest { Url = "http://127.0.0.1:9/x", Body = Google.Protobuf.ByteString.CopyFrom(new byte[512]) } };

    private static TaskMessage WithQueue(TaskMessage task, string queue)
    {
        task.Name = queue + task.Name[task.Name.LastIndexOf("/tasks/", StringComparison.Ordinal)..];
        return task;
    }

    /// <summary>
    /// The in-memory store, except that the next commit can be made to fail (a full disk), a purge's commit can be
    /// held until released, and the writes are counted.
    /// </summary>
    private sealed class CommitFailingStore : DelegatingEmulatorStore
    {
        private readonly TaskCompletionSource _purgeCommitAwaited = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private TaskCompletionSource? _heldPurgeCommit;
        private bool _purgeWritten;

        public bool FailNextCommit { get; set; }

        public int SaveTaskCalls { get; private set; }

        public int SaveTasksCalls { get; private set; }

        public int LastSaveTasksCount { get; private set; }

        public int WhenDurableCalls { get; private set; }

        public Task PurgeCommitAwaited => _purgeCommitAwaited.Task;

        public void HoldPurgeCommit() => _heldPurgeCommit = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        public void ReleasePurgeCommit() => _heldPurgeCommit!.TrySetResult();

        public override Task WhenDurable()
        {
            WhenDurableCalls++;
            if (_purgeWritten && _heldPurgeCommit is { } held)
            {
                _purgeWritten = false;
                _purgeCommitAwaited.TrySetResult();
                return held.Task;
            }

            if (!FailNextCommit)
            {
                return Task.CompletedTask;
            }

            FailNextCommit = false;
            return Task.FromException(new IOException("disk full"));
        }

        public override void PurgeTasks(string queueName, IReadOnlyCollection<string> names, DateTimeOffset reservedUntil) => _purgeWritten = true;

        public override void SaveTask(StoredTask task) => SaveTaskCalls++;

        public override void SaveTasks(IReadOnlyCollection<StoredTask> tasks)
        {
            SaveTasksCalls++;
            LastSaveTasksCount = tasks.Count;
        }
    }
}

/// <summary>
/// What a stored task costs the managed heap. GC.GetTotalMemory counts the whole process, so this runs with no other
/// test at the same time (its own collection, parallelization off).
/// </summary>
[Collection(HeapMeasureCollection.Name)]
public sealed class StoredTaskHeapTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

    /// <summary>
    /// What a stored task costs the managed heap (512-byte body, generated name): the goal is 1.5 KB of RSS per task,
    /// so the heap's share must stay well under it. Measured after full collections, so it is the live size only.
    /// </summary>
    [Fact]
    public async Task A_stored_task_with_a_512_byte_body_costs_well_under_the_goal_in_heap()
    {
        const int Count = 50_000;
        using var state = new EmulatorState(new InMemoryStore(), new EmulatorOptions(), _clock);
        CreatePausedQueue(state);
        var task = new TaskMessage { HttpRequest = new HttpRequest { Url = "http://127.0.0.1:9/unused", Body = Google.Protobuf.ByteString.CopyFrom(new byte[512]) } };
        await state.CreateTasksAsync(QueueName, [new CreateTaskRequest { Task = task }]); // first-use allocations
        var before = GC.GetTotalMemory(forceFullCollection: true);

        for (var i = 0; i < Count / 100; i++)
        {
            await state.CreateTasksAsync(QueueName, Enumerable.Range(0, 100).Select(_ => new CreateTaskRequest { Task = task }).ToList());
        }

        var perTask = (GC.GetTotalMemory(forceFullCollection: true) - before) / (double)Count;
        output.WriteLine($"{perTask:F0} bytes of heap per stored task (serialized task {task.CalculateSize()} bytes without its name)");
        Assert.False(state.IsIdle(QueueName)); // the tasks are still there, kept alive past the measure
        Assert.InRange(perTask, 0, 1200); // measured 957 alone; compact storage before this was about 2 KB
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class HeapMeasureCollection
{
    public const string Name = "Heap measure (alone)";
}
