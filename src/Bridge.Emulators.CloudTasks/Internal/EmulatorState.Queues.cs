using Bridge.CloudTasks.V2Beta3;
using Google.Protobuf.WellKnownTypes;

namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>Queue RPCs.</summary>
internal sealed partial class EmulatorState
{
    public Queue CreateQueue(CreateQueueRequest request)
    {
        var parent = QueueRules.ParseLocationName(request.Parent, "parent");
        if (request.Queue is null)
        {
            throw Errors.InvalidArgument("queue", "queue is required.");
        }

        var name = QueueRules.ParseQueueName(request.Queue.Name, "queue.name");
        if (name.Location != parent)
        {
            throw Errors.InvalidArgument("queue.name", $"queue.name '{request.Queue.Name}' is not in parent '{request.Parent}'.");
        }

        var queue = request.Queue.Clone();
        QueueRules.Validate(queue, "queue.");
        return Durably(() =>
        {
            var now = _time.GetUtcNow();
            SweepIfDue(now);
            if (_queues.ContainsKey(queue.Name))
            {
                throw Errors.AlreadyExists("Requested entity already exists");
            }

            if (_queueTombstones.TryGetValue(queue.Name, out var reserved) && reserved > now)
            {
                throw Errors.FailedPrecondition("The queue cannot be created because a queue with this name existed too recently.");
            }

            queue.State = Queue.Types.State.Running;
            queue.PurgeTime = null;
            queue.Stats = null;
            QueueRules.ApplyDefaults(queue);
            QueueRules.Validate(queue, "queue."); // again with the defaults filled in: min_backoff 2h against the default max of 1h
            _store.SaveQueue(queue);
            var created = NewStoredQueue(queue, now);
            _queues[queue.Name] = created;
            Signal();
            return new Undoable<Queue>(queue.Clone(), () => Restore(_queues, queue.Name, created, null));
        });
    }

    /// <summary>
    /// Creates a queue the host declares (<c>--queues</c>, <see cref="CloudTasksEmulator.EnsureQueue"/>) unless it
    /// exists. The declaration wins over the name reservation of a recent deletion: a restart with the same
    /// settings must start.
    /// </summary>
    public void EnsureQueue(Bridge.CloudTasks.QueueName name)
    {
        lock (_gate)
        {
            UndoFailedChanges();
            if (_queues.ContainsKey(name.ToString()))
            {
                return;
            }

            // Taken back with the creation when its commit fails: the name stays reserved as the disk has it.
            var reserved = _queueTombstones.Remove(name.ToString(), out var until);
            try
            {
                CreateQueue(new CreateQueueRequest { Parent = name.Location.ToString(), Queue = new Queue { Name = name.ToString() } });
            }
            catch (Exception) when (reserved && !_queues.ContainsKey(name.ToString()))
            {
                _queueTombstones.TryAdd(name.ToString(), until);
                throw;
            }
        }
    }

    /// <summary>The location ids of a project's queues.</summary>
    public IReadOnlyList<string> LocationsInUse(string project)
    {
        lock (_gate)
        {
            return _queues.Keys.Select(Bridge.CloudTasks.QueueName.Parse).Where(q => q.ProjectId == project).Select(q => q.LocationId).Distinct(StringComparer.Ordinal).ToList();
        }
    }

    public Queue GetQueue(GetQueueRequest request)
    {
        var name = QueueRules.ParseQueueName(request.Name, "name").ToString();
        lock (_gate)
        {
            return Present(RequireQueue(name), request.ReadMask);
        }
    }

    public (IReadOnlyList<Queue> Queues, string NextPageToken) ListQueues(ListQueuesRequest request)
    {
        var parent = QueueRules.ParseLocationName(request.Parent, "parent").ToString() + "/queues/";
        var pageSize = Paging.PageSize(request.PageSize, Paging.MaxQueuePageSize);
        var after = Paging.DecodeToken(request.PageToken);
        var stateFilter = QueueRules.ParseStateFilter(request.Filter);
        lock (_gate)
        {
            var matches = _queues.Values
                .Where(q => q.Queue.Name.StartsWith(parent, StringComparison.Ordinal) && string.CompareOrdinal(q.Queue.Name, after) > 0)
                .Where(q => stateFilter is null || q.Queue.State == stateFilter)
                .Take(pageSize + 1)
                .ToList();
            var page = matches.Take(pageSize).Select(q => Present(q, request.ReadMask)).ToList();
            return (page, matches.Count > pageSize ? Paging.EncodeToken(page[^1].Name) : string.Empty);
        }
    }

