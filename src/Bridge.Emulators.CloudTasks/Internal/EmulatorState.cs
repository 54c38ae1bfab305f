using Bridge.CloudTasks.Iam.V1;
using Bridge.CloudTasks.V2Beta3;
using Grpc.Core;

namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>
/// All queues, tasks, tombstones, IAM policies and CMEK configs, behind one lock. Every RPC and every dispatch
/// outcome is a method here (one file per area: queues, IAM, tasks, CMEK, dispatch); each change is written to the
/// store before the method returns. Rules that need no state live in the <c>*Rules</c> classes.
/// </summary>
internal sealed partial class EmulatorState : IDisposable
{
    private readonly Lock _gate = new();
    private readonly IEmulatorStore _store;
    private readonly TimeProvider _time;
    private readonly EmulatorOptions _options;
    private readonly SortedDictionary<string, StoredQueue> _queues = new(StringComparer.Ordinal);
    private readonly TaskTombstones _taskTombstones = new();
    private readonly List<PurgedNames> _purgedNames = []; // one entry per purge: its names, reserved as a whole
    private readonly Dictionary<string, DateTimeOffset> _queueTombstones = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Policy> _policies = new(StringComparer.Ordinal);
    private readonly Dictionary<string, CmekConfig> _cmek = new(StringComparer.Ordinal);
    private long _sequence;
    private long _attemptSequence; // never reset, so attempts from before Reset() stay distinguishable
    private DateTimeOffset _nextSweep;
    private readonly HashSet<StoredQueue> _dirty = []; // queues changed since the dispatcher last looked
    private readonly PriorityQueue<StoredQueue, DateTimeOffset> _wakes = new(); // queues by next eligible time (stale entries skipped)
    private TaskCompletionSource? _changed; // made when someone waits: most changes have no waiter but the dispatcher
    private readonly Queue<(System.Threading.Tasks.Task Durable, Action Undo)> _uncommitted = new(); // changes whose commit has not answered, oldest first
    private long _failedCommitsSeen;

    public EmulatorState(IEmulatorStore store, EmulatorOptions options, TimeProvider time)
    {
        _store = store;
        _options = options;
        _time = time;
        var now = time.GetUtcNow();
        var loaded = store.Load();
        _sequence = loaded.LastSequence; // past every sequence still on disk, loaded or not
        foreach (var queue in loaded.Queues)
        {
            _queues[queue.Name] = NewStoredQueue(queue, now);
        }

        foreach (var task in loaded.Tasks.OrderBy(t => t.Sequence))
        {
            if (_queues.TryGetValue(task.QueueName, out var queue))
            {
                queue.Tasks[task.Name] = task;
                queue.Order.Append(task);
                queue.OldestCreateTime = Earliest(queue.OldestCreateTime, task.CreateTime);
                if (queue.Queue.Type != Queue.Types.Type.Pull)
                {
                    queue.Ready.Add((task.ScheduleTime, task.Sequence, task.Name));
                }

                _sequence = Math.Max(_sequence, task.Sequence);
            }
        }

        _dirty.UnionWith(_queues.Values);
        foreach (var (name, until) in loaded.TaskTombstones)
        {
            _taskTombstones.Add(name, until);
        }
        Copy(loaded.QueueTombstones, _queueTombstones);
        Copy(loaded.Policies, _policies);
        Copy(loaded.CmekConfigs, _cmek);
        _failedCommitsSeen = store.FailedCommits;
        store.OnCommitFailed(() => System.Threading.Tasks.Task.Run(() =>
        {
            // Nobody may be waiting for the failed changes (the minute sweep's), yet later writes fail until they are taken back.
            lock (_gate)
            {
                UndoFailedChanges();
            }
        }));
    }

    /// <summary>Tests: runs on a caller's thread after its commit failed, before it takes its own change back.</summary>
    internal Action? BeforeUndo { get; set; }

    /// <summary>Completes when anything changes; the dispatcher and idle waiters wait on it.</summary>
    public System.Threading.Tasks.Task Changed
    {
        get
        {
            lock (_gate)
            {
                return (_changed ??= NewSignal()).Task;
            }
        }
    }

