using Bridge.CloudTasks;
using Bridge.CloudTasks.V2Beta3;
using Bridge.Testing;
using Google.Protobuf.WellKnownTypes;
using Task = System.Threading.Tasks.Task;

namespace Bridge.Emulators.CloudTasks.Tests;

public sealed class QueueTests : IAsyncLifetime
{
    private EmulatorHost _host = null!;

    private CloudTasksClient Client => _host.Client;

    public async Task InitializeAsync() => _host = await EmulatorHost.StartAsync(o => o.QueueNameReuseDelay = TimeSpan.FromDays(7));

    public async Task DisposeAsync() => await _host.DisposeAsync();

    [Fact]
    public async Task A_created_queue_has_the_service_defaults_and_is_running()
    {
        var location = new LocationName("p", "l");
        var queue = await Client.CreateQueueAsync(location, new Queue { Name = location.Queue("defaults").ToString() });

        Assert.Equal(Queue.Types.State.Running, queue.State);
        Assert.Equal(500, queue.RateLimits.MaxDispatchesPerSecond);
        Assert.Equal(1000, queue.RateLimits.MaxConcurrentDispatches);
        Assert.Equal(100, queue.RetryConfig.MaxAttempts);
        Assert.Equal(TimeSpan.FromMilliseconds(100), queue.RetryConfig.MinBackoff.ToTimeSpan());
        Assert.Equal(TimeSpan.FromHours(1), queue.RetryConfig.MaxBackoff.ToTimeSpan());
        Assert.Equal(16, queue.RetryConfig.MaxDoublings);
        Assert.Equal(TimeSpan.FromHours(1), queue.TombstoneTtl.ToTimeSpan());
        Assert.Equal(TimeSpan.FromDays(31), queue.TaskTtl.ToTimeSpan());
        Assert.Equal(queue, await Client.GetQueueAsync(location.Queue("defaults")));
    }

    [Fact]
    public async Task Queues_list_in_lexicographic_order_across_pages()
    {
        var location = new LocationName("lister", "l");
        foreach (var id in new[] { "delta", "alpha", "echo", "charlie", "bravo" })
        {
            await Client.CreateQueueAsync(location, new Queue { Name = location.Queue(id).ToString() });
        }

        await Client.CreateQueueAsync(new LocationName("lister", "other"), new Queue { Name = new LocationName("lister", "other").Queue("zulu").ToString() });

        var pages = new List<Page<Queue>>();
        await foreach (var page in Client.ListQueues(location, pageSize: 2).AsPages())
        {
            pages.Add(page);
        }

        Assert.Equal([2, 2, 1], pages.Select(p => p.Items.Count));
        Assert.Equal(["alpha", "bravo", "charlie", "delta", "echo"], pages.SelectMany(p => p.Items).Select(q => QueueName.Parse(q.Name).QueueId));
    }

    [Fact]
    public async Task The_state_filter_selects_paused_queues()
    {
        var location = new LocationName("filter", "l");
        await Client.CreateQueueAsync(location, new Queue { Name = location.Queue("a").ToString() });
        await Client.CreateQueueAsync(location, new Queue { Name = location.Queue("b").ToString() });
        await Client.PauseQueueAsync(location.Queue("b"));

        var paused = await Collect(Client.ListQueues(location, filter: "state: PAUSED"));

        Assert.Equal([location.Queue("b").ToString()], paused.Select(q => q.Name));
        var error = await Assert.ThrowsAsync<CloudTasksException>(() => Collect(Client.ListQueues(location, filter: "name: x")));
        Assert.Equal(CloudTasksFailureReason.InvalidArgument, error.Reason);
    }

