using System.Globalization;
using Bridge.CloudTasks;
using Bridge.CloudTasks.V2Beta3;
using Bridge.Testing;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Time.Testing;
using Task = System.Threading.Tasks.Task;
using TaskMessage = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.Emulators.CloudTasks.Tests;

/// <summary>Real HTTP dispatch to a loopback target: headers, retries, backoff, limits, pause, RunTask.</summary>
public sealed class DispatchTests : EmulatorWithTargetTests
{
    private TaskMessage TaskTo(string path, string? id = null, QueueName? queue = null) => new()
    {
        Name = id is null ? string.Empty : queue!.Task(id).ToString(),
        HttpRequest = new HttpRequest { Url = Target.Url(path).ToString() },
    };

    [Fact]
    public async Task A_task_arrives_with_its_payload_and_the_cloud_tasks_headers_then_is_deleted()
    {
        var queue = await Host.CreateQueueAsync();
        var task = TaskTo("/orders?x=1", "order-7", queue);
        task.HttpRequest.HttpMethod = Bridge.CloudTasks.V2Beta3.HttpMethod.Put;
        task.HttpRequest.Body = ByteString.CopyFromUtf8("payload-bytes");
        task.HttpRequest.Headers.Add("X-Custom", "kept");
        task.HttpRequest.Headers.Add("X-Google-Internal", "dropped");
        var created = await Client.CreateTaskAsync(queue, task);

        var received = Assert.Single(await Target.WaitForRequestsAsync(1));
        await Host.Emulator.WaitForIdleAsync(queue.ToString());

        Assert.Equal("PUT", received.Method);
        Assert.Equal("/orders?x=1", received.PathAndQuery);
        Assert.Equal("payload-bytes", System.Text.Encoding.UTF8.GetString(received.Body));
        Assert.Equal("kept", received.Header("X-Custom"));
        Assert.Null(received.Header("X-Google-Internal"));
        Assert.Equal("Google-Cloud-Tasks", received.Header("User-Agent"));
        Assert.Equal(queue.QueueId, received.Header("X-CloudTasks-QueueName"));
        Assert.Equal("order-7", received.Header("X-CloudTasks-TaskName"));
        Assert.Equal("0", received.Header("X-CloudTasks-TaskRetryCount"));
        Assert.Equal("0", received.Header("X-CloudTasks-TaskExecutionCount"));
        Assert.Null(received.Header("X-CloudTasks-TaskPreviousResponse"));
        Assert.Null(received.Header("Content-Type")); // none given, none added
        var eta = decimal.Parse(received.Header("X-CloudTasks-TaskETA")!, CultureInfo.InvariantCulture);
        Assert.Equal(created.ScheduleTime.Seconds, (long)Math.Floor(eta));

        Assert.Equal(CloudTasksFailureReason.NotFound, (await Assert.ThrowsAsync<CloudTasksException>(() => Client.GetTaskAsync(queue.Task("order-7")))).Reason);
        Assert.Equal(CloudTasksFailureReason.AlreadyExists, (await Assert.ThrowsAsync<CloudTasksException>(() => Client.CreateTaskAsync(queue, TaskTo("/again", "order-7", queue)))).Reason);
    }

    [Fact]
    public async Task Failures_are_retried_with_attempt_headers_that_follow_the_execution_count_rules()
    {
        var queue = await Host.CreateQueueAsync();
        Target.Respond = (_, n) => new TargetResponse(n switch { 0 => 500, 1 => 404, 2 => 503, _ => 200 });
        await Client.CreateTaskAsync(queue, TaskTo("/flaky", "f", queue));

        var requests = await Target.WaitForRequestsAsync(4);
        await Host.Emulator.WaitForIdleAsync(queue.ToString());

        Assert.Equal(["0", "1", "2", "3"], requests.Select(r => r.Header("X-CloudTasks-TaskRetryCount")));
        // 500 and 503 are not executions; 404 is.
        Assert.Equal(["0", "0", "1", "1"], requests.Select(r => r.Header("X-CloudTasks-TaskExecutionCount")));
        Assert.Equal([null, "500", "404", "503"], requests.Select(r => r.Header("X-CloudTasks-TaskPreviousResponse")));
        Assert.All(requests.Skip(1), r => Assert.Equal(string.Empty, r.Header("X-CloudTasks-TaskRetryReason")));
        Assert.Equal(4, Target.Requests.Count);
    }

