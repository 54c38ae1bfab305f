using System.Net;
using System.Text;
using System.Text.Json;
using Bridge.CloudTasks;
using Bridge.CloudTasks.LongRunning;
using Bridge.CloudTasks.V2Beta3;
using Bridge.Testing;
using Google.Protobuf;
using BadRequest = Google.Rpc.BadRequest;
using Code = Google.Rpc.Code;
using Grpc.Core;
using Grpc.Net.Client;
using Task = System.Threading.Tasks.Task;
using TaskMessage = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.Emulators.CloudTasks.Tests;

/// <summary>
/// BatchCreateTasks and BatchDeleteTasks with the Bridge client (and the raw stub where the client's own checks would
/// stop a request first), their operations through google.longrunning.Operations, and the same over REST. The queue
/// is paused so tasks stay where the test looks.
/// </summary>
public sealed class BatchTests : IAsyncLifetime
{
    private EmulatorHost _host = null!;
    private QueueName _queue = null!;
    private GrpcChannel _channel = null!;
    private HttpClient _http = null!;

    private CloudTasksClient Client => _host.Client;

    private Bridge.CloudTasks.V2Beta3.CloudTasks.CloudTasksClient Raw => new(_channel);

    public async Task InitializeAsync()
    {
        _host = await EmulatorHost.StartAsync();
        _queue = await _host.CreateQueueAsync();
        await Client.PauseQueueAsync(_queue);
        _channel = GrpcChannel.ForAddress("http://" + _host.GrpcHostPort, new GrpcChannelOptions { MaxSendMessageSize = null });
        _http = new HttpClient { BaseAddress = _host.HttpAddress };
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        _channel.Dispose();
        await _host.DisposeAsync();
    }

    private TaskMessage HttpTask(string? id = null, int bodyBytes = 8) => new()
    {
        Name = id is null ? string.Empty : _queue.Task(id).ToString(),
        HttpRequest = new HttpRequest { Url = "https://worker.example.com/run", Body = ByteString.CopyFrom(new byte[bodyBytes]) },
    };

    private async Task<List<string>> TaskNamesAsync()
    {
        var names = new List<string>();
        await foreach (var task in Client.ListTasks(_queue))
        {
            names.Add(task.Name);
        }

        return names;
    }

    [Fact]
    public async Task A_batch_with_an_existing_name_fails_only_that_request_with_already_exists_and_creates_the_others()
    {
        await Client.CreateTaskAsync(_queue, HttpTask("dup"));

        var operation = await Client.BatchCreateTasksAsync(_queue, [HttpTask("a"), HttpTask("b"), HttpTask("dup"), HttpTask(), HttpTask("c")]);

        Assert.True(operation.IsCompleted);
        Assert.False(operation.IsFaulted);
        Assert.Matches($"^{_queue.Location}/operations/[^/]+$", operation.Name);
        Assert.Equal(BatchCreateTasksMetadata.Types.State.PartiallySucceeded, operation.Metadata!.State);
        Assert.NotNull(operation.Metadata.StartTime);
        Assert.NotNull(operation.Metadata.EndTime);
        var failure = Assert.Single(operation.Metadata.GetRequestFailures());
        Assert.Equal(2, failure.Key);
        Assert.Equal(CloudTasksFailureReason.AlreadyExists, failure.Value.Reason);
        Assert.Equal((int)Code.AlreadyExists, operation.Metadata.FailedRequests[2].Code);

        // The response lists the created tasks in request order, the failed one left out.
        var created = operation.Response!.Tasks.Select(t => t.Name).ToList();
        Assert.Equal(4, created.Count);
        Assert.Equal([_queue.Task("a").ToString(), _queue.Task("b").ToString()], created.Take(2));
        Assert.Matches("/tasks/[1-9][0-9]{18}$", created[2]);
        Assert.Equal(_queue.Task("c").ToString(), created[3]);
        Assert.Equal(5, (await TaskNamesAsync()).Count);

        // Polling finds the same operation through the Operations service.
        var polled = await operation.PollOnceAsync();
        Assert.Equal(operation.RpcMessage, polled.RpcMessage);
        Assert.Same(operation, await operation.PollUntilCompletedAsync());
    }

