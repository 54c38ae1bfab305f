using Bridge.CloudTasks.Iam.V1;
using Bridge.CloudTasks.V2Beta3;

namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>
/// Everything the emulator keeps, as loaded at start. <paramref name="LastSequence"/> is the highest creation sequence
/// still named on disk, loaded or not (rows under a purge record, purged names keyed by sequence): new tasks continue
/// after it, so a new row never takes the key of one a purge still covers or a reservation still holds.
/// </summary>
internal sealed record StoredState(
    IReadOnlyList<Queue> Queues,
    IReadOnlyList<StoredTask> Tasks,
    IReadOnlyDictionary<string, DateTimeOffset> TaskTombstones,
    IReadOnlyDictionary<string, DateTimeOffset> QueueTombstones,
    IReadOnlyDictionary<string, Policy> Policies,
    IReadOnlyDictionary<string, CmekConfig> CmekConfigs,
    long LastSequence = 0);

/// <summary>
/// Where state survives restarts. Writes are called under the state's lock, in the order the changes happen; a
/// store may queue them (taking a snapshot of what it writes) and commit later. <see cref="WhenDurable"/> completes
/// once every write made so far is durable: the state waits for it, outside its lock, before acknowledging a call,
/// so an acknowledged RPC is never lost.
/// </summary>
internal interface IEmulatorStore : IDisposable
{
    StoredState Load();

    /// <summary>Completes when every write made before this call is durable; faults when committing them failed.</summary>
    System.Threading.Tasks.Task WhenDurable() => System.Threading.Tasks.Task.CompletedTask;

    /// <summary>
    /// As <see cref="WhenDurable"/>, for writes no caller waits for (a dispatched attempt's start and outcome): the
    /// store may hold them back a short, bounded while to commit them with more (<see cref="SqliteStore"/> gathers for
    /// about 2 ms); a later <see cref="WhenDurable"/> commits them at once.
    /// </summary>
    System.Threading.Tasks.Task WhenDurableLater() => WhenDurable();

    /// <summary>
    /// Commits that failed so far. After a failure every later write fails too (its <see cref="WhenDurable"/>
    /// faults) until <see cref="ResumeAfterFailure"/>: memory still holds the failed changes until they are taken
    /// back, and a write made on top of one (a task in a queue whose creation failed) must not reach the disk.
    /// </summary>
    long FailedCommits => 0;

    /// <summary>The failed changes up to <paramref name="failedCommitsSeen"/> are taken back: writes may commit again (unless another commit failed meanwhile).</summary>
    void ResumeAfterFailure(long failedCommitsSeen)
    {
    }

    /// <summary>Called (on the store's thread) after a commit failed, so the failed changes are taken back even when no caller waits for them.</summary>
    void OnCommitFailed(Action handler)
    {
    }

    void SaveQueue(Queue queue);

    void DeleteQueue(string name, DateTimeOffset reservedUntil);

    void SaveTask(StoredTask task);

    /// <summary>
    /// Whether writes outlive the process. False (in memory): the state skips what it does only for storage, such as
    /// keeping attempts' starts to write them if the attempts last.
    /// </summary>
    bool Persists => true;

    /// <summary>
    /// Saves the task as <see cref="SaveTask"/> does, with a write that a later write of its whole row (queued behind
    /// it) may supersede while the writer has not run it yet: an attempt's start whose outcome came first. Null: this
    /// store writes nothing to skip.
    /// </summary>
    SupersedableWrite? SaveTaskSupersedable(StoredTask task)
    {
        SaveTask(task);
        return null;
    }

    void SaveTasks(IReadOnlyCollection<StoredTask> tasks);

    /// <summary>Deletes tasks by name alone (tasks no longer in memory), leaving tombstones.</summary>
    void DeleteTasks(IReadOnlyCollection<string> names, DateTimeOffset reservedUntil);

    /// <summary>Deletes the rows of tasks still known (by their key, the creation sequence), leaving tombstones.</summary>
    void DeleteStoredTasks(IReadOnlyCollection<StoredTask> tasks, DateTimeOffset reservedUntil) => DeleteTasks(tasks.Select(t => t.Name).ToList(), reservedUntil);

    /// <summary>
    /// Purges every task of the queue written so far: once this write is durable they count as deleted, their names
    /// reserved until <paramref name="reservedUntil"/>, and tasks written later are kept. A store may record the purge
    /// as one entry and take the rows out afterwards (<see cref="SqliteStore"/> commits a purge record, then deletes the
    /// rows and appends their names to purged_names in slices on its writer); <paramref name="names"/> are the purged tasks as memory had them,
    /// for a store that deletes them one by one (this default).
    /// </summary>
    void PurgeTasks(string queueName, IReadOnlyCollection<string> names, DateTimeOffset reservedUntil) => DeleteTasks(names, reservedUntil);

    void SavePolicy(string resource, Policy policy);

    void SaveCmekConfig(CmekConfig config);

    void DeleteExpiredTombstones(DateTimeOffset now);

    void Clear();

    /// <summary>The OIDC signing key (PKCS#8 PEM), created on first use and kept with the data.</summary>
    string GetOrCreateSigningKey(Func<string> create);
}

/// <summary>No persistence: state lives as long as the process.</summary>
internal sealed class InMemoryStore : IEmulatorStore
{
    private string? _key;

    public bool Persists => false;

    public StoredState Load() => new([], [], new Dictionary<string, DateTimeOffset>(), new Dictionary<string, DateTimeOffset>(), new Dictionary<string, Policy>(), new Dictionary<string, CmekConfig>());

    public void SaveQueue(Queue queue)
    {
    }

    public void DeleteQueue(string name, DateTimeOffset reservedUntil)
    {
    }

    public void SaveTask(StoredTask task)
    {
    }

    public void SaveTasks(IReadOnlyCollection<StoredTask> tasks)
    {
    }

    public void DeleteTasks(IReadOnlyCollection<string> names, DateTimeOffset reservedUntil)
    {
    }

    // Not the interface's defaults: those list the names first (a LINQ list per dispatched task's deletion) for nothing.
    public void DeleteStoredTasks(IReadOnlyCollection<StoredTask> tasks, DateTimeOffset reservedUntil)
    {
    }

    public void PurgeTasks(string queueName, IReadOnlyCollection<string> names, DateTimeOffset reservedUntil)
    {
    }

    public void SavePolicy(string resource, Policy policy)
    {
    }

    public void SaveCmekConfig(CmekConfig config)
    {
    }

    public void DeleteExpiredTombstones(DateTimeOffset now)
    {
    }

    public void Clear()
    {
    }

    public string GetOrCreateSigningKey(Func<string> create) => _key ??= create();

    public void Dispose()
    {
    }
}

/// <summary>
/// A queued write that a later write of the same row makes moot: superseded before the writer runs it, it is skipped
/// (the later write, queued behind it, writes everything it would have and more, so storage never goes backward).
/// Once the writer has begun it, it is written as queued.
/// </summary>
internal sealed class SupersedableWrite
{
    private int _state; // 0 queued, 1 taken by the writer, 2 superseded

    /// <summary>On the writer: whether to run the write (false: superseded).</summary>
    public bool TryRun() => Interlocked.CompareExchange(ref _state, 1, 0) == 0;

    /// <summary>After the row's later write was queued: true when this write will be skipped.</summary>
    public bool TrySupersede() => Interlocked.CompareExchange(ref _state, 2, 0) == 0;
}