    [Fact]
    public async Task Update_changes_only_the_masked_fields()
    {
        var name = await _host.CreateQueueAsync();
        var before = await Client.GetQueueAsync(name);

        var updated = await Client.UpdateQueueAsync(
            new Queue { Name = name.ToString(), RateLimits = new RateLimits { MaxDispatchesPerSecond = 7, MaxBurstSize = 3 }, RetryConfig = new RetryConfig { MaxAttempts = 42 } },
            new FieldMask { Paths = { "rate_limits.max_dispatches_per_second" } });

        Assert.Equal(7, updated.RateLimits.MaxDispatchesPerSecond);
        Assert.Equal(7, updated.RateLimits.MaxBurstSize); // recomputed: the rate changed and no burst was given
        Assert.Equal(before.RateLimits.MaxConcurrentDispatches, updated.RateLimits.MaxConcurrentDispatches);
        Assert.Equal(before.RetryConfig, updated.RetryConfig);
        Assert.Equal(updated, await Client.GetQueueAsync(name));
    }

    [Fact]
    public async Task A_burst_given_with_the_rate_is_kept()
    {
        var name = await _host.CreateQueueAsync();

        var updated = await Client.UpdateQueueAsync(
            new Queue { Name = name.ToString(), RateLimits = new RateLimits { MaxDispatchesPerSecond = 7, MaxBurstSize = 3 } },
            new FieldMask { Paths = { "rate_limits.max_dispatches_per_second", "rate_limits.max_burst_size" } });

        Assert.Equal(3, updated.RateLimits.MaxBurstSize);
    }

    [Fact]
    public async Task Sub_field_masks_of_http_target_change_only_those_parts()
    {
        var name = await _host.CreateQueueAsync(q => q.HttpTarget = new HttpTarget
        {
            UriOverride = new UriOverride { Host = "a.example.com" },
            HeaderOverrides = { new HttpTarget.Types.HeaderOverride { Header = new HttpTarget.Types.Header { Key = "X-Env", Value = "dev" } } },
        });

        var updated = await Client.UpdateQueueAsync(
            new Queue
            {
                Name = name.ToString(),
                HttpTarget = new HttpTarget
                {
                    UriOverride = new UriOverride { Host = "b.example.com", Port = 8443 },
                    OidcToken = new OidcToken { ServiceAccountEmail = "invoker@p.iam.gserviceaccount.com" },
                },
            },
            new FieldMask { Paths = { "http_target.uri_override.host", "http_target.oidc_token.service_account_email" } });

        Assert.Equal("b.example.com", updated.HttpTarget.UriOverride.Host);
        Assert.False(updated.HttpTarget.UriOverride.HasPort); // not in the mask
        Assert.Equal("invoker@p.iam.gserviceaccount.com", updated.HttpTarget.OidcToken.ServiceAccountEmail);
        Assert.Equal("dev", Assert.Single(updated.HttpTarget.HeaderOverrides).Header.Value);
    }

    [Fact]
    public async Task Clearing_the_queues_OIDC_override_by_its_sub_fields_removes_the_token_as_gcloud_clear_flags_expect()
    {
        var name = await _host.CreateQueueAsync(q => q.HttpTarget = new HttpTarget
        {
            OidcToken = new OidcToken { ServiceAccountEmail = "invoker@p.iam.gserviceaccount.com", Audience = "https://a.example.com" },
        });

        // gcloud's --clear-http-oidc-service-account-email-override and --clear-http-oidc-token-audience-override send both
        // sub-field paths with an empty token.
        var updated = await Client.UpdateQueueAsync(
            new Queue { Name = name.ToString(), HttpTarget = new HttpTarget { OidcToken = new OidcToken() } },
            new FieldMask { Paths = { "http_target.oidc_token.service_account_email", "http_target.oidc_token.audience" } });

        Assert.Null(updated.HttpTarget?.OidcToken);
        Assert.Null((await Client.GetQueueAsync(name)).HttpTarget?.OidcToken);
    }