    /// <summary>True when the queue (or every queue) has no tasks and nothing in flight.</summary>
    public bool IsIdle(string? queueName)
    {
        lock (_gate)
        {
            // Pull queues' tasks wait for a puller, not for dispatch: they never make a queue busy.
            static bool Idle(StoredQueue q) => q.Queue.Type == Queue.Types.Type.Pull || (q.Tasks.Count == 0 && q.InFlight == 0);
            return queueName is null
                ? _queues.Values.All(Idle)
                : !_queues.TryGetValue(queueName, out var q) || Idle(q);
        }
    }

    /// <summary>True while an attempt of the task is under way.</summary>
    public bool IsInFlight(string taskName)
    {
        lock (_gate)
        {
            return Bridge.CloudTasks.TaskName.TryParse(taskName, out var name)
                && _queues.TryGetValue(name.Queue.ToString(), out var queue)
                && queue.Tasks.TryGetValue(taskName, out var task)
                && task.InFlight;
        }
    }

    /// <summary>Forgets everything (tests): queues, tasks, tombstones, policies.</summary>
    public void Reset()
    {
        Durably(() =>
        {
            _store.Clear();
            _queues.Clear();
            _taskTombstones.Clear();
            _purgedNames.Clear();
            _dirty.Clear();
            _wakes.Clear();
            _queueTombstones.Clear();
            _policies.Clear();
            _cmek.Clear();
            Signal();
        });
    }

    public void Dispose() => _store.Dispose();

    /// <summary>
    /// Takes the tasks out, leaving tombstones, with one store write for them all; the undo (after a failed commit)
    /// puts back those still missing and drops the tombstones this call left.
    /// </summary>
    private Action RemoveTasks(StoredQueue queue, IReadOnlyCollection<StoredTask> tasks, DateTimeOffset now)
    {
        if (tasks.Count == 0)
        {
            return static () => { };
        }

        var reservedUntil = now + queue.Queue.TombstoneTtl.ToTimeSpan();
        _store.DeleteStoredTasks(tasks, reservedUntil);
        var wasReady = new List<StoredTask>();
        foreach (var task in tasks)
        {
            queue.Tasks.Remove(task.Name);
            queue.Order.Remove(task);
            if (queue.Ready.Remove((task.ScheduleTime, task.Sequence, task.Name)))
            {
                wasReady.Add(task);
            }

            _taskTombstones.Add(task.Name, reservedUntil);
        }

        return () =>
        {
            if (!_queues.TryGetValue(queue.Queue.Name, out var current) || !ReferenceEquals(current, queue))
            {
                return; // the queue went meanwhile
            }

            foreach (var task in tasks)
            {
                _taskTombstones.Remove(task.Name, reservedUntil);

                if (queue.Tasks.TryAdd(task.Name, task))
                {
                    queue.Order.Insert(task);
                }
            }

            foreach (var task in wasReady)
            {
                if (ReferenceEquals(queue.Tasks.GetValueOrDefault(task.Name), task) && !task.InFlight)
                {
                    queue.Ready.Add((task.ScheduleTime, task.Sequence, task.Name));
                }
            }

            _dirty.Add(queue);
        };
    }

