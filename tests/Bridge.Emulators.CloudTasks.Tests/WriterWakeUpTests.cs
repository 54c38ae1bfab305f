using Bridge.CloudTasks.V2Beta3;
using Bridge.Emulators.CloudTasks.Internal;
using Task = System.Threading.Tasks.Task;
using TaskMessage = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.Emulators.CloudTasks.Tests;

/// <summary>
/// When the SQLite store's writer is woken: queuing a write does not wake it, asking for its commit does (once per
/// commit); a write nobody asks for is still committed, within a bound. Counts, no timings: a store whose bound for
/// unasked writes is an hour shows that a commit came from the asking, not from the bound.
/// </summary>
public sealed class WriterWakeUpTests : IDisposable
{
    private const string QueueName = "projects/p/locations/l/queues/q";
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan LongTime = TimeSpan.FromHours(1);
    private readonly DurableStateFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    /// <summary>
    /// A create queues its write, then asks for its commit: one wake-up of the writer. Before, the write's queuing woke
    /// the writer, which began a gathering wait (nobody had asked yet) and was woken again by the ask: two per commit.
    /// </summary>
    [Fact]
    public async Task A_commit_a_caller_waits_for_wakes_the_writer_once()
    {
        using var store = new SqliteStore(_folder.Path, EmulatorDurability.ProcessCrash, LongTime, unannouncedBound: LongTime);
        await store.WhenDurable().WaitAsync(Bound); // the writer's start is committed
        const int Creates = 50;
        var commitsBefore = store.Commits;
        var wakeUpsBefore = store.WriterWakeUps;

        for (var i = 0; i < Creates; i++)
        {
            store.SaveTask(StoredTask(i));
            await store.WhenDurable().WaitAsync(Bound);
        }

        var commits = store.Commits - commitsBefore;
        Assert.InRange(commits, 1, Creates);
        Assert.InRange(store.WriterWakeUps - wakeUpsBefore, 0, commits);
    }

    [Fact]
    public async Task A_write_nobody_asks_to_commit_is_committed_within_the_bound_without_gathering()
    {
        using var store = new SqliteStore(_folder.Path, EmulatorDurability.ProcessCrash, LongTime); // the default bound; a window of an hour
        Assert.Equal(TimeSpan.FromSeconds(1), SqliteStore.DefaultUnannouncedBound);
        await store.WhenDurable().WaitAsync(Bound);
        var committing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        store.BeforeCommit = () => committing.TrySetResult();

        store.SaveTask(StoredTask(0)); // nothing asks for its commit

        await committing.Task.WaitAsync(Bound);
    }

    [Fact]
    public async Task The_sweeps_tombstone_deletion_asks_for_its_commit()
    {
        using var store = new SqliteStore(_folder.Path, EmulatorDurability.ProcessCrash, SqliteStore.DefaultGatherWindow, unannouncedBound: LongTime);
        await store.WhenDurable().WaitAsync(Bound);
        var committing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        store.BeforeCommit = () => committing.TrySetResult();

        store.DeleteExpiredTombstones(_folder.Clock.GetUtcNow()); // the state's sweep: nobody waits for it

        await committing.Task.WaitAsync(Bound);
    }

    /// <summary>The state's part: every change it writes asks for a commit (a store that never commits unasked writes still gets them all).</summary>
    [Fact]
    public async Task The_states_writes_are_all_asked_for()
    {
        var store = new SqliteStore(_folder.Path, EmulatorDurability.ProcessCrash, SqliteStore.DefaultGatherWindow, unannouncedBound: LongTime);
        using (var state = _folder.Open(store))
        {
            state.CreateQueue(new CreateQueueRequest { Parent = "projects/p/locations/l", Queue = new Queue { Name = QueueName } });
            await state.CreateTaskAsync(new CreateTaskRequest { Parent = QueueName, Task = new TaskMessage { Name = $"{QueueName}/tasks/done", HttpRequest = new HttpRequest { Url = "http://127.0.0.1:9/x" } } }).WaitAsync(Bound);
            var work = Assert.Single(state.TakeDue(out _));
            await state.CompleteAttempt(work, new DispatchResult(200, _folder.Clock.GetUtcNow(), null)).WaitAsync(Bound);
            var committing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            store.BeforeCommit = () => committing.TrySetResult();
            _folder.Clock.Advance(TimeSpan.FromMinutes(2));
            Assert.Empty(state.TakeDue(out _)); // the dispatcher's pass sweeps: nobody waits for its writes
            await committing.Task.WaitAsync(Bound);
        }
    }

    private static StoredTask StoredTask(int i) => new()
    {
        QueueName = QueueName,
        Sequence = i + 1,
        Task = new TaskMessage { Name = $"{QueueName}/tasks/t{i}", HttpRequest = new HttpRequest { Url = "http://127.0.0.1:9/x" } },
    };
}