    [Fact]
    public async Task Backoff_starts_at_min_backoff_and_doubles_between_attempts()
    {
        var clock = new FakeTimeProvider(TimeProvider.System.GetUtcNow());
        await using var host = await EmulatorHost.StartAsync(time: clock);
        var queue = await host.CreateQueueAsync(q => q.RetryConfig = new RetryConfig
        {
            MaxAttempts = 4,
            MinBackoff = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(300)),
            MaxBackoff = Duration.FromTimeSpan(TimeSpan.FromSeconds(5)),
            MaxDoublings = 5,
        });
        Target.Respond = (_, _) => new TargetResponse(500);
        var name = queue.Task("down").ToString();
        await host.Client.CreateTaskAsync(queue, TaskTo("/down", "down", queue));

        foreach (var (attempt, backoff) in new[] { (1, 300), (2, 600), (3, 1200) })
        {
            var task = await host.State().WaitForAttemptAsync(name, attempt);
            Assert.Equal(clock.GetUtcNow().AddMilliseconds(backoff), task.ScheduleTime.ToDateTimeOffset());
            Assert.Equal(attempt, Target.Requests.Count); // the clock stands still: nothing more is due
            clock.Advance(TimeSpan.FromMilliseconds(backoff));
        }

        await Target.WaitForRequestsAsync(4);
        await host.Emulator.WaitForIdleAsync(queue.ToString());
        Assert.Equal(4, Target.Requests.Count);
    }

    [Fact]
    public async Task Retrying_stops_at_max_attempts_and_the_task_is_deleted()
    {
        var queue = await Host.CreateQueueAsync(q => q.RetryConfig = new RetryConfig { MaxAttempts = 3, MinBackoff = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(50)), MaxBackoff = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(100)) });
        Target.Respond = (_, _) => new TargetResponse(500);
        await Client.CreateTaskAsync(queue, TaskTo("/always-fails", "doomed", queue));

        await Host.Emulator.WaitForIdleAsync(queue.ToString());

        // Idle means the task is gone, so no further attempt can come.
        Assert.Equal(3, Target.Requests.Count);
        Assert.Equal(CloudTasksFailureReason.NotFound, (await Assert.ThrowsAsync<CloudTasksException>(() => Client.GetTaskAsync(queue.Task("doomed")))).Reason);
    }

    [Fact]
    public async Task A_task_level_retry_config_overrides_the_queues()
    {
        var queue = await Host.CreateQueueAsync();
        Target.Respond = (_, _) => new TargetResponse(500);
        var task = TaskTo("/once");
        task.RetryConfig = new RetryConfig { MaxAttempts = 1 };
        await Client.CreateTaskAsync(queue, task);

        await Host.Emulator.WaitForIdleAsync(queue.ToString());

        Assert.Single(Target.Requests);
    }

    [Fact]
    public async Task A_task_retry_config_with_only_max_attempts_takes_the_rest_from_the_queue_and_is_retried()
    {
        var queue = await Host.CreateQueueAsync();
        Target.Respond = (_, _) => new TargetResponse(500);
        var task = TaskTo("/three-times", "partial", queue);
        task.RetryConfig = new RetryConfig { MaxAttempts = 3 };
        await Client.CreateTaskAsync(queue, task);

        await Host.Emulator.WaitForIdleAsync(queue.ToString());

        Assert.Equal(["0", "1", "2"], Target.Requests.Select(r => r.Header("X-CloudTasks-TaskRetryCount")));
    }

    [Fact]
    public async Task A_task_retry_config_that_conflicts_with_the_queues_is_invalid_at_create_time()
    {
        var queue = await Host.CreateQueueAsync(); // max_backoff 400 ms
        var task = TaskTo("/never");
        task.RetryConfig = new RetryConfig { MinBackoff = Duration.FromTimeSpan(TimeSpan.FromSeconds(5)) };

        var error = await Assert.ThrowsAsync<CloudTasksException>(() => Client.CreateTaskAsync(queue, task));

        Assert.Equal(CloudTasksFailureReason.InvalidArgument, error.Reason);
        Assert.Equal("task.retry_config.min_backoff", Assert.Single(error.FieldViolations).Field);
    }

    [Fact]
    public async Task Attempt_fields_record_the_dispatches_and_responses()
    {
        var queue = await Host.CreateQueueAsync(q => q.RetryConfig = new RetryConfig { MaxAttempts = 10, MinBackoff = Duration.FromTimeSpan(TimeSpan.FromSeconds(30)), MaxBackoff = Duration.FromTimeSpan(TimeSpan.FromSeconds(30)) });
        Target.Respond = (_, _) => new TargetResponse(404);
        await Client.CreateTaskAsync(queue, TaskTo("/missing", "attempts", queue));
        await Target.WaitForRequestsAsync(1);

        await Host.State().WaitForAttemptAsync(queue.Task("attempts").ToString(), 1);
        var task = await Client.GetTaskAsync(queue.Task("attempts"));

        Assert.Equal(1, task.DispatchCount);
        Assert.Equal(1, task.ResponseCount);
        Assert.Equal((int)Google.Rpc.Code.NotFound, task.LastAttempt.ResponseStatus.Code);
        Assert.NotNull(task.FirstAttempt.DispatchTime);
        Assert.Null(task.FirstAttempt.ScheduleTime); // "only dispatch_time will be set" (Task.first_attempt)
        Assert.Null(task.FirstAttempt.ResponseTime);
        Assert.Null(task.FirstAttempt.ResponseStatus);
        Assert.True(task.ScheduleTime.ToDateTimeOffset() > TimeProvider.System.GetUtcNow().AddSeconds(20), "next attempt scheduled after the backoff");
    }

    [Fact]
    public async Task Retry_after_from_a_429_sets_the_next_attempt()
    {
        var clock = new FakeTimeProvider(TimeProvider.System.GetUtcNow());
        await using var host = await EmulatorHost.StartAsync(time: clock);
        var queue = await host.CreateQueueAsync();
        Target.Respond = (_, n) => n == 0 ? new TargetResponse(429, Headers: new Dictionary<string, string> { ["Retry-After"] = "7" }) : TargetResponse.Ok;
        await host.Client.CreateTaskAsync(queue, TaskTo("/busy", "busy", queue));

        var task = await host.State().WaitForAttemptAsync(queue.Task("busy").ToString(), 1);

        Assert.Equal(clock.GetUtcNow().AddSeconds(7), task.ScheduleTime.ToDateTimeOffset());
        clock.Advance(TimeSpan.FromSeconds(7));
        Assert.Equal("429", (await Target.WaitForRequestsAsync(2))[1].Header("X-CloudTasks-TaskPreviousResponse"));
    }

    [Fact]
    public async Task A_queue_limited_to_two_concurrent_dispatches_delivers_every_task()
    {
        var queue = await Host.CreateQueueAsync(q => q.RateLimits = new RateLimits { MaxConcurrentDispatches = 2 });
        for (var i = 0; i < 8; i++)
        {
            await Client.CreateTaskAsync(queue, TaskTo("/narrow"));
        }

        await Host.Emulator.WaitForIdleAsync(queue.ToString());

        // The limit itself: ScheduleTests.No_more_than_max_concurrent_dispatches_are_in_flight_and_a_completion_frees_a_slot.
        Assert.Equal(8, Target.Requests.Count);
    }

    [Fact]
    public async Task A_paused_queue_accepts_tasks_but_dispatches_none_until_resumed()
    {
        var queue = await Host.CreateQueueAsync();
        await Client.PauseQueueAsync(queue);
        await Client.CreateTaskAsync(queue, TaskTo("/held", "held", queue));

        Assert.Empty(Host.State().TakeDue(out _)); // nothing of a paused queue is ever handed out
        Assert.Equal(0, (await Client.GetTaskAsync(queue.Task("held"))).DispatchCount);

        await Client.ResumeQueueAsync(queue);
        await Target.WaitForRequestsAsync(1);
    }

    [Fact]
    public async Task Run_task_dispatches_at_once_even_when_paused_and_returns_the_dispatched_task()
    {
        var queue = await Host.CreateQueueAsync();
        await Client.PauseQueueAsync(queue);
        var scheduled = TaskTo("/now", "run-me", queue);
        scheduled.ScheduleTime = Timestamp.FromDateTimeOffset(TimeProvider.System.GetUtcNow().AddDays(1));
        await Client.CreateTaskAsync(queue, scheduled);

        var ran = await Client.RunTaskAsync(queue.Task("run-me"));

        Assert.Equal(1, ran.DispatchCount);
        Assert.NotNull(ran.LastAttempt.DispatchTime);
        await Target.WaitForRequestsAsync(1);
        await Host.Emulator.WaitForIdleAsync(queue.ToString());
        Assert.Equal(CloudTasksFailureReason.NotFound, (await Assert.ThrowsAsync<CloudTasksException>(() => Client.RunTaskAsync(queue.Task("run-me")))).Reason);
    }

    [Fact]
    public async Task Rate_limits_changed_by_update_queue_apply_at_once()
    {
        var queue = await Host.CreateQueueAsync(q => q.RateLimits = new RateLimits { MaxDispatchesPerSecond = 0.05, MaxBurstSize = 1 });
        for (var i = 0; i < 6; i++)
        {
            await Client.CreateTaskAsync(queue, TaskTo("/slow-queue"));
        }

        await Target.WaitForRequestsAsync(1);
        await Client.UpdateQueueAsync(new Queue { Name = queue.ToString(), RateLimits = new RateLimits { MaxDispatchesPerSecond = 500, MaxBurstSize = 100 } }, new FieldMask { Paths = { "rate_limits" } });

        // At 0.05/s the other five would need 100 s; the new limits let them through now.
        await Host.Emulator.WaitForIdleAsync(queue.ToString(), TimeSpan.FromSeconds(60));
        Assert.Equal(6, Target.Requests.Count);
    }

    [Fact]
    public async Task Queue_level_http_target_overrides_host_path_and_headers()
    {
        var queue = await Host.CreateQueueAsync(q => q.HttpTarget = new HttpTarget
        {
            UriOverride = new UriOverride { Host = "127.0.0.1", Port = Target.Address.Port, Scheme = UriOverride.Types.Scheme.Http, PathOverride = new PathOverride { Path = "/overridden" } },
            HeaderOverrides = { new HttpTarget.Types.HeaderOverride { Header = new HttpTarget.Types.Header { Key = "X-Env", Value = "staging" } } },
        });
        await Client.CreateTaskAsync(queue, new TaskMessage { HttpRequest = new HttpRequest { Url = "https://elsewhere.example.com/original" } });

        var received = Assert.Single(await Target.WaitForRequestsAsync(1));

        Assert.Equal("/overridden", received.PathAndQuery);
        Assert.Equal("staging", received.Header("X-Env"));
    }

    [Fact]
    public async Task App_engine_tasks_go_to_the_configured_app_engine_host()
    {
        await using var host = await EmulatorHost.StartAsync(o => o.AppEngineHost = Target.Address.ToString());
        var queue = await host.CreateQueueAsync();
        await host.Client.CreateTaskAsync(queue, new TaskMessage { AppEngineHttpRequest = new AppEngineHttpRequest { RelativeUri = "/worker?id=3", Body = ByteString.CopyFromUtf8("ae") } });

        var received = Assert.Single(await Target.WaitForRequestsAsync(1));

        Assert.Equal("/worker?id=3", received.PathAndQuery);
        Assert.Equal(queue.QueueId, received.Header("X-AppEngine-QueueName"));
        Assert.Equal("0", received.Header("X-AppEngine-TaskRetryCount"));
        Assert.Equal("ae", System.Text.Encoding.UTF8.GetString(received.Body));
    }

    [Fact]
    public async Task A_target_that_is_down_counts_as_a_failed_attempt_and_is_retried()
    {
        var clock = new FakeTimeProvider(TimeProvider.System.GetUtcNow());
        await using var host = await EmulatorHost.StartAsync(time: clock);
        var queue = await host.CreateQueueAsync(q => q.RetryConfig = new RetryConfig { MaxAttempts = 2, MinBackoff = Duration.FromTimeSpan(TimeSpan.FromSeconds(1)), MaxBackoff = Duration.FromTimeSpan(TimeSpan.FromSeconds(1)) });
        var name = queue.Task("nowhere").ToString();
        using var down = new UnreachableEndpoint();
        await host.Client.CreateTaskAsync(queue, new TaskMessage { Name = name, HttpRequest = new HttpRequest { Url = down.Url("/closed").ToString() } });

        var first = await host.State().WaitForAttemptAsync(name, 1);
        Assert.Equal((int)Google.Rpc.Code.Unavailable, first.LastAttempt.ResponseStatus.Code);
        clock.Advance(first.ScheduleTime.ToDateTimeOffset() - clock.GetUtcNow());

        await host.Emulator.WaitForIdleAsync(queue.ToString());

        // Gone only after a second failed attempt: max_attempts is 2.
        Assert.Equal(CloudTasksFailureReason.NotFound, (await Assert.ThrowsAsync<CloudTasksException>(() => host.Client.GetTaskAsync(queue.Task("nowhere")))).Reason);
    }

    [Fact]
    public async Task An_attempt_past_its_dispatch_deadline_is_a_504_that_does_not_count_as_an_execution()
    {
        var clock = new FakeTimeProvider(TimeProvider.System.GetUtcNow());
        await using var host = await EmulatorHost.StartAsync(time: clock);
        var queue = await host.CreateQueueAsync();
        Target.Respond = (_, n) => n == 0 ? new TargetResponse(200, Delay: TimeSpan.FromMinutes(10)) : TargetResponse.Ok; // the first answer never comes in time
        var task = TaskTo("/too-slow", "slow", queue);
        task.DispatchDeadline = Duration.FromTimeSpan(TimeSpan.FromSeconds(15)); // the shortest the service allows
        await host.Client.CreateTaskAsync(queue, task);
        await Target.WaitForRequestsAsync(1);

        clock.Advance(TimeSpan.FromSeconds(15));
        var timedOut = await host.State().WaitForAttemptAsync(queue.Task("slow").ToString(), 1);
        Assert.Equal((int)Google.Rpc.Code.DeadlineExceeded, timedOut.LastAttempt.ResponseStatus.Code);
        clock.Advance(timedOut.ScheduleTime.ToDateTimeOffset() - clock.GetUtcNow());

        var second = (await Target.WaitForRequestsAsync(2))[1];
        Assert.Equal("504", second.Header("X-CloudTasks-TaskPreviousResponse"));
        Assert.Equal("1", second.Header("X-CloudTasks-TaskRetryCount"));
        Assert.Equal("0", second.Header("X-CloudTasks-TaskExecutionCount"));
    }
}
