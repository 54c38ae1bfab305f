using Bridge.CloudTasks;
using Bridge.CloudTasks.V2Beta3;
using Bridge.Emulators.CloudTasks.Internal;
using Bridge.Testing;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Task = System.Threading.Tasks.Task;
using TaskMessage = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.Emulators.CloudTasks.Tests;

/// <summary>
/// The order of an attempt with a durable store: the request leaves without waiting for any commit (its start is
/// written only if the attempt lasts, see <see cref="DeferredStartWriteTests"/>); a failed commit of a start written
/// late means "sent, write again"; an outcome that cannot be written leaves the counts storage has; and a SIGKILL with
/// attempts in flight only ever causes redeliveries, with the dispatch count on disk never going down.
/// </summary>
public sealed class DispatchOrderTests : IAsyncLifetime
{
    private const string Location = "projects/p/locations/l";
    private const string QueueName = Location + "/queues/q";
    private const string TaskName = QueueName + "/tasks/t";
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);
    private readonly DurableStateFolder _folder = new();
    private HttpTargetServer _target = null!;

    public async Task InitializeAsync() => _target = await HttpTargetServer.StartAsync();

    public Task DisposeAsync() => Teardown.AllAsync(_target, _folder);

    [Fact]
    public async Task The_request_leaves_without_waiting_for_any_commit()
    {
        using var hold = new WriterHold();
        var store = _folder.OpenStore();
        var state = _folder.Open(store);
        try
        {
            CreateQueueAndTask(state);

            // From here the next commit is held on the writer until released: the sweep's of the loop's first pass, or
            // the outcome's (a short attempt's start is never written).
            hold.HoldNextCommitOf(store);
            await using (var dispatcher = await StartDispatcherAsync(state))
            {
                // Sent although no commit can complete before the release (an older order waited for the start's).
                Assert.Single(await _target.WaitForRequestsAsync(1, Bound));
                Assert.True(hold.Entered.Wait(Bound), "a commit reaches the writer");
                hold.Release();
                await state.WaitUntilAsync(() => state.IsInFlight(TaskName) || HasTask(state) ? null : "gone", "the outcome to be recorded");
            }
        }
        finally
        {
            hold.Release(); // never leave the writer held: disposing the store waits for it
            state.Dispose();
        }

        using var reopened = _folder.Open();
        Assert.False(HasTask(reopened)); // the success is on disk
        Assert.Equal(StatusCode.AlreadyExists, Assert.Throws<RpcException>(() => reopened.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = NewTask() })).StatusCode);
    }

    [Fact]
    public async Task A_start_whose_commit_fails_is_still_sent_once_and_storage_catches_up_with_memory()
    {
        using var answer = new ManualResetEventSlim();
        HoldRequestsUntil(answer, 503);
        var failNext = 0;
        using var failed = new ManualResetEventSlim();
        var store = new SqliteStore(_folder.Path)
        {
            BeforeCommit = () =>
            {
                if (Interlocked.Exchange(ref failNext, 0) == 1)
                {
                    failed.Set();
                    throw new IOException("disk full");
                }
            },
        };
        var log = new EventIdLog();
        var state = _folder.Open(store);
        try
        {
            CreateQueueAndTask(state);
            await using (var dispatcher = await StartDispatcherAsync(state, log))
            {
                try
                {
                    await WriteTheStartOfTheAttemptUnderWayAsync(store, () => Volatile.Write(ref failNext, 1)); // the next commit is the start's
                    Assert.True(failed.Wait(Bound), "the start's commit failed");
                }
                finally
                {
                    answer.Set();
                }

                Assert.Equal(1, (await state.WaitForAttemptAsync(TaskName, 1)).ResponseCount);
            }
        }
        finally
        {
            answer.Set();
            state.Dispose(); // after the dispatcher stopped: attempts under way and their writes finished
        }

        Assert.Contains(StartNotDurable, log.EventIds); // the failed start was seen, and the task written again
        AssertSentOnceAndStoredAsMemoryHadIt();
    }

    [Fact]
    public async Task A_start_whose_commit_fails_after_the_attempt_settled_in_memory_still_leaves_storage_as_memory_has_it()
    {
        using var answer = new ManualResetEventSlim();
        HoldRequestsUntil(answer, 503);
        var armed = 0;
        using var entered = new ManualResetEventSlim();
        using var settled = new ManualResetEventSlim();
        using var failed = new ManualResetEventSlim();
        var store = new SqliteStore(_folder.Path)
        {
            BeforeCommit = () =>
            {
                if (Interlocked.Exchange(ref armed, 0) == 1)
                {
                    // The start's commit is held until the attempt's outcome is in memory, then fails.
                    entered.Set();
                    Assert.True(settled.Wait(Bound));
                    failed.Set();
                    throw new IOException("disk full");
                }
            },
        };
        var log = new EventIdLog();
        var state = _folder.Open(store);
        try
        {
            CreateQueueAndTask(state);
            await using (var dispatcher = await StartDispatcherAsync(state, log))
            {
                try
                {
                    await WriteTheStartOfTheAttemptUnderWayAsync(store, () => Volatile.Write(ref armed, 1)); // the next commit is the start's
                    Assert.True(entered.Wait(Bound), "the start's commit reaches the writer");
                }
                finally
                {
                    answer.Set();
                }

                Assert.Equal(1, (await state.WaitForAttemptAsync(TaskName, 1)).ResponseCount);
                settled.Set();
                Assert.True(failed.Wait(Bound), "the start's commit failed");
            }
        }
        finally
        {
            answer.Set();
            settled.Set(); // never leave the writer held: disposing the store waits for it
            state.Dispose();
        }

        Assert.Contains(StartNotDurable, log.EventIds);
        AssertSentOnceAndStoredAsMemoryHadIt();
    }

    [Fact]
    public async Task A_start_whose_commit_fails_once_the_dispatcher_is_stopping_is_still_written_before_it_stops()
    {
        using var answer = new ManualResetEventSlim();
        HoldRequestsUntil(answer, 503);
        var armed = 0;
        using var entered = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var store = new SqliteStore(_folder.Path)
        {
            BeforeCommit = () =>
            {
                if (Interlocked.Exchange(ref armed, 0) == 1)
                {
                    // The start's commit is held until shutdown has begun, then fails.
                    entered.Set();
                    Assert.True(release.Wait(Bound));
                    throw new IOException("disk full");
                }
            },
        };
        var state = _folder.Open(store);
        try
        {
            CreateQueueAndTask(state);
            var dispatcher = await StartDispatcherAsync(state);
            await using (dispatcher)
            {
                try
                {
                    await WriteTheStartOfTheAttemptUnderWayAsync(store, () => Volatile.Write(ref armed, 1)); // the next commit is the start's
                    Assert.True(entered.Wait(Bound), "the start's commit reaches the writer");
                }
                finally
                {
                    answer.Set();
                }

                Assert.Equal(1, (await state.WaitForAttemptAsync(TaskName, 1)).ResponseCount);
                var stopped = dispatcher.StopAsync(); // waits for the attempt, held on its start
                await Eventually.HoldsAsync(() => Task.FromResult(dispatcher.Dispatcher.IsStopping), Bound, () => "the dispatcher to begin stopping");
                release.Set();
                await stopped.WaitAsync(Bound);
            }
        }
        finally
        {
            answer.Set();
            release.Set(); // never leave the writer held: disposing the store waits for it
            state.Dispose();
        }

        AssertSentOnceAndStoredAsMemoryHadIt(); // before, the write was given up at once and storage kept no attempt
    }

    [Fact]
    public async Task A_retry_outcome_that_comes_before_the_writer_takes_the_start_supersedes_it_and_storage_has_the_outcome()
    {
        var superseded = await DispatchWhileTheWriterIsHeldAsync(503); // a retry: the outcome writes the task's whole row
        Assert.Equal(1, superseded); // the start's row write was skipped: one write of the row for the attempt, not two
        AssertSentOnceAndStoredAsMemoryHadIt();
    }

    [Fact]
    public async Task A_success_that_comes_before_the_writer_takes_the_start_supersedes_it_and_storage_has_the_deletion()
    {
        var superseded = await DispatchWhileTheWriterIsHeldAsync(200);
        Assert.Equal(1, superseded);
        Assert.Single(_target.Requests);
        using var reopened = _folder.Open();
        Assert.False(HasTask(reopened)); // the success is on disk
        Assert.Equal(StatusCode.AlreadyExists, Assert.Throws<RpcException>(() => reopened.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = NewTask() })).StatusCode);
    }

    /// <summary>
    /// Dispatches the task, held at the target until it outlasted the start write delay; the start is written while
    /// the writer is held on an unrelated commit, so it waits in the writer's queue until the outcome (the target's
    /// <paramref name="status"/>) is in memory and queued behind it; then lets the writer go and stops. Returns the
    /// writes the store skipped as superseded.
    /// </summary>
    private async Task<long> DispatchWhileTheWriterIsHeldAsync(int status)
    {
        using var hold = new WriterHold();
        using var answer = new ManualResetEventSlim();
        HoldRequestsUntil(answer, status);
        var store = _folder.OpenStore();
        var state = _folder.Open(store);
        try
        {
            CreateQueueAndTask(state);
            await using (var dispatcher = await StartDispatcherAsync(state))
            {
                Task? other = null;
                try
                {
                    await WriteTheStartOfTheAttemptUnderWayAsync(store, () =>
                    {
                        hold.HoldNextCommitOf(store);
                        other = Task.Run(() => state.CreateQueue(new CreateQueueRequest { Parent = Location, Queue = new Queue { Name = Location + "/queues/other" } }));
                        Assert.True(hold.Entered.Wait(Bound), "the unrelated commit reaches the writer");
                    });
                    await Eventually.HoldsAsync(() => Task.FromResult(store.SupersedableWrites == 1), Bound, () => "the start to be queued behind the held commit");
                }
                finally
                {
                    answer.Set();
                }

                await state.WaitUntilAsync(() => state.IsInFlight(TaskName) ? null : "settled", "the outcome to be in memory (queued behind the start)");
                Assert.Equal(0, store.SupersededWrites); // nothing skipped before the writer ran
                hold.Release();
                await other!.WaitAsync(Bound);
            } // the dispatcher's stop waits for the outcome's commit

            return store.SupersededWrites;
        }
        finally
        {
            answer.Set();
            hold.Release(); // never leave the writer held: disposing the store waits for it
            state.Dispose();
        }
    }

    /// <summary>The target holds every request until <paramref name="answer"/> is set, then answers <paramref name="status"/>.</summary>
    private void HoldRequestsUntil(ManualResetEventSlim answer, int status) =>
        _target.Respond = (_, _) =>
        {
            Assert.True(answer.Wait(Bound));
            return new TargetResponse(status);
        };

    /// <summary>
    /// Once the attempt's request is at the target (held there) and every write queued so far is committed, runs
    /// <paramref name="beforeTheStart"/> (arming the store's next commit) and lets the attempt outlast the start write
    /// delay on the fake clock: the dispatch loop, woken by its timer, writes the start.
    /// </summary>
    private async Task WriteTheStartOfTheAttemptUnderWayAsync(SqliteStore store, Action beforeTheStart)
    {
        await _target.WaitForRequestsAsync(1, Bound);
        await store.WhenDurable().WaitAsync(Bound); // the loop's sweep, queued before the request left
        beforeTheStart();
        _folder.Clock.Advance(EmulatorState.DefaultStartWriteDelay);
    }

    /// <summary>The dispatcher's event for a start whose commit failed (LogStartNotDurable).</summary>
    private const int StartNotDurable = 4;

    /// <summary>The dispatcher's log, by event id only.</summary>
    private sealed class EventIdLog : ILogger<Dispatcher>
    {
        private readonly System.Collections.Concurrent.ConcurrentQueue<int> _ids = new();

        public IReadOnlyCollection<int> EventIds => _ids;

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) => _ids.Enqueue(eventId.Id);
    }

    /// <summary>Holds the store's next commit on its writer until <see cref="Release"/>; <see cref="Entered"/> is set once it is held.</summary>
    private sealed class WriterHold : IDisposable
    {
        private readonly ManualResetEventSlim _release = new();
        private int _armed;

        public ManualResetEventSlim Entered { get; } = new();

        public void HoldNextCommitOf(SqliteStore store)
        {
            store.BeforeCommit = () =>
            {
                if (Interlocked.Exchange(ref _armed, 0) == 1)
                {
                    Entered.Set();
                    Assert.True(_release.Wait(Bound));
                }
            };
            Volatile.Write(ref _armed, 1);
        }

        public void Release() => _release.Set();

        public void Dispose()
        {
            _release.Dispose();
            Entered.Dispose();
        }
    }

    /// <summary>The task was sent once, and storage has what memory had: the attempt and its 503.</summary>
    private void AssertSentOnceAndStoredAsMemoryHadIt()
    {
        Assert.Single(_target.Requests); // sent once, not held back and sent again
        using var reopened = _folder.Open();
        var stored = reopened.GetTask(new GetTaskRequest { Name = TaskName, ResponseView = TaskMessage.Types.View.Full });
        Assert.Equal(1, stored.DispatchCount);
        Assert.Equal(1, stored.ResponseCount);
        Assert.Equal((int)Google.Rpc.Code.Unavailable, stored.LastAttempt.ResponseStatus.Code);
    }

    [Fact]
    public void An_outcome_whose_write_throws_leaves_the_execution_count_and_previous_response_that_storage_has()
    {
        var store = new ThrowingStore();
        using var state = new EmulatorState(store, new EmulatorOptions(), _folder.Clock);
        CreateQueueAndTask(state);
        var first = Assert.Single(state.TakeDue(out _));

        store.Throwing = true;
        Assert.Throws<IOException>(() => { _ = state.CompleteAttempt(first, new DispatchResult(404, _folder.Clock.GetUtcNow(), null)); }); // throws at once
        store.Throwing = false;

        _folder.Clock.Advance(TimeSpan.FromMinutes(1)); // the task was put back for a later attempt
        var second = Assert.Single(state.TakeDue(out _));
        Assert.Equal(1, second.RetryCount); // the start was written
        Assert.Equal(0, second.ExecutionCount); // the outcome was not: none of it is applied
        Assert.Equal(0, second.PreviousResponse);
    }

    [Fact]
    public async Task A_completion_during_shutdown_hands_out_no_new_attempt()
    {
        using var gate = new ManualResetEventSlim();
        _target.Respond = (request, before) =>
        {
            if (before == 0)
            {
                Assert.True(gate.Wait(Bound)); // the first attempt is under way until the shutdown has begun
            }

            return TargetResponse.Ok;
        };
        using var state = new EmulatorState(new InMemoryStore(), new EmulatorOptions(), _folder.Clock);
        state.CreateQueue(new CreateQueueRequest { Parent = Location, Queue = new Queue { Name = QueueName, RateLimits = new RateLimits { MaxConcurrentDispatches = 1 } } });
        state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = NewTask() });
        state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = new TaskMessage { Name = QueueName + "/tasks/second", HttpRequest = new HttpRequest { Url = _target.Url("/x").ToString() } } });
        using var issuer = new OidcIssuer(OidcIssuer.CreateSigningKeyPem(), () => "http://localhost", _folder.Clock, TimeSpan.FromHours(1));
        using var dispatcher = new Dispatcher(state, issuer, new EmulatorOptions(), _folder.Clock, NullLogger<Dispatcher>.Instance);
        await dispatcher.StartAsync(CancellationToken.None);
        await _target.WaitForRequestsAsync(1, Bound);

        var stopping = dispatcher.StopAsync(CancellationToken.None); // waits for the attempt under way
        gate.Set();
        await stopping.WaitAsync(Bound);

        Assert.Single(_target.Requests); // the freed slot was not used after the shutdown began
        Assert.False(state.IsInFlight(QueueName + "/tasks/second"));
        Assert.Equal(QueueName + "/tasks/second", state.GetTask(new GetTaskRequest { Name = QueueName + "/tasks/second" }).Name);
    }

    /// <summary>
    /// Queue A: every task answered 503 once, then its second attempt held at the target until its start (dispatch
    /// count 2), written because the attempt lasted, is seen in the data folder. Queue B: first attempts held, their
    /// starts possibly not written. SIGKILL with all of them in flight. After a restart every task is delivered again
    /// and succeeds; no A task comes back with a retry count below 2 (storage never went backward).
    /// </summary>
    [Fact]
    public async Task Sigkill_with_attempts_in_flight_only_redelivers_and_the_dispatch_count_on_disk_never_goes_down()
    {
        const int PerQueue = 20;
        var restarted = 0;
        _target.Respond = (request, _) =>
        {
            if (Volatile.Read(ref restarted) == 1)
            {
                return TargetResponse.Ok;
            }

            return request.Header("X-CloudTasks-TaskRetryCount") == "0" && request.PathAndQuery == "/a"
                ? new TargetResponse(503)
                : new TargetResponse(200, Delay: TimeSpan.FromMinutes(10)); // in flight until the kill cuts it off
        };

        var a = new QueueName("order", "l", "a");
        var b = new QueueName("order", "l", "b");
        using (var emulator = await EmulatorProcess.StartAsync("--data", _folder.Path))
        using (var client = emulator.CreateClient())
        {
            var retry = new RetryConfig { MaxAttempts = -1, MinBackoff = Duration.FromTimeSpan(TimeSpan.FromSeconds(1)), MaxBackoff = Duration.FromTimeSpan(TimeSpan.FromSeconds(1)) };
            foreach (var queue in new[] { a, b })
            {
                await client.CreateQueueAsync(queue.Location, new Queue { Name = queue.ToString(), RetryConfig = retry });
                await client.PauseQueueAsync(queue);
            }

            for (var i = 0; i < PerQueue; i++)
            {
                await client.CreateTaskAsync(a, new TaskMessage { Name = a.Task($"a{i}").ToString(), HttpRequest = new HttpRequest { Url = _target.Url("/a").ToString() } });
                await client.CreateTaskAsync(b, new TaskMessage { Name = b.Task($"b{i}").ToString(), HttpRequest = new HttpRequest { Url = _target.Url("/b").ToString() } });
            }

            await client.ResumeQueueAsync(a);
            await _target.WaitForRequestsAsync(2 * PerQueue, Bound); // each A task: its 503, then its second attempt held

            // The second attempts last (held): after about a second each one's start is written. From the moment the
            // data folder has dispatch count 2 for every A task, storage must never go below it.
            await Eventually.HoldsAsync(
                () => Task.FromResult(_folder.StoredDispatchCounts(a.ToString()).Values.Count(c => c >= 2) == PerQueue),
                Bound,
                () => $"every A task's second start on disk ({_folder.StoredDispatchCounts(a.ToString()).Values.Count(c => c >= 2)} of {PerQueue})");

            await client.ResumeQueueAsync(b);
            await _target.WaitForRequestsAsync(3 * PerQueue, Bound); // B's first attempts held, their starts maybe not committed
            await emulator.KillAsync();
        }

        Volatile.Write(ref restarted, 1);
        var beforeRestart = _target.Requests.Count; // the killed process sends nothing more
        Assert.Equal(3 * PerQueue, beforeRestart);
        using (var emulator = await EmulatorProcess.StartAsync("--data", _folder.Path))
        {
            await _target.WaitForRequestsAsync(5 * PerQueue, Bound); // every A and B task delivered again (and answered 200)
        }

        var redelivered = _target.Requests.Skip(beforeRestart).GroupBy(r => r.Header("X-CloudTasks-TaskName")!).ToDictionary(g => g.Key, g => g.Min(r => int.Parse(r.Header("X-CloudTasks-TaskRetryCount")!, System.Globalization.CultureInfo.InvariantCulture)));
        for (var i = 0; i < PerQueue; i++)
        {
            Assert.True(redelivered.TryGetValue($"a{i}", out var aRetry), $"a{i} was not delivered after the restart");
            Assert.True(aRetry >= 2, $"a{i} came back with retry count {aRetry}: storage went below the durable dispatch count 2");
            Assert.True(redelivered.TryGetValue($"b{i}", out var bRetry), $"b{i} was not delivered after the restart");
            Assert.InRange(bRetry, 0, 1); // its start may or may not have been committed: a redelivery either way
        }
    }

    private void CreateQueueAndTask(EmulatorState state)
    {
        state.CreateQueue(new CreateQueueRequest { Parent = Location, Queue = new Queue { Name = QueueName } });
        state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = NewTask() });
    }

    private TaskMessage NewTask() => new() { Name = TaskName, HttpRequest = new HttpRequest { Url = _target.Url("/x").ToString() } };

    private static bool HasTask(EmulatorState state)
    {
        try
        {
            state.GetTask(new GetTaskRequest { Name = TaskName });
            return true;
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.NotFound)
        {
            return false;
        }
    }

    private async Task<StartedDispatcher> StartDispatcherAsync(EmulatorState state, ILogger<Dispatcher>? logger = null)
    {
        var issuer = new OidcIssuer(OidcIssuer.CreateSigningKeyPem(), () => "http://localhost", _folder.Clock, TimeSpan.FromHours(1));
        var dispatcher = new Dispatcher(state, issuer, new EmulatorOptions(), _folder.Clock, logger ?? NullLogger<Dispatcher>.Instance);
        await dispatcher.StartAsync(CancellationToken.None);
        return new StartedDispatcher(dispatcher, issuer);
    }

    /// <summary>Stops the dispatcher (letting attempts under way finish and their writes go in) when disposed.</summary>
    private sealed class StartedDispatcher(Dispatcher dispatcher, OidcIssuer issuer) : IAsyncDisposable
    {
        private Task? _stop;

        public Dispatcher Dispatcher => dispatcher;

        /// <summary>Begins the stop once; disposing waits for the same stop.</summary>
        public Task StopAsync() => _stop ??= dispatcher.StopAsync(CancellationToken.None);

        public async ValueTask DisposeAsync() => await Teardown.AllAsync(() => StopAsync(), dispatcher, issuer);
    }

    /// <summary>In-memory storage whose task writes throw while <see cref="Throwing"/> (the store refusing a write).</summary>
    private sealed class ThrowingStore : DelegatingEmulatorStore
    {
        public bool Throwing { get; set; }

        public override void SaveTask(StoredTask task)
        {
            ThrowIfAsked();
            base.SaveTask(task);
        }

        public override void SaveTasks(IReadOnlyCollection<StoredTask> tasks)
        {
            ThrowIfAsked();
            base.SaveTasks(tasks);
        }

        public override void DeleteTasks(IReadOnlyCollection<string> names, DateTimeOffset reservedUntil)
        {
            ThrowIfAsked();
            base.DeleteTasks(names, reservedUntil);
        }

        private void ThrowIfAsked()
        {
            if (Throwing)
            {
                throw new IOException("the store refused the write");
            }
        }
    }
}
