using Bridge.CloudTasks;
using Bridge.CloudTasks.V2Beta3;
using Bridge.Testing;
using Google.Protobuf.WellKnownTypes;
using Google.Protobuf;
using Task = System.Threading.Tasks.Task;
using TaskMessage = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.Emulators.CloudTasks.Tests;

/// <summary>Task RPCs on a paused queue, so nothing dispatches while the test looks.</summary>
public sealed class TaskTests : IAsyncLifetime
{
    private EmulatorHost _host = null!;
    private QueueName _queue = null!;

    private CloudTasksClient Client => _host.Client;

    public async Task InitializeAsync()
    {
        _host = await EmulatorHost.StartAsync();
        _queue = await _host.CreateQueueAsync();
        await Client.PauseQueueAsync(_queue);
    }

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private static TaskMessage HttpTask(string? id = null, QueueName? queue = null) => new()
    {
        Name = id is null ? string.Empty : queue!.Task(id).ToString(),
        HttpRequest = new HttpRequest
        {
            Url = "https://worker.example.com/run",
            Headers = { ["Content-Type"] = "application/json" },
            Body = ByteString.CopyFromUtf8("{\"n\":1}"),
        },
    };

    [Fact]
    public async Task A_named_task_is_stored_with_defaults_and_returned_in_the_basic_view()
    {
        var created = await Client.CreateTaskAsync(_queue, HttpTask("order-1", _queue));

        Assert.Equal(_queue.Task("order-1").ToString(), created.Name);
        Assert.Equal(TaskMessage.Types.View.Basic, created.View);
        Assert.True(created.HttpRequest.Body.IsEmpty); // BASIC leaves bodies out
        Assert.Equal("application/json", created.HttpRequest.Headers["Content-Type"]);
        Assert.Equal(Bridge.CloudTasks.V2Beta3.HttpMethod.Post, created.HttpRequest.HttpMethod);
        Assert.Equal(TimeSpan.FromMinutes(10), created.DispatchDeadline.ToTimeSpan());
        Assert.NotNull(created.CreateTime);
        Assert.InRange(created.ScheduleTime.ToDateTimeOffset(), created.CreateTime.ToDateTimeOffset().AddSeconds(-1), created.CreateTime.ToDateTimeOffset().AddSeconds(1));
        Assert.Equal(0, created.DispatchCount);

        var full = await Client.GetTaskAsync(new GetTaskRequest { Name = created.Name, ResponseView = TaskMessage.Types.View.Full });
        Assert.Equal(TaskMessage.Types.View.Full, full.View);
        Assert.Equal("{\"n\":1}", full.HttpRequest.Body.ToStringUtf8());
    }

    [Fact]
    public async Task Unnamed_tasks_get_unique_generated_numeric_ids()
    {
        var names = new HashSet<string>();
        for (var i = 0; i < 20; i++)
        {
            var task = await Client.CreateTaskAsync(_queue, HttpTask());
            var id = TaskName.Parse(task.Name).TaskId;
            Assert.Matches("^[1-9][0-9]{18}$", id);
            names.Add(task.Name);
        }

        Assert.Equal(20, names.Count);
    }

    [Fact]
    public async Task A_name_in_use_answers_already_exists_and_stays_reserved_after_deletion()
    {
        await Client.CreateTaskAsync(_queue, HttpTask("dup", _queue));
        Assert.Equal(CloudTasksFailureReason.AlreadyExists, (await Assert.ThrowsAsync<CloudTasksException>(() => Client.CreateTaskAsync(_queue, HttpTask("dup", _queue)))).Reason);

        await Client.DeleteTaskAsync(_queue.Task("dup"));

        Assert.Equal(CloudTasksFailureReason.NotFound, (await Assert.ThrowsAsync<CloudTasksException>(() => Client.GetTaskAsync(_queue.Task("dup")))).Reason);
        Assert.Equal(CloudTasksFailureReason.AlreadyExists, (await Assert.ThrowsAsync<CloudTasksException>(() => Client.CreateTaskAsync(_queue, HttpTask("dup", _queue)))).Reason);
        Assert.Equal(CloudTasksFailureReason.NotFound, (await Assert.ThrowsAsync<CloudTasksException>(() => Client.DeleteTaskAsync(_queue.Task("dup")))).Reason);
    }

    [Fact]
    public async Task Tasks_list_across_pages_in_both_views()
    {
        for (var i = 0; i < 7; i++)
        {
            await Client.CreateTaskAsync(_queue, HttpTask($"t{i}", _queue));
        }

        var pages = new List<Page<TaskMessage>>();
        await foreach (var page in Client.ListTasks(_queue, TaskMessage.Types.View.Full, pageSize: 3).AsPages())
        {
            pages.Add(page);
        }

        Assert.Equal([3, 3, 1], pages.Select(p => p.Items.Count));
        Assert.Equal(7, pages.SelectMany(p => p.Items).Select(t => t.Name).Distinct().Count());
        Assert.All(pages.SelectMany(p => p.Items), t => Assert.False(t.HttpRequest.Body.IsEmpty));
        var basic = new List<TaskMessage>();
        await foreach (var t in Client.ListTasks(_queue))
        {
            basic.Add(t);
        }

        Assert.All(basic, t => Assert.True(t.HttpRequest.Body.IsEmpty));
    }