    [Fact]
    public async Task A_batch_that_all_succeeds_is_succeeded_with_every_task_in_the_response()
    {
        var tasks = Enumerable.Range(0, CloudTasksClient.MaxBatchCreateRequests).Select(i => HttpTask($"t{i:D3}")).ToList();

        var operation = await Client.BatchCreateTasksAsync(_queue, tasks);

        Assert.Equal(BatchCreateTasksMetadata.Types.State.Succeeded, operation.Metadata!.State);
        Assert.Empty(operation.Metadata.FailedRequests);
        Assert.Equal(tasks.Select(t => t.Name), operation.Response!.Tasks.Select(t => t.Name));
        Assert.Equal(100, (await TaskNamesAsync()).Count);
    }

    [Fact]
    public async Task A_batch_where_every_request_fails_is_partially_succeeded_with_an_aborted_error_and_each_failure_listed()
    {
        await Client.CreateTaskAsync(_queue, HttpTask("x"));
        await Client.CreateTaskAsync(_queue, HttpTask("y"));

        var operation = await Client.BatchCreateTasksAsync(_queue, [HttpTask("x"), HttpTask("y")]);

        Assert.True(operation.IsFaulted);
        Assert.Equal(CloudTasksFailureReason.Aborted, operation.Exception!.Reason);
        Assert.Null(operation.Response);
        Assert.Equal(BatchCreateTasksMetadata.Types.State.PartiallySucceeded, operation.Metadata!.State);
        Assert.Equal([0, 1], operation.Metadata.GetRequestFailures().Keys.Order());
        Assert.All(operation.Metadata.GetRequestFailures().Values, f => Assert.Equal(CloudTasksFailureReason.AlreadyExists, f.Reason));
    }

    [Fact]
    public async Task A_task_over_the_size_limit_fails_at_its_index_naming_the_size_and_the_rest_are_created()
    {
        var operation = await Client.BatchCreateTasksAsync(_queue, [HttpTask("small"), HttpTask("huge", bodyBytes: 1_100_000)]);

        var failure = Assert.Single(operation.Metadata!.GetRequestFailures());
        Assert.Equal(1, failure.Key);
        Assert.Equal(CloudTasksFailureReason.InvalidArgument, failure.Value.Reason);
        Assert.Contains("Task size too large", failure.Value.Message, StringComparison.Ordinal);
        Assert.Equal([_queue.Task("small").ToString()], await TaskNamesAsync());
    }

