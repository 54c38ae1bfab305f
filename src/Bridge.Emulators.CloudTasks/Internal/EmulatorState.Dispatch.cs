using Bridge.CloudTasks.V2Beta3;
using Google.Protobuf.WellKnownTypes;
using Google.Rpc;

namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>Handing out due tasks and recording what came of each attempt.</summary>
internal sealed partial class EmulatorState
{
    /// <summary>When a task whose attempt could not be recorded is tried again.</summary>
    private static readonly TimeSpan RecoveryDelay = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long an attempt runs before its start is written (durable store). Most attempts end within milliseconds:
    /// their start is never written, and the outcome is their one write (it was two: the start, then the outcome).
    /// </summary>
    internal static readonly TimeSpan DefaultStartWriteDelay = TimeSpan.FromSeconds(1);

    /// <summary>Wakes the dispatch loop (cheap and idempotent: called under the lock on every change).</summary>
    private Action? _dispatchWanted;

    /// <summary>
    /// Starts not written yet, oldest first: starts are made in time order with one delay, so this is also the order
    /// they fall due (a FIFO, no timer per attempt). Ended ones at the front are dropped as attempts end.
    /// </summary>
    private readonly Queue<AttemptStart> _unwrittenStarts = new();

    /// <summary>When the dispatch loop will next look at the unwritten starts (null: it planned no look, and a new start wakes it).</summary>
    private DateTimeOffset? _startsLookPlanned;

    /// <summary>Tests: the delay before an attempt's start is written (<see cref="DefaultStartWriteDelay"/>).</summary>
    internal TimeSpan StartWriteDelay { get; set; } = DefaultStartWriteDelay;

    /// <summary>The dispatcher's wake-up, called when something may have become due (one dispatcher per state).</summary>
    public void OnDispatchWanted(Action wake)
    {
        lock (_gate)
        {
            _dispatchWanted = wake;
        }
    }

    /// <summary>
    /// After a completion: idle waiters always hear of it; the dispatch loop is woken only when the queue has a
    /// task it could hand out now (the freed slot can be used), or a retry due before the queue's planned wake.
    /// Otherwise the queue stays marked changed and is looked at on the next wake, which its planned one covers.
    /// </summary>
    private void SignalCompletion(StoredQueue queue, DateTimeOffset now, bool taken = false)
    {
        // Taken at once (TakeNext): what is still due waits for a slot (a completion touches the queue), a token
        // (its wake is planned) or a resume; the loop has nothing to do for it.
        if (!taken && queue.Ready.Count > 0)
        {
            var due = queue.Ready.Min.Due;
            if (due <= now || queue.ScheduledWake is not { } planned || due < planned)
            {
                _dispatchWanted?.Invoke();
            }
        }

        SignalWaiters();
    }

    /// <summary>
    /// Hands out every task that is due, in running queues, within each queue's rate and concurrency limits.
    /// <paramref name="nextWake"/> is when something will next be due (null: only a change can make work).
    /// </summary>
    public List<DispatchWork> TakeDue(out DateTimeOffset? nextWake)
    {
        var work = new List<DispatchWork>();
        lock (_gate)
        {
            UndoFailedChanges(); // an attempt's start must not be written while the store refuses writes after a failure
            var now = _time.GetUtcNow();
            SweepIfDue(now);
            _startsLookPlanned = now; // this pass looks, and plans the next look below: a start made meanwhile needs no wake
            WriteDueStarts(now);

            // Only queues that changed, or whose next eligible time has come, are looked at: not every queue.
            while (_wakes.TryPeek(out var woken, out var at) && at <= now)
            {
                _wakes.Dequeue();
                if (woken.ScheduledWake == at)
                {
                    woken.ScheduledWake = null;
                    _dirty.Add(woken);
                }
            }

            foreach (var queue in _dirty)
            {
                if (!_queues.TryGetValue(queue.Queue.Name, out var current) || !ReferenceEquals(current, queue))
                {
                    continue; // deleted (or reset) since
                }

                TakeDueAndPlan(queue, now, work);
            }

            _dirty.Clear();
            nextWake = _wakes.TryPeek(out _, out var first) ? Earliest(first, _nextSweep) : _nextSweep;
            _startsLookPlanned = _unwrittenStarts.TryPeek(out var oldest) ? oldest.WriteAt : null;
            nextWake = _startsLookPlanned is { } look ? Earliest(nextWake, look) : nextWake;
        }

        return work;
    }