    [Fact]
    public async Task A_schedule_time_in_the_past_means_now()
    {
        var task = HttpTask();
        task.ScheduleTime = Timestamp.FromDateTimeOffset(TimeProvider.System.GetUtcNow().AddDays(-3));
        var created = await Client.CreateTaskAsync(_queue, task);
        Assert.True(created.ScheduleTime.ToDateTimeOffset() > TimeProvider.System.GetUtcNow().AddMinutes(-1));
    }

    public static TheoryData<string, string, Func<QueueName, TaskMessage>> InvalidTasks() => new()
    {
        { "task.schedule_time", "720h", _ => WithSchedule(TimeSpan.FromDays(31)) },
        { "task.dispatch_deadline", "between 15s and 30m", _ => With(t => t.DispatchDeadline = Duration.FromTimeSpan(TimeSpan.FromSeconds(10))) },
        { "task.dispatch_deadline", "between 15s and 30m", _ => With(t => t.DispatchDeadline = Duration.FromTimeSpan(TimeSpan.FromMinutes(31))) },
        { "task.http_request.url", "absolute http or https", _ => With(t => t.HttpRequest.Url = "ftp://x/y") },
        { "task.http_request.url", "required", _ => With(t => t.HttpRequest.Url = string.Empty) },
        { "task.http_request.body", "only allowed with POST, PUT or PATCH", _ => With(t => t.HttpRequest.HttpMethod = Bridge.CloudTasks.V2Beta3.HttpMethod.Get) },
        { "task.http_request.oidc_token.service_account_email", "service account", _ => With(t => t.HttpRequest.OidcToken = new OidcToken { ServiceAccountEmail = "nobody" }) },
        { "task.http_request", "no payload", _ => new TaskMessage() },
        { "task", "Task size too large: 1048", _ => With(t => t.HttpRequest.Body = ByteString.CopyFrom(new byte[1_048_569])) },
        { "task.name", "is not in parent", q => With(t => t.Name = new QueueName(q.ProjectId, q.LocationId, "other").Task("x").ToString()) },
        { "task.name", "task id", q => With(t => t.Name = q + "/tasks/has.dot") },
        { "task.http_request.headers", "contains CR, LF or NUL", _ => With(t => t.HttpRequest.Headers["X-Split"] = "a\r\nX-Injected: 1") },
        { "task.app_engine_http_request.headers", "contains CR, LF or NUL", _ => new TaskMessage { AppEngineHttpRequest = new AppEngineHttpRequest { RelativeUri = "/x", Headers = { ["X-Split"] = "a\nb" } } } },
    };

    [Theory]
    [MemberData(nameof(InvalidTasks))]
    public async Task Invalid_tasks_are_rejected_naming_the_field_and_the_problem(string field, string message, Func<QueueName, TaskMessage> build)
    {
        var error = await Assert.ThrowsAsync<CloudTasksException>(() => Client.CreateTaskAsync(_queue, build(_queue)));

        Assert.Equal(CloudTasksFailureReason.InvalidArgument, error.Reason);
        Assert.Equal(field, Assert.Single(error.FieldViolations).Field);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_task_just_under_the_size_limit_is_accepted()
    {
        var task = HttpTask();
        task.HttpRequest.Body = ByteString.CopyFrom(new byte[1_048_000]);
        var created = await Client.CreateTaskAsync(_queue, task);
        Assert.NotEmpty(created.Name);
    }

    [Fact]
    public async Task A_task_for_a_missing_queue_is_not_found()
    {
        var missing = EmulatorHost.Location.Queue("nope");
        var error = await Assert.ThrowsAsync<CloudTasksException>(() => Client.CreateTaskAsync(missing, HttpTask()));
        Assert.Equal(CloudTasksFailureReason.NotFound, error.Reason);
        Assert.Contains("Queue does not exist", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_task_on_a_finished_task_is_not_found()
    {
        var error = await Assert.ThrowsAsync<CloudTasksException>(() => Client.RunTaskAsync(_queue.Task("never")));
        Assert.Equal(CloudTasksFailureReason.NotFound, error.Reason);
    }

    private static TaskMessage With(Action<TaskMessage> change)
    {
        var task = HttpTask();
        change(task);
        return task;
    }

    private static TaskMessage WithSchedule(TimeSpan ahead) => With(t => t.ScheduleTime = Timestamp.FromDateTimeOffset(TimeProvider.System.GetUtcNow() + ahead));
}
