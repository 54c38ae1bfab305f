using System.Security.Cryptography;
using Bridge.CloudTasks.LongRunning;
using Bridge.CloudTasks.V2Beta3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Code = Google.Rpc.Code;
using RpcStatus = Google.Rpc.Status;

namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>
/// BatchCreateTasks and BatchDeleteTasks: checks that refuse the whole call, then the requests through the engine (a
/// batch as one change: one lock, one signal, one commit), a failure recorded at its index
/// (not atomic, like the service). The operation is done
/// when the RPC answers; it is kept for the Operations service, and a request_id seen before returns the operation it
/// started instead of running the batch again.
/// </summary>
internal sealed class BatchOperations(EmulatorState state, OperationStore operations, TimeProvider time)
{
    public const int MaxCreateRequests = 100;
    public const int MaxDeleteNames = 1000;

    /// <summary>Largest batch request accepted, in serialized bytes (100 tasks near the 1 MB task limit would not fit).</summary>
    public const int MaxRequestBytes = 10 * 1024 * 1024;

    /// <summary>The gRPC server's receive limit: above the batch limit, so an oversized batch gets our INVALID_ARGUMENT, not RESOURCE_EXHAUSTED.</summary>
    public const int MaxGrpcMessageBytes = MaxRequestBytes + (1024 * 1024);

    private const string AllFailed = "None of the requests succeeded, refer to {0}.failed_requests for individual error details";

    public async System.Threading.Tasks.Task<Operation> BatchCreateTasksAsync(BatchCreateTasksRequest request)
    {
        var parent = QueueRules.ParseQueueName(request.Parent, "parent");
        CheckCount(request.Requests.Count, MaxCreateRequests, "requests", "requests");
        CheckSize(request.CalculateSize());
        for (var i = 0; i < request.Requests.Count; i++)
        {
            var item = request.Requests[i];
            if (item.Parent.Length > 0 && item.Parent != request.Parent)
            {
                throw Errors.InvalidArgument($"requests[{i}].parent", $"requests[{i}].parent '{item.Parent}' is not the batch's parent '{request.Parent}'; every request must be for the same queue.");
            }
        }

        state.GetQueue(new GetQueueRequest { Name = parent.ToString() }); // NOT_FOUND for the whole call
        var start = Timestamp.FromDateTimeOffset(time.GetUtcNow());
        var running = NewOperation(parent.Location.ToString(), new BatchCreateTasksMetadata { StartTime = start, State = BatchCreateTasksMetadata.Types.State.Running });
        var (operation, isNew) = operations.Begin(running.Name, RequestKey(parent.Location.ToString(), "BatchCreateTasks", request.RequestId), Fingerprint(request, r => r.RequestId = string.Empty), running);
        if (!isNew)
        {
            return operation;
        }

        return await RunAsync(operation, async () =>
        {
            var metadata = new BatchCreateTasksMetadata { StartTime = start };
            var response = new BatchCreateTasksResponse();
            var outcomes = await state.CreateTasksAsync(parent.ToString(), request.Requests).ConfigureAwait(false);
            for (var i = 0; i < outcomes.Count; i++)
            {
                if (outcomes[i].Task is { } created)
                {
                    response.Tasks.Add(created);
                }
                else
                {
                    metadata.FailedRequests[i] = ToStatus(outcomes[i].Error!);
                }
            }

            metadata.EndTime = Timestamp.FromDateTimeOffset(time.GetUtcNow());
            metadata.State = metadata.FailedRequests.Count == 0 ? BatchCreateTasksMetadata.Types.State.Succeeded : BatchCreateTasksMetadata.Types.State.PartiallySucceeded;
            return (Any.Pack(metadata), response.Tasks.Count > 0 ? Any.Pack(response) : null, nameof(BatchCreateTasksMetadata));
        });
    }

