using System.Diagnostics;
using Bridge.CloudTasks.Tests.Infrastructure;
using Bridge.CloudTasks.V2Beta3;
using Google.Apis.Auth.OAuth2;
using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Grpc.Core;
using OpenTelemetry;
using OpenTelemetry.Trace;
using Status = Grpc.Core.Status;
using StatusCode = Grpc.Core.StatusCode;
using Task = System.Threading.Tasks.Task;
using TaskMessage = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.CloudTasks.Tests;

/// <summary>Paging, retries, deadlines, errors, credentials and trace context, against a real server on loopback.</summary>
public sealed class ClientBehaviourTests : IAsyncLifetime
{
    private static readonly QueueName Queue = new("p", "l", "q");

    private static readonly RetrySettings FastRetry = new(4, TimeSpan.FromMilliseconds(5), TimeSpan.FromMilliseconds(20), 2.0, StatusCode.Unavailable, StatusCode.DeadlineExceeded);

    private RecordingCloudTasksServer _server = null!;
    private CloudTasksClient _client = null!;

    public async Task InitializeAsync()
    {
        _server = await RecordingCloudTasksServer.StartAsync();
        _client = CreateEmulatorClient();
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _server.DisposeAsync();
    }

    private CloudTasksClient CreateEmulatorClient(CloudTasksSettings? settings = null) =>
        new CloudTasksClientBuilder { EmulatorHost = _server.HostPort, EmulatorDetection = EmulatorDetection.None, Settings = settings }.Build();

    private static CloudTasksSettings SettingsWithFastIdempotentRetry()
    {
        var settings = CloudTasksSettings.GetDefault();
        settings.GetQueueSettings = settings.GetQueueSettings with { Retry = FastRetry };
        settings.ListQueuesSettings = settings.ListQueuesSettings with { Retry = FastRetry };
        return settings;
    }

    // ---- paging ----

    private void ServeQueuesInPages(int total, int pageSize)
    {
        _server.Handler = (method, request, _) =>
        {
            var r = (ListQueuesRequest)request;
            var start = r.PageToken.Length == 0 ? 0 : int.Parse(r.PageToken, System.Globalization.CultureInfo.InvariantCulture);
            var size = r.PageSize > 0 ? r.PageSize : pageSize;
            var response = new ListQueuesResponse();
            for (var i = start; i < Math.Min(total, start + size); i++)
            {
                response.Queues.Add(new Queue { Name = $"projects/p/locations/l/queues/q{i:D2}" });
            }

            response.NextPageToken = start + size < total ? (start + size).ToString(System.Globalization.CultureInfo.InvariantCulture) : string.Empty;
            return response;
        };
    }

    [Fact]
    public async Task Paged_list_fetches_every_page_lazily_and_passes_tokens()
    {
        ServeQueuesInPages(total: 5, pageSize: 2);
        var sequence = _client.ListQueues(Queue.Location, pageSize: 2);
        Assert.Empty(_server.Calls); // nothing fetched before enumeration

        var names = new List<string>();
        await foreach (var queue in sequence)
        {
            names.Add(queue.Name[^3..]);
        }

        Assert.Equal(["q00", "q01", "q02", "q03", "q04"], names);
        var tokens = _server.Calls.Select(c => ((ListQueuesRequest)c.Request).PageToken).ToList();
        Assert.Equal(["", "2", "4"], tokens);
        Assert.All(_server.Calls, c => Assert.Equal(2, ((ListQueuesRequest)c.Request).PageSize));
    }

    [Fact]
    public async Task Pages_expose_their_items_and_next_page_token()
    {
        ServeQueuesInPages(total: 5, pageSize: 2);
        var pages = new List<Page<Queue>>();
        await foreach (var page in _client.ListQueues(Queue.Location, pageSize: 2).AsPages())
        {
            pages.Add(page);
        }

        Assert.Equal([2, 2, 1], pages.Select(p => p.Items.Count));
        Assert.Equal(["2", "4", ""], pages.Select(p => p.NextPageToken));
    }

