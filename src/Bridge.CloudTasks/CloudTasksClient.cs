using Bridge.CloudTasks.Iam.V1;
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
