using System.Diagnostics;
using Bridge.CloudTasks.Iam.V1;
using Bridge.CloudTasks.LongRunning;
using Bridge.CloudTasks.V2Beta3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Grpc.Net.Client;
using GrpcStub = Bridge.CloudTasks.V2Beta3.CloudTasks.CloudTasksClient;
using OperationsStub = Bridge.CloudTasks.LongRunning.Operations.OperationsClient;
using Task = System.Threading.Tasks.Task;

namespace Bridge.CloudTasks.Internal;

/// <summary>
/// The gRPC implementation: one channel, per-method settings merged with per-call ones, retries with backoff and
/// jitter inside one overall deadline, a client span per call and W3C trace context in the request metadata.
/// </summary>
internal sealed class GrpcCloudTasksClient : CloudTasksClient
{
    private const string ApiClientHeader = "x-goog-api-client";
    private const string RequestParamsHeader = "x-goog-request-params";
    private static readonly string ApiClientValue = $"gl-dotnet/{Environment.Version} bridge/{typeof(GrpcCloudTasksClient).Assembly.GetName().Version}";

    private readonly GrpcChannel _channel;
    private readonly GrpcStub _grpc;
    private readonly OperationsStub _operations;
    private readonly CloudTasksSettings _settings;
    private readonly TimeProvider _time;
    private readonly Uri _endpoint;
    private readonly bool _ownsChannel;

    public GrpcCloudTasksClient(GrpcChannel channel, bool ownsChannel, CloudTasksSettings settings, TimeProvider time)
    {
        _channel = channel;
        _ownsChannel = ownsChannel;
        _grpc = new GrpcStub(channel);
        _operations = new OperationsStub(channel);
        _settings = settings.Clone();
        _time = time;
        _endpoint = new Uri(channel.Target.Contains("://", StringComparison.Ordinal) ? channel.Target : "https://" + channel.Target);
    }

    public override PagedAsyncSequence<Queue> ListQueues(ListQueuesRequest request, CallSettings? callSettings = null)
    {
        ArgumentNullException.ThrowIfNull(request);
        var template = request.Clone();
        return new PagedAsyncSequence<Queue>(
            async (token, size, ct) =>
            {
                var page = template.Clone();
                page.PageToken = token;
                page.PageSize = size ?? page.PageSize;
                var response = await InvokeAsync("ListQueues", page, ("parent", page.Parent), (r, o) => _grpc.ListQueuesAsync(r, o), _settings.ListQueuesSettings, callSettings, ct).ConfigureAwait(false);
                return new Page<Queue>(response.Queues, response.NextPageToken);
            },
            request.PageToken,
            request.PageSize > 0 ? request.PageSize : null);
    }

    public override Task<Queue> GetQueueAsync(GetQueueRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default) =>
        InvokeAsync("GetQueue", request, ("name", request.Name), (r, o) => _grpc.GetQueueAsync(r, o), _settings.GetQueueSettings, callSettings, cancellationToken);

    public override Task<Queue> CreateQueueAsync(CreateQueueRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default) =>
        InvokeAsync("CreateQueue", request, ("parent", request.Parent), (r, o) => _grpc.CreateQueueAsync(r, o), _settings.CreateQueueSettings, callSettings, cancellationToken);

    public override Task<Queue> UpdateQueueAsync(UpdateQueueRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default) =>
        InvokeAsync("UpdateQueue", request, ("queue.name", request.Queue?.Name ?? string.Empty), (r, o) => _grpc.UpdateQueueAsync(r, o), _settings.UpdateQueueSettings, callSettings, cancellationToken);

    public override Task DeleteQueueAsync(DeleteQueueRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default) =>
        InvokeAsync("DeleteQueue", request, ("name", request.Name), (r, o) => _grpc.DeleteQueueAsync(r, o), _settings.DeleteQueueSettings, callSettings, cancellationToken);

    public override Task<Queue> PurgeQueueAsync(PurgeQueueRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default) =>
        InvokeAsync("PurgeQueue", request, ("name", request.Name), (r, o) => _grpc.PurgeQueueAsync(r, o), _settings.PurgeQueueSettings, callSettings, cancellationToken);

    public override Task<Queue> PauseQueueAsync(PauseQueueRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default) =>
        InvokeAsync("PauseQueue", request, ("name", request.Name), (r, o) => _grpc.PauseQueueAsync(r, o), _settings.PauseQueueSettings, callSettings, cancellationToken);

    public override Task<Queue> ResumeQueueAsync(ResumeQueueRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default) =>
        InvokeAsync("ResumeQueue", request, ("name", request.Name), (r, o) => _grpc.ResumeQueueAsync(r, o), _settings.ResumeQueueSettings, callSettings, cancellationToken);