    /// <summary>
    /// Writes the starts of attempts still under way at their write time, as memory has the task (the started row),
    /// under the lock like every other write, so it is ordered with them. An attempt that ended, a task deleted or
    /// purged, a queue deleted or reset since: nothing is written back. A start the store refuses is treated as a
    /// failed commit: the dispatcher writes the task again once the attempt ends.
    /// </summary>
    private void WriteDueStarts(DateTimeOffset now)
    {
        while (_unwrittenStarts.TryPeek(out var start) && (start.Ended || start.WriteAt <= now))
        {
            _unwrittenStarts.Dequeue();
            if (start.Ended || !IsUnderWay(start))
            {
                continue;
            }

            try
            {
                start.Write = _store.SaveTaskSupersedable(start.Task);
                start.Recorded = _store.WhenDurableLater(); // nobody waits for it: the request left long ago
            }
            catch (Exception ex)
            {
                start.Recorded = System.Threading.Tasks.Task.FromException(ex);
            }
        }
    }

    /// <summary>The attempt is still the one under way of a task still in its queue (neither deleted, purged, reset nor settled since).</summary>
    private bool IsUnderWay(AttemptStart start) =>
        _queues.TryGetValue(start.Queue.Queue.Name, out var queue) && ReferenceEquals(queue, start.Queue)
        && queue.Tasks.TryGetValue(start.Task.Name, out var task) && ReferenceEquals(task, start.Task)
        && task.InFlight && task.AttemptId == start.AttemptId;

    /// <summary>The attempt ended: its start needs no write; ended starts at the front go now, so the FIFO holds about the attempts under way.</summary>
    private void EndStart(AttemptStart start)
    {
        start.Ended = true;
        while (_unwrittenStarts.TryPeek(out var oldest) && oldest.Ended)
        {
            _unwrittenStarts.Dequeue();
        }
    }

    /// <summary>Hands out what is due in one queue and plans its next look; true when that look is earlier than any planned.</summary>
    private bool TakeDueAndPlan(StoredQueue queue, DateTimeOffset now, List<DispatchWork> work)
    {
        if (TakeDue(queue, now, work) is { } wake && (queue.ScheduledWake is not { } scheduled || wake < scheduled))
        {
            queue.ScheduledWake = wake;
            _wakes.Enqueue(queue, wake);
            return true;
        }

        return false;
    }

    /// <summary>Hands out what is due in one queue; returns when it will next have something (null: only a change can make work).</summary>
    private DateTimeOffset? TakeDue(StoredQueue queue, DateTimeOffset now, List<DispatchWork> work)
    {
        if (queue.Queue.State != Queue.Types.State.Running || queue.Queue.Type == Queue.Types.Type.Pull)
        {
            return null; // nothing of a pull queue is dispatched (nor deleted as exhausted); resuming touches the queue
        }

        while (queue.Ready.Count > 0)
        {
            var next = queue.Ready.Min;
            if (next.Due > now)
            {
                return next.Due;
            }

            if (queue.InFlight >= queue.Queue.RateLimits.MaxConcurrentDispatches)
            {
                return null; // a completion touches the queue
            }

            if (!queue.Bucket.TryTake(now))
            {
                return queue.Bucket.NextTokenAt(now);
            }

            work.Add(StartAttempt(queue, queue.Tasks[next.Name], now));
        }

        return null;
    }

    /// <summary>
    /// Records an attempt's outcome: success deletes the task; failure schedules a retry or gives up. Returns when
    /// the outcome's writes are durable (it faults when their commit failed: see <see cref="RewriteTask"/>).
    /// </summary>
    public System.Threading.Tasks.Task CompleteAttempt(DispatchWork work, DispatchResult result) => CompleteAttempt(work, result, takeNext: false, out _);