    [Fact]
    public async Task A_batch_delete_deletes_what_it_can_and_reports_missing_and_foreign_names_at_their_index()
    {
        await Client.BatchCreateTasksAsync(_queue, [HttpTask("d1"), HttpTask("d2"), HttpTask("keep")]);
        var other = await _host.CreateQueueAsync();
        await Client.PauseQueueAsync(other);

        var operation = await Client.BatchDeleteTasksAsync(_queue, [_queue.Task("d1"), _queue.Task("missing"), _queue.Task("d2"), other.Task("t")]);

        Assert.True(operation.IsCompleted);
        Assert.False(operation.IsFaulted);
        Assert.Equal(BatchDeleteTasksMetadata.Types.State.PartiallySucceeded, operation.Metadata!.State);
        var failures = operation.Metadata.GetRequestFailures();
        Assert.Equal([1, 3], failures.Keys.Order());
        Assert.Equal(CloudTasksFailureReason.NotFound, failures[1].Reason);
        Assert.Equal(CloudTasksFailureReason.InvalidArgument, failures[3].Reason);
        Assert.Equal([_queue.Task("keep").ToString()], await TaskNamesAsync());

        var all = await Client.BatchDeleteTasksAsync(_queue, [_queue.Task("keep")]);
        Assert.Equal(BatchDeleteTasksMetadata.Types.State.Succeeded, all.Metadata!.State);
        Assert.Empty(await TaskNamesAsync());

        var none = await Client.BatchDeleteTasksAsync(_queue, [_queue.Task("keep")]);
        Assert.Equal(CloudTasksFailureReason.Aborted, none.Exception!.Reason);
        Assert.Contains("BatchDeleteTasksMetadata.failed_requests", none.Exception.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_same_request_id_returns_the_same_operation_without_running_the_batch_again()
    {
        var requestId = Guid.NewGuid().ToString();
        TaskMessage[] unnamed = [HttpTask(), HttpTask(), HttpTask()];

        var first = await Client.BatchCreateTasksAsync(_queue, unnamed, requestId);
        var retried = await Client.BatchCreateTasksAsync(_queue, unnamed, requestId);

        Assert.Equal(first.Name, retried.Name);
        Assert.Equal(first.RpcMessage, retried.RpcMessage);
        Assert.Equal(3, (await TaskNamesAsync()).Count); // unnamed tasks: a second run would have made three more

        var another = await Client.BatchCreateTasksAsync(_queue, unnamed, Guid.NewGuid().ToString());
        Assert.NotEqual(first.Name, another.Name);
        Assert.Equal(6, (await TaskNamesAsync()).Count);

        var reused = await Assert.ThrowsAsync<CloudTasksException>(() => Client.BatchCreateTasksAsync(_queue, [HttpTask("different")], requestId));
        Assert.Equal(CloudTasksFailureReason.InvalidArgument, reused.Reason);
        Assert.Contains(reused.FieldViolations, v => v.Field == "request_id");

        var notUuid = await Assert.ThrowsAsync<CloudTasksException>(() => Client.BatchCreateTasksAsync(_queue, [HttpTask()], "retry-1"));
        Assert.Contains(notUuid.FieldViolations, v => v.Field == "request_id");

        // Delete batches have their own request ids.
        var deleteId = Guid.NewGuid().ToString();
        var deleted = await Client.BatchDeleteTasksAsync(_queue, [TaskName.Parse(first.Response!.Tasks[0].Name)], deleteId);
        var deletedAgain = await Client.BatchDeleteTasksAsync(_queue, [TaskName.Parse(first.Response.Tasks[0].Name)], deleteId);
        Assert.Equal(deleted.RpcMessage, deletedAgain.RpcMessage);
        Assert.Equal(BatchDeleteTasksMetadata.Types.State.Succeeded, deletedAgain.Metadata!.State);
    }

    [Fact]
    public async Task Operations_are_got_listed_waited_on_cancelled_and_deleted()
    {
        var one = await Client.BatchCreateTasksAsync(_queue, [HttpTask("o1")]);
        var two = await Client.BatchDeleteTasksAsync(_queue, [_queue.Task("o1")]);
        var name = OperationName(one.Name);

        Assert.Equal(one.RpcMessage, await Client.GetOperationAsync(name));
        var waited = await Client.WaitOperationAsync(name, TimeSpan.FromSeconds(5));
        Assert.True(waited.Done);

        var listed = new List<Operation>();
        await foreach (var operation in Client.ListOperations(_queue.Location, pageSize: 1))
        {
            listed.Add(operation);
        }

        Assert.Equal(new[] { one.Name, two.Name }.Order(StringComparer.Ordinal), listed.Select(o => o.Name));

        await Client.CancelOperationAsync(name); // done already: nothing to stop
        Assert.True((await Client.GetOperationAsync(name)).Done);

        await Client.DeleteOperationAsync(name);
        var gone = await Assert.ThrowsAsync<CloudTasksException>(() => Client.GetOperationAsync(name));
        Assert.Equal(CloudTasksFailureReason.NotFound, gone.Reason);
        Assert.Equal(CloudTasksFailureReason.NotFound, (await Assert.ThrowsAsync<CloudTasksException>(() => Client.WaitOperationAsync(name))).Reason);

        var badName = await Assert.ThrowsAsync<CloudTasksException>(() => Client.GetOperationAsync(new GetOperationRequest { Name = "operations/123" }));
        Assert.Equal(CloudTasksFailureReason.InvalidArgument, badName.Reason);
    }

    [Fact]
    public async Task Limits_and_whole_call_checks_answer_invalid_argument_or_not_found_naming_the_problem()
    {
        // The Bridge client refuses these itself; the raw stub shows what the emulator answers.
        var tooMany = new BatchCreateTasksRequest { Parent = _queue.ToString() };
        tooMany.Requests.AddRange(Enumerable.Range(0, 101).Select(_ => new CreateTaskRequest { Parent = _queue.ToString(), Task = HttpTask() }));
        await AssertInvalid(() => Raw.BatchCreateTasksAsync(tooMany).ResponseAsync, "requests", "at most 100");

        await AssertInvalid(() => Raw.BatchCreateTasksAsync(new BatchCreateTasksRequest { Parent = _queue.ToString() }).ResponseAsync, "requests", "1 to 100");

        var tooManyNames = new BatchDeleteTasksRequest { Parent = _queue.ToString() };
        tooManyNames.Names.AddRange(Enumerable.Range(0, 1001).Select(i => _queue.Task($"t{i}").ToString()));
        await AssertInvalid(() => Raw.BatchDeleteTasksAsync(tooManyNames).ResponseAsync, "names", "at most 1000");

        // Eleven tasks just under the task limit: each fits, the request does not.
        var tooBig = new BatchCreateTasksRequest { Parent = _queue.ToString() };
        tooBig.Requests.AddRange(Enumerable.Range(0, 11).Select(i => new CreateTaskRequest { Parent = _queue.ToString(), Task = HttpTask($"big{i}", bodyBytes: 1_000_000) }));
        await AssertInvalid(() => Raw.BatchCreateTasksAsync(tooBig).ResponseAsync, "requests", "maximum is 10485760 bytes");

        var otherQueue = _queue.Location.Queue("elsewhere");
        var mixed = new BatchCreateTasksRequest { Parent = _queue.ToString(), Requests = { new CreateTaskRequest { Parent = _queue.ToString(), Task = HttpTask() }, new CreateTaskRequest { Parent = otherQueue.ToString(), Task = HttpTask() } } };
        await AssertInvalid(() => Raw.BatchCreateTasksAsync(mixed).ResponseAsync, "requests[1].parent", "same queue");

        var missing = _queue.Location.Queue("missing");
        var ex = await Assert.ThrowsAsync<RpcException>(() => Raw.BatchCreateTasksAsync(new BatchCreateTasksRequest { Parent = missing.ToString(), Requests = { new CreateTaskRequest { Task = new TaskMessage { HttpRequest = new HttpRequest { Url = "https://x.example.com/" } } } } }).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, ex.StatusCode);

        Assert.Empty(await TaskNamesAsync()); // nothing of a refused batch was created
        Assert.Empty(await ListAllOperationsAsync()); // and no operation kept
    }

    [Fact]
    public async Task A_rest_batch_takes_task_bodies_in_the_url_safe_base64_alphabet_as_the_single_task_path_does()
    {
        byte[] first = [0x3e, 0x3e, 0x3e, 0x3f, 0x3f, 0x3f]; // '+' and '/' in the standard alphabet
        byte[] second = [0xfb, 0xff];
        var body = JsonSerializer.Serialize(new
        {
            requests = new object[]
            {
                new { task = new { name = _queue.Task("u1").ToString(), httpRequest = new { url = "https://worker.example.com/r", body = Convert.ToBase64String(first).Replace('+', '-').Replace('/', '_') } } },
                new { task = new { name = _queue.Task("u2").ToString(), httpRequest = new { url = "https://worker.example.com/r", body = Convert.ToBase64String(second).TrimEnd('=').Replace('+', '-').Replace('/', '_') } } },
            },
        });

        using var created = await _http.PostAsync($"/v2beta3/{_queue}/tasks:batchCreate", new StringContent(body, Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.OK, created.StatusCode);
        var u1 = await Client.GetTaskAsync(new GetTaskRequest { Name = _queue.Task("u1").ToString(), ResponseView = TaskMessage.Types.View.Full });
        var u2 = await Client.GetTaskAsync(new GetTaskRequest { Name = _queue.Task("u2").ToString(), ResponseView = TaskMessage.Types.View.Full });
        Assert.Equal(first, u1.HttpRequest.Body.ToByteArray());
        Assert.Equal(second, u2.HttpRequest.Body.ToByteArray());
    }

    [Fact]
    public async Task Batches_and_operations_work_over_rest()
    {
        var body = JsonSerializer.Serialize(new
        {
            requests = new object[]
            {
                new { task = new { name = _queue.Task("r1").ToString(), httpRequest = new { url = "https://worker.example.com/r", body = Convert.ToBase64String("hi"u8.ToArray()) } } },
                new { task = new { name = _queue.Task("r1").ToString(), httpRequest = new { url = "https://worker.example.com/r" } } },
            },
            requestId = Guid.NewGuid().ToString(),
        });
        using var created = await _http.PostAsync($"/v2beta3/{_queue}/tasks:batchCreate", new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, created.StatusCode);
        using var operation = JsonDocument.Parse(await created.Content.ReadAsStringAsync());
        var root = operation.RootElement;
        Assert.True(root.GetProperty("done").GetBoolean());
        Assert.Equal("type.googleapis.com/google.cloud.tasks.v2beta3.BatchCreateTasksMetadata", root.GetProperty("metadata").GetProperty("@type").GetString());
        Assert.Equal("PARTIALLY_SUCCEEDED", root.GetProperty("metadata").GetProperty("state").GetString());
        Assert.Equal(6, root.GetProperty("metadata").GetProperty("failedRequests").GetProperty("1").GetProperty("code").GetInt32());
        Assert.Equal(_queue.Task("r1").ToString(), root.GetProperty("response").GetProperty("tasks")[0].GetProperty("name").GetString());

        var name = root.GetProperty("name").GetString()!;
        // Compared as messages: the two JSON writers may spell the same timestamp with different digit counts.
        var parser = new JsonParser(JsonParser.Settings.Default.WithIgnoreUnknownFields(false).WithTypeRegistry(
            Google.Protobuf.Reflection.TypeRegistry.FromMessages(BatchCreateTasksMetadata.Descriptor, BatchCreateTasksResponse.Descriptor)));
        var got = await _http.GetStringAsync($"/v2beta3/{name}");
        Assert.Equal(parser.Parse<Operation>(root.GetRawText()), parser.Parse<Operation>(got));

        using var listed = JsonDocument.Parse(await _http.GetStringAsync($"/v2beta3/{_queue.Location}/operations?pageSize=10"));
        Assert.Equal(name, Assert.Single(listed.RootElement.GetProperty("operations").EnumerateArray()).GetProperty("name").GetString());

        using var deleteBody = new StringContent(JsonSerializer.Serialize(new { names = new[] { _queue.Task("r1").ToString() } }), Encoding.UTF8, "application/json");
        using var deleted = await _http.PostAsync($"/v2beta3/{_queue}/tasks:batchDelete", deleteBody);
        using var deletedJson = JsonDocument.Parse(await deleted.Content.ReadAsStringAsync());
        Assert.Equal("SUCCEEDED", deletedJson.RootElement.GetProperty("metadata").GetProperty("state").GetString());

        using var cancelled = await _http.PostAsync($"/v2beta3/{name}:cancel", new StringContent("{}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, cancelled.StatusCode);
        using var removed = await _http.DeleteAsync($"/v2beta3/{name}");
        Assert.Equal(HttpStatusCode.OK, removed.StatusCode);

        using var missing = await _http.GetAsync($"/v2beta3/{name}");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        using var error = JsonDocument.Parse(await missing.Content.ReadAsStringAsync());
        Assert.Equal("NOT_FOUND", error.RootElement.GetProperty("error").GetProperty("status").GetString());

        using var tooMany = await _http.PostAsync($"/v2beta3/{_queue}/tasks:batchDelete", new StringContent(
            JsonSerializer.Serialize(new { names = Enumerable.Range(0, 1001).Select(i => _queue.Task($"t{i}").ToString()) }), Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, tooMany.StatusCode);
        using var tooManyJson = JsonDocument.Parse(await tooMany.Content.ReadAsStringAsync());
        Assert.Equal("INVALID_ARGUMENT", tooManyJson.RootElement.GetProperty("error").GetProperty("status").GetString());
        Assert.Contains("at most 1000", tooManyJson.RootElement.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Reset_forgets_operations()
    {
        var operation = await Client.BatchCreateTasksAsync(_queue, [HttpTask("z")]);
        _host.Emulator.Reset();
        Assert.Equal(CloudTasksFailureReason.NotFound, (await Assert.ThrowsAsync<CloudTasksException>(() => Client.GetOperationAsync(OperationName(operation.Name)))).Reason);
    }

    private async Task<List<Operation>> ListAllOperationsAsync()
    {
        var all = new List<Operation>();
        await foreach (var operation in Client.ListOperations(_queue.Location))
        {
            all.Add(operation);
        }

        return all;
    }

    private static OperationName OperationName(string name)
    {
        var parts = name.Split('/');
        return new OperationName(parts[1], parts[3], parts[5]);
    }

    private static async Task AssertInvalid(Func<Task> call, string field, string messagePart)
    {
        var ex = await Assert.ThrowsAsync<RpcException>(call);
        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.Contains(messagePart, ex.Status.Detail, StringComparison.Ordinal);
        var violation = Assert.Single(ex.GetRpcStatus()!.GetDetail<BadRequest>().FieldViolations);
        Assert.Equal(field, violation.Field);
    }
}

/// <summary>With <c>--data</c>, batch operations and their request ids survive a restart.</summary>
public sealed class BatchDurabilityTests : IDisposable
{
    private readonly DurableStateFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task An_operation_and_its_request_id_survive_a_restart()
    {
        var requestId = Guid.NewGuid().ToString();
        QueueName queue;
        Operation first;
        TaskMessage[] unnamed = [new() { HttpRequest = new HttpRequest { Url = "https://worker.example.com/" } }, new() { HttpRequest = new HttpRequest { Url = "https://worker.example.com/" } }];
        await using (var before = await EmulatorHost.StartAsync(o => o.Data = _folder.Path))
        {
            queue = await before.CreateQueueAsync();
            await before.Client.PauseQueueAsync(queue);
            first = (await before.Client.BatchCreateTasksAsync(queue, unnamed, requestId)).RpcMessage;
        }

        await using var after = await EmulatorHost.StartAsync(o => o.Data = _folder.Path);
        Assert.Equal(first, await after.Client.GetOperationAsync(new GetOperationRequest { Name = first.Name }));
        var retried = await after.Client.BatchCreateTasksAsync(queue, unnamed, requestId);
        Assert.Equal(first, retried.RpcMessage);
        var count = 0;
        await foreach (var _ in after.Client.ListTasks(queue))
        {
            count++;
        }

        Assert.Equal(2, count);
    }
}