    /// <summary>
    /// Drops expired tombstones and tasks older than their queue's task_ttl, about once a minute. Tombstones come
    /// out of an expiry-ordered index, a slice at a time (the next slice on the next call); a queue's tasks are
    /// looked at only when its oldest task may have expired, oldest first (creation order) up to the first one that
    /// has not, at most a slice of tasks per call over all queues.
    /// </summary>
    private void SweepIfDue(DateTimeOffset now)
    {
        if (now < _nextSweep)
        {
            return;
        }

        _nextSweep = now + TimeSpan.FromMinutes(1);
        const int Slice = 10_000;
        if (_taskTombstones.DropExpired(now, Slice))
        {
            _nextSweep = now; // more to drop: the next call takes the next slice
        }

        _purgedNames.RemoveAll(p => p.Until <= now);
        foreach (var expired in _queueTombstones.Where(t => t.Value <= now).Select(t => t.Key).ToList())
        {
            _queueTombstones.Remove(expired);
        }

        _store.DeleteExpiredTombstones(now);
        var budget = Slice; // tasks looked at, over all queues: the rest waits for the next call
        foreach (var queue in _queues.Values)
        {
            var ttl = queue.Queue.TaskTtl.ToTimeSpan();
            if (queue.OldestCreateTime is not { } oldest || oldest + ttl > now)
            {
                continue;
            }

            // Oldest first, stopping at the first task not yet expired: the sweep costs what it removes, not the queue.
            var expired = new List<StoredTask>();
            var more = false;
            foreach (var task in queue.Order.After(long.MinValue))
            {
                if (task.CreateTime + ttl > now)
                {
                    break;
                }

                if (budget == 0)
                {
                    more = true;
                    break;
                }

                budget--;
                if (!task.InFlight)
                {
                    expired.Add(task); // an attempt under way finishes first; a later sweep takes it
                }
            }

            if (more)
            {
                _nextSweep = now; // more to drop: the next call takes the next slice
            }

            if (expired.Count > 0)
            {
                var undoRemoval = RemoveTasks(queue, expired, now);
                var oldestBefore = queue.OldestCreateTime;
                queue.OldestCreateTime = queue.Order.First?.CreateTime;
                Uncommitted(() =>
                {
                    // Nobody waits for the sweep's commit: if it fails, the expired tasks come back (the next sweep tries again).
                    undoRemoval();
                    queue.OldestCreateTime = Earliest(queue.OldestCreateTime, oldestBefore!.Value);
                });
            }

            if (more)
            {
                break;
            }
        }
    }

    /// <summary>
    /// Makes a change under the lock, then waits (outside it) until the store has it durably. If that commit fails,
    /// the change's undo runs under the lock before the caller hears UNAVAILABLE: memory never keeps a change the
    /// disk does not have. An undo puts back only what is still as the change left it (later calls may have moved on).
    /// </summary>
    private T Durably<T>(Func<Undoable<T>> change)
    {
        Undoable<T> made;
        System.Threading.Tasks.Task durable;
        lock (_gate)
        {
            UndoFailedChanges();
            made = change();
            durable = made.Wrote ? Uncommitted(made.Undo) : System.Threading.Tasks.Task.CompletedTask;
        }

        WaitDurable(durable);
        return made.Result;
    }

    /// <summary>Waits for the commit; on its failure, makes sure the failed changes are undone (under the lock) and throws UNAVAILABLE.</summary>
    private void WaitDurable(System.Threading.Tasks.Task durable)
    {
        try
        {
            durable.GetAwaiter().GetResult();
        }
        catch (Exception ex)
        {
            AfterFailedCommit();
            throw CommitFailed(ex);
        }
    }

    /// <summary>A caller whose commit failed: its change (and every other failed one) is taken back before it answers.</summary>
    private void AfterFailedCommit()
    {
        BeforeUndo?.Invoke();
        lock (_gate)
        {
            UndoFailedChanges(sawFailure: true);
        }
    }

    /// <summary>
    /// Under the lock, after a change that wrote: the commit to wait for, with the change's undo kept until that
    /// commit answers (whoever first sees it failed runs it: <see cref="UndoFailedChanges"/>).
    /// </summary>
    private System.Threading.Tasks.Task Uncommitted(Action? undo)
    {
        var durable = _store.WhenDurable();
        if (undo is not null && !durable.IsCompletedSuccessfully) // already durable (in memory): nothing to undo, and the undo would keep what it captured (a purge's or a deletion's tasks) alive until the next change
        {
            _uncommitted.Enqueue((durable, undo));
        }

        return durable;
    }