    public Operation BatchDeleteTasks(BatchDeleteTasksRequest request)
    {
        var parent = QueueRules.ParseQueueName(request.Parent, "parent");
        CheckCount(request.Names.Count, MaxDeleteNames, "names", "names");
        CheckSize(request.CalculateSize());
        state.GetQueue(new GetQueueRequest { Name = parent.ToString() });
        var start = Timestamp.FromDateTimeOffset(time.GetUtcNow());
        var running = NewOperation(parent.Location.ToString(), new BatchDeleteTasksMetadata { StartTime = start, State = BatchDeleteTasksMetadata.Types.State.Running });
        var (operation, isNew) = operations.Begin(running.Name, RequestKey(parent.Location.ToString(), "BatchDeleteTasks", request.RequestId), Fingerprint(request, r => r.RequestId = string.Empty), running);
        if (!isNew)
        {
            return operation;
        }

        return Finish(operation, Run(operation, () =>
        {
            var metadata = new BatchDeleteTasksMetadata { StartTime = start };
            var errors = state.DeleteTasks(parent.ToString(), request.Names);
            for (var i = 0; i < errors.Count; i++)
            {
                if (errors[i] is { } error)
                {
                    metadata.FailedRequests[i] = ToStatus(error);
                }
            }

            metadata.EndTime = Timestamp.FromDateTimeOffset(time.GetUtcNow());
            metadata.State = metadata.FailedRequests.Count == 0 ? BatchDeleteTasksMetadata.Types.State.Succeeded : BatchDeleteTasksMetadata.Types.State.PartiallySucceeded;
            var anySucceeded = metadata.FailedRequests.Count < request.Names.Count;
            return (Any.Pack(metadata), anySucceeded ? Any.Pack(new Empty()) : null, nameof(BatchDeleteTasksMetadata));
        }));
    }

    /// <summary>
    /// Runs the batch and finishes its operation: with the response when any request succeeded, else with ABORTED as
    /// the service documents. An unexpected failure forgets the operation, so a retry with the request_id runs again.
    /// </summary>
    private async System.Threading.Tasks.Task<Operation> RunAsync(Operation operation, Func<System.Threading.Tasks.Task<(Any Metadata, Any? Response, string MetadataType)>> batch)
    {
        (Any Metadata, Any? Response, string MetadataType) outcome;
        try
        {
            outcome = await batch().ConfigureAwait(false);
        }
        catch (Exception)
        {
            operations.Abandon(operation.Name);
            throw;
        }

        return Finish(operation, outcome);
    }

    private (Any Metadata, Any? Response, string MetadataType) Run(Operation operation, Func<(Any Metadata, Any? Response, string MetadataType)> batch)
    {
        try
        {
            return batch();
        }
        catch (Exception)
        {
            operations.Abandon(operation.Name);
            throw;
        }
    }

    private Operation Finish(Operation operation, (Any Metadata, Any? Response, string MetadataType) outcome)
    {
        var (metadata, response, metadataType) = outcome;
        operation.Metadata = metadata;
        operation.Done = true;
        if (response is not null)
        {
            operation.Response = response;
        }
        else
        {
            operation.Error = new RpcStatus { Code = (int)Code.Aborted, Message = string.Format(System.Globalization.CultureInfo.InvariantCulture, AllFailed, metadataType) };
        }

        operations.Complete(operation);
        return operation;
    }

    private static Operation NewOperation(string location, IMessage metadata) =>
        new() { Name = $"{location}/operations/{TaskRules.NewTaskId()}", Metadata = Any.Pack(metadata) };

    private static void CheckCount(int count, int max, string field, string what)
    {
        if (count == 0)
        {
            throw Errors.InvalidArgument(field, $"{what} is required: a batch carries 1 to {max}.");
        }

        if (count > max)
        {
            throw Errors.InvalidArgument(field, $"{what} has {count} entries; a batch carries at most {max}.");
        }
    }

    private static void CheckSize(int bytes)
    {
        if (bytes > MaxRequestBytes)
        {
            throw Errors.InvalidArgument("requests", $"The batch request is {bytes} bytes; the maximum is {MaxRequestBytes} bytes. Split it into smaller batches.");
        }
    }

    /// <summary>Null without a request_id; a request_id that is not a UUID is refused (the field's published format is UUID4).</summary>
    private static string? RequestKey(string location, string method, string requestId)
    {
        if (string.IsNullOrEmpty(requestId))
        {
            return null;
        }

        if (!Guid.TryParseExact(requestId, "D", out _))
        {
            throw Errors.InvalidArgument("request_id", $"request_id '{(requestId.Length <= 64 ? requestId : requestId[..64] + "...")}' is not a UUID (e.g. 123e4567-e89b-42d3-a456-426614174000).");
        }

        return $"{location}\n{method}\n{requestId.ToLowerInvariant()}";
    }

    /// <summary>What the request asks, without its request_id: a retry has the same, another request a different one.</summary>
    private static string Fingerprint<T>(T request, Action<T> clearRequestId)
        where T : IMessage<T>, IDeepCloneable<T>
    {
        var copy = request.Clone();
        clearRequestId(copy);
        return Convert.ToHexStringLower(SHA256.HashData(copy.ToByteArray()));
    }

    private static RpcStatus ToStatus(RpcException ex) =>
        ex.GetRpcStatus() ?? new RpcStatus { Code = (int)ex.StatusCode, Message = ex.Status.Detail };
}
