using Bridge.CloudTasks.Iam.V1;
using Bridge.CloudTasks.LongRunning;
using Bridge.CloudTasks.V2Beta3;
using Google.Protobuf.WellKnownTypes;
using Task = System.Threading.Tasks.Task;

namespace Bridge.CloudTasks;

/// <summary>
/// Client for Cloud Tasks v2beta3. Every RPC is a virtual method taking the request message, so the client can be
/// mocked; overloads taking typed resource names build the request. Create one with
/// <see cref="CloudTasksClientBuilder"/> or <c>services.AddCloudTasksClient(...)</c>, share it, dispose it at the end.
/// </summary>
public abstract class CloudTasksClient : IAsyncDisposable, IDisposable
{
    /// <summary>The production endpoint.</summary>
    public const string DefaultEndpoint = "https://cloudtasks.googleapis.com";

    /// <summary>The service's fully qualified gRPC name.</summary>
    public const string ServiceName = "google.cloud.tasks.v2beta3.CloudTasks";

    /// <summary>Environment variable naming an emulator as <c>host:port</c>.</summary>
    public const string EmulatorHostEnvironmentVariable = "CLOUD_TASKS_EMULATOR_HOST";

    /// <summary>The long-running operations service's fully qualified gRPC name.</summary>
    public const string OperationsServiceName = "google.longrunning.Operations";

    /// <summary>At most this many tasks in one BatchCreateTasks call (the published limit).</summary>
    public const int MaxBatchCreateRequests = 100;

    /// <summary>At most this many tasks in one BatchDeleteTasks call (the published limit).</summary>
    public const int MaxBatchDeleteNames = 1000;

    /// <summary>The OAuth scopes the service needs.</summary>
    public static IReadOnlyList<string> DefaultAuthScopes { get; } = ["https://www.googleapis.com/auth/cloud-platform"];

    public static CloudTasksClient Create() => new CloudTasksClientBuilder().Build();

    // Queues

    public virtual PagedAsyncSequence<Queue> ListQueues(ListQueuesRequest request, CallSettings? callSettings = null) => throw new NotSupportedException();

    public PagedAsyncSequence<Queue> ListQueues(LocationName parent, string? filter = null, int? pageSize = null, string? pageToken = null, CallSettings? callSettings = null) =>
        ListQueues(new ListQueuesRequest { Parent = parent.ToString(), Filter = filter ?? string.Empty, PageSize = pageSize ?? 0, PageToken = pageToken ?? string.Empty }, callSettings);

    public virtual Task<Queue> GetQueueAsync(GetQueueRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default) => throw new NotSupportedException();

    public Task<Queue> GetQueueAsync(QueueName name, CancellationToken cancellationToken = default) =>
        GetQueueAsync(new GetQueueRequest { Name = name.ToString() }, null, cancellationToken);

    public virtual Task<Queue> CreateQueueAsync(CreateQueueRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default) => throw new NotSupportedException();

    public Task<Queue> CreateQueueAsync(LocationName parent, Queue queue, CancellationToken cancellationToken = default) =>
        CreateQueueAsync(new CreateQueueRequest { Parent = parent.ToString(), Queue = queue }, null, cancellationToken);

    public virtual Task<Queue> UpdateQueueAsync(UpdateQueueRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default) => throw new NotSupportedException();

    public Task<Queue> UpdateQueueAsync(Queue queue, FieldMask? updateMask = null, CancellationToken cancellationToken = default) =>
        UpdateQueueAsync(new UpdateQueueRequest { Queue = queue, UpdateMask = updateMask }, null, cancellationToken);

    public virtual Task DeleteQueueAsync(DeleteQueueRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default) => throw new NotSupportedException();

    public Task DeleteQueueAsync(QueueName name, CancellationToken cancellationToken = default) =>
        DeleteQueueAsync(new DeleteQueueRequest { Name = name.ToString() }, null, cancellationToken);

    public virtual Task<Queue> PurgeQueueAsync(PurgeQueueRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default) => throw new NotSupportedException();

    public Task<Queue> PurgeQueueAsync(QueueName name, CancellationToken cancellationToken = default) =>
        PurgeQueueAsync(new PurgeQueueRequest { Name = name.ToString() }, null, cancellationToken);

    public virtual Task<Queue> PauseQueueAsync(PauseQueueRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default) => throw new NotSupportedException();

    public Task<Queue> PauseQueueAsync(QueueName name, CancellationToken cancellationToken = default) =>
        PauseQueueAsync(new PauseQueueRequest { Name = name.ToString() }, null, cancellationToken);

    public virtual Task<Queue> ResumeQueueAsync(ResumeQueueRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default) => throw new NotSupportedException();

    public Task<Queue> ResumeQueueAsync(QueueName name, CancellationToken cancellationToken = default) =>
        ResumeQueueAsync(new ResumeQueueRequest { Name = name.ToString() }, null, cancellationToken);

