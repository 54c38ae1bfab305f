using Grpc.Core;

namespace Bridge.CloudTasks.Tests;

public sealed class CallSettingsTests
{
    [Fact]
    public void Backoff_grows_by_the_multiplier_and_stops_at_the_cap()
    {
        var retry = new RetrySettings(10, TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(500), 2.0, StatusCode.Unavailable);
        var ceilings = Enumerable.Range(1, 5).Select(i => retry.BackoffCeiling(i).TotalMilliseconds);
        Assert.Equal([100, 200, 400, 500, 500], ceilings);
    }

    [Fact]
    public void Jittered_delays_stay_within_zero_and_the_ceiling_and_vary()
    {
        var retry = new RetrySettings(10, TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(1), 2.0, StatusCode.Unavailable);
        var random = new Random(42);
        var delays = Enumerable.Range(0, 200).Select(_ => retry.Delay(3, random)).ToList();
        Assert.All(delays, d => Assert.InRange(d, TimeSpan.FromTicks(1), TimeSpan.FromMilliseconds(400)));
        Assert.True(delays.Distinct().Count() > 100, "jitter should spread delays");
    }

    [Fact]
    public void Only_listed_codes_are_retried_and_only_while_attempts_remain()
    {
        var retry = RetrySettings.IdempotentDefault;
        Assert.True(retry.ShouldRetry(StatusCode.Unavailable, 1));
        Assert.True(retry.ShouldRetry(StatusCode.DeadlineExceeded, 4));
        Assert.True(retry.ShouldRetry(StatusCode.Unavailable, 500)); // no attempt cap: the deadline ends retries
        Assert.False(new RetrySettings(5, TimeSpan.Zero, TimeSpan.Zero, 1.0, StatusCode.Unavailable).ShouldRetry(StatusCode.Unavailable, 5));
        Assert.False(retry.ShouldRetry(StatusCode.NotFound, 1));
        Assert.False(retry.ShouldRetry(StatusCode.Internal, 1));
        Assert.False(RetrySettings.None.ShouldRetry(StatusCode.Unavailable, 1));
    }

    [Fact]
    public void Per_call_settings_win_and_gaps_fall_back_to_the_method_defaults()
    {
        var defaults = new CallSettings { Timeout = TimeSpan.FromSeconds(20), Retry = RetrySettings.IdempotentDefault };
        var merged = CallSettings.FromTimeout(TimeSpan.FromSeconds(2)).MergedWith(defaults);
        Assert.Equal(TimeSpan.FromSeconds(2), merged.Timeout);
        Assert.Same(RetrySettings.IdempotentDefault, merged.Retry);
    }

    [Fact]
    public void Settings_defaults_retry_reads_and_deletes_but_not_creates()
    {
        var s = CloudTasksSettings.GetDefault();
        Assert.All(new[] { s.GetQueueSettings, s.ListQueuesSettings, s.ListTasksSettings, s.GetTaskSettings, s.DeleteQueueSettings, s.DeleteTaskSettings, s.GetIamPolicySettings, s.TestIamPermissionsSettings },
            c => Assert.True(c.Retry!.MaxAttempts > 1));
        Assert.All(new[] { s.CreateTaskSettings, s.CreateQueueSettings, s.UpdateQueueSettings, s.PurgeQueueSettings, s.PauseQueueSettings, s.ResumeQueueSettings, s.SetIamPolicySettings, s.RunTaskSettings },
            c => Assert.Equal(1, c.Retry!.MaxAttempts));
    }

    [Fact]
    public void Batches_have_neither_retry_nor_deadline_as_published()
    {
        // cloudtasks_grpc_service_config.json (v2beta3) does not list BatchCreateTasks or BatchDeleteTasks; the
        // official Node.js client's config gives them non_idempotent codes and no timeout.
        var s = CloudTasksSettings.GetDefault();
        Assert.All(new[] { s.BatchCreateTasksSettings, s.BatchDeleteTasksSettings, s.WaitOperationSettings }, c =>
        {
            Assert.Null(c.Timeout);
            Assert.Equal(1, c.Retry!.MaxAttempts);
        });
    }

    [Fact]
    public void Operations_calls_follow_the_published_longrunning_configuration()
    {
        // longrunning_grpc_service_config.json: 10 s; 5 attempts, 0.5 s doubling to 10 s, UNAVAILABLE only.
        var s = CloudTasksSettings.GetDefault();
        Assert.All(new[] { s.GetOperationSettings, s.ListOperationsSettings, s.CancelOperationSettings, s.DeleteOperationSettings }, c =>
        {
            Assert.Equal(TimeSpan.FromSeconds(10), c.Timeout);
            Assert.Equal(5, c.Retry!.MaxAttempts);
            Assert.Equal(TimeSpan.FromMilliseconds(500), c.Retry.InitialBackoff);
            Assert.Equal(TimeSpan.FromSeconds(10), c.Retry.MaxBackoff);
            Assert.Equal(2.0, c.Retry.BackoffMultiplier);
            Assert.Equal([StatusCode.Unavailable], c.Retry.RetryableStatusCodes);
        });
    }

    [Fact]
    public void Poll_delays_grow_by_the_multiplier_and_stop_at_the_cap()
    {
        var poll = PollSettings.Default;
        Assert.Equal([100, 130, 169], Enumerable.Range(1, 3).Select(i => Math.Round(poll.DelayBefore(i).TotalMilliseconds)));
        Assert.Equal(TimeSpan.FromSeconds(60), poll.DelayBefore(100));
        Assert.Equal(TimeSpan.FromHours(24), poll.Timeout);
    }

    [Theory]
    [InlineData(0, 100, 1.0, 100)]
    [InlineData(1000, -1, 1.0, 100)]
    [InlineData(1000, 0, 1.3, 100)]
    [InlineData(1000, 100, 0.9, 100)]
    [InlineData(1000, 200, 1.0, 100)]
    public void Invalid_poll_settings_are_rejected(int timeoutMs, int initialMs, double multiplier, int maxMs)
    {
        Assert.ThrowsAny<ArgumentException>(() => new PollSettings(TimeSpan.FromMilliseconds(timeoutMs), TimeSpan.FromMilliseconds(initialMs), multiplier, TimeSpan.FromMilliseconds(maxMs)));
    }

    [Fact]
    public void Clone_is_independent_of_the_original()
    {
        var original = CloudTasksSettings.GetDefault();
        var copy = original.Clone();
        original.GetQueueSettings = CallSettings.FromTimeout(TimeSpan.FromSeconds(1));
        Assert.Equal(CloudTasksSettings.DefaultTimeout, copy.GetQueueSettings.Timeout);
    }

    [Theory]
    [InlineData(0, 100, 200, 2.0)]
    [InlineData(3, -1, 200, 2.0)]
    [InlineData(3, 300, 200, 2.0)]
    [InlineData(3, 100, 200, 0.5)]
    public void Invalid_retry_settings_are_rejected(int attempts, int initialMs, int maxMs, double multiplier)
    {
        Assert.ThrowsAny<ArgumentException>(() => new RetrySettings(attempts, TimeSpan.FromMilliseconds(initialMs), TimeSpan.FromMilliseconds(maxMs), multiplier));
    }
}
