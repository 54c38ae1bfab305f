using Bridge.CloudTasks.Iam.V1;
using Bridge.CloudTasks.LongRunning;
using Bridge.CloudTasks.Tests.Infrastructure;
using Bridge.CloudTasks.V2Beta3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Task = System.Threading.Tasks.Task;
using TaskMessage = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.CloudTasks.Tests;

/// <summary>Every RPC, through the resource-name overloads, arrives at a real server as the expected request.</summary>
public sealed class ClientRequestMappingTests : IAsyncLifetime
{
    private static readonly LocationName Location = new("my-project", "europe-west1");
    private static readonly QueueName Queue = Location.Queue("events");
    private static readonly TaskName TaskName = Queue.Task("abc123");
    private static readonly OperationName OperationName = Location.Operation("op-1");
    private const string RequestId = "5b0c9d1e-1f2a-4b3c-8d4e-5f6a7b8c9d0e";

    private RecordingCloudTasksServer _server = null!;
    private CloudTasksClient _client = null!;

    public async Task InitializeAsync()
    {
        _server = await RecordingCloudTasksServer.StartAsync();
        _client = new CloudTasksClientBuilder { EmulatorHost = _server.HostPort, EmulatorDetection = EmulatorDetection.None }.Build();
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _server.DisposeAsync();
    }