    public override Task<Policy> GetIamPolicyAsync(GetIamPolicyRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default) =>
        InvokeAsync("GetIamPolicy", request, ("resource", request.Resource), (r, o) => _grpc.GetIamPolicyAsync(r, o), _settings.GetIamPolicySettings, callSettings, cancellationToken);

    public override Task<Policy> SetIamPolicyAsync(SetIamPolicyRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default) =>
        InvokeAsync("SetIamPolicy", request, ("resource", request.Resource), (r, o) => _grpc.SetIamPolicyAsync(r, o), _settings.SetIamPolicySettings, callSettings, cancellationToken);

    public override Task<TestIamPermissionsResponse> TestIamPermissionsAsync(TestIamPermissionsRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default) =>
        InvokeAsync("TestIamPermissions", request, ("resource", request.Resource), (r, o) => _grpc.TestIamPermissionsAsync(r, o), _settings.TestIamPermissionsSettings, callSettings, cancellationToken);

    public override PagedAsyncSequence<V2Beta3.Task> ListTasks(ListTasksRequest request, CallSettings? callSettings = null)
    {
        ArgumentNullException.ThrowIfNull(request);
        var template = request.Clone();
        return new PagedAsyncSequence<V2Beta3.Task>(
            async (token, size, ct) =>
            {
                var page = template.Clone();
                page.PageToken = token;
                page.PageSize = size ?? page.PageSize;
                var response = await InvokeAsync("ListTasks", page, ("parent", page.Parent), (r, o) => _grpc.ListTasksAsync(r, o), _settings.ListTasksSettings, callSettings, ct).ConfigureAwait(false);
                return new Page<V2Beta3.Task>(response.Tasks, response.NextPageToken);
            },
            request.PageToken,
            request.PageSize > 0 ? request.PageSize : null);
    }

    public override Task<V2Beta3.Task> GetTaskAsync(GetTaskRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default) =>
        InvokeAsync("GetTask", request, ("name", request.Name), (r, o) => _grpc.GetTaskAsync(r, o), _settings.GetTaskSettings, callSettings, cancellationToken);

    public override Task<V2Beta3.Task> CreateTaskAsync(CreateTaskRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default) =>
        InvokeAsync("CreateTask", request, ("parent", request.Parent), (r, o) => _grpc.CreateTaskAsync(r, o),
            string.IsNullOrEmpty(request?.Task?.Name) ? _settings.CreateTaskSettings : _settings.CreateNamedTaskSettings, callSettings, cancellationToken);

    public override Task DeleteTaskAsync(DeleteTaskRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default) =>
        InvokeAsync("DeleteTask", request, ("name", request.Name), (r, o) => _grpc.DeleteTaskAsync(r, o), _settings.DeleteTaskSettings, callSettings, cancellationToken);

    public override Task<V2Beta3.Task> RunTaskAsync(RunTaskRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default) =>
        InvokeAsync("RunTask", request, ("name", request.Name), (r, o) => _grpc.RunTaskAsync(r, o), _settings.RunTaskSettings, callSettings, cancellationToken);

    public override async Task<CloudTasksOperation<BatchCreateTasksResponse, BatchCreateTasksMetadata>> BatchCreateTasksAsync(BatchCreateTasksRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default)
    {
        ValidateBatchCreate(request);
        var operation = await InvokeAsync("BatchCreateTasks", request, ("parent", request.Parent), (r, o) => _grpc.BatchCreateTasksAsync(r, o), _settings.BatchCreateTasksSettings, callSettings, cancellationToken).ConfigureAwait(false);
        return new(operation, this, "BatchCreateTasks", _settings.BatchCreateTasksPollSettings);
    }

    public override async Task<CloudTasksOperation<Empty, BatchDeleteTasksMetadata>> BatchDeleteTasksAsync(BatchDeleteTasksRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default)
    {
        ValidateBatchDelete(request);
        var operation = await InvokeAsync("BatchDeleteTasks", request, ("parent", request.Parent), (r, o) => _grpc.BatchDeleteTasksAsync(r, o), _settings.BatchDeleteTasksSettings, callSettings, cancellationToken).ConfigureAwait(false);
        return new(operation, this, "BatchDeleteTasks", _settings.BatchDeleteTasksPollSettings);
    }

    public override Task<Operation> GetOperationAsync(GetOperationRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default) =>
        InvokeAsync("GetOperation", request, ("name", request.Name), (r, o) => _operations.GetOperationAsync(r, o), _settings.GetOperationSettings, callSettings, cancellationToken, OperationsServiceName);

