using Bridge.CloudTasks.V2Beta3;
using Bridge.Emulators.CloudTasks.Internal;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Time.Testing;
using TaskMessage = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.Emulators.CloudTasks.Tests;

/// <summary>
/// What the state hands out and when, on a fake clock and without a dispatcher: rate limits, concurrency, pause.
/// Deterministic, so "nothing more is handed out" is a fact, not a wait.
/// </summary>
public sealed class ScheduleTests : IDisposable
{
    private const string Location = "projects/p/locations/l";
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private readonly EmulatorState _state;

    private readonly FailingStore _store = new();

    public ScheduleTests()
    {
        _state = new EmulatorState(_store, new EmulatorOptions(), _clock);
    }

    public void Dispose() => _state.Dispose();

    private string CreateQueue(string id, Action<Queue>? configure = null)
    {
        var queue = new Queue { Name = $"{Location}/queues/{id}" };
        configure?.Invoke(queue);
        _state.CreateQueue(new CreateQueueRequest { Parent = Location, Queue = queue });
        return queue.Name;
    }

    private void CreateTasks(string queue, int count)
    {
        for (var i = 0; i < count; i++)
        {
            _state.CreateTask(new CreateTaskRequest { Parent = queue, Task = new TaskMessage { HttpRequest = new HttpRequest { Url = "http://127.0.0.1:9/x" } } });
        }
    }

    [Fact]
    public void A_rate_of_five_per_second_with_a_burst_of_one_hands_out_one_task_every_200_ms()
    {
        var queue = CreateQueue("rated", q => q.RateLimits = new RateLimits { MaxDispatchesPerSecond = 5, MaxBurstSize = 1 });
        CreateTasks(queue, 15);
        var start = _clock.GetUtcNow();

        Assert.Single(_state.TakeDue(out var wake));
        Assert.Equal(start.AddMilliseconds(200), wake);
        var handedOut = 1;
        for (var step = 1; step <= 14; step++)
        {
            _clock.Advance(TimeSpan.FromMilliseconds(199));
            Assert.Empty(_state.TakeDue(out _));
            _clock.Advance(TimeSpan.FromMilliseconds(1));
            handedOut += _state.TakeDue(out _).Count;
            Assert.Equal(1 + step, handedOut);
        }

        Assert.Equal(TimeSpan.FromMilliseconds(2800), _clock.GetUtcNow() - start);
    }

    [Fact]
    public void A_completion_wakes_the_dispatch_loop_only_when_its_queue_can_use_it_and_always_tells_idle_waiters()
    {
        var wakes = 0;
        _state.OnDispatchWanted(() => wakes++); // called under the state's lock
        var queue = CreateQueue("woken", q => q.RateLimits = new RateLimits { MaxConcurrentDispatches = 1 });
        CreateTasks(queue, 2);
        var first = Assert.Single(_state.TakeDue(out _));
        Assert.Empty(_state.TakeDue(out _)); // the only slot is taken

        wakes = 0;
        _state.CompleteAttempt(first, new DispatchResult(200, _clock.GetUtcNow(), null));
        Assert.Equal(1, wakes); // the second task can use the freed slot
        var second = Assert.Single(_state.TakeDue(out _));

        wakes = 0;
        var changed = _state.Changed;
        _state.CompleteAttempt(second, new DispatchResult(200, _clock.GetUtcNow(), null));
        Assert.Equal(0, wakes); // nothing left to hand out: no pass of the loop
        Assert.True(changed.IsCompleted); // but idle waiters hear of it

        CreateTasks(queue, 1);
        var third = Assert.Single(_state.TakeDue(out _));
        wakes = 0;
        _state.CompleteAttempt(third, new DispatchResult(503, _clock.GetUtcNow(), null));
        Assert.Equal(1, wakes); // a retry the loop has not planned for
        Assert.Empty(_state.TakeDue(out var retryAt));
        Assert.NotNull(retryAt);
        _clock.Advance(TimeSpan.FromSeconds(1)); // past the first retry's backoff (0.1 s by default)
        Assert.Single(_state.TakeDue(out _));
    }

    [Fact]
    public void No_more_than_max_concurrent_dispatches_are_in_flight_and_a_completion_frees_a_slot()
    {
        var queue = CreateQueue("narrow", q => q.RateLimits = new RateLimits { MaxConcurrentDispatches = 2 });
        CreateTasks(queue, 8);

        var first = _state.TakeDue(out _);
        Assert.Equal(2, first.Count);
        Assert.Empty(_state.TakeDue(out _));

        _state.CompleteAttempt(first[0], new DispatchResult(200, _clock.GetUtcNow(), null));

        Assert.Single(_state.TakeDue(out _));
        Assert.Empty(_state.TakeDue(out _));
    }

    [Fact]
    public void A_paused_queue_hands_out_nothing_until_resumed()
    {
        var queue = CreateQueue("held");
        _state.SetQueueState(queue, Queue.Types.State.Paused);
        CreateTasks(queue, 3);

        Assert.Empty(_state.TakeDue(out _));
        _clock.Advance(TimeSpan.FromHours(1));
        Assert.Empty(_state.TakeDue(out _));

        _state.SetQueueState(queue, Queue.Types.State.Running);
        Assert.Equal(3, _state.TakeDue(out _).Count);
    }

