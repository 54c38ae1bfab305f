using Bridge.CloudTasks.V2Beta3;
using Bridge.Emulators.CloudTasks.Internal;
using Task = System.Threading.Tasks.Task;
using TaskMessage = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.Emulators.CloudTasks.Tests;

/// <summary>
/// The SQLite store's commit policy: writes nobody waits for (WhenDurableLater: a dispatched attempt's start and
/// outcome) gather for a bounded window; a caller's WhenDurable, a stop, a read on the writer or enough pending writes
/// commit at once. Most tests give the store a window of an hour, far beyond their own bounded waits, so finishing at
/// all shows that nothing waited for the window (no timing is asserted).
/// </summary>
public sealed class CommitGatheringTests : IDisposable
{
    private const string QueueName = "projects/p/locations/l/queues/q";
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan LongWindow = TimeSpan.FromHours(1);
    private readonly DurableStateFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task An_urgent_wait_commits_the_gathered_writes_with_its_own_in_one_commit_without_waiting_for_the_window()
    {
        using var store = new SqliteStore(_folder.Path, EmulatorDurability.ProcessCrash, LongWindow);
        using var held = await HeldWriter.HoldAsync(store);
        store.SaveTask(StoredTask(0));
        var gathered = store.WhenDurableLater(); // an attempt's outcome: nobody waits for it
        held.Release();
        await held.QueueSaved.WaitAsync(Bound);
        var before = store.Commits;

        store.SaveTask(StoredTask(1));
        await store.WhenDurable().WaitAsync(Bound); // a create: its caller waits

        Assert.True(gathered.IsCompletedSuccessfully);
        Assert.Equal(before + 1, store.Commits); // one commit for both, at once
    }

    [Fact]
    public async Task Gathered_writes_are_committed_after_the_window_without_any_further_call()
    {
        using (var store = _folder.OpenStore())
        {
            Assert.Equal(SqliteStore.DefaultGatherWindow, store.GatherWindow);
            using var held = await HeldWriter.HoldAsync(store);
            store.SaveTask(StoredTask(0));
            var gathered = store.WhenDurableLater();
            held.Release();
            await held.QueueSaved.WaitAsync(Bound);

            await gathered.WaitAsync(Bound);
        }

        using var reopened = _folder.OpenStore();
        Assert.Equal($"{QueueName}/tasks/t0", Assert.Single(reopened.Load().Tasks).Name);
    }

    [Fact]
    public async Task Enough_pending_writes_are_committed_without_waiting_for_the_window()
    {
        using var store = new SqliteStore(_folder.Path, EmulatorDurability.ProcessCrash, LongWindow);
        using var held = await HeldWriter.HoldAsync(store);
        store.SaveTask(StoredTask(0));
        var first = store.WhenDurableLater();
        held.Release();
        await held.QueueSaved.WaitAsync(Bound);

        for (var i = 1; i < SqliteStore.GatherEnough; i++)
        {
            store.SaveTask(StoredTask(i));
        }

        await first.WaitAsync(Bound); // its commit went with the write that made enough
    }

    [Fact]
    public async Task Dispose_commits_the_gathered_writes_at_once()
    {
        var store = new SqliteStore(_folder.Path, EmulatorDurability.ProcessCrash, LongWindow);
        using var held = await HeldWriter.HoldAsync(store);
        store.SaveTask(StoredTask(0));
        var gathered = store.WhenDurableLater();
        held.Release();
        await held.QueueSaved.WaitAsync(Bound);

        await Task.Run(store.Dispose).WaitAsync(Bound);

        Assert.True(gathered.IsCompletedSuccessfully);
        using var reopened = _folder.OpenStore();
        Assert.Equal($"{QueueName}/tasks/t0", Assert.Single(reopened.Load().Tasks).Name);
    }

    [Fact]
    public async Task A_read_on_the_writer_does_not_wait_for_the_window()
    {
        using var store = new SqliteStore(_folder.Path, EmulatorDurability.ProcessCrash, LongWindow);
        using var held = await HeldWriter.HoldAsync(store);
        store.SaveTask(StoredTask(0));
        var gathered = store.WhenDurableLater();
        held.Release();
        await held.QueueSaved.WaitAsync(Bound);

        var loaded = await Task.Run(store.Load).WaitAsync(Bound); // queued behind the gathered write, which it commits

        Assert.Equal($"{QueueName}/tasks/t0", Assert.Single(loaded.Tasks).Name);
        Assert.True(gathered.IsCompletedSuccessfully);
    }