    public override PagedAsyncSequence<Operation> ListOperations(ListOperationsRequest request, CallSettings? callSettings = null)
    {
        ArgumentNullException.ThrowIfNull(request);
        var template = request.Clone();
        return new PagedAsyncSequence<Operation>(
            async (token, size, ct) =>
            {
                var page = template.Clone();
                page.PageToken = token;
                page.PageSize = size ?? page.PageSize;
                var response = await InvokeAsync("ListOperations", page, ("name", page.Name), (r, o) => _operations.ListOperationsAsync(r, o), _settings.ListOperationsSettings, callSettings, ct, OperationsServiceName).ConfigureAwait(false);
                return new Page<Operation>(response.Operations, response.NextPageToken);
            },
            request.PageToken,
            request.PageSize > 0 ? request.PageSize : null);
    }

    public override Task CancelOperationAsync(CancelOperationRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default) =>
        InvokeAsync("CancelOperation", request, ("name", request.Name), (r, o) => _operations.CancelOperationAsync(r, o), _settings.CancelOperationSettings, callSettings, cancellationToken, OperationsServiceName);

    public override Task DeleteOperationAsync(DeleteOperationRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default) =>
        InvokeAsync("DeleteOperation", request, ("name", request.Name), (r, o) => _operations.DeleteOperationAsync(r, o), _settings.DeleteOperationSettings, callSettings, cancellationToken, OperationsServiceName);

    public override Task<Operation> WaitOperationAsync(WaitOperationRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default) =>
        InvokeAsync("WaitOperation", request, ("name", request.Name), (r, o) => _operations.WaitOperationAsync(r, o), _settings.WaitOperationSettings, callSettings, cancellationToken, OperationsServiceName);

    protected internal override TimeProvider Time => _time;

    /// <summary>Where the channel points; for tests of how a client was configured.</summary>
    internal Uri Endpoint => _endpoint;

    protected internal override PollSettings GetPollSettings(string method) => method switch
    {
        "BatchCreateTasks" => _settings.BatchCreateTasksPollSettings,
        "BatchDeleteTasks" => _settings.BatchDeleteTasksPollSettings,
        _ => PollSettings.Default,
    };

    public override Task<CmekConfig> GetCmekConfigAsync(GetCmekConfigRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default) =>
        InvokeAsync("GetCmekConfig", request, ("name", request.Name), (r, o) => _grpc.GetCmekConfigAsync(r, o), _settings.GetCmekConfigSettings, callSettings, cancellationToken);

    public override Task<CmekConfig> UpdateCmekConfigAsync(UpdateCmekConfigRequest request, CallSettings? callSettings = null, CancellationToken cancellationToken = default) =>
        InvokeAsync("UpdateCmekConfig", request, ("cmek_config.name", request.CmekConfig?.Name ?? string.Empty), (r, o) => _grpc.UpdateCmekConfigAsync(r, o), _settings.UpdateCmekConfigSettings, callSettings, cancellationToken);

    protected override void Dispose(bool disposing)
    {
        if (disposing && _ownsChannel)
        {
            _channel.Dispose();
        }
    }

    // The service checks these too; failing here names the request and saves a round trip.
    private static void ValidateBatchCreate(BatchCreateTasksRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Requests.Count is 0 or > MaxBatchCreateRequests)
        {
            throw new ArgumentException($"A BatchCreateTasks request carries 1 to {MaxBatchCreateRequests} requests; this one has {request.Requests.Count}.", nameof(request));
        }