    /// <summary>
    /// Records an attempt's outcome (see above) and, with <paramref name="takeNext"/>, hands out at once what the freed
    /// slot lets the queue send (<paramref name="next"/>, for the caller to start), under the same lock and with the
    /// same limits as the dispatch loop: the loop is not woken and no thread hop is made for the common case of a
    /// busy queue. Nothing is handed out when this throws.
    /// </summary>
    public System.Threading.Tasks.Task CompleteAttempt(DispatchWork work, DispatchResult result, bool takeNext, out List<DispatchWork>? next)
    {
        next = null;

        // A success leaves a tombstone: its key (a hash of the name) is worked out before the lock, which the other
        // completions and the dispatch loop wait for.
        UInt128? tombstoneKey = AttemptRules.IsSuccess(result.StatusCode) ? TaskNameKey.Of(work.Task.Name) : null;
        lock (_gate)
        {
            UndoFailedChanges(); // as before any change: the outcome's write would fail behind another call's failed commit
            if (work.Start is { } start)
            {
                EndStart(start); // whatever comes of the outcome: the start is not written after it
            }

            var queueName = work.Queue.Name;
            if (!_queues.TryGetValue(queueName, out var queue))
            {
                return System.Threading.Tasks.Task.CompletedTask; // the queue was deleted meanwhile
            }

            if (!queue.InFlightAttempts.Remove(work.AttemptId))
            {
                return System.Threading.Tasks.Task.CompletedTask; // started for an earlier queue of this name (deleted or reset since)
            }

            _dirty.Add(queue); // a slot is free, and the task may be back in the ready list

            if (!queue.Tasks.TryGetValue(work.Task.Name, out var task) || !task.InFlight || task.AttemptId != work.AttemptId)
            {
                var at = _time.GetUtcNow();
                next = takeNext ? TakeNext(queue, at) : null;
                SignalCompletion(queue, at, taken: next is not null);
                return System.Threading.Tasks.Task.CompletedTask; // deleted or purged while in flight
            }

            task.InFlight = false;
            var now = _time.GetUtcNow();
            try
            {
                Settle(queue, task, result, now, tombstoneKey);
            }
            catch (Exception) when (queue.Tasks.ContainsKey(task.Name))
            {
                // Whatever failed (the store, a rule), the task must not drop out of the ready list: it is tried
                // again shortly, and the dispatcher reports the failure.
                RecoverAfterFailedSettle(queue, task, now);
                SignalCompletion(queue, now);
                throw;
            }

            // Most attempts end before their start is written: the outcome (the whole row, or its deletion) is their one
            // write. A start that was written (the attempt lasted) is queued before the outcome: if the writer has not
            // taken it yet, it is skipped. A SIGKILL before the outcome's commit then finds the task as before the
            // attempt: a redelivery, as a SIGKILL before the start's write always did; the dispatch count on disk still
            // never goes down.
            work.Start?.Write?.TrySupersede();

            next = takeNext ? TakeNext(queue, now) : null;
            SignalCompletion(queue, now, taken: next is not null);

            return _store.WhenDurableLater(); // only the dispatcher's count waits for it: the store may gather it with others
        }
    }

    /// <summary>
    /// After the commit of an attempt's outcome failed, memory has the outcome and storage has not: writes the
    /// task as memory has it now (its row, or its deletion and tombstone when it is gone), so storage catches up.
    /// What memory has now is written, not the outcome again, so a later change of the task is never overwritten.
    /// Returns when the write is durable (it faults when this commit failed too).
    /// </summary>
    public System.Threading.Tasks.Task RewriteTask(string queueName, string taskName)
    {
        lock (_gate)
        {
            // The failure that made this rewrite needed leaves the store refusing writes until the failed changes are
            // taken back; without this the rewrite could fail at once and wait a whole backoff step.
            UndoFailedChanges();
            if (!_queues.TryGetValue(queueName, out var queue))
            {
                return System.Threading.Tasks.Task.CompletedTask; // the queue's deletion took its rows
            }

            if (queue.Tasks.TryGetValue(taskName, out var task))
            {
                _store.SaveTask(task);
            }
            else
            {
                _store.DeleteTasks([taskName], ReservedUntil(taskName, _time.GetUtcNow()));
            }

            return _store.WhenDurable();
        }
    }

