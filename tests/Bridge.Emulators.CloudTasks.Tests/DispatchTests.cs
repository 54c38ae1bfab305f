using System.Globalization;
using Bridge.CloudTasks;
using Bridge.CloudTasks.V2Beta3;
using Bridge.Testing;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
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
    public async Task Backoff_waits_at_least_min_backoff_and_doubles()
    {
        var queue = await Host.CreateQueueAsync(q => q.RetryConfig = new RetryConfig
        {
            MaxAttempts = 4,
            MinBackoff = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(300)),
            MaxBackoff = Duration.FromTimeSpan(TimeSpan.FromSeconds(5)),
            MaxDoublings = 5,
        });
        Target.Respond = (_, _) => new TargetResponse(500);
        await Client.CreateTaskAsync(queue, TaskTo("/down"));

        var requests = await Target.WaitForRequestsAsync(4);
        var gaps = requests.Zip(requests.Skip(1), (a, b) => b.ReceivedAt - a.ReceivedAt).ToList();

        Assert.True(gaps[0] >= TimeSpan.FromMilliseconds(290), $"first gap {gaps[0]}");
        Assert.True(gaps[1] >= TimeSpan.FromMilliseconds(590), $"second gap {gaps[1]}");
        Assert.True(gaps[2] >= TimeSpan.FromMilliseconds(1190), $"third gap {gaps[2]}");
    }

    [Fact]
    public async Task Retrying_stops_at_max_attempts_and_the_task_is_deleted()
    {
        var queue = await Host.CreateQueueAsync(q => q.RetryConfig = new RetryConfig { MaxAttempts = 3, MinBackoff = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(50)), MaxBackoff = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(100)) });
        Target.Respond = (_, _) => new TargetResponse(500);
        await Client.CreateTaskAsync(queue, TaskTo("/always-fails", "doomed", queue));

        await Host.Emulator.WaitForIdleAsync(queue.ToString());
        await Task.Delay(300);

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
    public async Task Attempt_fields_record_the_dispatches_and_responses()
    {
        var queue = await Host.CreateQueueAsync(q => q.RetryConfig = new RetryConfig { MaxAttempts = 10, MinBackoff = Duration.FromTimeSpan(TimeSpan.FromSeconds(30)), MaxBackoff = Duration.FromTimeSpan(TimeSpan.FromSeconds(30)) });
        Target.Respond = (_, _) => new TargetResponse(404);
        await Client.CreateTaskAsync(queue, TaskTo("/missing", "attempts", queue));
        await Target.WaitForRequestsAsync(1);

        TaskMessage task;
        do
        {
            task = await Client.GetTaskAsync(queue.Task("attempts"));
        }
        while (task.LastAttempt?.ResponseStatus is null);

        Assert.Equal(1, task.DispatchCount);
        Assert.Equal(1, task.ResponseCount);
        Assert.Equal((int)Google.Rpc.Code.NotFound, task.LastAttempt.ResponseStatus.Code);
        Assert.NotNull(task.FirstAttempt.DispatchTime);
        Assert.True(task.ScheduleTime.ToDateTimeOffset() > TimeProvider.System.GetUtcNow().AddSeconds(20), "next attempt scheduled after the backoff");
    }

    [Fact]
    public async Task Retry_after_from_a_429_is_honoured()
    {
        var queue = await Host.CreateQueueAsync();
        Target.Respond = (_, n) => n == 0 ? new TargetResponse(429, Headers: new Dictionary<string, string> { ["Retry-After"] = "1" }) : TargetResponse.Ok;
        await Client.CreateTaskAsync(queue, TaskTo("/busy"));

        var requests = await Target.WaitForRequestsAsync(2);

        Assert.True(requests[1].ReceivedAt - requests[0].ReceivedAt >= TimeSpan.FromMilliseconds(950));
    }

    [Fact]
    public async Task A_rate_of_five_per_second_spaces_fifteen_dispatches_over_at_least_two_point_eight_seconds()
    {
        var queue = await Host.CreateQueueAsync(q => q.RateLimits = new RateLimits { MaxDispatchesPerSecond = 5, MaxBurstSize = 1 });
        await Client.PauseQueueAsync(queue);
        for (var i = 0; i < 15; i++)
        {
            await Client.CreateTaskAsync(queue, TaskTo("/rated"));
        }

        await Client.ResumeQueueAsync(queue);
        var requests = await Target.WaitForRequestsAsync(15);

        var span = requests.Max(r => r.ReceivedAt) - requests.Min(r => r.ReceivedAt);
        Assert.True(span >= TimeSpan.FromSeconds(2.7), $"15 dispatches at 5/s took only {span}");
    }

    [Fact]
    public async Task Concurrent_dispatches_stay_within_max_concurrent_dispatches()
    {
        var queue = await Host.CreateQueueAsync(q => q.RateLimits = new RateLimits { MaxConcurrentDispatches = 2 });
        var inFlight = 0;
        var maxSeen = 0;
        Target.Respond = (_, _) =>
        {
            var now = Interlocked.Increment(ref inFlight);
            InterlockedMax(ref maxSeen, now);
            // Counted out well before the answer leaves, so a next dispatch can't be miscounted as overlapping.
            _ = Task.Delay(150).ContinueWith(_ => Interlocked.Decrement(ref inFlight), TaskScheduler.Default);
            return new TargetResponse(200, Delay: TimeSpan.FromMilliseconds(400));
        };
        for (var i = 0; i < 8; i++)
        {
            await Client.CreateTaskAsync(queue, TaskTo("/slow"));
        }

        await Host.Emulator.WaitForIdleAsync(queue.ToString());

        Assert.Equal(8, Target.Requests.Count);
        Assert.InRange(maxSeen, 1, 2);
    }

    [Fact]
    public async Task A_paused_queue_accepts_tasks_but_dispatches_none_until_resumed()
    {
        var queue = await Host.CreateQueueAsync();
        await Client.PauseQueueAsync(queue);
        await Client.CreateTaskAsync(queue, TaskTo("/held"));

        await Task.Delay(700);
        Assert.Empty(Target.Requests);

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
        var queue = await Host.CreateQueueAsync(q => q.RetryConfig = new RetryConfig { MaxAttempts = 2, MinBackoff = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(50)), MaxBackoff = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(50)) });
        await Client.CreateTaskAsync(queue, new TaskMessage { Name = queue.Task("nowhere").ToString(), HttpRequest = new HttpRequest { Url = "http://127.0.0.1:1/closed" } });

        await Host.Emulator.WaitForIdleAsync(queue.ToString());

        Assert.Equal(CloudTasksFailureReason.NotFound, (await Assert.ThrowsAsync<CloudTasksException>(() => Client.GetTaskAsync(queue.Task("nowhere")))).Reason);
    }

    [Fact]
    public async Task An_attempt_past_its_dispatch_deadline_is_a_504_that_does_not_count_as_an_execution()
    {
        var queue = await Host.CreateQueueAsync();
        Target.Respond = (_, n) => n == 0 ? new TargetResponse(200, Delay: TimeSpan.FromSeconds(25)) : TargetResponse.Ok;
        var task = TaskTo("/too-slow");
        task.DispatchDeadline = Duration.FromTimeSpan(TimeSpan.FromSeconds(15)); // the shortest the service allows
        await Client.CreateTaskAsync(queue, task);

        var requests = await Target.WaitForRequestsAsync(2, TimeSpan.FromSeconds(40));

        Assert.True(requests[1].ReceivedAt - requests[0].ReceivedAt >= TimeSpan.FromSeconds(15));
        Assert.Equal("504", requests[1].Header("X-CloudTasks-TaskPreviousResponse"));
        Assert.Equal("1", requests[1].Header("X-CloudTasks-TaskRetryCount"));
        Assert.Equal("0", requests[1].Header("X-CloudTasks-TaskExecutionCount"));
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int current;
        while ((current = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, current) != current)
        {
        }
    }
}
