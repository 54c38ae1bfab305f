using System.Diagnostics;
using System.Text.Json.Nodes;
using Bridge.CloudTasks.LongRunning;
using Bridge.CloudTasks.Tests.Infrastructure;
using Bridge.CloudTasks.V2Beta3;
using Bridge.Testing;
using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Grpc.Core;
using Xunit.Abstractions;
using Status = Grpc.Core.Status;
using StatusCode = Grpc.Core.StatusCode;
using Task = System.Threading.Tasks.Task;
using TaskMessage = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.CloudTasks.Tests;

/// <summary>
/// The official Node.js client against the same loopback server as this client: it must send the same batch
/// requests, and decode the server's operations (Any type URLs, metadata states, failed_requests, errors) through its
/// own GetOperation polling, by tests/conformance/batch-operation-peer.mjs.
/// </summary>
public sealed class OfficialClientPeerTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const string RequestId = "0e7d3a52-8f3b-4c1e-9a6d-2b5f4c3d2e1f";
    private static readonly QueueName Queue = new("p", "l", "q");
    private static readonly string OperationName = Queue.Location.Operation("create-1").ToString();

    private RecordingCloudTasksServer _server = null!;

    public async Task InitializeAsync() => _server = await RecordingCloudTasksServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task The_official_client_sends_the_same_requests_and_decodes_the_operations()
    {
        var getOperationCalls = 0;
        _server.Handler = (method, request, _) => method switch
        {
            "BatchCreateTasks" => new Operation
            {
                Name = OperationName,
                Metadata = Any.Pack(new BatchCreateTasksMetadata { State = BatchCreateTasksMetadata.Types.State.Running }),
            },
            "GetOperation" when Interlocked.Increment(ref getOperationCalls) == 1 => new Operation
            {
                Name = OperationName,
                Metadata = Any.Pack(new BatchCreateTasksMetadata { State = BatchCreateTasksMetadata.Types.State.Running }),
            },
            "GetOperation" => new Operation
            {
                Name = OperationName,
                Done = true,
                Metadata = Any.Pack(new BatchCreateTasksMetadata
                {
                    State = BatchCreateTasksMetadata.Types.State.PartiallySucceeded,
                    FailedRequests = { [1] = new Google.Rpc.Status { Code = (int)Code.AlreadyExists, Message = "Requested entity already exists" } },
                }),
                Response = Any.Pack(new BatchCreateTasksResponse { Tasks = { new TaskMessage { Name = Queue.Task("t0").ToString() }, new TaskMessage { Name = Queue.Task("t2").ToString() } } }),
            },
            "BatchDeleteTasks" => new Operation
            {
                Name = Queue.Location.Operation("delete-1").ToString(),
                Done = true,
                Error = new Google.Rpc.Status { Code = (int)Code.Aborted, Message = "None of the requests succeeded" },
                Metadata = Any.Pack(new BatchDeleteTasksMetadata { State = BatchDeleteTasksMetadata.Types.State.PartiallySucceeded }),
            },
            _ => throw new RpcException(new Status(StatusCode.Unimplemented, method)),
        };

        var node = await RunNodeAsync();
        var ours = await RunOursAsync();

        // Requests: the official client's and ours are the same messages with the same routing header.
        foreach (var method in new[] { "BatchCreateTasks", "BatchDeleteTasks" })
        {
            var official = node.Single(c => c.Method == method);
            var mine = ours.Single(c => c.Method == method);
            Assert.Equal(official.Request, mine.Request);
            Assert.Equal(official.Headers["x-goog-request-params"], mine.Headers["x-goog-request-params"]);
        }

        var officialPoll = node.First(c => c.Method == "GetOperation");
        Assert.Equal(new GetOperationRequest { Name = OperationName }, officialPoll.Request);

        // Operations: what the official client decoded from the server's answers.
        var result = _nodeResult!;
        Assert.Equal(OperationName, result["createName"]!.GetValue<string>());
        Assert.False(result["createDoneAtFirst"]!.GetValue<bool>());
        Assert.Equal("PARTIALLY_SUCCEEDED", result["createMetadata"]!["state"]!.GetValue<string>());
        Assert.Equal(6, result["createMetadata"]!["failedRequests"]!["1"]!["code"]!.GetValue<int>());
        Assert.Equal([Queue.Task("t0").ToString(), Queue.Task("t2").ToString()], result["createResponse"]!["tasks"]!.AsArray().Select(t => t!["name"]!.GetValue<string>()));
        Assert.Equal(10, result["deleteError"]!["code"]!.GetValue<int>());
    }

    private JsonNode? _nodeResult;

    private async Task<List<RecordedCall>> RunNodeAsync()
    {
        var script = Path.Combine(RepositoryPaths.Root, "tests", "conformance", "batch-operation-peer.mjs");
        Assert.True(Directory.Exists(Path.Combine(RepositoryPaths.Root, "tests", "conformance", "node_modules", "@google-cloud", "tasks")), "Run 'npm ci' in tests/conformance (.ci/run does).");
        var start = new ProcessStartInfo("node")
        {
            ArgumentList = { script },
            WorkingDirectory = Path.GetDirectoryName(script)!,
        };
        start.Environment["SERVER_HOST"] = _server.HostPort;
        start.Environment["REQUEST_ID"] = RequestId;
        start.Environment["METADATA_SERVER_DETECTION"] = "none";
        var process = await ChildProcess.RunToExitAsync(start, TimeSpan.FromMinutes(2));

        output.WriteLine(process.Stdout);
        output.WriteLine(process.Stderr);
        Assert.Equal(0, process.ExitCode);
        _nodeResult = JsonNode.Parse(process.Stdout.Trim().Split('\n')[^1]);

        var calls = _server.Calls.ToList();
        _server.Calls.Clear();
        return calls;
    }

    private async Task<List<RecordedCall>> RunOursAsync()
    {
        using var client = new CloudTasksClientBuilder { EmulatorHost = _server.HostPort, EmulatorDetection = EmulatorDetection.None }.Build();
        await client.BatchCreateTasksAsync(Queue, Enumerable.Range(0, 3).Select(i => new TaskMessage { Name = Queue.Task($"t{i}").ToString() }), RequestId);
        await client.BatchDeleteTasksAsync(Queue, [Queue.Task("t0"), Queue.Task("t1")]);
        return _server.Calls.ToList();
    }
}