        for (var i = 0; i < request.Requests.Count; i++)
        {
            if (!string.Equals(request.Requests[i].Parent, request.Parent, StringComparison.Ordinal))
            {
                throw new ArgumentException($"BatchCreateTasks request {i} is for queue '{request.Requests[i].Parent}', not the batch's parent '{request.Parent}'; every request must be for the parent queue.", nameof(request));
            }
        }
    }

    private static void ValidateBatchDelete(BatchDeleteTasksRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Names.Count is 0 or > MaxBatchDeleteNames)
        {
            throw new ArgumentException($"A BatchDeleteTasks request names 1 to {MaxBatchDeleteNames} tasks; this one names {request.Names.Count}.", nameof(request));
        }
    }

    private async Task<TResponse> InvokeAsync<TRequest, TResponse>(
        string method,
        TRequest request,
        (string Key, string Value) routing,
        Func<TRequest, CallOptions, AsyncUnaryCall<TResponse>> call,
        CallSettings methodDefaults,
        CallSettings? perCall,
        CancellationToken cancellationToken,
        string service = ServiceName)
        where TRequest : class, IMessage<TRequest>
    {
        ArgumentNullException.ThrowIfNull(request);
        var settings = (perCall ?? new CallSettings()).MergedWith(methodDefaults);
        var retry = settings.Retry ?? RetrySettings.None;
        DateTime? deadline = settings.Timeout is { } timeout ? _time.GetUtcNow().UtcDateTime + timeout : null;

        using var activity = StartActivity(service, method);
        var attempt = 0;
        while (true)
        {
            attempt++;
            var headers = BuildHeaders(routing, settings.Headers);
            try
            {
                var response = await call(request, new CallOptions(headers, deadline, cancellationToken)).ResponseAsync.ConfigureAwait(false);
                activity?.SetTag(CloudTasksDiagnostics.Tags.RpcGrpcStatusCode, (int)StatusCode.OK);
                activity?.SetTag(CloudTasksDiagnostics.Tags.Attempts, attempt);
                return response;
            }
            catch (RpcException ex) when (ShouldRetry(ex, retry, attempt, deadline, cancellationToken, out var delay))
            {
                CloudTasksDiagnostics.Retries.Add(1, new(CloudTasksDiagnostics.Tags.RpcMethod, method), new(CloudTasksDiagnostics.Tags.RpcGrpcStatusCode, (int)ex.StatusCode));
                activity?.AddEvent(new ActivityEvent("retry", tags: new ActivityTagsCollection
                {
                    [CloudTasksDiagnostics.Tags.RpcGrpcStatusCode] = (int)ex.StatusCode,
                    ["bridge.cloudtasks.retry_delay_ms"] = delay.TotalMilliseconds,
                }));
                await Task.Delay(delay, _time, cancellationToken).ConfigureAwait(false);
            }
            catch (RpcException ex)
            {
                activity?.SetTag(CloudTasksDiagnostics.Tags.RpcGrpcStatusCode, (int)ex.StatusCode);
                activity?.SetTag(CloudTasksDiagnostics.Tags.ErrorType, ex.StatusCode.ToString());
                activity?.SetTag(CloudTasksDiagnostics.Tags.Attempts, attempt);
                activity?.SetStatus(ActivityStatusCode.Error, ex.Status.Detail);
                if (ex.StatusCode == StatusCode.Cancelled && cancellationToken.IsCancellationRequested)
                {
                    throw new OperationCanceledException(ex.Message, ex, cancellationToken);
                }

                throw CloudTasksException.FromRpc(ex, method);
            }
        }
    }

    private bool ShouldRetry(RpcException ex, RetrySettings retry, int attempt, DateTime? deadline, CancellationToken cancellationToken, out TimeSpan delay)
    {
        delay = TimeSpan.Zero;
        if (cancellationToken.IsCancellationRequested || !retry.ShouldRetry(ex.StatusCode, attempt))
        {
            return false;
        }

        delay = retry.Delay(attempt, Random.Shared);

        // A retry that could only start after the deadline would fail anyway; surface the real error now.
        return deadline is null || _time.GetUtcNow().UtcDateTime + delay < deadline.Value;
    }

    private Activity? StartActivity(string service, string method)
    {
        var activity = CloudTasksDiagnostics.ActivitySource.StartActivity($"{service}/{method}", ActivityKind.Client);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag(CloudTasksDiagnostics.Tags.RpcSystem, "grpc");
            activity.SetTag(CloudTasksDiagnostics.Tags.RpcService, service);
            activity.SetTag(CloudTasksDiagnostics.Tags.RpcMethod, method);
            activity.SetTag(CloudTasksDiagnostics.Tags.ServerAddress, _endpoint.Host);
            activity.SetTag(CloudTasksDiagnostics.Tags.ServerPort, _endpoint.Port);
        }

        return activity;
    }

    private static Metadata BuildHeaders((string Key, string Value) routing, IReadOnlyDictionary<string, string>? extra)
    {
        var headers = new Metadata
        {
            { ApiClientHeader, ApiClientValue },
            { RequestParamsHeader, $"{routing.Key}={Uri.EscapeDataString(routing.Value)}" },
        };
        if (extra is not null)
        {
            foreach (var (key, value) in extra)
            {
                headers.Add(key, value);
            }
        }

        // The channel's HTTP handler does not propagate (see CloudTasksClientBuilder), so the context sent is
        // exactly the client span's, or the caller's when nobody listens to the client's source.
        if (Activity.Current is { } current)
        {
            DistributedContextPropagator.Current.Inject(current, headers, static (carrier, name, value) =>
            {
                if (carrier is Metadata metadata && value is not null)
                {
                    metadata.Add(name, value);
                }
            });
        }

        return headers;
    }
}