    public static TheoryData<string, Func<CloudTasksClient, Task>, IMessage, string> Calls() => new()
    {
        { "ListQueues", c => c.ListQueues(Location, filter: "state: PAUSED", pageSize: 7).ReadPageAsync(7), new ListQueuesRequest { Parent = Location.ToString(), Filter = "state: PAUSED", PageSize = 7 }, "parent=projects%2Fmy-project%2Flocations%2Feurope-west1" },
        { "GetQueue", c => c.GetQueueAsync(Queue), new GetQueueRequest { Name = Queue.ToString() }, "name=projects%2Fmy-project%2Flocations%2Feurope-west1%2Fqueues%2Fevents" },
        { "CreateQueue", c => c.CreateQueueAsync(Location, new Queue { Name = Queue.ToString(), RateLimits = new RateLimits { MaxDispatchesPerSecond = 5 } }), new CreateQueueRequest { Parent = Location.ToString(), Queue = new Queue { Name = Queue.ToString(), RateLimits = new RateLimits { MaxDispatchesPerSecond = 5 } } }, "parent=projects%2Fmy-project%2Flocations%2Feurope-west1" },
        { "UpdateQueue", c => c.UpdateQueueAsync(new Queue { Name = Queue.ToString(), RetryConfig = new RetryConfig { MaxAttempts = 3 } }, new FieldMask { Paths = { "retry_config.max_attempts" } }), new UpdateQueueRequest { Queue = new Queue { Name = Queue.ToString(), RetryConfig = new RetryConfig { MaxAttempts = 3 } }, UpdateMask = new FieldMask { Paths = { "retry_config.max_attempts" } } }, "queue.name=projects%2Fmy-project%2Flocations%2Feurope-west1%2Fqueues%2Fevents" },
        { "DeleteQueue", c => c.DeleteQueueAsync(Queue), new DeleteQueueRequest { Name = Queue.ToString() }, "name=projects%2Fmy-project%2Flocations%2Feurope-west1%2Fqueues%2Fevents" },
        { "PurgeQueue", c => c.PurgeQueueAsync(Queue), new PurgeQueueRequest { Name = Queue.ToString() }, "name=projects%2Fmy-project%2Flocations%2Feurope-west1%2Fqueues%2Fevents" },
        { "PauseQueue", c => c.PauseQueueAsync(Queue), new PauseQueueRequest { Name = Queue.ToString() }, "name=projects%2Fmy-project%2Flocations%2Feurope-west1%2Fqueues%2Fevents" },
        { "ResumeQueue", c => c.ResumeQueueAsync(Queue), new ResumeQueueRequest { Name = Queue.ToString() }, "name=projects%2Fmy-project%2Flocations%2Feurope-west1%2Fqueues%2Fevents" },
        { "GetIamPolicy", c => c.GetIamPolicyAsync(Queue), new GetIamPolicyRequest { Resource = Queue.ToString() }, "resource=projects%2Fmy-project%2Flocations%2Feurope-west1%2Fqueues%2Fevents" },
        { "SetIamPolicy", c => c.SetIamPolicyAsync(Queue, new Policy { Bindings = { new Binding { Role = "roles/cloudtasks.enqueuer", Members = { "serviceAccount:a@p.iam.gserviceaccount.com" } } }, Etag = ByteString.CopyFromUtf8("e1") }), new SetIamPolicyRequest { Resource = Queue.ToString(), Policy = new Policy { Bindings = { new Binding { Role = "roles/cloudtasks.enqueuer", Members = { "serviceAccount:a@p.iam.gserviceaccount.com" } } }, Etag = ByteString.CopyFromUtf8("e1") } }, "resource=projects%2Fmy-project%2Flocations%2Feurope-west1%2Fqueues%2Fevents" },
        { "TestIamPermissions", c => c.TestIamPermissionsAsync(Queue, ["cloudtasks.tasks.create", "cloudtasks.queues.get"]), new TestIamPermissionsRequest { Resource = Queue.ToString(), Permissions = { "cloudtasks.tasks.create", "cloudtasks.queues.get" } }, "resource=projects%2Fmy-project%2Flocations%2Feurope-west1%2Fqueues%2Fevents" },
        { "ListTasks", c => c.ListTasks(Queue, TaskMessage.Types.View.Full, pageSize: 3).ReadPageAsync(3), new ListTasksRequest { Parent = Queue.ToString(), ResponseView = TaskMessage.Types.View.Full, PageSize = 3 }, "parent=projects%2Fmy-project%2Flocations%2Feurope-west1%2Fqueues%2Fevents" },
        { "GetTask", c => c.GetTaskAsync(TaskName), new GetTaskRequest { Name = TaskName.ToString() }, "name=projects%2Fmy-project%2Flocations%2Feurope-west1%2Fqueues%2Fevents%2Ftasks%2Fabc123" },
        { "CreateTask", c => c.CreateTaskAsync(Queue, NewTask()), new CreateTaskRequest { Parent = Queue.ToString(), Task = NewTask() }, "parent=projects%2Fmy-project%2Flocations%2Feurope-west1%2Fqueues%2Fevents" },
        { "DeleteTask", c => c.DeleteTaskAsync(TaskName), new DeleteTaskRequest { Name = TaskName.ToString() }, "name=projects%2Fmy-project%2Flocations%2Feurope-west1%2Fqueues%2Fevents%2Ftasks%2Fabc123" },
        { "RunTask", c => c.RunTaskAsync(TaskName), new RunTaskRequest { Name = TaskName.ToString() }, "name=projects%2Fmy-project%2Flocations%2Feurope-west1%2Fqueues%2Fevents%2Ftasks%2Fabc123" },
        { "GetCmekConfig", c => c.GetCmekConfigAsync(Location), new GetCmekConfigRequest { Name = Location + "/cmekConfig" }, "name=projects%2Fmy-project%2Flocations%2Feurope-west1%2FcmekConfig" },
        { "UpdateCmekConfig", c => c.UpdateCmekConfigAsync(new UpdateCmekConfigRequest { CmekConfig = new CmekConfig { Name = Location + "/cmekConfig", KmsKey = "k" } }), new UpdateCmekConfigRequest { CmekConfig = new CmekConfig { Name = Location + "/cmekConfig", KmsKey = "k" } }, "cmek_config.name=projects%2Fmy-project%2Flocations%2Feurope-west1%2FcmekConfig" },
        { "BatchCreateTasks", c => c.BatchCreateTasksAsync(Queue, [NewTask(), new TaskMessage { Name = Queue.Task("second").ToString() }], RequestId), new BatchCreateTasksRequest { Parent = Queue.ToString(), RequestId = RequestId, Requests = { new CreateTaskRequest { Parent = Queue.ToString(), Task = NewTask() }, new CreateTaskRequest { Parent = Queue.ToString(), Task = new TaskMessage { Name = Queue.Task("second").ToString() } } } }, "parent=projects%2Fmy-project%2Flocations%2Feurope-west1%2Fqueues%2Fevents" },
        { "BatchDeleteTasks", c => c.BatchDeleteTasksAsync(Queue, [TaskName, Queue.Task("second")], RequestId), new BatchDeleteTasksRequest { Parent = Queue.ToString(), RequestId = RequestId, Names = { TaskName.ToString(), Queue.Task("second").ToString() } }, "parent=projects%2Fmy-project%2Flocations%2Feurope-west1%2Fqueues%2Fevents" },
        { "GetOperation", c => c.GetOperationAsync(OperationName), new GetOperationRequest { Name = OperationName.ToString() }, "name=projects%2Fmy-project%2Flocations%2Feurope-west1%2Foperations%2Fop-1" },
        { "ListOperations", c => c.ListOperations(Location, filter: "done=true", pageSize: 4).ReadPageAsync(4), new ListOperationsRequest { Name = Location.ToString(), Filter = "done=true", PageSize = 4 }, "name=projects%2Fmy-project%2Flocations%2Feurope-west1" },
        { "CancelOperation", c => c.CancelOperationAsync(OperationName), new CancelOperationRequest { Name = OperationName.ToString() }, "name=projects%2Fmy-project%2Flocations%2Feurope-west1%2Foperations%2Fop-1" },
        { "DeleteOperation", c => c.DeleteOperationAsync(OperationName), new DeleteOperationRequest { Name = OperationName.ToString() }, "name=projects%2Fmy-project%2Flocations%2Feurope-west1%2Foperations%2Fop-1" },
        { "WaitOperation", c => c.WaitOperationAsync(OperationName, TimeSpan.FromSeconds(30)), new WaitOperationRequest { Name = OperationName.ToString(), Timeout = Duration.FromTimeSpan(TimeSpan.FromSeconds(30)) }, "name=projects%2Fmy-project%2Flocations%2Feurope-west1%2Foperations%2Fop-1" },
    };

