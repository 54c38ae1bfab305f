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
    /// Hands out every task that is due, in running queues, within each queue's rate and concurrency limits.
    /// <paramref name="nextWake"/> is when something will next be due (null: only a change can make work).
    /// </summary>
    public List<DispatchWork> TakeDue(out DateTimeOffset? nextWake)
    {
        var work = new List<DispatchWork>();
        nextWake = null;
        lock (_gate)
        {
            var now = _time.GetUtcNow();
            SweepIfDue(now);
            foreach (var queue in _queues.Values)
            {
                if (queue.Queue.State != Queue.Types.State.Running || queue.Queue.Type == Queue.Types.Type.Pull)
                {
                    continue; // nothing of a pull queue is dispatched (nor deleted as exhausted)
                }

                while (queue.Ready.Count > 0)
                {
                    var next = queue.Ready.Min;
                    if (next.Due > now)
                    {
                        nextWake = Earliest(nextWake, next.Due);
                        break;
                    }

                    if (queue.InFlight >= queue.Queue.RateLimits.MaxConcurrentDispatches)
                    {
                        break; // a completion signals
                    }

                    if (!queue.Bucket.TryTake(now))
                    {
                        nextWake = Earliest(nextWake, queue.Bucket.NextTokenAt(now));
                        break;
                    }

                    work.Add(StartAttempt(queue, queue.Tasks[next.Name], now));
                }
            }

            nextWake = Earliest(nextWake, _nextSweep);
        }

        return work;
    }

    /// <summary>Records an attempt's outcome: success deletes the task; failure schedules a retry or gives up.</summary>
    public void CompleteAttempt(DispatchWork work, DispatchResult result)
    {
        lock (_gate)
        {
            var queueName = work.Queue.Name;
            if (!_queues.TryGetValue(queueName, out var queue))
            {
                return; // the queue was deleted meanwhile
            }

            if (!queue.InFlightAttempts.Remove(work.AttemptId))
            {
                return; // started for an earlier queue of this name (deleted or reset since)
            }

            if (!queue.Tasks.TryGetValue(work.Task.Name, out var task) || !task.InFlight || task.AttemptId != work.AttemptId)
            {
                Signal();
                return; // deleted or purged while in flight
            }

            task.InFlight = false;
            var now = _time.GetUtcNow();
            try
            {
                Settle(queue, task, result, now);
            }
            catch (Exception) when (queue.Tasks.ContainsKey(task.Name))
            {
                // Whatever failed (the store, a rule), the task must not drop out of the ready list: it is tried
                // again shortly, and the dispatcher reports the failure.
                RecoverAfterFailedSettle(queue, task, now);
                Signal();
                throw;
            }
        }
    }

    /// <summary>The attempt's start could not be made durable, so it never left: the task is tried again shortly.</summary>
    public void AbandonAttempt(DispatchWork work)
    {
        lock (_gate)
        {
            if (_queues.TryGetValue(work.Queue.Name, out var queue)
                && queue.InFlightAttempts.Remove(work.AttemptId)
                && queue.Tasks.TryGetValue(work.Task.Name, out var task)
                && task.InFlight
                && task.AttemptId == work.AttemptId)
            {
                RecoverAfterFailedSettle(queue, task, _time.GetUtcNow());
            }

            Signal();
        }
    }

    private void Settle(StoredQueue queue, StoredTask task, DispatchResult result, DateTimeOffset now)
    {
        var attempt = task.Task.LastAttempt;
        if (result.StatusCode is { } status)
        {
            attempt.ResponseTime = Timestamp.FromDateTimeOffset(result.ResponseTime);
            attempt.ResponseStatus = AttemptRules.StatusFor(status);
            task.Task.ResponseCount++;
        }
        else
        {
            attempt.ResponseStatus = new Google.Rpc.Status { Code = (int)Code.DeadlineExceeded, Message = "No response within the dispatch deadline." };
        }

        if (AttemptRules.IsExecution(result.StatusCode))
        {
            task.ExecutionCount++;
        }

        if (task.Task.DispatchCount == 1)
        {
            task.Task.FirstAttempt = attempt.Clone();
        }

        task.PreviousResponse = result.StatusCode ?? 504;
        if (AttemptRules.IsSuccess(result.StatusCode))
        {
            RemoveTasks(queue, [task], now);
            Signal();
            return;
        }

        var retry = QueueRules.EffectiveRetry(task.Task.RetryConfig, queue.Queue.RetryConfig);
        var sinceFirst = now - (task.FirstAttemptAt ?? now);
        if (Backoff.IsExhausted(retry, task.Task.DispatchCount, sinceFirst))
        {
            RemoveTasks(queue, [task], now);
            Signal();
            return;
        }

        var due = now + AttemptRules.NextDelay(retry, task.Task.DispatchCount, result.StatusCode, result.RetryAfter);
        task.Task.ScheduleTime = Timestamp.FromDateTimeOffset(due);
        _store.SaveTask(task);
        queue.Ready.Add((due, task.Sequence, task.Name));
        Signal();
    }

    private static void RecoverAfterFailedSettle(StoredQueue queue, StoredTask task, DateTimeOffset now)
    {
        task.InFlight = false;
        queue.Ready.RemoveWhere(r => r.Name == task.Name);
        var due = now + RecoveryDelay;
        task.Task.ScheduleTime = Timestamp.FromDateTimeOffset(due);
        queue.Ready.Add((due, task.Sequence, task.Name));
    }

    private DispatchWork StartAttempt(StoredQueue queue, StoredTask task, DateTimeOffset now)
    {
        var eta = task.Task.ScheduleTime.ToDateTimeOffset();
        var started = task.Task.Clone();
        started.DispatchCount++;
        started.LastAttempt = new Attempt { ScheduleTime = started.ScheduleTime, DispatchTime = Timestamp.FromDateTimeOffset(now) };
        if (started.DispatchCount == 1)
        {
            started.FirstAttempt = started.LastAttempt.Clone();
        }

        // Durable before the attempt leaves: after a crash mid-attempt the task shows the dispatch it had. Written
        // before anything in memory changes, so a failed write leaves the task as it was.
        var firstAttemptAt = task.FirstAttemptAt ?? now;
        _store.SaveTask(new StoredTask { Task = started, QueueName = task.QueueName, Sequence = task.Sequence, ExecutionCount = task.ExecutionCount, PreviousResponse = task.PreviousResponse, FirstAttemptAt = firstAttemptAt });

        queue.Ready.Remove((eta, task.Sequence, task.Name));
        var attemptId = ++_attemptSequence;
        var work = new DispatchWork(attemptId, task.Task.Clone(), queue.Queue.Clone(), task.Task.DispatchCount, task.ExecutionCount, task.PreviousResponse, eta, now)
        {
            Recorded = _store.WhenDurable(),
        };
        task.Task = started;
        task.FirstAttemptAt = firstAttemptAt;
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
