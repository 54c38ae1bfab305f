using Bridge.CloudTasks.V2Beta3;
using Bridge.Emulators.CloudTasks.Internal;
using Bridge.Testing;
using Grpc.Core;
using Microsoft.Extensions.Logging.Abstractions;
using Task = System.Threading.Tasks.Task;
using TaskMessage = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.Emulators.CloudTasks.Tests;

/// <summary>
/// With a durable store an attempt's start (dispatch_count + 1) is written only if the attempt is still under way
/// after <see cref="EmulatorState.DefaultStartWriteDelay"/>: a short attempt writes only its outcome; a long one has
/// its start on disk while in flight; a task deleted, purged or whose queue went meanwhile is never written back.
/// </summary>
public sealed class DeferredStartWriteTests : IAsyncLifetime
{
    private const string Location = "projects/p/locations/l";
    private const string QueueName = Location + "/queues/q";
    private const string TaskName = QueueName + "/tasks/t";
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan Delay = EmulatorState.DefaultStartWriteDelay;
    private readonly DurableStateFolder _folder = new();
    private HttpTargetServer _target = null!;

    public async Task InitializeAsync() => _target = await HttpTargetServer.StartAsync();

    public Task DisposeAsync() => Teardown.AllAsync(_target, _folder);

    [Fact]
    public async Task A_start_is_written_only_once_its_attempt_has_lasted_the_delay_and_the_loop_is_told_when()
    {
        var store = _folder.OpenStore();
        using var state = _folder.Open(store);
        CreateQueueAndTask(state);
        var startedAt = _folder.Clock.GetUtcNow();

        var work = Assert.Single(state.TakeDue(out var nextWake));
        Assert.Equal(startedAt + Delay, nextWake); // an idle loop wakes for the start's write on time
        await store.WhenDurable();
        Assert.Equal(0, StoredDispatchCount()); // the request may leave now: nothing of the attempt is on disk

        _folder.Clock.Advance(Delay - TimeSpan.FromMilliseconds(1));
        Assert.Empty(state.TakeDue(out nextWake));
        Assert.Equal(startedAt + Delay, nextWake);
        Assert.Equal(0, store.SupersedableWrites); // not due yet

        _folder.Clock.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Empty(state.TakeDue(out _));
        Assert.Equal(1, store.SupersedableWrites);
        await work.Recorded.WaitAsync(Bound); // the start's commit
        Assert.True(state.IsInFlight(TaskName));
        Assert.Equal(1, StoredDispatchCount()); // on disk while the attempt is still under way

        await state.CompleteAttempt(work, new DispatchResult(200, _folder.Clock.GetUtcNow(), null)).WaitAsync(Bound);
        Assert.Null(StoredDispatchCount()); // the success deleted the row
        Assert.Equal(0, store.SupersededWrites); // the start was committed before the outcome came: nothing to skip
    }

    [Theory]
    [InlineData(200)] // the deletion is the attempt's one write
    [InlineData(503)] // the retry's row is the attempt's one write, with dispatch count 1 as the start would have had
    public async Task An_attempt_that_ends_before_the_delay_writes_only_its_outcome(int status)
    {
        var store = new CountingStore(_folder.OpenStore());
        var state = new EmulatorState(store, new EmulatorOptions(), _folder.Clock);
        try
        {
            CreateQueueAndTask(state);
            var before = store.Writes;
            var work = Assert.Single(state.TakeDue(out _));
            await state.CompleteAttempt(work, new DispatchResult(status, _folder.Clock.GetUtcNow(), null)).WaitAsync(Bound);

            _folder.Clock.Advance(Delay); // the loop's pass at the start's write time finds the attempt ended
            state.TakeDue(out _);
            await store.WhenDurable().WaitAsync(Bound);

            Assert.Equal(0, store.StartWrites);
            Assert.Equal(before + 1, store.Writes); // the outcome alone; it was two (the start, then the outcome)
            Assert.Equal(status == 200 ? null : 1, StoredDispatchCount());
        }
        finally
        {
            state.Dispose();
        }
    }

    [Theory]
    [InlineData("DeleteTask")]
    [InlineData("PurgeQueue")]
    [InlineData("DeleteQueue")]
    public async Task A_task_gone_while_its_attempt_is_under_way_is_not_written_back_by_the_late_start(string change)
    {
        var store = _folder.OpenStore();
        var state = _folder.Open(store);
        try
        {
            CreateQueueAndTask(state);
            var work = Assert.Single(state.TakeDue(out _));
            switch (change)
            {
                case "DeleteTask":
                    state.DeleteTask(new DeleteTaskRequest { Name = TaskName });
                    break;
                case "PurgeQueue":
                    state.PurgeQueue(new PurgeQueueRequest { Name = QueueName });
                    break;
                default:
                    state.DeleteQueue(new DeleteQueueRequest { Name = QueueName });
                    break;
            }

            _folder.Clock.Advance(Delay);
            state.TakeDue(out _); // the start is due: the attempt is still under way, but its task is gone
            Assert.Equal(0, store.SupersedableWrites);
            await state.CompleteAttempt(work, new DispatchResult(503, _folder.Clock.GetUtcNow(), null)).WaitAsync(Bound);
            await store.WhenDurable().WaitAsync(Bound);
            Assert.Null(StoredDispatchCount()); // no row came back
        }
        finally
        {
            state.Dispose();
        }

        using var reopened = _folder.Open();
        var gone = Assert.Throws<RpcException>(() => reopened.GetTask(new GetTaskRequest { Name = TaskName }));
        Assert.Equal(StatusCode.NotFound, gone.StatusCode);
    }