    // IAM (on queues)

    public virtual Task<Policy> GetIamPolicyAsync(GetIamPolicyRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default) => throw new NotSupportedException();

    public Task<Policy> GetIamPolicyAsync(QueueName resource, CancellationToken cancellationToken = default) =>
        GetIamPolicyAsync(new GetIamPolicyRequest { Resource = resource.ToString() }, null, cancellationToken);

    public virtual Task<Policy> SetIamPolicyAsync(SetIamPolicyRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default) => throw new NotSupportedException();

    public Task<Policy> SetIamPolicyAsync(QueueName resource, Policy policy, CancellationToken cancellationToken = default) =>
        SetIamPolicyAsync(new SetIamPolicyRequest { Resource = resource.ToString(), Policy = policy }, null, cancellationToken);

    public virtual Task<TestIamPermissionsResponse> TestIamPermissionsAsync(TestIamPermissionsRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default) => throw new NotSupportedException();

    public Task<TestIamPermissionsResponse> TestIamPermissionsAsync(QueueName resource, IEnumerable<string> permissions, CancellationToken cancellationToken = default) =>
        TestIamPermissionsAsync(new TestIamPermissionsRequest { Resource = resource.ToString(), Permissions = { permissions } }, null, cancellationToken);

    // Tasks

    public virtual PagedAsyncSequence<V2Beta3.Task> ListTasks(ListTasksRequest request, CallSettings? callSettings = null) => throw new NotSupportedException();

    public PagedAsyncSequence<V2Beta3.Task> ListTasks(QueueName parent, V2Beta3.Task.Types.View view = V2Beta3.Task.Types.View.Unspecified, int? pageSize = null, string? pageToken = null, CallSettings? callSettings = null) =>
        ListTasks(new ListTasksRequest { Parent = parent.ToString(), ResponseView = view, PageSize = pageSize ?? 0, PageToken = pageToken ?? string.Empty }, callSettings);

    public virtual Task<V2Beta3.Task> GetTaskAsync(GetTaskRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default) => throw new NotSupportedException();

    public Task<V2Beta3.Task> GetTaskAsync(TaskName name, CancellationToken cancellationToken = default) =>
        GetTaskAsync(new GetTaskRequest { Name = name.ToString() }, null, cancellationToken);

    public virtual Task<V2Beta3.Task> CreateTaskAsync(CreateTaskRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default) => throw new NotSupportedException();

    public Task<V2Beta3.Task> CreateTaskAsync(QueueName parent, V2Beta3.Task task, CancellationToken cancellationToken = default) =>
        CreateTaskAsync(new CreateTaskRequest { Parent = parent.ToString(), Task = task }, null, cancellationToken);

    public virtual Task DeleteTaskAsync(DeleteTaskRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default) => throw new NotSupportedException();

    public Task DeleteTaskAsync(TaskName name, CancellationToken cancellationToken = default) =>
        DeleteTaskAsync(new DeleteTaskRequest { Name = name.ToString() }, null, cancellationToken);

    public virtual Task<V2Beta3.Task> RunTaskAsync(RunTaskRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default) => throw new NotSupportedException();

    public Task<V2Beta3.Task> RunTaskAsync(TaskName name, CancellationToken cancellationToken = default) =>
        RunTaskAsync(new RunTaskRequest { Name = name.ToString() }, null, cancellationToken);

    // Batches: each returns a long-running operation whose metadata lists the requests that failed

    public virtual Task<CloudTasksOperation<BatchCreateTasksResponse, BatchCreateTasksMetadata>> BatchCreateTasksAsync(BatchCreateTasksRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default) => throw new NotSupportedException();

    /// <summary>
    /// Creates up to <see cref="MaxBatchCreateRequests"/> tasks in <paramref name="parent"/>, not atomically.
    /// <paramref name="requestId"/> (a UUID4) names the operation, so a repeated call with the same id is not run twice.
    /// </summary>
    public Task<CloudTasksOperation<BatchCreateTasksResponse, BatchCreateTasksMetadata>> BatchCreateTasksAsync(QueueName parent, IEnumerable<V2Beta3.Task> tasks, string? requestId = null, CallSettings? callSettings = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(parent);
        ArgumentNullException.ThrowIfNull(tasks);
        var queue = parent.ToString();
        var request = new BatchCreateTasksRequest { Parent = queue, RequestId = requestId ?? string.Empty };
        request.Requests.AddRange(tasks.Select(task => new CreateTaskRequest { Parent = queue, Task = task }));
        return BatchCreateTasksAsync(request, callSettings, cancellationToken);
    }

    public virtual Task<CloudTasksOperation<Empty, BatchDeleteTasksMetadata>> BatchDeleteTasksAsync(BatchDeleteTasksRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default) => throw new NotSupportedException();