    [Fact]
    public void A_task_scheduled_ahead_is_handed_out_when_its_time_comes()
    {
        var queue = CreateQueue("later");
        var due = _clock.GetUtcNow().AddMinutes(5);
        _state.CreateTask(new CreateTaskRequest { Parent = queue, Task = new TaskMessage { ScheduleTime = Timestamp.FromDateTimeOffset(due), HttpRequest = new HttpRequest { Url = "http://127.0.0.1:9/x" } } });

        Assert.Empty(_state.TakeDue(out var wake));
        Assert.True(wake <= due, "the dispatcher wakes by then"); // earlier for the minutely sweep
        _clock.Advance(TimeSpan.FromMinutes(5) - TimeSpan.FromTicks(1));
        Assert.Empty(_state.TakeDue(out _));
        _clock.Advance(TimeSpan.FromTicks(1));
        Assert.Single(_state.TakeDue(out _));
    }

    [Fact]
    public void A_failed_attempt_is_rescheduled_after_the_backoff_and_an_exhausted_task_is_deleted()
    {
        var queue = CreateQueue("retry", q => q.RetryConfig = new RetryConfig { MaxAttempts = 2, MinBackoff = Duration.FromTimeSpan(TimeSpan.FromSeconds(1)), MaxBackoff = Duration.FromTimeSpan(TimeSpan.FromSeconds(10)) });
        CreateTasks(queue, 1);

        var attempt = Assert.Single(_state.TakeDue(out _));
        _state.CompleteAttempt(attempt, new DispatchResult(500, _clock.GetUtcNow(), null));
        Assert.Equal(_clock.GetUtcNow().AddSeconds(1), _state.GetTask(new GetTaskRequest { Name = attempt.Task.Name }).ScheduleTime.ToDateTimeOffset());

        _clock.Advance(TimeSpan.FromSeconds(1));
        var second = Assert.Single(_state.TakeDue(out _));
        _state.CompleteAttempt(second, new DispatchResult(500, _clock.GetUtcNow(), null));

        Assert.True(_state.IsIdle(queue));
    }

    [Fact]
    public void A_failure_while_completing_an_attempt_leaves_the_task_to_be_dispatched_again()
    {
        var queue = CreateQueue("fragile");
        CreateTasks(queue, 1);
        var attempt = Assert.Single(_state.TakeDue(out _));

        _store.FailNextTaskSave = true;
        Assert.Throws<IOException>(() => { _ = _state.CompleteAttempt(attempt, new DispatchResult(500, _clock.GetUtcNow(), null)); }); // throws at once, before any commit

        Assert.False(_state.IsIdle(queue));
        _clock.Advance(TimeSpan.FromMinutes(1));
        var again = Assert.Single(_state.TakeDue(out _));
        Assert.Equal(attempt.Task.Name, again.Task.Name);
    }

    [Fact]
    public void Pull_tasks_are_never_handed_out_not_even_after_a_restart()
    {
        using var folder = new DurableStateFolder(_clock);
        var queue = $"{Location}/queues/pull";
        using (var first = folder.Open())
        {
            first.CreateQueue(new CreateQueueRequest { Parent = Location, Queue = new Queue { Name = queue, Type = Queue.Types.Type.Pull } });
            first.CreateTask(new CreateTaskRequest { Parent = queue, Task = new TaskMessage { Name = queue + "/tasks/kept", PullMessage = new PullMessage { Payload = Google.Protobuf.ByteString.CopyFromUtf8("p") } } });
            Assert.Empty(first.TakeDue(out _));
        }

        using var restarted = folder.Open();
        _clock.Advance(TimeSpan.FromDays(1));

        Assert.Empty(restarted.TakeDue(out _));
        Assert.Equal(queue + "/tasks/kept", restarted.GetTask(new GetTaskRequest { Name = queue + "/tasks/kept" }).Name);
        Assert.True(restarted.IsIdle(queue), "a pull queue has nothing to dispatch");
    }

    [Fact]
    public void An_attempt_from_before_a_reset_does_not_settle_the_new_task_of_the_same_name()
    {
        var queue = CreateQueue("reused");
        var name = queue + "/tasks/same";
        _state.CreateTask(new CreateTaskRequest { Parent = queue, Task = new TaskMessage { Name = name, HttpRequest = new HttpRequest { Url = "http://127.0.0.1:9/x" } } });
        var old = Assert.Single(_state.TakeDue(out _));

        _state.Reset();
        CreateQueue("reused", q => q.RateLimits = new RateLimits { MaxConcurrentDispatches = 1 });
        _state.CreateTask(new CreateTaskRequest { Parent = queue, Task = new TaskMessage { Name = name, HttpRequest = new HttpRequest { Url = "http://127.0.0.1:9/x" } } });
        var current = Assert.Single(_state.TakeDue(out _));

        _state.CompleteAttempt(old, new DispatchResult(200, _clock.GetUtcNow(), null));

        Assert.True(_state.IsInFlight(name), "the new task's own attempt is still under way");
        Assert.Equal(1, _state.GetTask(new GetTaskRequest { Name = name }).DispatchCount);
        Assert.False(_state.IsIdle(queue));
        _state.CompleteAttempt(current, new DispatchResult(200, _clock.GetUtcNow(), null));
        Assert.True(_state.IsIdle(queue));
    }

    /// <summary>The in-memory store, except that a task save can be made to fail once (a full disk).</summary>
    private sealed class FailingStore : DelegatingEmulatorStore
    {
        public bool FailNextTaskSave { get; set; }

        public override void SaveTask(StoredTask task) => SaveTasks([task]);

        public override void SaveTasks(IReadOnlyCollection<StoredTask> tasks)
        {
            if (FailNextTaskSave)
            {
                FailNextTaskSave = false;
                throw new IOException("disk full");
            }

            base.SaveTasks(tasks);
        }
    }
}
