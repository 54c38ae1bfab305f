using System.Security.Cryptography;
using System.Text;
using Bridge.CloudTasks.Iam.V1;
using Bridge.CloudTasks.V2Beta3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Task = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>
/// All queues, tasks, tombstones, IAM policies and CMEK configs, behind one lock. Every RPC and every dispatch
/// outcome is a method here; each change is written to the store before the method returns.
/// </summary>
internal sealed class EmulatorState : IDisposable
{
    private const int DefaultPageSize = 1000;
    private const int MaxQueuePageSize = 9800;
    private const int MaxTaskPageSize = 1000;

    private static readonly HashSet<string> KnownPermissions = new(StringComparer.Ordinal)
    {
        "cloudtasks.queues.create", "cloudtasks.queues.delete", "cloudtasks.queues.get", "cloudtasks.queues.list",
        "cloudtasks.queues.pause", "cloudtasks.queues.resume", "cloudtasks.queues.purge", "cloudtasks.queues.update",
        "cloudtasks.queues.getIamPolicy", "cloudtasks.queues.setIamPolicy",
        "cloudtasks.tasks.create", "cloudtasks.tasks.delete", "cloudtasks.tasks.get", "cloudtasks.tasks.list",
        "cloudtasks.tasks.run", "cloudtasks.tasks.fullView",
        "cloudtasks.locations.get", "cloudtasks.locations.list",
    };

    private readonly Lock _gate = new();
    private readonly IEmulatorStore _store;
    private readonly TimeProvider _time;
    private readonly EmulatorOptions _options;
    private readonly SortedDictionary<string, StoredQueue> _queues = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DateTimeOffset> _taskTombstones = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DateTimeOffset> _queueTombstones = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Policy> _policies = new(StringComparer.Ordinal);
    private readonly Dictionary<string, CmekConfig> _cmek = new(StringComparer.Ordinal);
    private long _sequence;
    private DateTimeOffset _nextSweep;
    private TaskCompletionSource _changed = NewSignal();

    public EmulatorState(IEmulatorStore store, EmulatorOptions options, TimeProvider time)
    {
        _store = store;
        _options = options;
        _time = time;
        var now = time.GetUtcNow();
        var loaded = store.Load();
        foreach (var queue in loaded.Queues)
        {
            _queues[queue.Name] = NewStoredQueue(queue, now);
        }

        foreach (var task in loaded.Tasks)
        {
            if (_queues.TryGetValue(task.QueueName, out var queue))
            {
                queue.Tasks[task.Name] = task;
                queue.Ready.Add((task.Task.ScheduleTime.ToDateTimeOffset(), task.Sequence, task.Name));
                _sequence = Math.Max(_sequence, task.Sequence);
            }
        }

        Copy(loaded.TaskTombstones, _taskTombstones);
        Copy(loaded.QueueTombstones, _queueTombstones);
        Copy(loaded.Policies, _policies);
        Copy(loaded.CmekConfigs, _cmek);
    }

    /// <summary>Completes when anything changes; the dispatcher and idle waiters wait on it.</summary>
    public System.Threading.Tasks.Task Changed
    {
        get
        {
            lock (_gate)
            {
                return _changed.Task;
            }
        }
    }