    /// <summary>Until when a gone task's name is reserved (its tombstone, or the purge that took it).</summary>
    private DateTimeOffset ReservedUntil(string taskName, DateTimeOffset now)
    {
        var until = _taskTombstones.TryGetUntil(taskName, out var reserved) ? reserved : now;
        foreach (var purge in _purgedNames)
        {
            if (purge.Until > until && purge.Contains(taskName))
            {
                until = purge.Until;
            }
        }

        return until;
    }

    /// <summary>
    /// Applies the outcome. Memory changes only after the write that can throw was queued: when it throws, the task
    /// keeps what storage has (its counts and schedule), and <see cref="RecoverAfterFailedSettle"/> puts it back.
    /// </summary>
    private void Settle(StoredQueue queue, StoredTask task, DispatchResult result, DateTimeOffset now, UInt128? tombstoneKey)
    {
        var executionCount = task.ExecutionCount + (AttemptRules.IsExecution(result.StatusCode) ? 1 : 0);
        var previousResponse = result.StatusCode ?? 504;
        if (AttemptRules.IsSuccess(result.StatusCode))
        {
            RemoveSettledTask(queue, task, now, tombstoneKey); // gone: nothing of the attempt needs writing into the task first
            return;
        }

        var settled = task.Task; // a copy: written back below
        var attempt = settled.LastAttempt;
        if (result.StatusCode is { } status)
        {
            attempt.ResponseTime = Timestamp.FromDateTimeOffset(result.ResponseTime);
            attempt.ResponseStatus = AttemptRules.StatusFor(status);
            settled.ResponseCount++;
        }
        else
        {
            attempt.ResponseStatus = new Google.Rpc.Status { Code = (int)Code.DeadlineExceeded, Message = "No response within the dispatch deadline." };
        }

        var retry = QueueRules.EffectiveRetry(settled.RetryConfig, queue.Queue.RetryConfig);
        var sinceFirst = now - (task.FirstAttemptAt ?? now);
        if (Backoff.IsExhausted(retry, settled.DispatchCount, sinceFirst))
        {
            RemoveSettledTask(queue, task, now, tombstoneKey: null);
            return;
        }

        var due = now + AttemptRules.NextDelay(retry, settled.DispatchCount, result.StatusCode, result.RetryAfter);
        settled.ScheduleTime = Timestamp.FromDateTimeOffset(due);
        var row = new StoredTask { Task = settled, QueueName = task.QueueName, Sequence = task.Sequence, ExecutionCount = executionCount, PreviousResponse = previousResponse, FirstAttemptAt = task.FirstAttemptAt };
        _store.SaveTask(row);
        task.TakeTaskFrom(row);
        task.ExecutionCount = executionCount;
        task.PreviousResponse = previousResponse;
        queue.Ready.Add((due, task.Sequence, task.Name));
    }

    /// <summary>
    /// A settled attempt's task taken out (a success, or retries exhausted), leaving its tombstone. Unlike
    /// <see cref="RemoveTasks"/> no undo is made (a failed commit of this is caught up by the dispatcher writing the task
    /// again: <see cref="RewriteTask"/>), and the ready set is not searched: an attempt's start took the task out of it,
    /// and nothing puts a task in flight back (every Ready.Add is of a task not in flight).
    /// </summary>
    private void RemoveSettledTask(StoredQueue queue, StoredTask task, DateTimeOffset now, UInt128? tombstoneKey)
    {
        var reservedUntil = now + queue.Queue.TombstoneTtl.ToTimeSpan();
        _store.DeleteStoredTasks([task], reservedUntil);
        queue.Tasks.Remove(task.Name);
        queue.Order.Remove(task);
        _taskTombstones.Add(tombstoneKey ?? TaskNameKey.Of(task.Name), reservedUntil);
    }