    [Fact]
    public async Task Reading_one_page_fetches_only_that_page_and_resumes_from_its_token()
    {
        ServeQueuesInPages(total: 5, pageSize: 2);
        var first = await _client.ListQueues(Queue.Location).ReadPageAsync(3);
        Assert.Equal(3, first.Items.Count);
        Assert.Single(_server.Calls);

        var rest = new List<Queue>();
        await foreach (var q in _client.ListQueues(Queue.Location, pageToken: first.NextPageToken, pageSize: 3))
        {
            rest.Add(q);
        }

        Assert.Equal(["projects/p/locations/l/queues/q03", "projects/p/locations/l/queues/q04"], rest.Select(q => q.Name));
    }

    [Fact]
    public async Task Stopping_enumeration_early_fetches_no_further_pages()
    {
        ServeQueuesInPages(total: 50, pageSize: 5);
        await foreach (var queue in _client.ListQueues(Queue.Location, pageSize: 5))
        {
            if (queue.Name.EndsWith("q06", StringComparison.Ordinal))
            {
                break;
            }
        }

        Assert.Equal(2, _server.Calls.Count);
    }

    [Fact]
    public async Task List_tasks_pages_carry_the_view()
    {
        var served = 0;
        _server.Handler = (_, request, _) =>
        {
            var r = (ListTasksRequest)request;
            served++;
            return new ListTasksResponse
            {
                Tasks = { new TaskMessage { Name = $"{r.Parent}/tasks/t{served}", View = r.ResponseView } },
                NextPageToken = served < 3 ? "more" + served : string.Empty,
            };
        };

        var tasks = new List<TaskMessage>();
        await foreach (var t in _client.ListTasks(Queue, TaskMessage.Types.View.Full))
        {
            tasks.Add(t);
        }

        Assert.Equal(3, tasks.Count);
        Assert.All(_server.Calls, c => Assert.Equal(TaskMessage.Types.View.Full, ((ListTasksRequest)c.Request).ResponseView));
    }

    // ---- retries ----

    [Fact]
    public async Task Idempotent_calls_retry_unavailable_until_success()
    {
        using var client = CreateEmulatorClient(SettingsWithFastIdempotentRetry());
        _server.FailFirst(2, StatusCode.Unavailable);

        var queue = await client.GetQueueAsync(Queue);

        Assert.Equal(Queue.ToString(), queue.Name);
        Assert.Equal(3, _server.Calls.Count);
    }

    [Fact]
    public async Task Idempotent_calls_give_up_after_max_attempts_with_a_transient_error()
    {
        using var client = CreateEmulatorClient(SettingsWithFastIdempotentRetry());
        _server.FailFirst(100, StatusCode.Unavailable);

        var error = await Assert.ThrowsAsync<CloudTasksException>(() => client.GetQueueAsync(Queue));

        Assert.Equal(4, _server.Calls.Count);
        Assert.Equal(CloudTasksFailureReason.Unavailable, error.Reason);
        Assert.True(error.IsTransient);
        Assert.Equal("GetQueue", error.Method);
    }

    [Fact]
    public async Task Non_retryable_codes_are_not_retried()
    {
        using var client = CreateEmulatorClient(SettingsWithFastIdempotentRetry());
        _server.FailFirst(1, StatusCode.NotFound);

        var error = await Assert.ThrowsAsync<CloudTasksException>(() => client.GetQueueAsync(Queue));

        Assert.Single(_server.Calls);
        Assert.Equal(CloudTasksFailureReason.NotFound, error.Reason);
        Assert.False(error.IsTransient);
    }

    [Fact]
    public async Task Create_task_is_not_retried_by_default()
    {
        _server.FailFirst(1, StatusCode.Unavailable);

        var error = await Assert.ThrowsAsync<CloudTasksException>(() => _client.CreateTaskAsync(Queue, new TaskMessage()));

        Assert.Single(_server.Calls);
        Assert.True(error.IsTransient);
    }

    [Fact]
    public async Task A_per_call_retry_setting_makes_create_task_retry()
    {
        _server.FailFirst(2, StatusCode.Unavailable);

        var task = await _client.CreateTaskAsync(
            new CreateTaskRequest { Parent = Queue.ToString(), Task = new TaskMessage { Name = Queue.Task("named").ToString() } },
            CallSettings.FromRetry(FastRetry));

        Assert.Equal(Queue.Task("named").ToString(), task.Name);
        Assert.Equal(3, _server.Calls.Count);
    }