    [Theory]
    [InlineData("rate_limits.nope")]
    [InlineData("http_target.uri_override.nope")]
    [InlineData("type")]
    public async Task Masks_naming_no_updatable_field_are_invalid(string path)
    {
        var name = await _host.CreateQueueAsync();
        var error = await Assert.ThrowsAsync<CloudTasksException>(() => Client.UpdateQueueAsync(new Queue { Name = name.ToString() }, new FieldMask { Paths = { path } }));
        Assert.Equal(CloudTasksFailureReason.InvalidArgument, error.Reason);
        Assert.Contains(path, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Update_of_a_missing_queue_creates_it()
    {
        var name = EmulatorHost.Location.Queue("made-by-update");
        var queue = await Client.UpdateQueueAsync(new Queue { Name = name.ToString(), RateLimits = new RateLimits { MaxDispatchesPerSecond = 3 } });
        Assert.Equal(3, queue.RateLimits.MaxDispatchesPerSecond);
        Assert.Equal(Queue.Types.State.Running, (await Client.GetQueueAsync(name)).State);
    }

    [Theory]
    [InlineData("state")]
    [InlineData("name")]
    [InlineData("stats")]
    [InlineData("purge_time")]
    public async Task Update_refuses_output_only_and_immutable_fields(string path)
    {
        var name = await _host.CreateQueueAsync();
        var error = await Assert.ThrowsAsync<CloudTasksException>(() => Client.UpdateQueueAsync(new Queue { Name = name.ToString() }, new FieldMask { Paths = { path } }));
        Assert.Equal(CloudTasksFailureReason.InvalidArgument, error.Reason);
        Assert.Contains(path, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Pause_and_resume_change_the_state()
    {
        var name = await _host.CreateQueueAsync();
        Assert.Equal(Queue.Types.State.Paused, (await Client.PauseQueueAsync(name)).State);
        Assert.Equal(Queue.Types.State.Paused, (await Client.GetQueueAsync(name)).State);
        Assert.Equal(Queue.Types.State.Running, (await Client.ResumeQueueAsync(name)).State);
    }

    [Fact]
    public async Task Delete_removes_the_queue_and_its_tasks_and_reserves_the_name()
    {
        var name = await _host.CreateQueueAsync();
        await Client.PauseQueueAsync(name); // creating a queue ignores its state, as the service does
        await Client.CreateTaskAsync(name, new Bridge.CloudTasks.V2Beta3.Task { HttpRequest = new HttpRequest { Url = "http://127.0.0.1:9/x" } });

        await Client.DeleteQueueAsync(name);

        Assert.Equal(CloudTasksFailureReason.NotFound, (await Assert.ThrowsAsync<CloudTasksException>(() => Client.GetQueueAsync(name))).Reason);
        Assert.Equal(CloudTasksFailureReason.NotFound, (await Assert.ThrowsAsync<CloudTasksException>(() => Collect(Client.ListTasks(name)))).Reason);
        var recreate = await Assert.ThrowsAsync<CloudTasksException>(() => Client.CreateQueueAsync(name.Location, new Queue { Name = name.ToString() }));
        Assert.Equal(CloudTasksFailureReason.FailedPrecondition, recreate.Reason);
        Assert.Contains("existed too recently", recreate.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Creating_an_existing_queue_answers_already_exists()
    {
        var name = await _host.CreateQueueAsync();
        var error = await Assert.ThrowsAsync<CloudTasksException>(() => Client.CreateQueueAsync(name.Location, new Queue { Name = name.ToString() }));
        Assert.Equal(CloudTasksFailureReason.AlreadyExists, error.Reason);
    }

    public static TheoryData<string, Action<Queue>> InvalidQueues() => new()
    {
        { "queue.rate_limits.max_dispatches_per_second", q => q.RateLimits = new RateLimits { MaxDispatchesPerSecond = 501 } },
        { "queue.rate_limits.max_burst_size", q => q.RateLimits = new RateLimits { MaxBurstSize = 501 } },
        { "queue.rate_limits.max_concurrent_dispatches", q => q.RateLimits = new RateLimits { MaxConcurrentDispatches = 5001 } },
        { "queue.retry_config.max_attempts", q => q.RetryConfig = new RetryConfig { MaxAttempts = -2 } },
        { "queue.retry_config.min_backoff", q => q.RetryConfig = new RetryConfig { MinBackoff = Duration.FromTimeSpan(TimeSpan.FromSeconds(10)), MaxBackoff = Duration.FromTimeSpan(TimeSpan.FromSeconds(1)) } },
        { "queue.tombstone_ttl", q => q.TombstoneTtl = Duration.FromTimeSpan(TimeSpan.FromMinutes(30)) },
        { "queue.tombstone_ttl", q => q.TombstoneTtl = Duration.FromTimeSpan(TimeSpan.FromDays(10)) },
        { "queue.task_ttl", q => q.TaskTtl = Duration.FromTimeSpan(TimeSpan.FromDays(32)) },
        { "queue.stackdriver_logging_config.sampling_ratio", q => q.StackdriverLoggingConfig = new StackdriverLoggingConfig { SamplingRatio = 1.5 } },
        { "queue.retry_config.min_backoff", q => q.RetryConfig = new RetryConfig { MinBackoff = Duration.FromTimeSpan(TimeSpan.FromHours(2)) } }, // above the default max_backoff
        { "queue.http_target.header_overrides", q => q.HttpTarget = new HttpTarget { HeaderOverrides = { new HttpTarget.Types.HeaderOverride() } } },
        { "queue.http_target.header_overrides", q => q.HttpTarget = new HttpTarget { HeaderOverrides = { Override("X-Env", "a\r\nX-Injected: 1") } } },
        { "queue.http_target.header_overrides", q => q.HttpTarget = new HttpTarget { HeaderOverrides = { Override("Bad Name", "v") } } },
        { "queue.http_target.uri_override.port", q => q.HttpTarget = new HttpTarget { UriOverride = new UriOverride { Port = 70000 } } },
    };

    private static HttpTarget.Types.HeaderOverride Override(string key, string value) => new() { Header = new HttpTarget.Types.Header { Key = key, Value = value } };

    [Fact]
    public async Task Update_refuses_a_header_override_without_a_header()
    {
        var name = await _host.CreateQueueAsync();
        var error = await Assert.ThrowsAsync<CloudTasksException>(() => Client.UpdateQueueAsync(
            new Queue { Name = name.ToString(), HttpTarget = new HttpTarget { HeaderOverrides = { new HttpTarget.Types.HeaderOverride() } } },
            new FieldMask { Paths = { "http_target.header_overrides" } }));
        Assert.Equal(CloudTasksFailureReason.InvalidArgument, error.Reason);
        Assert.Equal("queue.http_target.header_overrides", Assert.Single(error.FieldViolations).Field);
    }

    [Fact]
    public async Task A_port_override_of_zero_is_accepted_and_clears_the_port()
    {
        var name = await _host.CreateQueueAsync(q => q.HttpTarget = new HttpTarget { UriOverride = new UriOverride { Port = 0 } });
        Assert.True((await Client.GetQueueAsync(name)).HttpTarget.UriOverride.HasPort);
    }

    [Theory]
    [MemberData(nameof(InvalidQueues))]
    public async Task Out_of_range_settings_are_rejected_naming_the_field(string field, Action<Queue> configure)
    {
        var queue = new Queue { Name = EmulatorHost.Location.Queue("bad-" + Guid.NewGuid().ToString("N")[..8]).ToString() };
        configure(queue);

        var error = await Assert.ThrowsAsync<CloudTasksException>(() => Client.CreateQueueAsync(EmulatorHost.Location, queue));

        Assert.Equal(CloudTasksFailureReason.InvalidArgument, error.Reason);
        Assert.Equal(field, Assert.Single(error.FieldViolations).Field);
    }

    [Theory]
    [InlineData("projects/p/locations/l/queues/bad_id")]
    [InlineData("projects/p/locations/other/queues/q")]
    [InlineData("not-a-name")]
    public async Task Malformed_or_misplaced_queue_names_are_invalid(string name)
    {
        var error = await Assert.ThrowsAsync<CloudTasksException>(() =>
            Client.CreateQueueAsync(new CreateQueueRequest { Parent = "projects/p/locations/l", Queue = new Queue { Name = name } }));
        Assert.Equal(CloudTasksFailureReason.InvalidArgument, error.Reason);
    }

    [Fact]
    public async Task Missing_queues_are_not_found()
    {
        var missing = EmulatorHost.Location.Queue("missing");
        Assert.Equal(CloudTasksFailureReason.NotFound, (await Assert.ThrowsAsync<CloudTasksException>(() => Client.GetQueueAsync(missing))).Reason);
        Assert.Equal(CloudTasksFailureReason.NotFound, (await Assert.ThrowsAsync<CloudTasksException>(() => Client.PauseQueueAsync(missing))).Reason);
        Assert.Equal(CloudTasksFailureReason.NotFound, (await Assert.ThrowsAsync<CloudTasksException>(() => Client.DeleteQueueAsync(missing))).Reason);
    }

    [Fact]
    public async Task A_read_mask_with_stats_returns_the_queue_statistics()
    {
        var name = await _host.CreateQueueAsync();
        await Client.PauseQueueAsync(name);
        for (var i = 0; i < 3; i++)
        {
            await Client.CreateTaskAsync(name, new Bridge.CloudTasks.V2Beta3.Task { HttpRequest = new HttpRequest { Url = "http://127.0.0.1:9/x" } });
        }

        var withStats = await Client.GetQueueAsync(new GetQueueRequest { Name = name.ToString(), ReadMask = new FieldMask { Paths = { "name", "state", "stats" } } });
        var plain = await Client.GetQueueAsync(name);

        Assert.Equal(3, withStats.Stats.TasksCount);
        Assert.NotNull(withStats.Stats.OldestEstimatedArrivalTime);
        Assert.Null(withStats.RateLimits); // not in the mask
        Assert.Null(plain.Stats);
    }

    [Fact]
    public async Task A_read_mask_with_a_stats_sub_path_returns_that_statistic()
    {
        var name = await _host.CreateQueueAsync();
        await Client.PauseQueueAsync(name);
        await Client.CreateTaskAsync(name, new Bridge.CloudTasks.V2Beta3.Task { HttpRequest = new HttpRequest { Url = "http://127.0.0.1:9/x" } });

        var queue = await Client.GetQueueAsync(new GetQueueRequest { Name = name.ToString(), ReadMask = new FieldMask { Paths = { "stats.tasks_count" } } });

        Assert.Equal(1, queue.Stats.TasksCount);
        Assert.Null(queue.Stats.OldestEstimatedArrivalTime); // not asked for
    }

    [Fact]
    public async Task Purge_deletes_the_tasks_created_before_it_and_records_the_purge_time()
    {
        var name = await _host.CreateQueueAsync();
        await Client.PauseQueueAsync(name);
        for (var i = 0; i < 4; i++)
        {
            await Client.CreateTaskAsync(name, new Bridge.CloudTasks.V2Beta3.Task { HttpRequest = new HttpRequest { Url = "http://127.0.0.1:9/x" } });
        }

        var purged = await Client.PurgeQueueAsync(name);
        await Client.CreateTaskAsync(name, new Bridge.CloudTasks.V2Beta3.Task { HttpRequest = new HttpRequest { Url = "http://127.0.0.1:9/after" } });

        Assert.NotNull(purged.PurgeTime);
        var left = await Collect(Client.ListTasks(name, Bridge.CloudTasks.V2Beta3.Task.Types.View.Full));
        Assert.Equal("http://127.0.0.1:9/after", Assert.Single(left).HttpRequest.Url);
    }

    private static async Task<List<T>> Collect<T>(IAsyncEnumerable<T> items)
    {
        var list = new List<T>();
        await foreach (var item in items)
        {
            list.Add(item);
        }

        return list;
    }
}
