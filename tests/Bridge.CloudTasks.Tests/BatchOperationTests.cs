using Bridge.CloudTasks.LongRunning;
using Bridge.CloudTasks.Tests.Infrastructure;
using Bridge.CloudTasks.V2Beta3;
using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Grpc.Core;
using Status = Grpc.Core.Status;
using StatusCode = Grpc.Core.StatusCode;
using Task = System.Threading.Tasks.Task;
using TaskMessage = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.CloudTasks.Tests;

/// <summary>
/// BatchCreateTasks / BatchDeleteTasks and their long-running operations against a real gRPC server on loopback:
/// polling, the overall deadline and cancellation while polling (on a fake clock advanced exactly when the client
/// waits), per-request failures from the metadata, and the published retry classes.
/// </summary>
public sealed class BatchOperationTests : IAsyncLifetime
{
    private static readonly QueueName Queue = new("p", "l", "q");
    private static readonly OperationName Operation1 = Queue.Location.Operation("batch-1");
    private static readonly string OpName = Operation1.ToString();
    private static readonly TimeSpan Bounded = TimeSpan.FromSeconds(30);

    private RecordingCloudTasksServer _server = null!;
    private ObservedTimeProvider _time = null!;
    private CloudTasksClient _client = null!;

    public async Task InitializeAsync()
    {
        _server = await RecordingCloudTasksServer.StartAsync();
        _time = new ObservedTimeProvider();
        _client = CreateClient();
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _server.DisposeAsync();
    }

    private CloudTasksClient CreateClient(CloudTasksSettings? settings = null) =>
        new CloudTasksClientBuilder { EmulatorHost = _server.HostPort, EmulatorDetection = EmulatorDetection.None, Settings = settings, TimeProvider = _time }.Build();

    private static TaskMessage[] Tasks(int count) =>
        Enumerable.Range(0, count).Select(i => new TaskMessage { Name = Queue.Task($"t{i}").ToString() }).ToArray();

    private static Operation Running() => new()
    {
        Name = OpName,
        Metadata = Any.Pack(new BatchCreateTasksMetadata { State = BatchCreateTasksMetadata.Types.State.Running }),
    };

    private static Operation PartiallySucceeded() => new()
    {
        Name = OpName,
        Done = true,
        Metadata = Any.Pack(new BatchCreateTasksMetadata
        {
            State = BatchCreateTasksMetadata.Types.State.PartiallySucceeded,
            FailedRequests =
            {
                [1] = new Google.Rpc.Status { Code = (int)Code.AlreadyExists, Message = "Requested entity already exists" },
                [2] = new Google.Rpc.Status
                {
                    Code = (int)Code.InvalidArgument,
                    Message = "Task size too large",
                    Details = { Any.Pack(new BadRequest { FieldViolations = { new BadRequest.Types.FieldViolation { Field = "task", Description = "larger than 100KB" } } }) },
                },
                [3] = new Google.Rpc.Status { Code = (int)Code.Unavailable, Message = "try again" },
            },
        }),
        Response = Any.Pack(new BatchCreateTasksResponse { Tasks = { Tasks(5)[0], Tasks(5)[4] } }),
    };

    /// <summary>BatchCreateTasks answers with a running operation; GetOperation answers from <paramref name="polls"/> in turn.</summary>
    private void ServeOperation(params Operation[] polls)
    {
        var served = 0;
        _server.Handler = (method, _, _) => method switch
        {
            "BatchCreateTasks" => Running(),
            "GetOperation" => polls[Math.Min(Interlocked.Increment(ref served), polls.Length) - 1],
            _ => throw new RpcException(new Status(StatusCode.Unimplemented, method)),
        };
    }

    /// <summary>
    /// BatchCreateTasks answers a running operation; every poll then hangs until the client cancels it (deadline or
    /// token). Entered: a poll reached the server; ServerSawCancellation: the server saw it cancelled.
    /// </summary>
    private (Task Entered, Task ServerSawCancellation) HoldPollsUntilCancelled()
    {
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var serverSawCancellation = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _server.AsyncHandler = async (method, _, context) =>
        {
            if (method == "BatchCreateTasks")
            {
                return Running();
            }

            entered.TrySetResult();
            await context.CancellationToken.WhenCancelled();
            serverSawCancellation.TrySetResult();
            throw new RpcException(new Status(StatusCode.Cancelled, "client went away"));
        };
        return (entered.Task, serverSawCancellation.Task);
    }