    [Theory]
    [MemberData(nameof(Calls))]
    public async Task Each_rpc_sends_its_request_and_routing_header(string method, Func<CloudTasksClient, Task> call, IMessage expected, string routing)
    {
        await call(_client);

        var recorded = _server.Single(method);
        Assert.Equal(expected, recorded.Request);
        Assert.Equal(routing, recorded.Headers["x-goog-request-params"]);
        Assert.StartsWith("gl-dotnet/", recorded.Headers["x-goog-api-client"], StringComparison.Ordinal);
    }

    [Fact]
    public void The_mapping_table_covers_every_rpc_of_both_services()
    {
        var covered = Calls().Select(row => (string)row[0]).Order();
        var rpcs = CloudtasksReflection.Descriptor.Services.Single().Methods
            .Concat(OperationsReflection.Descriptor.Services.Single().Methods)
            .Select(m => m.Name).Order();
        Assert.Equal(rpcs, covered);
    }

    [Fact]
    public async Task Responses_come_back_as_typed_messages()
    {
        var task = await _client.CreateTaskAsync(Queue, NewTask());
        Assert.Equal(NewTask().Name, task.Name);
        Assert.Equal(NewTask().HttpRequest, task.HttpRequest);

        var paused = await _client.PauseQueueAsync(Queue);
        Assert.Equal(Queue.ToString(), paused.Name);
        Assert.Equal(V2Beta3.Queue.Types.State.Paused, paused.State);
    }

    [Fact]
    public async Task A_batch_create_returns_its_operation_with_typed_response_and_metadata()
    {
        var operation = await _client.BatchCreateTasksAsync(Queue, [NewTask()]);

        Assert.True(operation.IsCompleted);
        Assert.False(operation.IsFaulted);
        Assert.StartsWith("projects/my-project/locations/europe-west1/operations/", operation.Name, StringComparison.Ordinal);
        Assert.Equal("BatchCreateTasks", operation.Method);
        Assert.Equal(NewTask().Name, Assert.Single(operation.Response!.Tasks).Name);
        Assert.Equal(BatchCreateTasksMetadata.Types.State.Succeeded, operation.Metadata!.State);
        Assert.Empty(operation.Metadata.GetRequestFailures());
    }

    [Fact]
    public async Task Operations_calls_are_traced_under_the_operations_service()
    {
        var spans = new List<System.Diagnostics.Activity>();
        using var listener = new System.Diagnostics.ActivityListener
        {
            ShouldListenTo = source => source.Name == "Bridge.CloudTasks",
            Sample = (ref System.Diagnostics.ActivityCreationOptions<System.Diagnostics.ActivityContext> _) => System.Diagnostics.ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity =>
            {
                lock (spans)
                {
                    spans.Add(activity);
                }
            },
        };
        System.Diagnostics.ActivitySource.AddActivityListener(listener);
        using var parent = new System.Diagnostics.Activity("test").SetIdFormat(System.Diagnostics.ActivityIdFormat.W3C).Start();

        await _client.GetOperationAsync(OperationName);

        System.Diagnostics.Activity span;
        lock (spans)
        {
            span = spans.Single(s => s.TraceId == parent.TraceId);
        }

        Assert.Equal("google.longrunning.Operations/GetOperation", span.DisplayName);
        Assert.Equal("google.longrunning.Operations", span.GetTagItem("rpc.service"));
    }

    [Fact]
    public async Task Extra_headers_from_call_settings_are_sent()
    {
        await _client.GetQueueAsync(new GetQueueRequest { Name = Queue.ToString() }, new CallSettings { Headers = new Dictionary<string, string> { ["x-goog-user-project"] = "billing-project" } });
        Assert.Equal("billing-project", _server.Single("GetQueue").Headers["x-goog-user-project"]);
    }

    private static TaskMessage NewTask() => new()
    {
        Name = TaskName.ToString(),
        ScheduleTime = Timestamp.FromDateTime(new DateTime(2026, 12, 1, 10, 0, 0, DateTimeKind.Utc)),
        DispatchDeadline = Duration.FromTimeSpan(TimeSpan.FromMinutes(2)),
        HttpRequest = new HttpRequest
        {
            Url = "https://worker.example.com/run",
            HttpMethod = V2Beta3.HttpMethod.Post,
            Headers = { ["Content-Type"] = "application/json", ["traceparent"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" },
            Body = ByteString.CopyFromUtf8("{\"order\":1234}"),
            OidcToken = new OidcToken { ServiceAccountEmail = "invoker@my-project.iam.gserviceaccount.com", Audience = "https://worker.example.com" },
        },
    };
}
