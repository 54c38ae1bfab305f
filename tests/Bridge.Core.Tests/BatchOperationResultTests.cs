using System.Text;
using Bridge.CloudTasks.LongRunning;
using Bridge.CloudTasks.Tests.Infrastructure;
using Bridge.CloudTasks.V2Beta3;
using Bridge.Core.Forwarding;
using Bridge.Core.Internal;
using Bridge.Testing;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Microsoft.Extensions.DependencyInjection;
using TaskMessage = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.Core.Tests;

/// <summary>
/// BatchCreateTasks operations the emulator never returns, from a gRPC server that answers what each test says: an
/// operation done without per-request results (or with results that don't add up) leaves every event transient, so
/// none is completed on a result nobody gave and a redelivery finds its task, if made, as ALREADY_EXISTS.
/// </summary>
public sealed class BatchOperationResultTests : IAsyncLifetime
{
    private RecordingCloudTasksServer _server = null!;
    private PipelineHarness _h = null!;

    public async System.Threading.Tasks.Task InitializeAsync()
    {
        _server = await RecordingCloudTasksServer.StartAsync();
        _h = await CoreHarness.StartAsync(configure: s => s["Bridge:CloudTasks:EmulatorHost"] = _server.HostPort);
    }

    public System.Threading.Tasks.Task DisposeAsync() => Teardown.AllAsync(_h, _server);

    private IBatchEventForwarder Batch => _h.Services.GetRequiredService<IBatchEventForwarder>();

    private List<InboundEvent> Messages(params string[] ids) =>
        [.. ids.Select(id => _h.ServiceBus.Map(new ServiceBusMessageData { MessageId = id, Body = Encoding.UTF8.GetBytes(id), ContentType = "text/plain" }, "orders-in"))];

    /// <summary>BatchCreateTasks answers with a done operation built from the request.</summary>
    private void Answer(Func<BatchCreateTasksRequest, Operation> operation) =>
        _server.Handler = (method, request, _) => method == "BatchCreateTasks"
            ? operation((BatchCreateTasksRequest)request)
            : throw new Grpc.Core.RpcException(new Grpc.Core.Status(Grpc.Core.StatusCode.Unimplemented, method));

    private static Operation Done(BatchCreateTasksRequest request, IMessage? metadata, IMessage? response = null, Google.Rpc.Status? error = null)
    {
        var operation = new Operation { Name = request.Parent.Split('/').Take(4).Aggregate((a, b) => $"{a}/{b}") + "/operations/op-1", Done = true };
        if (metadata is not null)
        {
            operation.Metadata = Any.Pack(metadata);
        }

        if (response is not null)
        {
            operation.Response = Any.Pack(response);
        }
        else if (error is not null)
        {
            operation.Error = error;
        }

        return operation;
    }

    private static BatchCreateTasksResponse AllCreated(BatchCreateTasksRequest request) =>
        new() { Tasks = { request.Requests.Select(r => new TaskMessage(r.Task)) } };

    private static Google.Rpc.Status Status(Code code, string message) => new() { Code = (int)code, Message = message };

    private static void AssertAllTransient(IReadOnlyList<BatchForwardResult> results, int count)
    {
        Assert.Equal(count, results.Count);
        Assert.All(results, r =>
        {
            Assert.Equal(BatchForwardStatus.TransientFailure, r.Status);
            Assert.Equal(ForwardingFailureReason.CloudTasksUnavailable, r.Failure!.Reason);
            Assert.True(r.Failure.IsTransient);
        });
    }

    [Fact]
    public async System.Threading.Tasks.Task Done_with_a_response_but_no_metadata_is_transient_for_every_event()
    {
        Answer(r => Done(r, metadata: null, response: AllCreated(r)));

        var results = await Batch.ForwardBatchAsync(Messages("a", "b", "c"));

        AssertAllTransient(results, 3);
        Assert.All(results, r => Assert.Contains("without per-request results", r.Failure!.Message, StringComparison.Ordinal));
        Assert.Single(_server.Calls, c => c.Method == "BatchCreateTasks"); // one call: nothing retried inside, the redelivery decides
    }