    /// <summary>Deletes up to <see cref="MaxBatchDeleteNames"/> tasks of <paramref name="parent"/>, not atomically.</summary>
    public Task<CloudTasksOperation<Empty, BatchDeleteTasksMetadata>> BatchDeleteTasksAsync(QueueName parent, IEnumerable<TaskName> names, string? requestId = null, CallSettings? callSettings = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(parent);
        ArgumentNullException.ThrowIfNull(names);
        var request = new BatchDeleteTasksRequest { Parent = parent.ToString(), RequestId = requestId ?? string.Empty };
        request.Names.AddRange(names.Select(name => name.ToString()));
        return BatchDeleteTasksAsync(request, callSettings, cancellationToken);
    }

    /// <summary>Picks up a BatchCreateTasks operation by name (e.g. after a restart) with one GetOperation.</summary>
    public async Task<CloudTasksOperation<BatchCreateTasksResponse, BatchCreateTasksMetadata>> PollOnceBatchCreateTasksAsync(string operationName, CallSettings? callSettings = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(operationName);
        var operation = await GetOperationAsync(new GetOperationRequest { Name = operationName }, callSettings, cancellationToken).ConfigureAwait(false);
        return new(operation, this, "BatchCreateTasks", GetPollSettings("BatchCreateTasks"));
    }

    /// <summary>Picks up a BatchDeleteTasks operation by name with one GetOperation.</summary>
    public async Task<CloudTasksOperation<Empty, BatchDeleteTasksMetadata>> PollOnceBatchDeleteTasksAsync(string operationName, CallSettings? callSettings = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(operationName);
        var operation = await GetOperationAsync(new GetOperationRequest { Name = operationName }, callSettings, cancellationToken).ConfigureAwait(false);
        return new(operation, this, "BatchDeleteTasks", GetPollSettings("BatchDeleteTasks"));
    }

    // Long-running operations (google.longrunning.Operations on the same endpoint; Cloud Tasks documents GetOperation)

    public virtual Task<Operation> GetOperationAsync(GetOperationRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default) => throw new NotSupportedException();

    public Task<Operation> GetOperationAsync(OperationName name, CancellationToken cancellationToken = default) =>
        GetOperationAsync(new GetOperationRequest { Name = name.ToString() }, null, cancellationToken);

    public virtual PagedAsyncSequence<Operation> ListOperations(ListOperationsRequest request, CallSettings? callSettings = null) => throw new NotSupportedException();

    /// <summary>Lists the operations of a location (<c>name</c> is the operations' parent).</summary>
    public PagedAsyncSequence<Operation> ListOperations(LocationName name, string? filter = null, int? pageSize = null, string? pageToken = null, CallSettings? callSettings = null) =>
        ListOperations(new ListOperationsRequest { Name = name.ToString(), Filter = filter ?? string.Empty, PageSize = pageSize ?? 0, PageToken = pageToken ?? string.Empty }, callSettings);

    public virtual Task CancelOperationAsync(CancelOperationRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default) => throw new NotSupportedException();

    public Task CancelOperationAsync(OperationName name, CancellationToken cancellationToken = default) =>
        CancelOperationAsync(new CancelOperationRequest { Name = name.ToString() }, null, cancellationToken);

    public virtual Task DeleteOperationAsync(DeleteOperationRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default) => throw new NotSupportedException();

    public Task DeleteOperationAsync(OperationName name, CancellationToken cancellationToken = default) =>
        DeleteOperationAsync(new DeleteOperationRequest { Name = name.ToString() }, null, cancellationToken);

    public virtual Task<Operation> WaitOperationAsync(WaitOperationRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default) => throw new NotSupportedException();

    /// <summary>Waits server-side up to <paramref name="timeout"/> for the operation to be done.</summary>
    public Task<Operation> WaitOperationAsync(OperationName name, TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        WaitOperationAsync(new WaitOperationRequest { Name = name.ToString(), Timeout = timeout is { } t ? Duration.FromTimeSpan(t) : null }, null, cancellationToken);

    /// <summary>The clock operations wait with; the real one unless the client was built with another.</summary>
    protected internal virtual TimeProvider Time => TimeProvider.System;

    /// <summary>How operations started by <paramref name="method"/> are awaited by default.</summary>
    protected internal virtual PollSettings GetPollSettings(string method) => PollSettings.Default;

    // Customer-managed encryption keys

    public virtual Task<CmekConfig> GetCmekConfigAsync(GetCmekConfigRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default) => throw new NotSupportedException();

    public Task<CmekConfig> GetCmekConfigAsync(LocationName location, CancellationToken cancellationToken = default) =>
        GetCmekConfigAsync(new GetCmekConfigRequest { Name = $"{location}/cmekConfig" }, null, cancellationToken);

    public virtual Task<CmekConfig> UpdateCmekConfigAsync(UpdateCmekConfigRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default) => throw new NotSupportedException();

    public void Dispose()
    {
        Dispose(disposing: true);
        GC.SuppressFinalize(this);
    }

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    protected virtual void Dispose(bool disposing)
    {
    }
}