    private int CallsTo(string method) => _server.Calls.Count(c => c.Method == method);

    // ---- polling ----

    [Fact]
    public async Task Polling_follows_the_backoff_until_done_and_sends_the_operation_name()
    {
        ServeOperation(Running(), Running(), PartiallySucceeded());
        var operation = await _client.BatchCreateTasksAsync(Queue, Tasks(5));
        Assert.False(operation.IsCompleted);
        Assert.Equal(BatchCreateTasksMetadata.Types.State.Running, operation.Metadata!.State);
        Assert.Null(operation.Response);

        var wait = operation.PollUntilCompletedAsync(new PollSettings(TimeSpan.FromMinutes(5), TimeSpan.FromSeconds(1), 2.0, TimeSpan.FromSeconds(3)));
        Assert.Equal(TimeSpan.FromMinutes(5), await _time.NextTimerAsync()); // the overall deadline
        var delays = await _time.AdvanceThroughTimersAsync(wait);
        var done = await wait.WaitAsync(Bounded);

        Assert.Equal([TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(3)], delays);
        Assert.Equal(3, CallsTo("GetOperation"));
        Assert.All(_server.Calls.Where(c => c.Method == "GetOperation"), c =>
        {
            Assert.Equal(OpName, ((GetOperationRequest)c.Request).Name);
            Assert.Equal("name=" + Uri.EscapeDataString(OpName), c.Headers["x-goog-request-params"]);
        });
        Assert.True(done.IsCompleted);
        Assert.False(done.IsFaulted);
        Assert.Equal(BatchCreateTasksMetadata.Types.State.PartiallySucceeded, done.Metadata!.State);
        Assert.Equal(2, done.Response!.Tasks.Count);
        Assert.False(operation.IsCompleted); // snapshots: the first one is unchanged
    }

    [Fact]
    public async Task A_done_operation_is_returned_without_polling()
    {
        var operation = await _client.BatchCreateTasksAsync(Queue, Tasks(2));

        var done = await operation.PollUntilCompletedAsync().WaitAsync(Bounded);

        Assert.Same(operation, done);
        Assert.Equal(0, CallsTo("GetOperation"));
    }

    [Fact]
    public async Task The_overall_poll_timeout_ends_the_wait_with_deadline_exceeded()
    {
        ServeOperation(Running());
        var operation = await _client.BatchCreateTasksAsync(Queue, Tasks(1));

        var wait = operation.PollUntilCompletedAsync(new PollSettings(TimeSpan.FromSeconds(9), TimeSpan.FromSeconds(2), 1.0, TimeSpan.FromSeconds(2)));
        Assert.Equal(TimeSpan.FromSeconds(9), await _time.NextTimerAsync());
        await _time.AdvanceThroughTimersAsync(wait);

        var error = await Assert.ThrowsAsync<CloudTasksException>(() => wait.WaitAsync(Bounded));
        Assert.Equal(CloudTasksFailureReason.DeadlineExceeded, error.Reason);
        Assert.True(error.IsTransient);
        Assert.Contains($"'{OpName}' was not done after", error.Message, StringComparison.Ordinal);
        Assert.Equal(4, CallsTo("GetOperation")); // at 2, 4, 6 and 8 s; the deadline at 9 s cut the wait for the fifth
    }

    [Fact]
    public async Task The_overall_poll_timeout_cuts_a_poll_in_flight_short()
    {
        var (entered, serverSawCancellation) = HoldPollsUntilCancelled();
        var operation = await _client.BatchCreateTasksAsync(Queue, Tasks(1));

        var wait = operation.PollUntilCompletedAsync(new PollSettings(TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(1), 1.0, TimeSpan.FromSeconds(1)));
        Assert.Equal(TimeSpan.FromSeconds(5), await _time.NextTimerAsync());
        _time.Fake.Advance(await _time.NextTimerAsync());
        await entered.WaitAsync(Bounded);
        _time.Fake.Advance(TimeSpan.FromSeconds(4));

        var error = await Assert.ThrowsAsync<CloudTasksException>(() => wait.WaitAsync(Bounded));
        Assert.Equal(CloudTasksFailureReason.DeadlineExceeded, error.Reason);
        Assert.Contains("was not done after", error.Message, StringComparison.Ordinal);
        await serverSawCancellation.WaitAsync(Bounded);
    }

