using Bridge.CloudTasks.V2Beta3;
using Grpc.Core;
using Task = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>Task RPCs.</summary>
internal sealed partial class EmulatorState
{
    /// <summary>
    /// CreateTask, waiting (blocking) until the task is durable; RPCs use <see cref="CreateTaskAsync"/>.
    /// </summary>
    public Task CreateTask(CreateTaskRequest request) => CreateTaskAsync(request).GetAwaiter().GetResult();

    /// <summary>
    /// Validates and prepares the task outside the lock, adds it under the lock, and completes once the store has
    /// it durably (many concurrent creates share one commit). If that commit fails, the task is taken back out.
    /// </summary>
    public async System.Threading.Tasks.Task<Task> CreateTaskAsync(CreateTaskRequest request)
    {
        var parent = QueueRules.ParseQueueName(request.Parent, "parent").ToString();
        var outcome = (await CreateTasksAsync(parent, [request]).ConfigureAwait(false))[0];
        return outcome.Task ?? throw outcome.Error!;
    }

    /// <summary>
    /// Creates many tasks of one queue (BatchCreateTasks) as one change: each is checked and prepared outside the
    /// lock, then all go in under one lock, with one dispatch signal and one storage write that joins a single group
    /// commit. A request that fails (a bad task, a name that exists or is reserved) fails at its index and the others
    /// are created. A queue that does not exist fails the whole call (NOT_FOUND); a commit that fails fails the whole
    /// call (UNAVAILABLE), and none of its tasks stays.
    /// </summary>
    public async System.Threading.Tasks.Task<IReadOnlyList<CreateOutcome>> CreateTasksAsync(string parent, IReadOnlyList<CreateTaskRequest> requests)
    {
        var outcomes = new CreateOutcome[requests.Count];
        Queue queueConfig;
        DateTimeOffset now;
        lock (_gate)
        {
            UndoFailedChanges();
            queueConfig = RequireQueue(parent, "Queue does not exist. If you just created the queue, wait at least a minute for the queue to initialize.").Queue;
            now = _time.GetUtcNow();
            SweepIfDue(now);
        }

        // Outside the lock: checks, defaults, cloning and serializing (a queue's config is replaced, never changed in place).
        var prepared = new StoredTask?[requests.Count];
        var views = new Task?[requests.Count];
        for (var i = 0; i < requests.Count; i++)
        {
            try
            {
                var task = Prepare(requests[i], parent, queueConfig, now);
                prepared[i] = new StoredTask { Task = task, QueueName = queueConfig.Name };
                views[i] = task;
            }
            catch (RpcException ex)
            {
                outcomes[i] = new CreateOutcome(null, ex);
            }
        }

        var added = new List<StoredTask>(requests.Count);
        System.Threading.Tasks.Task durable;
        lock (_gate)
        {
            UndoFailedChanges();
            var queue = RequireQueue(parent, "Queue does not exist. If you just created the queue, wait at least a minute for the queue to initialize.");
            for (var i = 0; i < prepared.Length; i++)
            {
                if (prepared[i] is not { } stored)
                {
                    continue;
                }

                if (queue.Tasks.ContainsKey(stored.Name) || IsReserved(stored.Name, now))
                {
                    outcomes[i] = new CreateOutcome(null, Errors.AlreadyExists("Requested entity already exists"));
                    continue;
                }

                stored.Sequence = ++_sequence;
                queue.Tasks[stored.Name] = stored;
                queue.Order.Append(stored);
                if (queue.Queue.Type != Queue.Types.Type.Pull)
                {
                    queue.Ready.Add((stored.ScheduleTime, stored.Sequence, stored.Name));
                }

                added.Add(stored);
            }

            if (added.Count == 0)
            {
                return outcomes;
            }

            queue.OldestCreateTime = Earliest(queue.OldestCreateTime, now);
            _store.SaveTasks(added);
            durable = Uncommitted(() => ForgetUncommitted(added));
            _dirty.Add(queue);
            Signal();
        }

        try
        {
            await durable.ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            AfterFailedCommit();
            throw CommitFailed(ex);
        }

        for (var i = 0; i < prepared.Length; i++)
        {
            if (outcomes[i].Error is null && prepared[i] is not null)
            {
                outcomes[i] = new CreateOutcome(TaskRules.View(views[i]!, requests[i].ResponseView), null);
            }
        }

        return outcomes;
    }

