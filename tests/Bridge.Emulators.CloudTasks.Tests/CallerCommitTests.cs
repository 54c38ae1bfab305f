using Bridge.CloudTasks.V2Beta3;
using Bridge.Emulators.CloudTasks.Internal;
using Grpc.Core;
using Task = System.Threading.Tasks.Task;
using static Bridge.Emulators.CloudTasks.Tests.StateTestQueue;

namespace Bridge.Emulators.CloudTasks.Tests;

/// <summary>
/// The SQLite store's group commit led by a caller: a create that finds no commit under way commits on its own
/// thread; creates that come meanwhile queue behind it and the writer commits them after it, one transaction at a
/// time, in order.
/// </summary>
public sealed class CallerCommitTests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);
    private readonly DurableStateFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task A_create_that_finds_no_commit_under_way_is_committed_on_its_callers_thread_and_answers_at_once()
    {
        var store = _folder.OpenStore();
        using (var state = _folder.Open(store))
        {
            await CreateQueueAndSettle(state, store);
            var committedOn = 0;
            store.BeforeCommit = () => Volatile.Write(ref committedOn, Environment.CurrentManagedThreadId);

            var created = state.CreateTaskAsync(new CreateTaskRequest { Parent = QueueName, Task = HttpTask("inline") });

            Assert.True(created.IsCompletedSuccessfully); // no hand-over to the writer thread and back
            Assert.Equal(Environment.CurrentManagedThreadId, Volatile.Read(ref committedOn));
        }

        using var reopened = _folder.Open();
        Assert.Equal($"{QueueName}/tasks/inline", reopened.GetTask(new GetTaskRequest { Name = $"{QueueName}/tasks/inline" }).Name);
    }

    [Fact]
    public async Task Creates_made_while_a_callers_commit_is_under_way_are_committed_after_it_by_the_writer()
    {
        const int Behind = 50;
        var store = _folder.OpenStore();
        using (var state = _folder.Open(store))
        {
            await CreateQueueAndSettle(state, store);
            using var held = new ManualResetEventSlim();
            using var release = new ManualResetEventSlim();
            var commitThreads = new List<int>();
            var armed = 1;
            store.BeforeCommit = () =>
            {
                lock (commitThreads)
                {
                    commitThreads.Add(Environment.CurrentManagedThreadId);
                }

                if (Interlocked.Exchange(ref armed, 0) == 1)
                {
                    held.Set();
                    Assert.True(release.Wait(Bound));
                }
            };
            var leaderThread = 0;
            var leader = Task.Run(() =>
            {
                leaderThread = Environment.CurrentManagedThreadId;
                return state.CreateTaskAsync(new CreateTaskRequest { Parent = QueueName, Task = HttpTask("leader") });
            });
            Assert.True(held.Wait(Bound));

            var behind = Enumerable.Range(0, Behind).Select(i => state.CreateTaskAsync(new CreateTaskRequest { Parent = QueueName, Task = HttpTask($"b{i}") })).ToList();

            Assert.DoesNotContain(behind, t => t.IsCompleted); // queued, not committed beside the commit under way
            release.Set();
            await Task.WhenAll(behind.Prepend(leader)).WaitAsync(Bound);
            lock (commitThreads)
            {
                Assert.Equal(2, commitThreads.Count); // the leader's, then one for everything behind it
                Assert.Equal(leaderThread, commitThreads[0]);
                Assert.NotEqual(Environment.CurrentManagedThreadId, commitThreads[1]); // the writer's, not a caller's that returned
            }
        }

        using var reopened = _folder.Open();
        Assert.Equal(Behind + 2, reopened.ListTasks(new ListTasksRequest { Parent = QueueName, PageSize = 1000 }).Tasks.Count);
    }

    /// <summary>
    /// Many callers at once: whoever leads, one transaction at a time (two at once fail in SQLite: a transaction
    /// inside a transaction), each acknowledged create is on disk, and many share a commit.
    /// </summary>
    [Fact]
    public async Task Concurrent_creates_from_many_threads_all_commit_once_each_and_are_there_after_a_reopen()
    {
        const int Threads = 8;
        const int PerThread = 100;
        var store = _folder.OpenStore();
        using (var state = _folder.Open(store))
        {
            await CreateQueueAndSettle(state, store);
            var inTransaction = 0;
            var overlapped = 0;
            store.BeforeCommit = () =>
            {
                if (Interlocked.Increment(ref inTransaction) != 1)
                {
                    Interlocked.Exchange(ref overlapped, 1);
                }

                Thread.Yield(); // widen the window a second committer would need
                Interlocked.Decrement(ref inTransaction);
            };
            var before = store.Commits;

            await Task.WhenAll(Enumerable.Range(0, Threads).Select(t => Task.Run(async () =>
            {
                var mine = Enumerable.Range(0, PerThread).Select(i => state.CreateTaskAsync(new CreateTaskRequest { Parent = QueueName, Task = HttpTask($"t{t}-{i}") })).ToList();
                await Task.WhenAll(mine);
            }))).WaitAsync(Bound);

            Assert.Equal(0, Volatile.Read(ref overlapped));
            Assert.True(store.Commits - before < Threads * PerThread, $"{Threads * PerThread} creates took {store.Commits - before} commits");
        }

        using var reopened = _folder.Open();
        Assert.Equal((Threads * PerThread) + 1, reopened.ListTasks(new ListTasksRequest { Parent = QueueName, PageSize = 1000 }).Tasks.Count);
    }

    [Fact]
    public async Task A_callers_own_commit_that_fails_answers_unavailable_takes_the_task_back_and_a_retry_commits()
    {
        var store = _folder.OpenStore();
        using (var state = _folder.Open(store))
        {
            await CreateQueueAndSettle(state, store);
            var failOn = Environment.CurrentManagedThreadId;
            var failNext = 1;
            store.BeforeCommit = () =>
            {
                if (Environment.CurrentManagedThreadId == failOn && Interlocked.Exchange(ref failNext, 0) == 1)
                {
                    throw new IOException("disk full");
                }
            };

            var failed = state.CreateTaskAsync(new CreateTaskRequest { Parent = QueueName, Task = HttpTask("t") });

            Assert.True(failed.IsFaulted); // committed and failed on this thread, answered before returning
            Assert.Equal(0, Volatile.Read(ref failNext));
            Assert.Equal(StatusCode.Unavailable, Assert.IsType<RpcException>(failed.Exception!.InnerException).StatusCode);
            Assert.Equal([$"{QueueName}/tasks/first"], state.ListTasks(new ListTasksRequest { Parent = QueueName }).Tasks.Select(t => t.Name));
            await state.CreateTaskAsync(new CreateTaskRequest { Parent = QueueName, Task = HttpTask("t") }).WaitAsync(Bound); // the name was never taken
        }

        using var reopened = _folder.Open();
        Assert.Equal([$"{QueueName}/tasks/first", $"{QueueName}/tasks/t"], reopened.ListTasks(new ListTasksRequest { Parent = QueueName }).Tasks.Select(t => t.Name));
    }

    /// <summary>The queue, a task "first", and the first call's minute sweep, written and committed: nothing is queued or under way after this.</summary>
    private static async Task CreateQueueAndSettle(EmulatorState state, SqliteStore store)
    {
        CreatePausedQueue(state);
        await state.CreateTaskAsync(new CreateTaskRequest { Parent = QueueName, Task = HttpTask("first") }).WaitAsync(Bound);
        await store.WhenDurable().WaitAsync(Bound);
    }
}