    [Fact]
    public async System.Threading.Tasks.Task Failed_as_a_whole_without_failed_requests_is_transient_for_every_event_even_with_a_permanent_code()
    {
        // Which requests the error is about is unknown: a permanent code must not dead-letter all of them.
        Answer(r => Done(r, new BatchCreateTasksMetadata { State = BatchCreateTasksMetadata.Types.State.Failed }, error: Status(Code.InvalidArgument, "something was wrong")));

        var results = await Batch.ForwardBatchAsync(Messages("a", "b"));

        AssertAllTransient(results, 2);
        Assert.All(results, r => Assert.Contains("something was wrong", r.Failure!.Message, StringComparison.Ordinal));
    }

    [Fact]
    public async System.Threading.Tasks.Task Failed_as_a_whole_with_failures_for_only_some_requests_is_transient_for_every_event()
    {
        Answer(r => Done(
            r,
            new BatchCreateTasksMetadata { State = BatchCreateTasksMetadata.Types.State.Failed, FailedRequests = { [0] = Status(Code.AlreadyExists, "exists") } },
            error: Status(Code.Internal, "failed")));

        var results = await Batch.ForwardBatchAsync(Messages("a", "b"));

        AssertAllTransient(results, 2); // not even index 0's ALREADY_EXISTS: the rest of the picture is missing
    }

    [Fact]
    public async System.Threading.Tasks.Task Done_without_any_result_is_transient_for_every_event()
    {
        Answer(r => Done(r, new BatchCreateTasksMetadata { State = BatchCreateTasksMetadata.Types.State.Succeeded }));

        AssertAllTransient(await Batch.ForwardBatchAsync(Messages("a", "b")), 2);
    }

    [Fact]
    public async System.Threading.Tasks.Task A_failure_at_an_index_outside_the_batch_is_transient_for_every_event()
    {
        // Two requests, a failure said to be at index 2 and both listed as created: the results don't add up.
        Answer(r => Done(
            r,
            new BatchCreateTasksMetadata { State = BatchCreateTasksMetadata.Types.State.PartiallySucceeded, FailedRequests = { [2] = Status(Code.InvalidArgument, "bad") } },
            response: AllCreated(r)));

        AssertAllTransient(await Batch.ForwardBatchAsync(Messages("a", "b")), 2);
    }

    [Fact]
    public async System.Threading.Tasks.Task Fewer_created_tasks_than_requests_without_failures_is_transient_for_every_event()
    {
        Answer(r => Done(
            r,
            new BatchCreateTasksMetadata { State = BatchCreateTasksMetadata.Types.State.Succeeded },
            response: new BatchCreateTasksResponse { Tasks = { new TaskMessage(r.Requests[0].Task) } }));

        AssertAllTransient(await Batch.ForwardBatchAsync(Messages("a", "b", "c")), 3);
    }

    [Fact]
    public async System.Threading.Tasks.Task Complete_per_request_results_map_to_their_own_events()
    {
        // The control: the same server, results that add up, each event on its own index.
        Answer(r => Done(
            r,
            new BatchCreateTasksMetadata
            {
                State = BatchCreateTasksMetadata.Types.State.PartiallySucceeded,
                FailedRequests = { [1] = Status(Code.AlreadyExists, "exists"), [2] = Status(Code.InvalidArgument, "Task size too large") },
            },
            response: new BatchCreateTasksResponse { Tasks = { new TaskMessage(r.Requests[0].Task) } }));

        var results = await Batch.ForwardBatchAsync(Messages("a", "b", "c"));

        Assert.Equal([BatchForwardStatus.Created, BatchForwardStatus.AlreadyExisted, BatchForwardStatus.PermanentFailure], results.Select(r => r.Status));
        Assert.Equal(ForwardingFailureReason.RejectedByCloudTasks, results[2].Failure!.Reason);
        Assert.Contains("Task size too large", results[2].Failure!.Message, StringComparison.Ordinal);
    }
}