    /// <summary>
    /// What the completing attempt's queue can send now that a slot is free, handed out as the loop would (the queue
    /// is then no longer marked changed). A failure leaves the queue marked, for the loop to try and report.
    /// </summary>
    private List<DispatchWork>? TakeNext(StoredQueue queue, DateTimeOffset now)
    {
        if (queue.Ready.Count == 0 || queue.Ready.Min.Due > now)
        {
            return null; // nothing due: the queue stays marked, and the planned wake covers what comes due
        }

        var next = new List<DispatchWork>(1);
        try
        {
            if (TakeDueAndPlan(queue, now, next))
            {
                _dispatchWanted?.Invoke(); // an earlier look than the loop planned (a token comes later): let it plan again
            }

            _dirty.Remove(queue);
        }
        catch (Exception)
        {
            _dispatchWanted?.Invoke(); // the loop tries again and reports the failure; what was handed out still goes
        }

        return next;
    }

    private static void RecoverAfterFailedSettle(StoredQueue queue, StoredTask task, DateTimeOffset now)
    {
        task.InFlight = false;
        queue.Ready.RemoveWhere(r => r.Name == task.Name);
        var due = now + RecoveryDelay;
        var recovered = task.Task;
        recovered.ScheduleTime = Timestamp.FromDateTimeOffset(due);
        task.Task = recovered;
        queue.Ready.Add((due, task.Sequence, task.Name));
    }

    /// <summary>Notes the start as unwritten; wakes the dispatch loop only when it has no look at the starts planned.</summary>
    private AttemptStart DeferStart(StoredQueue queue, StoredTask task, long attemptId, DateTimeOffset now)
    {
        var start = new AttemptStart(now + StartWriteDelay, queue, task, attemptId);
        _unwrittenStarts.Enqueue(start);
        if (_startsLookPlanned is null)
        {
            _startsLookPlanned = start.WriteAt; // the loop plans again on this wake; later starts fall due after this one
            _dispatchWanted?.Invoke();
        }

        return start;
    }

    private DispatchWork StartAttempt(StoredQueue queue, StoredTask task, DateTimeOffset now)
    {
        var eta = task.ScheduleTime;
        var started = task.Task; // parsed afresh from the stored form: ours to change, then the attempt's snapshot
        var retryCount = started.DispatchCount;
        started.DispatchCount++;
        started.LastAttempt = new Attempt { ScheduleTime = started.ScheduleTime, DispatchTime = Timestamp.FromDateTimeOffset(now) };
        if (started.DispatchCount == 1)
        {
            // Only dispatch_time: "the other Attempt information is not retained by Cloud Tasks" (Task.first_attempt).
            started.FirstAttempt = new Attempt { DispatchTime = Timestamp.FromDateTimeOffset(now) };
        }

        // Nothing is written now: with a durable store the started row is written only if the attempt is still under
        // way after StartWriteDelay (WriteDueStarts; see Dispatcher.RunAsync for what a crash at each step does).

        queue.Ready.Remove((eta, task.Sequence, task.Name));
        var attemptId = ++_attemptSequence;

        // The stored queue is replaced on every change, never changed in place, so the work can share it.
        var work = new DispatchWork(attemptId, started, queue.Queue, retryCount, task.ExecutionCount, task.PreviousResponse, eta, now)
        {
            Start = _store.Persists ? DeferStart(queue, task, attemptId, now) : null,
        };
        task.SetStarted(started); // memory only, not serialized: storage gets the started row if the attempt lasts (WriteDueStarts)
        task.FirstAttemptAt ??= now;
        task.InFlight = true;
        task.AttemptId = attemptId;
        queue.InFlightAttempts.Add(attemptId);
        queue.RecentDispatches.Enqueue(now);
        while (queue.RecentDispatches.Count > 0 && queue.RecentDispatches.Peek() < now - TimeSpan.FromMinutes(1))
        {
            queue.RecentDispatches.Dequeue();
        }

        return work;
    }
}