    [Fact]
    public async Task A_per_call_no_retry_setting_overrides_the_method_default()
    {
        using var client = CreateEmulatorClient(SettingsWithFastIdempotentRetry());
        _server.FailFirst(1, StatusCode.Unavailable);

        await Assert.ThrowsAsync<CloudTasksException>(() => client.GetQueueAsync(new GetQueueRequest { Name = Queue.ToString() }, CallSettings.FromRetry(RetrySettings.None)));

        Assert.Single(_server.Calls);
    }

    // ---- deadlines ----

    [Fact]
    public async Task The_default_deadline_is_sent_with_each_call()
    {
        var before = TimeProvider.System.GetUtcNow().UtcDateTime;
        await _client.GetQueueAsync(Queue);
        var deadline = _server.Single("GetQueue").Deadline;
        Assert.InRange(deadline, before + CloudTasksSettings.DefaultTimeout - TimeSpan.FromSeconds(2), before + CloudTasksSettings.DefaultTimeout + TimeSpan.FromSeconds(2));
    }

    [Fact]
    public async Task A_per_call_timeout_replaces_the_default_deadline()
    {
        var before = TimeProvider.System.GetUtcNow().UtcDateTime;
        await _client.GetQueueAsync(new GetQueueRequest { Name = Queue.ToString() }, CallSettings.FromTimeout(TimeSpan.FromSeconds(3)));
        var deadline = _server.Single("GetQueue").Deadline;
        Assert.InRange(deadline, before + TimeSpan.FromSeconds(1), before + TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task A_server_slower_than_the_deadline_surfaces_deadline_exceeded_as_transient()
    {
        _server.ResponseDelay = TimeSpan.FromSeconds(3);

        var error = await Assert.ThrowsAsync<CloudTasksException>(() =>
            _client.CreateTaskAsync(new CreateTaskRequest { Parent = Queue.ToString(), Task = new TaskMessage() }, CallSettings.FromTimeout(TimeSpan.FromMilliseconds(200))));

        Assert.Equal(CloudTasksFailureReason.DeadlineExceeded, error.Reason);
        Assert.True(error.IsTransient);
    }

    [Fact]
    public async Task Retries_stop_at_the_overall_deadline()
    {
        _server.FailFirst(1000, StatusCode.Unavailable);
        var slowRetry = new RetrySettings(100, TimeSpan.FromMilliseconds(300), TimeSpan.FromMilliseconds(300), 1.0, StatusCode.Unavailable) { Jitter = false };

        var error = await Assert.ThrowsAsync<CloudTasksException>(() =>
            _client.GetQueueAsync(new GetQueueRequest { Name = Queue.ToString() }, new CallSettings { Retry = slowRetry, Timeout = TimeSpan.FromMilliseconds(1000) }));

        Assert.InRange(_server.Calls.Count, 2, 4);
        Assert.True(error.IsTransient);
    }

    [Fact]
    public async Task Cancellation_by_the_caller_surfaces_as_operation_canceled()
    {
        _server.ResponseDelay = TimeSpan.FromSeconds(3);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => _client.GetQueueAsync(Queue, cts.Token));
    }

    // ---- errors ----

    [Fact]
    public async Task Already_exists_maps_to_its_reason_and_is_not_transient()
    {
        _server.Handler = (_, _, _) => throw new RpcException(new Status(StatusCode.AlreadyExists, "Requested entity already exists"));

        var error = await Assert.ThrowsAsync<CloudTasksException>(() => _client.CreateTaskAsync(Queue, new TaskMessage { Name = Queue.Task("t").ToString() }));

        Assert.Equal(CloudTasksFailureReason.AlreadyExists, error.Reason);
        Assert.Equal(StatusCode.AlreadyExists, error.StatusCode);
        Assert.False(error.IsTransient);
        Assert.Contains("Requested entity already exists", error.Message, StringComparison.Ordinal);
        Assert.IsType<RpcException>(error.InnerException);
    }

    [Fact]
    public async Task Bad_request_details_become_field_violations_and_retry_info_a_delay()
    {
        _server.Handler = (_, _, _) => throw new Google.Rpc.Status
        {
            Code = (int)Code.InvalidArgument,
            Message = "Task schedule time is too far in the future",
            Details =
            {
                Any.Pack(new BadRequest { FieldViolations = { new BadRequest.Types.FieldViolation { Field = "task.schedule_time", Description = "no more than 720h in the future" } } }),
                Any.Pack(new RetryInfo { RetryDelay = Duration.FromTimeSpan(TimeSpan.FromSeconds(7)) }),
            },
        }.ToRpcException();

        var error = await Assert.ThrowsAsync<CloudTasksException>(() => _client.CreateTaskAsync(Queue, new TaskMessage()));

        Assert.Equal(CloudTasksFailureReason.InvalidArgument, error.Reason);
        var violation = Assert.Single(error.FieldViolations);
        Assert.Equal(("task.schedule_time", "no more than 720h in the future"), (violation.Field, violation.Description));
        Assert.Equal(TimeSpan.FromSeconds(7), error.RetryDelay);
    }

    [Theory]
    [InlineData(StatusCode.Unavailable, true)]
    [InlineData(StatusCode.ResourceExhausted, true)]
    [InlineData(StatusCode.Internal, true)]
    [InlineData(StatusCode.Aborted, true)]
    [InlineData(StatusCode.PermissionDenied, false)]
    [InlineData(StatusCode.Unauthenticated, false)]
    [InlineData(StatusCode.FailedPrecondition, false)]
    [InlineData(StatusCode.InvalidArgument, false)]
    public async Task Each_status_maps_to_a_reason_with_the_right_transience(StatusCode code, bool transient)
    {
        _server.Handler = (_, _, _) => throw new RpcException(new Status(code, "x"));

        var error = await Assert.ThrowsAsync<CloudTasksException>(() => _client.PauseQueueAsync(Queue));

        Assert.Equal(code.ToString(), error.Reason.ToString());
        Assert.Equal(transient, error.IsTransient);
    }

    // ---- credentials ----

    [Fact]
    public async Task Production_calls_carry_the_credential_as_a_bearer_token_over_tls()
    {
        await using var tlsServer = await RecordingCloudTasksServer.StartAsync(tls: true);
        var handler = tlsServer.CreateTrustingHandler();
        using var client = new CloudTasksClientBuilder
        {
            Endpoint = tlsServer.Address.ToString(),
            EmulatorDetection = EmulatorDetection.None,
            Credential = new StaticToken("test-access-token"),
            HttpHandler = handler,
        }.Build();

        await client.GetQueueAsync(Queue);
        await client.CreateTaskAsync(Queue, new TaskMessage());

        Assert.All(tlsServer.Calls, c => Assert.Equal("Bearer test-access-token", c.Headers["authorization"]));
        handler.Dispose();
    }

    [Fact]
    public async Task Emulator_calls_carry_no_credentials()
    {
        await _client.GetQueueAsync(Queue);
        Assert.False(_server.Single("GetQueue").Headers.ContainsKey("authorization"));
    }

    [Fact]
    public void A_plaintext_production_endpoint_is_refused_so_tokens_never_travel_in_clear()
    {
        var error = Assert.Throws<InvalidOperationException>(() => new CloudTasksClientBuilder
        {
            Endpoint = _server.Address.ToString(),
            EmulatorDetection = EmulatorDetection.None,
            Credential = new StaticToken("t"),
        }.Build());
        Assert.Contains("not https", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_emulator_environment_variable_selects_a_plaintext_channel()
    {
        using var client = new CloudTasksClientBuilder
        {
            GetEnvironmentVariable = name => name == CloudTasksClient.EmulatorHostEnvironmentVariable ? _server.HostPort : null,
        }.Build();

        await client.GetQueueAsync(Queue);

        Assert.False(_server.Single("GetQueue").Headers.ContainsKey("authorization"));
    }

    [Fact]
    public void Emulator_only_without_an_emulator_host_fails_clearly()
    {
        var error = Assert.Throws<InvalidOperationException>(() => new CloudTasksClientBuilder
        {
            EmulatorDetection = EmulatorDetection.EmulatorOnly,
            GetEnvironmentVariable = _ => null,
        }.Build());
        Assert.Contains(CloudTasksClient.EmulatorHostEnvironmentVariable, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_emulator_variable_together_with_explicit_credentials_is_ambiguous_and_refused()
    {
        var error = Assert.Throws<InvalidOperationException>(() => new CloudTasksClientBuilder
        {
            Credential = new StaticToken("t"),
            GetEnvironmentVariable = _ => "localhost:1",
        }.Build());
        Assert.Contains("unclear", error.Message, StringComparison.Ordinal);
    }

    // ---- telemetry ----

    [Fact]
    public async Task Each_call_has_a_client_span_and_sends_its_trace_context()
    {
        var spans = new List<Activity>();
        using (var tracer = Sdk.CreateTracerProviderBuilder().AddSource("Bridge.CloudTasks").AddInMemoryExporter(spans).Build())
        using (var parent = StartSampledParent())
        {
            await _client.GetQueueAsync(Queue);
            spans = OnlyTrace(spans, parent);
        }

        var span = Assert.Single(spans);
        Assert.Equal("google.cloud.tasks.v2beta3.CloudTasks/GetQueue", span.DisplayName);
        Assert.Equal(ActivityKind.Client, span.Kind);
        Assert.Equal("grpc", span.GetTagItem("rpc.system"));
        Assert.Equal("google.cloud.tasks.v2beta3.CloudTasks", span.GetTagItem("rpc.service"));
        Assert.Equal("GetQueue", span.GetTagItem("rpc.method"));
        Assert.Equal(0, span.GetTagItem("rpc.grpc.status_code"));
        Assert.Equal("127.0.0.1", span.GetTagItem("server.address"));

        var traceparent = _server.Single("GetQueue").Headers["traceparent"];
        Assert.Equal($"00-{span.TraceId}-{span.SpanId}-01", traceparent);
    }

    [Fact]
    public async Task A_failed_call_marks_its_span_as_an_error_with_the_status_code()
    {
        _server.Handler = (_, _, _) => throw new RpcException(new Status(StatusCode.NotFound, "no such queue"));
        var spans = new List<Activity>();
        using (var tracer = Sdk.CreateTracerProviderBuilder().AddSource("Bridge.CloudTasks").AddInMemoryExporter(spans).Build())
        using (var parent = StartSampledParent())
        {
            await Assert.ThrowsAsync<CloudTasksException>(() => _client.GetQueueAsync(Queue));
            spans = OnlyTrace(spans, parent);
        }

        var span = Assert.Single(spans);
        Assert.Equal(ActivityStatusCode.Error, span.Status);
        Assert.Equal((int)StatusCode.NotFound, span.GetTagItem("rpc.grpc.status_code"));
        Assert.Equal("NotFound", span.GetTagItem("error.type"));
    }

    [Fact]
    public async Task The_callers_trace_continues_through_the_call_even_without_a_listener()
    {
        using var parent = new Activity("forward").SetIdFormat(ActivityIdFormat.W3C).Start();

        await _client.GetQueueAsync(Queue);

        var traceparent = _server.Single("GetQueue").Headers["traceparent"];
        Assert.StartsWith($"00-{parent.TraceId}-", traceparent, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Exactly_one_traceparent_is_sent()
    {
        using var parent = new Activity("forward").SetIdFormat(ActivityIdFormat.W3C).Start();
        await _client.GetQueueAsync(Queue);
        Assert.DoesNotContain(",", _server.Single("GetQueue").Headers["traceparent"], StringComparison.Ordinal);
    }

    private static Activity StartSampledParent()
    {
        var parent = new Activity("test").SetIdFormat(ActivityIdFormat.W3C);
        parent.ActivityTraceFlags = ActivityTraceFlags.Recorded;
        return parent.Start();
    }

    // Other tests run in parallel and use the same activity source: keep only this test's trace.
    private static List<Activity> OnlyTrace(List<Activity> spans, Activity parent)
    {
        lock (spans)
        {
            return spans.Where(s => s.TraceId == parent.TraceId).ToList();
        }
    }

    private sealed class StaticToken(string token) : ITokenAccess
    {
        public Task<string> GetAccessTokenForRequestAsync(string? authUri = null, CancellationToken cancellationToken = default) => Task.FromResult(token);
    }
}