    [Fact]
    public async Task A_failed_commit_fails_the_gathered_writes_and_the_urgent_ones_alike()
    {
        using var store = new SqliteStore(_folder.Path, EmulatorDurability.ProcessCrash, LongWindow);
        await store.WhenDurable().WaitAsync(Bound); // the writer's start is committed: nothing else is pending
        store.BeforeCommit = () => throw new IOException("disk full");
        store.SaveTask(StoredTask(0));
        var gathered = store.WhenDurableLater();
        store.SaveTask(StoredTask(1));
        var urgent = store.WhenDurable();

        await Assert.ThrowsAsync<IOException>(() => urgent.WaitAsync(Bound));
        await Assert.ThrowsAsync<IOException>(() => gathered.WaitAsync(Bound));
        Assert.Equal(1, store.FailedCommits);
    }

    /// <summary>
    /// The writer is held inside a commit (a gate in BeforeCommit) while an attempt's outcome and then a create queue
    /// behind it: once released, the create's wait ends with the next commit, which holds both, however long the window.
    /// </summary>
    [Fact]
    public async Task A_create_queued_behind_gathered_writes_during_a_commit_does_not_wait_for_the_window()
    {
        using var store = new SqliteStore(_folder.Path, EmulatorDurability.ProcessCrash, LongWindow);
        using var held = await HeldWriter.HoldAsync(store);
        var before = store.Commits;
        store.SaveTask(StoredTask(0));
        var outcome = store.WhenDurableLater();
        store.SaveTask(StoredTask(1));
        var created = store.WhenDurable();
        held.Release();

        await held.QueueSaved.WaitAsync(Bound);
        await created.WaitAsync(Bound);
        Assert.True(outcome.IsCompletedSuccessfully);
        Assert.Equal(before + 2, store.Commits); // the queue's, then both tasks in one
    }

    /// <summary>The state's part: an attempt's start and outcome ask the store for a later commit, a create for one at once.</summary>
    [Fact]
    public async Task The_state_lets_an_attempts_writes_gather_and_commits_a_create_at_once()
    {
        var store = new CountingStore();
        using var state = new EmulatorState(store, new EmulatorOptions(), _folder.Clock);
        state.CreateQueue(new CreateQueueRequest { Parent = "projects/p/locations/l", Queue = new Queue { Name = QueueName } });
        var urgentBefore = store.Urgent;
        await state.CreateTaskAsync(new CreateTaskRequest { Parent = QueueName, Task = new TaskMessage { HttpRequest = new HttpRequest { Url = "http://127.0.0.1:9/x" } } });
        Assert.True(store.Urgent > urgentBefore);
        Assert.Equal(0, store.Later);
        var urgentAfterCreate = store.Urgent;

        var work = Assert.Single(state.TakeDue(out _));
        await state.CompleteAttempt(work, new DispatchResult(200, _folder.Clock.GetUtcNow(), null)).WaitAsync(Bound);

        Assert.True(store.Later > 0);
        Assert.Equal(urgentAfterCreate, store.Urgent); // nothing of the attempt hurried a commit
    }

    /// <summary>
    /// The writer held inside the commit of a queue's write (a gate in BeforeCommit) until <see cref="Release"/>:
    /// writes made meanwhile wait for the writer's next look, with whatever their callers asked.
    /// </summary>
    private sealed class HeldWriter : IDisposable
    {
        private readonly ManualResetEventSlim _holding = new();
        private readonly ManualResetEventSlim _gate = new();

        public Task QueueSaved { get; private set; } = Task.CompletedTask;

        public static async Task<HeldWriter> HoldAsync(SqliteStore store)
        {
            await store.WhenDurable().WaitAsync(Bound); // the writer's start is committed: the next commit is the queue's
            var held = new HeldWriter();
            var entered = 0;
            store.BeforeCommit = () =>
            {
                if (Interlocked.Exchange(ref entered, 1) == 0)
                {
                    held._holding.Set();
                    Assert.True(held._gate.Wait(Bound));
                }
            };
            store.SaveQueue(new Queue { Name = QueueName });
            held.QueueSaved = store.WhenDurable();
            Assert.True(held._holding.Wait(Bound));
            return held;
        }

        public void Release() => _gate.Set();

        public void Dispose()
        {
            _gate.Set(); // never leave the writer held (the tests release it and wait for its commit before this)
            _holding.Dispose();
            _gate.Dispose();
        }
    }

    private static StoredTask StoredTask(int i) => new()
    {
        QueueName = QueueName,
        Sequence = i + 1,
        Task = new TaskMessage { Name = $"{QueueName}/tasks/t{i}", HttpRequest = new HttpRequest { Url = "http://127.0.0.1:9/x" } },
    };

    private sealed class CountingStore : DelegatingEmulatorStore
    {
        private int _urgent;
        private int _later;

        public int Urgent => Volatile.Read(ref _urgent);

        public int Later => Volatile.Read(ref _later);

        public override Task WhenDurable()
        {
            Interlocked.Increment(ref _urgent);
            return Inner.WhenDurable();
        }

        public override Task WhenDurableLater()
        {
            Interlocked.Increment(ref _later);
            return Inner.WhenDurableLater();
        }
    }
}
