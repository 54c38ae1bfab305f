using Bridge.CloudTasks.V2Beta3;
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

        StoredTask stored;
        Task view;
        System.Threading.Tasks.Task durable;
        lock (_gate)
        {
            var queue = RequireQueue(parent, "Queue does not exist. If you just created the queue, wait at least a minute for the queue to initialize.");
            var now = _time.GetUtcNow();
            SweepIfDue(now);
            var task = TaskRules.PrepareNewTask(request.Task, queue.Queue, now);
            if (string.IsNullOrEmpty(task.Name))
            {
                task.Name = $"{parent}/tasks/{TaskRules.NewTaskId()}";
            }
            else if (queue.Tasks.ContainsKey(task.Name) || queue.Purging.Exists(p => p.ContainsKey(task.Name)) || (_taskTombstones.TryGetValue(task.Name, out var reserved) && reserved > now))
            {
                throw Errors.AlreadyExists("Requested entity already exists");
            }

            stored = new StoredTask { Task = task, QueueName = queue.Queue.Name, Sequence = ++_sequence };
            _store.SaveTask(stored);
            durable = _store.WhenDurable();
            queue.Tasks[task.Name] = stored;
            queue.Order.Append(stored);
            queue.OldestCreateTime = Earliest(queue.OldestCreateTime, now);
            if (queue.Queue.Type != Queue.Types.Type.Pull)
            {
                queue.Ready.Add((task.ScheduleTime.ToDateTimeOffset(), stored.Sequence, task.Name));
            }

            view = TaskRules.View(task, request.ResponseView);
            _dirty.Add(queue);
            Signal();
        }

        try
        {
            await durable.ConfigureAwait(false);
        }
        catch (Exception)
        {
            ForgetUncommitted(stored);
            throw;
        }

        return view;
    }

    /// <summary>Takes out a task whose creation never became durable (unless an attempt of it already started).</summary>
    private void ForgetUncommitted(StoredTask stored)
    {
        lock (_gate)
        {
            if (_queues.TryGetValue(stored.QueueName, out var queue) && queue.Tasks.TryGetValue(stored.Name, out var current) && ReferenceEquals(current, stored) && !stored.InFlight)
            {
                queue.Tasks.Remove(stored.Name);
                queue.Order.Remove(stored);
                queue.Ready.Remove((stored.ScheduleTime, stored.Sequence, stored.Name));
                Signal();
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
            RemoveTasks(_queues[task.QueueName], [task], _time.GetUtcNow());
            Signal();
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