    /// <summary>One request's checks, and the task as it will be stored.</summary>
    private static Task Prepare(CreateTaskRequest request, string parent, Queue queueConfig, DateTimeOffset now)
    {
        if (request.Task is null)
        {
            throw Errors.InvalidArgument("task", "task is required.");
        }

        if (!string.IsNullOrEmpty(request.Task.Name))
        {
            var taskName = QueueRules.ParseTaskName(request.Task.Name, "task.name");
            if (taskName.Queue.ToString() != parent)
            {
                throw Errors.InvalidArgument("task.name", $"task.name '{request.Task.Name}' is not in parent '{parent}'.");
            }
        }

        var task = TaskRules.PrepareNewTask(request.Task, queueConfig, now);
        if (string.IsNullOrEmpty(task.Name))
        {
            task.Name = $"{parent}/tasks/{TaskRules.NewTaskId()}";
        }

        return task;
    }

    /// <summary>Under the lock: takes out tasks whose creation never became durable (unless an attempt of one already started).</summary>
    private void ForgetUncommitted(IReadOnlyList<StoredTask> tasks)
    {
        foreach (var stored in tasks)
        {
            if (_queues.TryGetValue(stored.QueueName, out var queue) && queue.Tasks.TryGetValue(stored.Name, out var current) && ReferenceEquals(current, stored) && !stored.InFlight)
            {
                queue.Tasks.Remove(stored.Name);
                queue.Order.Remove(stored);
                queue.Ready.Remove((stored.ScheduleTime, stored.Sequence, stored.Name));
            }
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
        var pageSize = Paging.PageSize(request.PageSize, Paging.MaxTaskPageSize);
        var after = Paging.DecodeSequenceToken(request.PageToken);
        lock (_gate)
        {
            // Creation order (the service promises no order): the token is the last sequence handed out, so a
            // page costs O(page), whatever the queue holds.
            var queue = RequireQueue(parent);
            var page = new List<Task>(Math.Min(pageSize, queue.Tasks.Count));
            long last = 0;
            foreach (var task in queue.Order.After(after))
            {
                if (page.Count == pageSize)
                {
                    return (page, Paging.EncodeSequenceToken(last));
                }

                page.Add(TaskRules.View(task.Task, request.ResponseView));
                last = task.Sequence;
            }

            return (page, string.Empty);
        }
    }

    public void DeleteTask(DeleteTaskRequest request)
    {
        var name = QueueRules.ParseTaskName(request.Name, "name");
        Durably(() =>
        {
            var task = RequireTask(name);
            var undo = RemoveTasks(_queues[task.QueueName], [task], _time.GetUtcNow());
            Signal();
            return new Undoable<bool>(true, undo);
        });
    }

    /// <summary>
    /// Deletes many tasks of one queue (BatchDeleteTasks) as one change: one lock, one store write, one commit. A
    /// name that fails (not a task of the queue, not found) fails at its index and the others are deleted; a queue
    /// that does not exist fails the whole call (NOT_FOUND); a commit that fails fails the whole call (UNAVAILABLE)
    /// and every task comes back, so the batch is all or nothing on disk.
    /// </summary>
    public IReadOnlyList<RpcException?> DeleteTasks(string parent, IReadOnlyList<string> names)
    {
        var errors = new RpcException?[names.Count];
        var parsed = new string?[names.Count];
        for (var i = 0; i < names.Count; i++)
        {
            try
            {
                var name = QueueRules.ParseTaskName(names[i], $"names[{i}]");
                parsed[i] = name.Queue.ToString() == parent
                    ? name.ToString()
                    : throw Errors.InvalidArgument($"names[{i}]", $"names[{i}] '{names[i]}' is not a task of the batch's parent '{parent}'.");
            }
            catch (RpcException ex)
            {
                errors[i] = ex;
            }
        }

        return Durably(() =>
        {
            var queue = RequireQueue(parent);
            var found = new Dictionary<string, StoredTask>(StringComparer.Ordinal);
            for (var i = 0; i < names.Count; i++)
            {
                if (parsed[i] is not { } name)
                {
                    continue;
                }

                if (queue.Tasks.TryGetValue(name, out var task) && found.TryAdd(name, task))
                {
                    continue;
                }

                errors[i] = Errors.NotFound($"Task {name} does not exist (it may have run, been deleted, or never existed).");
            }

            if (found.Count == 0)
            {
                return new Undoable<IReadOnlyList<RpcException?>>(errors, null, Wrote: false);
            }

            var undo = RemoveTasks(queue, found.Values, _time.GetUtcNow());
            Signal();
            return new Undoable<IReadOnlyList<RpcException?>>(errors, undo);
        });
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
}

/// <summary>One create's result in a batch: the task as created, or why that request failed.</summary>
internal readonly record struct CreateOutcome(Task? Task, RpcException? Error);