    /// <summary>
    /// Called under the lock before any change is made (and by callers whose commit failed). When a commit failed
    /// since the last look, every change whose commit faulted is taken back, newest first, before anything else can
    /// build on it; then the store accepts writes again (it fails every write made after the failure until then, so a
    /// change made just before the failure was visible cannot reach the disk either). Otherwise it only forgets the
    /// undos of committed changes, oldest first (commits answer in order): O(1) per change. A caller that saw its
    /// own commit fail looks whatever the count says.
    /// </summary>
    private void UndoFailedChanges(bool sawFailure = false)
    {
        while (_uncommitted.TryPeek(out var oldest) && oldest.Durable.IsCompletedSuccessfully)
        {
            _uncommitted.Dequeue();
        }

        var failed = _store.FailedCommits;
        if (failed == _failedCommitsSeen && !sawFailure)
        {
            return;
        }

        var kept = new List<(System.Threading.Tasks.Task Durable, Action Undo)>(_uncommitted.Count);
        var undos = new List<Action>();
        foreach (var entry in _uncommitted)
        {
            if (entry.Durable.IsFaulted)
            {
                undos.Add(entry.Undo);
            }
            else if (!entry.Durable.IsCompletedSuccessfully)
            {
                kept.Add(entry);
            }
        }

        _uncommitted.Clear();
        foreach (var entry in kept)
        {
            _uncommitted.Enqueue(entry);
        }

        for (var i = undos.Count - 1; i >= 0; i--)
        {
            undos[i]();
        }

        _failedCommitsSeen = failed;
        _store.ResumeAfterFailure(failed);
        Signal();
    }

    /// <summary>
    /// A commit that failed (a full disk, an I/O error): every call whose writes were in it gets this, never an
    /// acknowledgement. UNAVAILABLE, so a client may retry; the cause's type is named, its text (which may quote
    /// data) is not.
    /// </summary>
    private static RpcException CommitFailed(Exception ex) =>
        ex as RpcException ?? Errors.Unavailable($"The emulator could not write the change to its data folder ({ex.GetType().Name}); it was not made. Retry when the storage is healthy.");

    /// <summary>True while a task of this name existed recently (deleted, run, or purged): the service keeps such names for tombstone_ttl.</summary>
    private bool IsReserved(string taskName, DateTimeOffset now)
    {
        if (_taskTombstones.TryGetUntil(taskName, out var reserved) && reserved > now)
        {
            return true;
        }

        foreach (var purge in _purgedNames)
        {
            if (purge.Until > now && purge.Contains(taskName))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>A change with no undo (Reset: tests only).</summary>
    private void Durably(Action change) => Durably(() =>
    {
        change();
        return new Undoable<bool>(true, null);
    });

    private StoredQueue RequireQueue(string name, string? message = null) =>
        _queues.TryGetValue(name, out var queue) ? queue : throw Errors.NotFound(message ?? $"Queue {name} does not exist.");

    private StoredTask RequireTask(Bridge.CloudTasks.TaskName name)
    {
        var queue = RequireQueue(name.Queue.ToString());
        return queue.Tasks.TryGetValue(name.ToString(), out var task) ? task : throw Errors.NotFound($"Task {name} does not exist (it may have run, been deleted, or never existed).");
    }

    private static StoredQueue NewStoredQueue(Queue queue, DateTimeOffset now) =>
        new(queue, new TokenBucket(queue.RateLimits.MaxDispatchesPerSecond, queue.RateLimits.MaxBurstSize, now));

    private void Signal()
    {
        _dispatchWanted?.Invoke();
        SignalWaiters();
    }

    /// <summary>Wakes those waiting on <see cref="Changed"/> (idle waiters), not the dispatcher.</summary>
    private void SignalWaiters()
    {
        if (_changed is { } previous)
        {
            _changed = null;
            previous.TrySetResult();
        }
    }

    /// <summary>Undo of a map entry: back to <paramref name="previous"/> (none when null) unless a later change replaced <paramref name="set"/>.</summary>
    private static void Restore<T>(IDictionary<string, T> map, string key, T set, T? previous)
        where T : class
    {
        if (map.TryGetValue(key, out var current) && ReferenceEquals(current, set))
        {
            if (previous is null)
            {
                map.Remove(key);
            }
            else
            {
                map[key] = previous;
            }
        }
    }

    /// <summary>What a change answers, and how to take it back if its commit fails (nothing to wait for when it wrote nothing).</summary>
    private readonly record struct Undoable<T>(T Result, Action? Undo, bool Wrote = true);

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private static DateTimeOffset? Earliest(DateTimeOffset? a, DateTimeOffset b) => a is null || b < a ? b : a;

    private static void Copy<T>(IReadOnlyDictionary<string, T> from, Dictionary<string, T> to)
    {
        foreach (var (key, value) in from)
        {
            to[key] = value;
        }
    }
}
