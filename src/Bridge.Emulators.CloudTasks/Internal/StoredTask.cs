using Bridge.CloudTasks.V2Beta3;
using Google.Protobuf;
using Task = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>
/// A task with what the emulator needs beyond the API's fields. Kept compact: the task in its serialized form
/// (about its wire size; no object graph, no empty header maps) plus the few fields the indexes need.
/// </summary>
internal sealed class StoredTask
{
    private byte[] _data = [];

    /// <summary>
    /// The started task of the attempt under way, when it is newer than <see cref="_data"/>: an attempt's start changes
    /// the task in memory only, and most attempts succeed and take the task out, so the started task is serialized
    /// only when something needs the serialized form (a write of the row). It is the attempt's snapshot too
    /// (<see cref="DispatchWork.Task"/>, read without the lock): never changed, only copied.
    /// </summary>
    private Task? _started;
    private long _scheduleTicks;
    private long _createTicks;
    private long _firstAttemptTicks; // 0: no attempt yet

    /// <summary>
    /// The task as the API shows it: a fresh copy parsed from the serialized form on each read, so changing it
    /// changes nothing here; assign it to change the stored task. The serialized form leaves the name out (it is
    /// kept once, in <see cref="Name"/>, which the indexes share).
    /// </summary>
    public required Task Task
    {
        get
        {
            if (_started is { } started)
            {
                return started.Clone(); // the name included
            }

            var task = Task.Parser.ParseFrom(_data.AsSpan()); // from a span: no CodedInputStream (and its buffer state) per read
            task.Name = Name;
            return task;
        }

        set
        {
            _started = null;
            var name = value.Name;
            value.Name = string.Empty; // serialized without it, and given back at once: the task is the caller's own copy
            try
            {
                var data = new byte[value.CalculateSize()];
                value.WriteTo(data.AsSpan()); // into a span: no CodedOutputStream per write, as ToByteArray makes
                _data = data;
            }
            finally
            {
                value.Name = name;
            }

            if (!string.Equals(Name, name, StringComparison.Ordinal))
            {
                Name = name; // else keep the string the indexes already hold
            }

            _scheduleTicks = value.ScheduleTime?.ToDateTimeOffset().UtcTicks ?? 0;
            _createTicks = value.CreateTime?.ToDateTimeOffset().UtcTicks ?? 0;
        }
    }

    /// <summary>
    /// Records an attempt's start (the task parsed from this one, with its dispatch count and attempt changed), in memory
    /// only: kept as it is, not serialized (see <see cref="_started"/>). The schedule and create times are unchanged by
    /// a start. <paramref name="started"/> becomes the attempt's snapshot: nobody changes it after this.
    /// </summary>
    public void SetStarted(Task started)
    {
        System.Diagnostics.Debug.Assert(string.Equals(started.Name, Name, StringComparison.Ordinal), "a start is of this task");
        _started = started;
    }

    /// <summary>Takes the task of <paramref name="other"/> (same name), sharing its serialized form: no second serialization.</summary>
    public void TakeTaskFrom(StoredTask other)
    {
        _started = null;
        _data = other.Serialized;
        _scheduleTicks = other._scheduleTicks;
        _createTicks = other._createTicks;
    }

    /// <summary>The serialized task without its name; replaced, never changed in place, so a reference to it is a snapshot.</summary>
    public byte[] Serialized
    {
        get
        {
            if (_started is { } started)
            {
                // Serialized now (the rare case: an attempt that lasts, a write of a task in flight), from a copy: the
                // started task is the attempt's snapshot, which the dispatcher reads without the lock.
                Task = started.Clone();
            }

            return _data;
        }
    }

    public string Name { get; private set; } = string.Empty;

    public DateTimeOffset ScheduleTime => new(_scheduleTicks, TimeSpan.Zero);

    public DateTimeOffset CreateTime => new(_createTicks, TimeSpan.Zero);

    /// <summary>The queue's name (the queue's own string, shared by its tasks).</summary>
    public required string QueueName { get; init; }

    /// <summary>Creation order, to break ties between equal schedule times (given under the state's lock, when the task goes in).</summary>
    public long Sequence { get; set; }

    /// <summary>Not persisted: the id of the latest attempt, so only that attempt can settle the task.</summary>
    public long AttemptId { get; set; }

    /// <summary>Attempts that count as executions (responses other than 500 and 503).</summary>
    public int ExecutionCount { get; set; }

    /// <summary>HTTP status of the previous attempt (504 after a timeout); 0 before the first.</summary>
    public int PreviousResponse { get; set; }

    public DateTimeOffset? FirstAttemptAt
    {
        get => _firstAttemptTicks == 0 ? null : new DateTimeOffset(_firstAttemptTicks, TimeSpan.Zero);
        set => _firstAttemptTicks = value?.UtcTicks ?? 0;
    }

    /// <summary>Not persisted: a dispatch is under way.</summary>
    public bool InFlight { get; set; }
}

/// <summary>A queue with its tasks and dispatch state.</summary>
internal sealed class StoredQueue
{
    public StoredQueue(Queue queue, TokenBucket bucket)
    {
        Queue = queue;
        Bucket = bucket;
    }

    public Queue Queue { get; set; }

    public TokenBucket Bucket { get; }

    public Dictionary<string, StoredTask> Tasks { get; set; } = new(StringComparer.Ordinal);

    /// <summary>The same tasks in creation order, for ListTasks.</summary>
    public CreationOrder Order { get; set; } = new();

    /// <summary>No task of the queue was created before this (it may be earlier than the oldest): the sweep skips the queue until then plus task_ttl.</summary>
    public DateTimeOffset? OldestCreateTime { get; set; }

    /// <summary>Tasks waiting for dispatch, by due time then creation order.</summary>
    public SortedSet<(DateTimeOffset Due, long Sequence, string Name)> Ready { get; set; } = new();

    /// <summary>Attempts under way, by id: one started for an earlier queue of the same name (before a reset) is not among them.</summary>
    public HashSet<long> InFlightAttempts { get; } = [];

    public int InFlight => InFlightAttempts.Count;

    /// <summary>When the dispatcher's wake-up index will next look at this queue (its earliest live entry there).</summary>
    public DateTimeOffset? ScheduledWake { get; set; }

    /// <summary>Times of recent dispatches, for QueueStats.executed_last_minute_count.</summary>
    public Queue<DateTimeOffset> RecentDispatches { get; } = new();
}
