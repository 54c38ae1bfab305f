using System.Globalization;
using Bridge.CloudTasks.V2Beta3;
using Bridge.Emulators.CloudTasks.Internal;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Time.Testing;
using TaskMessage = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.Emulators.CloudTasks.Tests;

/// <summary>
/// What an attempt's start records (the task as GetTask shows it, and the snapshot the dispatcher sends from), and the
/// stored form's round trip: the in-memory copy of the task at attempt start is made with fewer allocations, and must
/// not change what is recorded.
/// </summary>
public sealed class AttemptSnapshotTests : IDisposable
{
    private const string Location = "projects/p/locations/l";
    private const string QueueName = Location + "/queues/q";
    private const string TaskName = QueueName + "/tasks/t";
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 11, 29, 12, 0, 0, TimeSpan.Zero).AddTicks(1_234_567));
    private readonly EmulatorState _state;

    public AttemptSnapshotTests()
    {
        _state = new EmulatorState(new InMemoryStore(), new EmulatorOptions(), _clock);
        _state.CreateQueue(new CreateQueueRequest
        {
            Parent = Location,
            Queue = new Queue { Name = QueueName, RetryConfig = new RetryConfig { MaxAttempts = 5, MinBackoff = Duration.FromTimeSpan(TimeSpan.FromSeconds(10)), MaxBackoff = Duration.FromTimeSpan(TimeSpan.FromSeconds(10)) } },
        });
    }

    public void Dispose() => _state.Dispose();

    private static TaskMessage NewTask() => new()
    {
        Name = TaskName,
        HttpRequest = new HttpRequest
        {
            Url = "http://127.0.0.1:9/x?y=1",
            HttpMethod = Bridge.CloudTasks.V2Beta3.HttpMethod.Put,
            Body = ByteString.CopyFromUtf8("body"),
            Headers = { ["X-A"] = "1", ["Content-Type"] = "text/plain" },
            OidcToken = new OidcToken { ServiceAccountEmail = "a@p.iam.gserviceaccount.com", Audience = "aud" },
        },
        DispatchDeadline = Duration.FromTimeSpan(TimeSpan.FromSeconds(30)),
    };

    /// <summary>The task as GetTask shows it in full, but for the view field that the answer sets (the stored task has none).</summary>
    private TaskMessage Get()
    {
        var task = _state.GetTask(new GetTaskRequest { Name = TaskName, ResponseView = TaskMessage.Types.View.Full });
        task.View = TaskMessage.Types.View.Unspecified;
        return task;
    }

    [Fact]
    public void The_first_attempt_is_recorded_as_the_last_attempt_and_as_first_attempt_with_its_dispatch_time_only_and_sent_from_the_same_snapshot()
    {
        var created = _state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = NewTask(), ResponseView = TaskMessage.Types.View.Full });

        var work = Assert.Single(_state.TakeDue(out _));
        var stored = Get();

        var expectedAttempt = new Attempt { ScheduleTime = created.ScheduleTime, DispatchTime = Timestamp.FromDateTimeOffset(_clock.GetUtcNow()) };
        Assert.Equal(1, stored.DispatchCount);
        Assert.Equal(0, stored.ResponseCount);
        Assert.Equal(expectedAttempt, stored.LastAttempt);
        Assert.Equal(new Attempt { DispatchTime = expectedAttempt.DispatchTime }, stored.FirstAttempt); // the API: only dispatch_time is set
        Assert.Equal(stored, work.Task); // the work is the task as recorded at its start
        Assert.Equal(created.HttpRequest, work.Task.HttpRequest);
        Assert.Equal(0, work.RetryCount);
    }

    [Fact]
    public void A_second_attempt_keeps_the_first_attempt_s_dispatch_time_only_and_records_a_new_last_attempt()
    {
        var created = _state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = NewTask(), ResponseView = TaskMessage.Types.View.Full });
        var firstDispatch = _clock.GetUtcNow();
        var first = Assert.Single(_state.TakeDue(out _));
        _clock.Advance(TimeSpan.FromMilliseconds(250));
        var firstResponse = _clock.GetUtcNow();
        _ = _state.CompleteAttempt(first, new DispatchResult(404, firstResponse, null));
        _clock.Advance(TimeSpan.FromSeconds(10));

        var second = Assert.Single(_state.TakeDue(out _));
        var stored = Get();

        Assert.Equal(2, stored.DispatchCount);
        Assert.Equal(1, stored.ResponseCount);
        Assert.Equal(new Attempt { DispatchTime = Timestamp.FromDateTimeOffset(firstDispatch) }, stored.FirstAttempt); // not its schedule time nor its response
        Assert.NotEqual(created.ScheduleTime, stored.ScheduleTime);
        Assert.Equal(new Attempt { ScheduleTime = stored.ScheduleTime, DispatchTime = Timestamp.FromDateTimeOffset(_clock.GetUtcNow()) }, stored.LastAttempt);
        Assert.NotEqual(stored.FirstAttempt, stored.LastAttempt);
        Assert.Equal(stored, second.Task);
        Assert.Equal(1, second.RetryCount);
        Assert.Equal(1, second.ExecutionCount);
        Assert.Equal(404, second.PreviousResponse);

        // The first attempt's snapshot was not changed by the second's start.
        Assert.Equal(1, first.Task.DispatchCount);
        Assert.Equal(first.Task.FirstAttempt.DispatchTime, first.Task.LastAttempt.DispatchTime);
        Assert.Null(first.Task.LastAttempt.ResponseTime);
    }

    [Fact]
    public void The_stored_form_is_the_tasks_own_serialization_without_its_name_and_reads_back_equal()
    {
        var task = NewTask();
        task.ScheduleTime = Timestamp.FromDateTimeOffset(_clock.GetUtcNow());
        task.DispatchCount = 3;
        task.FirstAttempt = new Attempt { DispatchTime = Timestamp.FromDateTimeOffset(_clock.GetUtcNow()) };
        task.LastAttempt = task.FirstAttempt; // one message in both fields, as an attempt start records it

        var stored = new StoredTask { Task = task, QueueName = QueueName };

        var withoutName = task.Clone();
        withoutName.Name = string.Empty;
        Assert.Equal(withoutName.ToByteArray(), stored.Serialized);
        Assert.Equal(TaskName, task.Name); // the caller's task keeps its name
        Assert.Equal(task, stored.Task);
        Assert.NotSame(stored.Task, stored.Task); // every read is a copy of its own
    }

    [Fact]
    public void A_start_kept_in_memory_reads_as_the_started_task_is_serialized_when_needed_and_the_attempt_s_snapshot_never_changes()
    {
        var stored = new StoredTask { Task = NewTask(), QueueName = QueueName };
        var started = stored.Task;
        started.DispatchCount++;
        started.LastAttempt = new Attempt { DispatchTime = Timestamp.FromDateTimeOffset(_clock.GetUtcNow()) };
        stored.SetStarted(started);
        var snapshot = started.ToByteArray();

        // Reads are copies of the started task: changing one changes neither the stored task nor the snapshot.
        var read = stored.Task;
        Assert.Equal(started, read);
        Assert.NotSame(started, read);
        read.DispatchCount = 99;
        read.HttpRequest.Headers["X-A"] = "changed";
        Assert.Equal(1, stored.Task.DispatchCount);

        // The serialized form (what a row write takes) is the started task's, without its name.
        var withoutName = started.Clone();
        withoutName.Name = string.Empty;
        Assert.Equal(withoutName.ToByteArray(), stored.Serialized);
        Assert.Equal(started, stored.Task);

        // Serializing it left the snapshot as it was, name included (the dispatcher reads it without the lock).
        Assert.Equal(TaskName, started.Name);
        Assert.Equal(snapshot, started.ToByteArray());
    }

    [Fact]
    public void An_attempt_s_start_is_what_a_write_of_the_task_in_flight_takes()
    {
        var store = new RecordingStore();
        using var state = new EmulatorState(store, new EmulatorOptions(), _clock);
        state.CreateQueue(new CreateQueueRequest { Parent = Location, Queue = new Queue { Name = QueueName } });
        state.CreateTask(new CreateTaskRequest { Parent = QueueName, Task = NewTask() });
        var work = Assert.Single(state.TakeDue(out _));
        store.Written.Clear();
        _ = state.RewriteTask(QueueName, TaskName); // as after a failed commit: the task as memory has it
        var written = store.Written;

        var expected = work.Task.Clone();
        expected.Name = string.Empty;
        Assert.Equal(expected.ToByteArray(), Assert.Single(written)); // dispatch count 1 and the attempt: the start, not the task before it
        Assert.Equal(1, work.Task.DispatchCount);
        Assert.Equal(TaskName, work.Task.Name);
    }

    [Theory]
    [InlineData(0L)]
    [InlineData(1L)] // 100 ns: below a microsecond, truncated
    [InlineData(10L)]
    [InlineData(9_999_990L)]
    [InlineData(10_000_000L)]
    [InlineData(17_648_208_001_234_567L)]
    [InlineData(2_534_023_007_999_999_999L)] // DateTimeOffset.MaxValue
    [InlineData(-10L)] // before the epoch: formatted as the service's formula gives it
    [InlineData(-12_345_678L)]
    public void The_eta_header_is_seconds_with_six_digits_of_microseconds_exactly_as_before(long ticksSinceEpoch)
    {
        var eta = DateTimeOffset.UnixEpoch.AddTicks(ticksSinceEpoch);
        var micros = ticksSinceEpoch / 10;

        Assert.Equal(string.Create(CultureInfo.InvariantCulture, $"{micros / 1_000_000}.{micros % 1_000_000:D6}"), Dispatcher.FormatEta(eta));
    }

    [Fact]
    public void The_eta_header_of_a_known_time()
    {
        Assert.Equal("1764417600.123456", Dispatcher.FormatEta(new DateTimeOffset(2025, 11, 29, 12, 0, 0, TimeSpan.Zero).AddTicks(1_234_567)));
        Assert.Equal("0.000000", Dispatcher.FormatEta(DateTimeOffset.UnixEpoch));
    }

    /// <summary>Keeps the serialized form of every task row written (in memory otherwise).</summary>
    private sealed class RecordingStore : DelegatingEmulatorStore
    {
        public List<byte[]> Written { get; } = [];

        public override void SaveTask(StoredTask task) => Written.Add(task.Serialized);
    }
}