    [Fact]
    public async Task A_start_made_outside_the_loop_wakes_it_once_to_plan_the_write()
    {
        var store = _folder.OpenStore();
        using var state = _folder.Open(store);
        CreateQueueAndTask(state);
        state.SetQueueState(QueueName, Queue.Types.State.Paused); // only RunTask hands the task out
        Assert.Empty(state.TakeDue(out _)); // the loop's pass: no start to plan for
        var wakes = 0;
        state.OnDispatchWanted(() => wakes++);

        var (_, work) = state.RunTask(new RunTaskRequest { Name = TaskName });
        Assert.Equal(1, wakes); // the loop had no look at the starts planned: it must plan one
        state.TakeDue(out var nextWake);
        Assert.Equal(work.DispatchTime + Delay, nextWake);

        _folder.Clock.Advance(Delay);
        state.TakeDue(out _);
        await work.Recorded.WaitAsync(Bound);
        Assert.Equal(1, StoredDispatchCount());
    }

    [Fact]
    public async Task An_idle_emulator_with_one_long_attempt_writes_its_start_on_time_while_it_is_in_flight()
    {
        using var answer = new ManualResetEventSlim();
        _target.Respond = (_, _) =>
        {
            Assert.True(answer.Wait(Bound)); // under way until the test has seen the start on disk
            return TargetResponse.Ok;
        };
        var store = _folder.OpenStore();
        var state = _folder.Open(store);
        try
        {
            CreateQueueAndTask(state);
            using var issuer = new OidcIssuer(OidcIssuer.CreateSigningKeyPem(), () => "http://localhost", _folder.Clock, TimeSpan.FromHours(1));
            using var dispatcher = new Dispatcher(state, issuer, new EmulatorOptions(), _folder.Clock, NullLogger<Dispatcher>.Instance);
            await dispatcher.StartAsync(CancellationToken.None);
            try
            {
                await _target.WaitForRequestsAsync(1, Bound);
                Assert.Equal(0, StoredDispatchCount());

                // Nothing else happens: only the loop's planned wake (the fake clock's timer) can write the start.
                _folder.Clock.Advance(Delay);
                await Eventually.HoldsAsync(() => Task.FromResult(StoredDispatchCount() == 1), Bound, () => $"the start on disk (dispatch count {StoredDispatchCount()})");
                Assert.True(state.IsInFlight(TaskName));
            }
            finally
            {
                answer.Set();
                await dispatcher.StopAsync(CancellationToken.None); // lets the attempt finish and its outcome commit
            }

            Assert.Equal(1, store.SupersedableWrites);
            Assert.Null(StoredDispatchCount()); // then the success deleted it
        }
        finally
        {
            answer.Set();
            state.Dispose();
        }
    }

    private void CreateQueueAndTask(EmulatorState state)
    {
        state.CreateQueue(new CreateQueueRequest { Parent = Location, Queue = new Queue { Name = QueueName } });
        state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = new TaskMessage { Name = TaskName, HttpRequest = new HttpRequest { Url = _target.Url("/x").ToString() } } });
    }

    /// <summary>The task's dispatch count on disk (null: no row).</summary>
    private int? StoredDispatchCount() => _folder.StoredDispatchCounts(QueueName).TryGetValue(TaskName, out var count) ? count : null;

    /// <summary>The SQLite store, counting the task writes the state makes (row saves, starts, deletions).</summary>
    private sealed class CountingStore(SqliteStore inner) : DelegatingEmulatorStore(inner)
    {
        private int _writes;
        private int _startWrites;

        public int Writes => Volatile.Read(ref _writes);

        public int StartWrites => Volatile.Read(ref _startWrites);

        public override void SaveTask(StoredTask task)
        {
            Interlocked.Increment(ref _writes);
            Inner.SaveTask(task);
        }

        public override SupersedableWrite? SaveTaskSupersedable(StoredTask task)
        {
            Interlocked.Increment(ref _writes);
            Interlocked.Increment(ref _startWrites);
            return Inner.SaveTaskSupersedable(task);
        }

        public override void SaveTasks(IReadOnlyCollection<StoredTask> tasks)
        {
            Interlocked.Increment(ref _writes);
            Inner.SaveTasks(tasks);
        }

        public override void DeleteTasks(IReadOnlyCollection<string> names, DateTimeOffset reservedUntil)
        {
            Interlocked.Increment(ref _writes);
            Inner.DeleteTasks(names, reservedUntil);
        }

        public override void DeleteStoredTasks(IReadOnlyCollection<StoredTask> tasks, DateTimeOffset reservedUntil)
        {
            Interlocked.Increment(ref _writes);
            Inner.DeleteStoredTasks(tasks, reservedUntil);
        }
    }
}