    public Queue UpdateQueue(UpdateQueueRequest request)
    {
        if (request.Queue is null)
        {
            throw Errors.InvalidArgument("queue", "queue is required.");
        }

        var name = QueueRules.ParseQueueName(request.Queue.Name, "queue.name").ToString();
        var paths = (request.UpdateMask?.Paths ?? []).Select(QueueRules.NormalizeUpdatePath).Distinct(StringComparer.Ordinal).ToList();

        QueueRules.Validate(request.Queue, "queue.");
        return Durably(() =>
        {
            var now = _time.GetUtcNow();
            if (!_queues.TryGetValue(name, out var stored))
            {
                // UpdateQueue creates a missing queue, like the service (that call waits for its own commit, and undoes its own change).
                var created = CreateQueue(new CreateQueueRequest { Parent = Bridge.CloudTasks.QueueName.Parse(name).Location.ToString(), Queue = request.Queue });
                return new Undoable<Queue>(created, null, Wrote: false);
            }

            var updated = stored.Queue.Clone();
            if (paths.Count > 0)
            {
                new FieldMask { Paths = { paths } }.Merge(request.Queue, updated, new FieldMask.MergeOptions { ReplaceMessageFields = true, ReplaceRepeatedFields = true, ReplacePrimitiveFields = true });
                if (QueueRules.BurstFollowsRate(paths, request.Queue) && updated.RateLimits is { } rate)
                {
                    rate.MaxBurstSize = 0; // picked again from the new rate below
                }
            }
            else
            {
                updated.RateLimits = request.Queue.RateLimits?.Clone();
                updated.RetryConfig = request.Queue.RetryConfig?.Clone();
                updated.StackdriverLoggingConfig = request.Queue.StackdriverLoggingConfig?.Clone();
                updated.AppEngineHttpQueue = request.Queue.AppEngineHttpQueue?.Clone();
                updated.HttpTarget = request.Queue.HttpTarget?.Clone();
                updated.TaskTtl = request.Queue.TaskTtl?.Clone();
                updated.TombstoneTtl = request.Queue.TombstoneTtl?.Clone();
            }

            QueueRules.ApplyDefaults(updated);
            QueueRules.Validate(updated, "queue.");
            _store.SaveQueue(updated);
            var previous = stored.Queue;
            stored.Queue = updated;
            stored.Bucket.Reconfigure(updated.RateLimits!.MaxDispatchesPerSecond, updated.RateLimits.MaxBurstSize, now);
            _dirty.Add(stored);
            Signal();
            return new Undoable<Queue>(updated.Clone(), () =>
            {
                if (ReplaceConfig(stored, updated, previous))
                {
                    stored.Bucket.Reconfigure(previous.RateLimits.MaxDispatchesPerSecond, previous.RateLimits.MaxBurstSize, _time.GetUtcNow());
                }
            });
        });
    }

    public void DeleteQueue(DeleteQueueRequest request)
    {
        var name = QueueRules.ParseQueueName(request.Name, "name").ToString();
        Durably(() =>
        {
            var removed = RequireQueue(name);
            var reservedUntil = _time.GetUtcNow() + _options.QueueNameReuseDelay;
            _store.DeleteQueue(name, reservedUntil);
            var previousTombstone = _queueTombstones.TryGetValue(name, out var t) ? t : (DateTimeOffset?)null;
            var policy = _policies.GetValueOrDefault(name);
            _queues.Remove(name);
            _queueTombstones[name] = reservedUntil;
            _policies.Remove(name);
            Signal();
            return new Undoable<bool>(true, () =>
            {
                if (!_queues.TryAdd(name, removed))
                {
                    return; // a queue of that name was created meanwhile (no reuse delay)
                }

                if (_queueTombstones.TryGetValue(name, out var until) && until == reservedUntil)
                {
                    if (previousTombstone is { } before)
                    {
                        _queueTombstones[name] = before;
                    }
                    else
                    {
                        _queueTombstones.Remove(name);
                    }
                }

                if (policy is not null)
                {
                    _policies.TryAdd(name, policy);
                }

                _dirty.Add(removed);
            });
        });
    }