    [Fact]
    public async Task Cancellation_between_polls_stops_polling()
    {
        ServeOperation(Running());
        var operation = await _client.BatchCreateTasksAsync(Queue, Tasks(1));
        using var cts = new CancellationTokenSource();

        var wait = operation.PollUntilCompletedAsync(new PollSettings(TimeSpan.FromMinutes(1), TimeSpan.FromSeconds(1), 1.0, TimeSpan.FromSeconds(1)), cancellationToken: cts.Token);
        await _time.NextTimerAsync(); // overall deadline
        await _time.NextTimerAsync(); // the wait before the first poll
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => wait.WaitAsync(Bounded));
        Assert.Equal(0, CallsTo("GetOperation"));
    }

    [Fact]
    public async Task Cancellation_during_a_poll_cancels_the_call()
    {
        var (entered, serverSawCancellation) = HoldPollsUntilCancelled();
        var operation = await _client.BatchCreateTasksAsync(Queue, Tasks(1));
        using var cts = new CancellationTokenSource();

        var wait = operation.PollUntilCompletedAsync(new PollSettings(TimeSpan.FromMinutes(1), TimeSpan.FromSeconds(1), 1.0, TimeSpan.FromSeconds(1)), cancellationToken: cts.Token);
        await _time.NextTimerAsync();
        _time.Fake.Advance(await _time.NextTimerAsync());
        await entered.WaitAsync(Bounded);
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => wait.WaitAsync(Bounded));
        await serverSawCancellation.WaitAsync(Bounded);
    }

    [Fact]
    public async Task The_client_settings_give_the_default_poll_settings()
    {
        var settings = CloudTasksSettings.GetDefault();
        settings.BatchCreateTasksPollSettings = new PollSettings(TimeSpan.FromSeconds(42), TimeSpan.FromSeconds(3), 1.0, TimeSpan.FromSeconds(3));
        using var client = CreateClient(settings);
        ServeOperation(Running(), PartiallySucceeded());
        var operation = await client.BatchCreateTasksAsync(Queue, Tasks(1));

        var wait = operation.PollUntilCompletedAsync();
        Assert.Equal(TimeSpan.FromSeconds(42), await _time.NextTimerAsync());
        var delays = await _time.AdvanceThroughTimersAsync(wait);
        await wait.WaitAsync(Bounded);

        Assert.Equal([TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(3)], delays);
    }

    [Fact]
    public async Task An_operation_is_picked_up_again_by_name()
    {
        ServeOperation(PartiallySucceeded());

        var operation = await _client.PollOnceBatchCreateTasksAsync(OpName);

        Assert.True(operation.IsCompleted);
        Assert.Equal(OpName, operation.Name);
        Assert.Equal(3, operation.Metadata!.FailedRequests.Count);
        Assert.Equal(OpName, ((GetOperationRequest)_server.Single("GetOperation").Request).Name);
    }

    [Fact]
    public async Task An_operation_can_be_asked_to_cancel()
    {
        _server.Handler = (method, _, _) => method == "CancelOperation" ? new Empty() : Running();
        var operation = await _client.BatchCreateTasksAsync(Queue, Tasks(1));

        await operation.CancelAsync();

        var call = _server.Single("CancelOperation");
        Assert.Equal(OpName, ((CancelOperationRequest)call.Request).Name);
        Assert.Equal("name=" + Uri.EscapeDataString(OpName), call.Headers["x-goog-request-params"]);
    }

    // ---- per-request failures ----

    [Fact]
    public async Task Per_request_failures_are_read_from_the_metadata_by_index()
    {
        _server.Handler = (_, _, _) => PartiallySucceeded();

        var operation = await _client.BatchCreateTasksAsync(Queue, Tasks(5));
        var failures = operation.Metadata!.GetRequestFailures();

        Assert.False(operation.IsFaulted);
        Assert.Equal([1, 2, 3], failures.Keys.Order());
        Assert.Equal(CloudTasksFailureReason.AlreadyExists, failures[1].Reason);
        Assert.False(failures[1].IsTransient);
        Assert.Contains("BatchCreateTasks request 1 failed", failures[1].Message, StringComparison.Ordinal);
        Assert.Equal(CloudTasksFailureReason.InvalidArgument, failures[2].Reason);
        Assert.Equal(new CloudTasksFieldViolation("task", "larger than 100KB"), Assert.Single(failures[2].FieldViolations));
        Assert.Equal(CloudTasksFailureReason.Unavailable, failures[3].Reason);
        Assert.True(failures[3].IsTransient);
        Assert.Equal([Queue.Task("t0").ToString(), Queue.Task("t4").ToString()], operation.Response!.Tasks.Select(t => t.Name));
    }

    [Fact]
    public async Task When_every_request_fails_the_operation_is_faulted_and_the_metadata_still_names_each_failure()
    {
        _server.Handler = (_, _, _) => new Operation
        {
            Name = OpName,
            Done = true,
            Error = new Google.Rpc.Status { Code = (int)Code.Aborted, Message = "None of the requests succeeded, refer to BatchDeleteTasksMetadata.failed_requests for individual error details" },
            Metadata = Any.Pack(new BatchDeleteTasksMetadata
            {
                State = BatchDeleteTasksMetadata.Types.State.PartiallySucceeded,
                FailedRequests = { [0] = new Google.Rpc.Status { Code = (int)Code.NotFound, Message = "no such task" }, [1] = new Google.Rpc.Status { Code = (int)Code.NotFound, Message = "no such task" } },
            }),
        };

        var operation = await _client.BatchDeleteTasksAsync(Queue, [Queue.Task("a"), Queue.Task("b")]);

        Assert.True(operation.IsFaulted);
        Assert.Equal(CloudTasksFailureReason.Aborted, operation.Exception!.Reason);
        Assert.Equal("BatchDeleteTasks", operation.Exception.Method);
        Assert.Null(operation.Response);
        Assert.All(operation.Metadata!.GetRequestFailures().Values, f => Assert.Equal(CloudTasksFailureReason.NotFound, f.Reason));
        Assert.Equal(2, operation.Metadata.GetRequestFailures().Count);
    }

    [Fact]
    public async Task Metadata_of_another_type_is_refused_naming_both_types()
    {
        _server.Handler = (_, _, _) => new Operation { Name = OpName, Metadata = Any.Pack(new BatchDeleteTasksMetadata()) };

        var error = await Assert.ThrowsAsync<CloudTasksException>(() => _client.BatchCreateTasksAsync(Queue, Tasks(1)));

        Assert.Equal(CloudTasksFailureReason.DataLoss, error.Reason);
        Assert.False(error.IsTransient);
        Assert.Contains("google.cloud.tasks.v2beta3.BatchDeleteTasksMetadata", error.Message, StringComparison.Ordinal);
        Assert.Contains("expected 'google.cloud.tasks.v2beta3.BatchCreateTasksMetadata'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_operation_without_a_name_is_refused()
    {
        _server.Handler = (_, _, _) => new Operation { Done = false };

        var error = await Assert.ThrowsAsync<CloudTasksException>(() => _client.BatchDeleteTasksAsync(Queue, [Queue.Task("a")]));

        Assert.Contains("without a name", error.Message, StringComparison.Ordinal);
    }

    // ---- limits checked before sending ----

    [Fact]
    public async Task More_than_100_creates_are_refused_before_sending()
    {
        var error = await Assert.ThrowsAsync<ArgumentException>(() => _client.BatchCreateTasksAsync(Queue, Tasks(101)));
        Assert.Contains("1 to 100 requests; this one has 101", error.Message, StringComparison.Ordinal);
        Assert.Empty(_server.Calls);
        await _client.BatchCreateTasksAsync(Queue, Tasks(100));
        Assert.Equal(100, ((BatchCreateTasksRequest)_server.Single("BatchCreateTasks").Request).Requests.Count);
    }

    [Fact]
    public async Task A_create_for_another_queue_is_refused_naming_its_index()
    {
        var request = new BatchCreateTasksRequest { Parent = Queue.ToString() };
        request.Requests.Add(new CreateTaskRequest { Parent = Queue.ToString(), Task = new TaskMessage() });
        request.Requests.Add(new CreateTaskRequest { Parent = Queue.Location.Queue("other").ToString(), Task = new TaskMessage() });

        var error = await Assert.ThrowsAsync<ArgumentException>(() => _client.BatchCreateTasksAsync(request));

        Assert.Contains("request 1 is for queue 'projects/p/locations/l/queues/other'", error.Message, StringComparison.Ordinal);
        Assert.Empty(_server.Calls);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1001)]
    public async Task Batch_deletes_outside_1_to_1000_names_are_refused(int count)
    {
        var names = Enumerable.Range(0, count).Select(i => Queue.Task($"t{i}"));

        var error = await Assert.ThrowsAsync<ArgumentException>(() => _client.BatchDeleteTasksAsync(Queue, names));

        Assert.Contains($"1 to 1000 tasks; this one names {count}", error.Message, StringComparison.Ordinal);
        Assert.Empty(_server.Calls);
    }

    // ---- retry classes and deadlines as published ----

    [Theory]
    [InlineData("BatchCreateTasks")]
    [InlineData("BatchDeleteTasks")]
    public async Task Batches_are_not_retried_and_carry_no_default_deadline(string method)
    {
        _server.FailFirst(1, StatusCode.Unavailable, method);
        Func<Task> call = method == "BatchCreateTasks"
            ? () => _client.BatchCreateTasksAsync(Queue, Tasks(1))
            : () => _client.BatchDeleteTasksAsync(Queue, [Queue.Task("t0")]);

        var error = await Assert.ThrowsAsync<CloudTasksException>(() => call().WaitAsync(Bounded));
        Assert.Equal(CloudTasksFailureReason.Unavailable, error.Reason);
        Assert.Equal(method, error.Method);
        Assert.Equal(1, CallsTo(method));

        await call();
        Assert.All(_server.Calls, c => Assert.Equal(DateTime.MaxValue, c.Deadline));
    }

    [Fact]
    public async Task A_per_call_timeout_gives_a_batch_a_deadline()
    {
        var before = TimeProvider.System.GetUtcNow().UtcDateTime;

        await _client.BatchCreateTasksAsync(Queue, Tasks(1), callSettings: CallSettings.FromTimeout(TimeSpan.FromSeconds(5)));
        await _client.BatchDeleteTasksAsync(Queue, [Queue.Task("t0")], callSettings: CallSettings.FromTimeout(TimeSpan.FromSeconds(5)));

        Assert.All(_server.Calls, c => Assert.InRange(c.Deadline, before + TimeSpan.FromSeconds(3), before + TimeSpan.FromSeconds(7)));
    }

    [Fact]
    public async Task Get_operation_retries_unavailable_with_the_published_backoff()
    {
        _server.FailFirst(2, StatusCode.Unavailable, "GetOperation");

        var call = _client.GetOperationAsync(Operation1);
        var delays = await _time.AdvanceThroughTimersAsync(call);
        var operation = await call.WaitAsync(Bounded);

        Assert.Equal(OpName, operation.Name);
        Assert.Equal(3, CallsTo("GetOperation"));
        Assert.Equal(2, delays.Count);
        Assert.InRange(delays[0], TimeSpan.FromTicks(1), TimeSpan.FromMilliseconds(500));
        Assert.InRange(delays[1], TimeSpan.FromTicks(1), TimeSpan.FromSeconds(1));
    }

    [Fact]
    public async Task Get_operation_gives_up_after_five_attempts()
    {
        _server.FailFirst(100, StatusCode.Unavailable, "GetOperation");

        var call = _client.GetOperationAsync(Operation1);
        await _time.AdvanceThroughTimersAsync(call);

        var error = await Assert.ThrowsAsync<CloudTasksException>(() => call.WaitAsync(Bounded));
        Assert.Equal(CloudTasksFailureReason.Unavailable, error.Reason);
        Assert.Equal(5, CallsTo("GetOperation"));
    }

    [Fact]
    public async Task Get_operation_does_not_retry_deadline_exceeded_and_has_a_10_s_deadline()
    {
        _server.FailFirst(1, StatusCode.DeadlineExceeded, "GetOperation");
        var before = _time.GetUtcNow().UtcDateTime;

        // Bounded: a retry would wait on the fake clock, which nobody advances here.
        await Assert.ThrowsAsync<CloudTasksException>(() => _client.GetOperationAsync(Operation1).WaitAsync(Bounded));

        var call = Assert.Single(_server.Calls);
        Assert.InRange(call.Deadline, before + TimeSpan.FromSeconds(8), before + TimeSpan.FromSeconds(12));
    }
}

internal static class TestExtensions
{
    public static Task WhenCancelled(this CancellationToken token)
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        token.Register(() => tcs.TrySetResult());
        return tcs.Task;
    }
}
