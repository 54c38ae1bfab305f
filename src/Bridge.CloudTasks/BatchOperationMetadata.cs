namespace Bridge.CloudTasks.V2Beta3;

/// <summary>
/// Reads a batch's per-request failures. The service reports them in the operation's metadata, keyed by the index of
/// the request in the batch; a request whose index is absent succeeded.
/// </summary>
public sealed partial class BatchCreateTasksMetadata
{
    /// <summary>Each failed request's index in <see cref="BatchCreateTasksRequest.Requests"/>, with why it failed.</summary>
    public IReadOnlyDictionary<int, CloudTasksException> GetRequestFailures() =>
        FailedRequests.ToDictionary(f => f.Key, f => CloudTasksException.FromRpcStatus(f.Value, "BatchCreateTasks", f.Key));
}

public sealed partial class BatchDeleteTasksMetadata
{
    /// <summary>Each failed request's index in <see cref="BatchDeleteTasksRequest.Names"/>, with why it failed.</summary>
    public IReadOnlyDictionary<int, CloudTasksException> GetRequestFailures() =>
        FailedRequests.ToDictionary(f => f.Key, f => CloudTasksException.FromRpcStatus(f.Value, "BatchDeleteTasks", f.Key));
}