    // ---------------- queues ----------------

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
        lock (_gate)
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
            _store.SaveQueue(queue);
            _queues[queue.Name] = NewStoredQueue(queue, now);
            Signal();
            return queue.Clone();
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
        var pageSize = PageSize(request.PageSize, MaxQueuePageSize);
        var after = DecodePageToken(request.PageToken);
        var stateFilter = ParseQueueFilter(request.Filter);
        lock (_gate)
        {
            var matches = _queues.Values
                .Where(q => q.Queue.Name.StartsWith(parent, StringComparison.Ordinal) && string.CompareOrdinal(q.Queue.Name, after) > 0)
                .Where(q => stateFilter is null || q.Queue.State == stateFilter)
                .Take(pageSize + 1)
                .ToList();
            var page = matches.Take(pageSize).Select(q => Present(q, request.ReadMask)).ToList();
            return (page, matches.Count > pageSize ? EncodePageToken(page[^1].Name) : string.Empty);
        }
    }

    public Queue UpdateQueue(UpdateQueueRequest request)
    {
        if (request.Queue is null)
        {
            throw Errors.InvalidArgument("queue", "queue is required.");
        }

        var name = QueueRules.ParseQueueName(request.Queue.Name, "queue.name").ToString();
        foreach (var path in request.UpdateMask?.Paths ?? [])
        {
            if (!QueueRules.UpdatablePaths.Contains(path))
            {
                throw Errors.InvalidArgument("update_mask", $"'{path}' can't be updated; updatable fields: {string.Join(", ", QueueRules.UpdatablePaths.Order(StringComparer.Ordinal))}.");
            }
        }

        QueueRules.Validate(request.Queue, "queue.");
        lock (_gate)
        {
            var now = _time.GetUtcNow();
            if (!_queues.TryGetValue(name, out var stored))
            {
                // UpdateQueue creates a missing queue, like the service.
                return CreateQueue(new CreateQueueRequest { Parent = QueueName(name).Location.ToString(), Queue = request.Queue });
            }

            var updated = stored.Queue.Clone();
            if (request.UpdateMask is { Paths.Count: > 0 } mask)
            {
                mask.Merge(request.Queue, updated, new FieldMask.MergeOptions { ReplaceMessageFields = true, ReplaceRepeatedFields = true, ReplacePrimitiveFields = true });
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
            stored.Queue = updated;
            stored.Bucket.Reconfigure(updated.RateLimits!.MaxDispatchesPerSecond, updated.RateLimits.MaxBurstSize, now);
            Signal();
            return updated.Clone();
        }
    }

    public void DeleteQueue(DeleteQueueRequest request)
    {
        var name = QueueRules.ParseQueueName(request.Name, "name").ToString();
        lock (_gate)
        {
            RequireQueue(name);
            var reservedUntil = _time.GetUtcNow() + _options.QueueNameReuseDelay;
            _store.DeleteQueue(name, reservedUntil);
            _queues.Remove(name);
            _queueTombstones[name] = reservedUntil;
            _policies.Remove(name);
            Signal();
        }
    }

    public Queue PurgeQueue(PurgeQueueRequest request)
    {
        var name = QueueRules.ParseQueueName(request.Name, "name").ToString();
        lock (_gate)
        {
            var queue = RequireQueue(name);
            var now = _time.GetUtcNow();
            var purged = queue.Tasks.Values.Where(t => t.Task.CreateTime.ToDateTimeOffset() <= now).ToList();
            RemoveTasks(queue, purged, now);
            var updated = queue.Queue.Clone();
            updated.PurgeTime = Timestamp.FromDateTimeOffset(now);
            _store.SaveQueue(updated);
            queue.Queue = updated;
            Signal();
            return Present(queue, null);
        }
    }

    public Queue SetQueueState(string requestName, Queue.Types.State state)
    {
        var name = QueueRules.ParseQueueName(requestName, "name").ToString();
        lock (_gate)
        {
            var queue = RequireQueue(name);
            var updated = queue.Queue.Clone();
            updated.State = state;
            _store.SaveQueue(updated);
            queue.Queue = updated;
            Signal();
            return Present(queue, null);
        }
    }

    // ---------------- IAM ----------------

    public Policy GetIamPolicy(GetIamPolicyRequest request)
    {
        var name = QueueRules.ParseQueueName(request.Resource, "resource").ToString();
        lock (_gate)
        {
            RequireQueue(name);
            return CurrentPolicy(name);
        }
    }

    public Policy SetIamPolicy(SetIamPolicyRequest request)
    {
        var name = QueueRules.ParseQueueName(request.Resource, "resource").ToString();
        if (request.Policy is null)
        {
            throw Errors.InvalidArgument("policy", "policy is required.");
        }

        foreach (var binding in request.Policy.Bindings)
        {
            if (!binding.Role.StartsWith("roles/", StringComparison.Ordinal))
            {
                throw Errors.InvalidArgument("policy.bindings.role", $"Role '{binding.Role}' must start with 'roles/'.");
            }

            foreach (var member in binding.Members)
            {
                if (!IsValidMember(member))
                {
                    throw Errors.InvalidArgument("policy.bindings.members", $"Member '{member}' is not of a known type (user:, serviceAccount:, group:, domain:, principal:, principalSet:, allUsers, allAuthenticatedUsers).");
                }
            }
        }

        lock (_gate)
        {
            RequireQueue(name);
            var current = CurrentPolicy(name);
            if (!request.Policy.Etag.IsEmpty && request.Policy.Etag != current.Etag)
            {
                throw Errors.Aborted("There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.");
            }

            var policy = request.Policy.Clone();
            if (request.UpdateMask is { Paths.Count: > 0 } mask && !mask.Paths.Contains("audit_configs"))
            {
                policy.AuditConfigs.Clear();
                policy.AuditConfigs.Add(current.AuditConfigs);
            }

            policy.Version = policy.Bindings.Any(b => b.Condition is not null) ? 3 : Math.Max(1, policy.Version);
            policy.Etag = ComputeEtag(policy);
            _store.SavePolicy(name, policy);
            _policies[name] = policy;
            return policy.Clone();
        }
    }

    public TestIamPermissionsResponse TestIamPermissions(TestIamPermissionsRequest request)
    {
        foreach (var permission in request.Permissions)
        {
            if (permission.Contains('*', StringComparison.Ordinal))
            {
                throw Errors.InvalidArgument("permissions", $"Permissions with wildcards ('{permission}') are not allowed.");
            }
        }

        var response = new TestIamPermissionsResponse();
        if (!Bridge.CloudTasks.QueueName.TryParse(request.Resource, out var name))
        {
            return response;
        }

        lock (_gate)
        {
            // A missing resource answers an empty set, not NOT_FOUND. The emulator has no callers' identities:
            // every caller holds every Cloud Tasks permission.
            if (_queues.ContainsKey(name.ToString()))
            {
                response.Permissions.Add(request.Permissions.Where(KnownPermissions.Contains).Distinct());
            }
        }

        return response;
    }

    // ---------------- tasks ----------------

    public Task CreateTask(CreateTaskRequest request)
    {
        var parent = QueueRules.ParseQueueName(request.Parent, "parent").ToString();
        if (request.Task is null)
        {
            throw Errors.InvalidArgument("task", "task is required.");
        }

        if (!string.IsNullOrEmpty(request.Task.Name))
        {
            var taskName = QueueRules.ParseTaskName(request.Task.Name, "task.name");
            if (taskName.Queue.ToString() != parent)
            {
                throw Errors.InvalidArgument("task.name", $"task.name '{request.Task.Name}' is not in parent '{request.Parent}'.");
            }
        }

        lock (_gate)
        {
            var queue = RequireQueue(parent, "Queue does not exist. If you just created the queue, wait at least a minute for the queue to initialize.");
            var now = _time.GetUtcNow();
            SweepIfDue(now);
            var task = TaskRules.PrepareNewTask(request.Task, queue.Queue, now);
            if (string.IsNullOrEmpty(task.Name))
            {
                task.Name = $"{parent}/tasks/{NewTaskId()}";
            }
            else if (queue.Tasks.ContainsKey(task.Name) || (_taskTombstones.TryGetValue(task.Name, out var reserved) && reserved > now))
            {
                throw Errors.AlreadyExists("Requested entity already exists");
            }

            var stored = new StoredTask { Task = task, QueueName = parent, Sequence = ++_sequence };
            _store.SaveTask(stored);
            queue.Tasks[task.Name] = stored;
            if (queue.Queue.Type != Queue.Types.Type.Pull)
            {
                queue.Ready.Add((task.ScheduleTime.ToDateTimeOffset(), stored.Sequence, task.Name));
            }

            Signal();
            return TaskRules.View(task, request.ResponseView);
        }
    }

    public Task GetTask(GetTaskRequest request)
    {
        var name = QueueRules.ParseTaskName(request.Name, "name");
        lock (_gate)
        {
            return TaskRules.View(RequireTask(name).Task, request.ResponseView);
        }
    }

    public (IReadOnlyList<Task> Tasks, string NextPageToken) ListTasks(ListTasksRequest request)
    {
        var parent = QueueRules.ParseQueueName(request.Parent, "parent").ToString();
        var pageSize = PageSize(request.PageSize, MaxTaskPageSize);
        var after = DecodePageToken(request.PageToken);
        lock (_gate)
        {
            var queue = RequireQueue(parent);
            var matches = queue.Tasks.Keys.Where(n => string.CompareOrdinal(n, after) > 0).Order(StringComparer.Ordinal).Take(pageSize + 1).ToList();
            var page = matches.Take(pageSize).Select(n => TaskRules.View(queue.Tasks[n].Task, request.ResponseView)).ToList();
            return (page, matches.Count > pageSize ? EncodePageToken(page[^1].Name) : string.Empty);
        }
    }

    public void DeleteTask(DeleteTaskRequest request)
    {
        var name = QueueRules.ParseTaskName(request.Name, "name");
        lock (_gate)
        {
            var task = RequireTask(name);
            RemoveTasks(_queues[task.QueueName], [task], _time.GetUtcNow());
            Signal();
        }
    }

    /// <summary>RunTask: hands the task out at once, ignoring pause and rate limits.</summary>
    public (Task Task, DispatchWork Work) RunTask(RunTaskRequest request)
    {
        var name = QueueRules.ParseTaskName(request.Name, "name");
        lock (_gate)
        {
            var task = RequireTask(name);
            var queue = _queues[task.QueueName];
            if (task.InFlight)
            {
                throw Errors.FailedPrecondition("The task is being dispatched right now.");
            }

            if (queue.Queue.Type == Queue.Types.Type.Pull)
            {
                throw Errors.FailedPrecondition("Tasks in a pull queue can't be run.");
            }

            var work = StartAttempt(queue, task, _time.GetUtcNow());
            return (TaskRules.View(task.Task, request.ResponseView), work);
        }
    }

    // ---------------- CMEK ----------------

    public CmekConfig GetCmekConfig(GetCmekConfigRequest request)
    {
        var location = ParseCmekName(request.Name, "name");
        lock (_gate)
        {
            return _cmek.TryGetValue(location + "/cmekConfig", out var config) ? config.Clone() : new CmekConfig { Name = location + "/cmekConfig" };
        }
    }

    public CmekConfig UpdateCmekConfig(UpdateCmekConfigRequest request)
    {
        if (request.CmekConfig is null)
        {
            throw Errors.InvalidArgument("cmek_config", "cmek_config is required.");
        }

        var location = ParseCmekName(request.CmekConfig.Name, "cmek_config.name");
        var key = request.CmekConfig.KmsKey;
        if (key.Length > 0 && !(key.StartsWith(location + "/keyRings/", StringComparison.Ordinal) && key.Contains("/cryptoKeys/", StringComparison.Ordinal)))
        {
            throw Errors.InvalidArgument("cmek_config.kms_key", $"kms_key must be '{location}/keyRings/<ring>/cryptoKeys/<key>' (same location) or empty.");
        }

        var config = new CmekConfig { Name = location + "/cmekConfig", KmsKey = key };
        lock (_gate)
        {
            _store.SaveCmekConfig(config);
            _cmek[config.Name] = config;
            return config.Clone();
        }
    }

    // ---------------- dispatch ----------------

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
                if (queue.Queue.State != Queue.Types.State.Running)
                {
                    continue;
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

            queue.InFlight = Math.Max(0, queue.InFlight - 1);
            if (!queue.Tasks.TryGetValue(work.Task.Name, out var task) || !task.InFlight)
            {
                Signal();
                return; // deleted or purged while in flight
            }

            task.InFlight = false;
            var attempt = task.Task.LastAttempt;
            if (result.StatusCode is { } status)
            {
                attempt.ResponseTime = Timestamp.FromDateTimeOffset(result.ResponseTime);
                attempt.ResponseStatus = StatusFor(status);
                task.Task.ResponseCount++;
                if (status is not (500 or 503))
                {
                    task.ExecutionCount++;
                }
            }
            else
            {
                attempt.ResponseStatus = new Google.Rpc.Status { Code = (int)Code.DeadlineExceeded, Message = "No response within the dispatch deadline." };
            }

            if (task.Task.DispatchCount == 1)
            {
                task.Task.FirstAttempt = attempt.Clone();
            }

            task.PreviousResponse = result.StatusCode ?? 504;
            var now = _time.GetUtcNow();
            if (result.StatusCode is >= 200 and < 300)
            {
                RemoveTasks(queue, [task], now);
                Signal();
                return;
            }

            var retry = task.Task.RetryConfig ?? queue.Queue.RetryConfig;
            var sinceFirst = now - (task.FirstAttemptAt ?? now);
            if (Backoff.IsExhausted(retry, task.Task.DispatchCount, sinceFirst))
            {
                RemoveTasks(queue, [task], now);
                Signal();
                return;
            }

            var delay = Backoff.Delay(retry, task.Task.DispatchCount);
            if (result.StatusCode is 429 or 503)
            {
                // The service backs off harder on overload signals and honours Retry-After.
                var doubled = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, retry.MaxBackoff.ToTimeSpan().Ticks));
                delay = doubled > delay ? doubled : delay;
                if (result.RetryAfter is { } retryAfter && retryAfter > delay)
                {
                    delay = retryAfter;
                }
            }

            var due = now + delay;
            task.Task.ScheduleTime = Timestamp.FromDateTimeOffset(due);
            _store.SaveTask(task);
            queue.Ready.Add((due, task.Sequence, task.Name));
            Signal();
        }
    }

    /// <summary>True when the queue (or every queue) has no tasks and nothing in flight.</summary>
    public bool IsIdle(string? queueName)
    {
        lock (_gate)
        {
            return queueName is null
                ? _queues.Values.All(q => q.Tasks.Count == 0 && q.InFlight == 0)
                : !_queues.TryGetValue(queueName, out var q) || (q.Tasks.Count == 0 && q.InFlight == 0);
        }
    }

    /// <summary>Forgets everything (tests): queues, tasks, tombstones, policies.</summary>
    public void Reset()
    {
        lock (_gate)
        {
            _store.Clear();
            _queues.Clear();
            _taskTombstones.Clear();
            _queueTombstones.Clear();
            _policies.Clear();
            _cmek.Clear();
            Signal();
        }
    }

    public void Dispose() => _store.Dispose();

    // ---------------- helpers ----------------

    private DispatchWork StartAttempt(StoredQueue queue, StoredTask task, DateTimeOffset now)
    {
        var eta = task.Task.ScheduleTime.ToDateTimeOffset();
        queue.Ready.Remove((eta, task.Sequence, task.Name));
        var work = new DispatchWork(task.Task.Clone(), queue.Queue.Clone(), task.Task.DispatchCount, task.ExecutionCount, task.PreviousResponse, eta, now);
        task.InFlight = true;
        queue.InFlight++;
        task.FirstAttemptAt ??= now;
        task.Task.DispatchCount++;
        task.Task.LastAttempt = new Attempt { ScheduleTime = task.Task.ScheduleTime, DispatchTime = Timestamp.FromDateTimeOffset(now) };
        if (task.Task.DispatchCount == 1)
        {
            task.Task.FirstAttempt = task.Task.LastAttempt.Clone();
        }

        queue.RecentDispatches.Enqueue(now);
        while (queue.RecentDispatches.Count > 0 && queue.RecentDispatches.Peek() < now - TimeSpan.FromMinutes(1))
        {
            queue.RecentDispatches.Dequeue();
        }

        return work;
    }

    private void RemoveTasks(StoredQueue queue, IReadOnlyCollection<StoredTask> tasks, DateTimeOffset now)
    {
        if (tasks.Count == 0)
        {
            return;
        }

        var reservedUntil = now + queue.Queue.TombstoneTtl.ToTimeSpan();
        _store.DeleteTasks(tasks.Select(t => t.Name).ToList(), reservedUntil);
        foreach (var task in tasks)
        {
            queue.Tasks.Remove(task.Name);
            queue.Ready.Remove((task.Task.ScheduleTime.ToDateTimeOffset(), task.Sequence, task.Name));
            _taskTombstones[task.Name] = reservedUntil;
        }
    }

    /// <summary>Drops expired tombstones and tasks older than their queue's task_ttl, about once a minute.</summary>
    private void SweepIfDue(DateTimeOffset now)
    {
        if (now < _nextSweep)
        {
            return;
        }

        _nextSweep = now + TimeSpan.FromMinutes(1);
        foreach (var expired in _taskTombstones.Where(t => t.Value <= now).Select(t => t.Key).ToList())
        {
            _taskTombstones.Remove(expired);
        }

        foreach (var expired in _queueTombstones.Where(t => t.Value <= now).Select(t => t.Key).ToList())
        {
            _queueTombstones.Remove(expired);
        }

        _store.DeleteExpiredTombstones(now);
        foreach (var queue in _queues.Values)
        {
            var ttl = queue.Queue.TaskTtl.ToTimeSpan();
            var expired = queue.Tasks.Values.Where(t => !t.InFlight && t.Task.CreateTime.ToDateTimeOffset() + ttl <= now).ToList();
            RemoveTasks(queue, expired, now);
        }
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

            if (readMask.Paths.Contains("stats"))
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

    private StoredQueue RequireQueue(string name, string? message = null) =>
        _queues.TryGetValue(name, out var queue) ? queue : throw Errors.NotFound(message ?? $"Queue {name} does not exist.");

    private StoredTask RequireTask(Bridge.CloudTasks.TaskName name)
    {
        var queue = RequireQueue(name.Queue.ToString());
        return queue.Tasks.TryGetValue(name.ToString(), out var task) ? task : throw Errors.NotFound($"Task {name} does not exist (it may have run, been deleted, or never existed).");
    }

    private Policy CurrentPolicy(string resource)
    {
        if (_policies.TryGetValue(resource, out var policy))
        {
            return policy.Clone();
        }

        var empty = new Policy { Version = 1 };
        empty.Etag = ComputeEtag(empty);
        return empty;
    }

    private static ByteString ComputeEtag(Policy policy)
    {
        var copy = policy.Clone();
        copy.Etag = ByteString.Empty;
        return ByteString.CopyFrom(SHA256.HashData(copy.ToByteArray()).AsSpan(0, 8));
    }

    private static bool IsValidMember(string member) =>
        member is "allUsers" or "allAuthenticatedUsers"
        || new[] { "user:", "serviceAccount:", "group:", "domain:", "principal:", "principalSet:", "deleted:" }.Any(p => member.StartsWith(p, StringComparison.Ordinal) && member.Length > p.Length);

    private static Google.Rpc.Status StatusFor(int httpStatus)
    {
        var code = httpStatus switch
        {
            >= 200 and < 300 => Code.Ok,
            400 => Code.InvalidArgument,
            401 => Code.Unauthenticated,
            403 => Code.PermissionDenied,
            404 => Code.NotFound,
            409 => Code.Aborted,
            429 => Code.ResourceExhausted,
            499 => Code.Cancelled,
            501 => Code.Unimplemented,
            503 => Code.Unavailable,
            504 => Code.DeadlineExceeded,
            >= 400 and < 500 => Code.FailedPrecondition,
            _ => Code.Internal,
        };
        return new Google.Rpc.Status { Code = (int)code, Message = $"HTTP status {httpStatus}" };
    }

    private static Bridge.CloudTasks.QueueName QueueName(string name) => Bridge.CloudTasks.QueueName.Parse(name);

    private static string ParseCmekName(string name, string field)
    {
        const string suffix = "/cmekConfig";
        if (!name.EndsWith(suffix, StringComparison.Ordinal))
        {
            throw Errors.InvalidArgument(field, $"'{name}' must be 'projects/<project>/locations/<location>/cmekConfig'.");
        }

        return QueueRules.ParseLocationName(name[..^suffix.Length], field).ToString();
    }

    private static Queue.Types.State? ParseQueueFilter(string filter)
    {
        if (string.IsNullOrWhiteSpace(filter))
        {
            return null;
        }

        var parts = filter.Split([':', '='], 2, StringSplitOptions.TrimEntries);
        if (parts.Length == 2 && parts[0] == "state" && System.Enum.TryParse<Queue.Types.State>(parts[1], ignoreCase: true, out var state) && state != Queue.Types.State.Unspecified)
        {
            return state;
        }

        throw Errors.InvalidArgument("filter", $"Unsupported filter '{filter}'; supported: 'state: RUNNING|PAUSED|DISABLED'.");
    }

    private static int PageSize(int requested, int max) => requested switch
    {
        < 0 => throw Errors.InvalidArgument("page_size", $"page_size must not be negative; got {requested}."),
        0 => DefaultPageSize,
        _ => Math.Min(requested, max),
    };

    private static string EncodePageToken(string lastName) => Convert.ToBase64String(Encoding.UTF8.GetBytes(lastName));

    private static string DecodePageToken(string token)
    {
        if (string.IsNullOrEmpty(token))
        {
            return string.Empty;
        }

        try
        {
            return Encoding.UTF8.GetString(Convert.FromBase64String(token));
        }
        catch (FormatException)
        {
            throw Errors.InvalidArgument("page_token", "page_token is not a token this server issued.");
        }
    }

    /// <summary>A 19-digit id, like the ones the service generates.</summary>
    private static string NewTaskId() =>
        ((BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8)) % 9_000_000_000_000_000_000UL) + 1_000_000_000_000_000_000UL).ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static DateTimeOffset? Earliest(DateTimeOffset? a, DateTimeOffset b) => a is null || b < a ? b : a;

    private StoredQueue NewStoredQueue(Queue queue, DateTimeOffset now) =>
        new(queue, new TokenBucket(queue.RateLimits.MaxDispatchesPerSecond, queue.RateLimits.MaxBurstSize, now));

    private void Signal()
    {
        var previous = _changed;
        _changed = NewSignal();
        previous.TrySetResult();
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private static void Copy<T>(IReadOnlyDictionary<string, T> from, Dictionary<string, T> to)
    {
        foreach (var (key, value) in from)
        {
            to[key] = value;
        }
    }
}