    /// <summary>
    /// Purges every task of the queue. The queue's task set is swapped for an empty one under the lock (constant
    /// time) and the purged names stay reserved as one entry (not one tombstone each), compacted to their keys in the
    /// background; the store records the purge as one entry and takes the rows out later. Tasks created after the swap
    /// are kept.
    /// </summary>
    public Queue PurgeQueue(PurgeQueueRequest request)
    {
        var name = QueueRules.ParseQueueName(request.Name, "name").ToString();
        PurgedNames purged;
        Queue result;
        System.Threading.Tasks.Task durable;
        lock (_gate)
        {
            UndoFailedChanges();
            var queue = RequireQueue(name);
            var now = _time.GetUtcNow();
            var reservedUntil = now + queue.Queue.TombstoneTtl.ToTimeSpan();
            var before = (queue.Tasks, queue.Order, queue.Ready, queue.OldestCreateTime, queue.Queue);
            purged = new PurgedNames(queue.Tasks, reservedUntil);
            _store.PurgeTasks(name, queue.Tasks.Keys, reservedUntil);
            queue.Tasks = new Dictionary<string, StoredTask>(StringComparer.Ordinal);
            queue.Order = new CreationOrder();
            queue.Ready = [];
            queue.OldestCreateTime = null;
            _purgedNames.Add(purged);
            var updated = queue.Queue.Clone();
            updated.PurgeTime = Timestamp.FromDateTimeOffset(now);
            _store.SaveQueue(updated);
            queue.Queue = updated;
            Signal();
            result = Present(queue, null);
            Action undo = () =>
            {
                _purgedNames.Remove(purged);
                if (!_queues.TryGetValue(name, out var current) || !ReferenceEquals(current, queue))
                {
                    return;
                }

                // The purged tasks come back; those created since go on top (their sequences are all higher).
                foreach (var task in queue.Order.After(0))
                {
                    before.Tasks[task.Name] = task;
                    before.Order.Append(task);
                }

                before.Ready.UnionWith(queue.Ready);
                (queue.Tasks, queue.Order, queue.Ready) = (before.Tasks, before.Order, before.Ready);
                queue.OldestCreateTime = before.OldestCreateTime is { } oldest ? Earliest(queue.OldestCreateTime, oldest) : queue.OldestCreateTime;
                ReplaceConfig(queue, updated, before.Queue);
                _dirty.Add(queue);
            };
            durable = Uncommitted(undo);
        }

        // Off the call's path: hashing a million names takes a while, and the names answer from the purged set meanwhile.
        _ = System.Threading.Tasks.Task.Run(purged.Compact);
        WaitDurable(durable);
        return result;
    }

    public Queue SetQueueState(string requestName, Queue.Types.State state)
    {
        var name = QueueRules.ParseQueueName(requestName, "name").ToString();
        return Durably(() =>
        {
            var queue = RequireQueue(name);
            var previous = queue.Queue;
            var updated = queue.Queue.Clone();
            updated.State = state;
            _store.SaveQueue(updated);
            queue.Queue = updated;
            _dirty.Add(queue);
            Signal();
            return new Undoable<Queue>(Present(queue, null), () => ReplaceConfig(queue, updated, previous));
        });
    }

    /// <summary>Undo of a config change: back to <paramref name="previous"/> unless a later change replaced <paramref name="set"/>.</summary>
    private bool ReplaceConfig(StoredQueue queue, Queue set, Queue previous)
    {
        if (!ReferenceEquals(queue.Queue, set))
        {
            return false;
        }

        queue.Queue = previous;
        _dirty.Add(queue);
        return true;
    }

    private Queue Present(StoredQueue stored, FieldMask? readMask)
    {
        var queue = stored.Queue.Clone();
        if (readMask is { Paths.Count: > 0 })
        {
            foreach (var path in readMask.Paths)
            {
                if (Queue.Descriptor.FindFieldByName(path.Split('.')[0]) is null)
                {
                    throw Errors.InvalidArgument("read_mask", $"'{path}' is not a field of Queue.");
                }
            }

            if (readMask.Paths.Any(p => p == "stats" || p.StartsWith("stats.", StringComparison.Ordinal)))
            {
                var now = _time.GetUtcNow();
                queue.Stats = new QueueStats
                {
                    TasksCount = stored.Tasks.Count,
                    OldestEstimatedArrivalTime = stored.Ready.Count > 0 ? Timestamp.FromDateTimeOffset(stored.Ready.Min.Due) : null,
                    ExecutedLastMinuteCount = stored.RecentDispatches.Count(t => t >= now - TimeSpan.FromMinutes(1)),
                    ConcurrentDispatchesCount = stored.InFlight,
                    EffectiveExecutionRate = stored.Queue.RateLimits.MaxDispatchesPerSecond,
                };
            }

            var masked = new Queue { Name = queue.Name };
            readMask.Merge(queue, masked);
            return masked;
        }

        return queue;
    }
}
