using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Bridge.CloudTasks.Iam.V1;
using Bridge.CloudTasks.LongRunning;
using Bridge.CloudTasks.V2Beta3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Bridge.Testing;
using Microsoft.Extensions.Logging;
using Task = System.Threading.Tasks.Task;
using TaskMessage = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.CloudTasks.Tests.Infrastructure;

/// <summary>One call as the server saw it.</summary>
public sealed record RecordedCall(string Method, IMessage Request, IReadOnlyDictionary<string, string> Headers, DateTime Deadline);

/// <summary>
/// A real gRPC server for the CloudTasks and google.longrunning Operations services on a loopback port (plaintext HTTP/2, or TLS with a self-signed
/// certificate). It records every call and answers through <see cref="Handler"/>, so client tests see exactly what
/// went over the wire. Errors the server logs (a handler that throws anything but an RpcException) fail the test
/// (see <see cref="ErrorLogGuard.CheckOnStop"/>), unless <see cref="Errors"/> expects them.
/// </summary>
public sealed class RecordingCloudTasksServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private RecordingCloudTasksServer(WebApplication app, ErrorLogGuard errors, Uri address, X509Certificate2? certificate)
    {
        _app = app;
        Errors = errors;
        Address = address;
        Certificate = certificate;
    }

    public Uri Address { get; }

    public ErrorLogGuard Errors { get; }

    /// <summary>host:port, as an emulator host.</summary>
    public string HostPort => $"{Address.Host}:{Address.Port}";

    public X509Certificate2? Certificate { get; }

    public ConcurrentQueue<RecordedCall> Calls { get; } = new();

    /// <summary>How long the server waits before answering (asynchronously, so no thread is held).</summary>
    public TimeSpan ResponseDelay { get; set; }

    /// <summary>Answers a call; the default echoes names into plausible responses.</summary>
    public Func<string, IMessage, ServerCallContext, IMessage> Handler { get; set; } = DefaultResponse;

    /// <summary>When set, answers instead of <see cref="Handler"/>, and may hold the call open (e.g. until cancelled).</summary>
    public Func<string, IMessage, ServerCallContext, Task<IMessage>>? AsyncHandler { get; set; }

    public static async Task<RecordingCloudTasksServer> StartAsync(bool tls = false)
    {
        var certificate = tls ? CreateSelfSignedCertificate() : null;
        var builder = WebApplication.CreateSlimBuilder(["--hostBuilder:reloadConfigOnChange=false"]); // settings read once: no inotify watch of the working directory and all below it
        var errors = new ErrorLogGuard();
        builder.Logging.ClearProviders().AddProvider(errors);
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen =>
        {
            listen.Protocols = HttpProtocols.Http2;
            if (certificate is not null)
            {
                listen.UseHttps(certificate);
            }
        }));
        builder.Services.AddGrpc();
        builder.Services.AddSingleton<RecordingService>();
        builder.Services.AddSingleton<RecordingOperationsService>();
        var app = builder.Build();
        app.MapGrpcService<RecordingService>();
        app.MapGrpcService<RecordingOperationsService>();
        await app.StartAsync();
        var bound = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single());
        var server = new RecordingCloudTasksServer(app, errors, new Uri($"{(tls ? "https" : "http")}://127.0.0.1:{bound.Port}"), certificate);
        app.Services.GetRequiredService<RecordingService>().Owner = server;
        app.Services.GetRequiredService<RecordingOperationsService>().Owner = server;
        return server;
    }

    /// <summary>A handler that trusts exactly this server's certificate.</summary>
    public HttpMessageHandler CreateTrustingHandler() => new SocketsHttpHandler
    {
        ActivityHeadersPropagator = null,
        SslOptions = { RemoteCertificateValidationCallback = (_, cert, _, _) => cert is not null && Certificate is not null && cert.GetCertHashString() == Certificate.GetCertHashString() },
    };

    /// <summary>
    /// The next <paramref name="failures"/> calls (of <paramref name="method"/> only, when named) fail with
    /// <paramref name="code"/>; the rest go to the handler set now.
    /// </summary>
    public void FailFirst(int failures, StatusCode code, string? method = null)
    {
        var calls = 0;
        var inner = Handler;
        Handler = (called, request, context) =>
            (method is null || called == method) && Interlocked.Increment(ref calls) <= failures ? throw new RpcException(new Status(code, "injected")) : inner(called, request, context);
    }

    public RecordedCall Single(string method) => Calls.Single(c => c.Method == method);

    public async ValueTask DisposeAsync() => await Teardown.AllAsync(() => _app.StopAsync(), _app, Certificate, Errors.CheckOnDispose());

    internal async Task<IMessage> HandleAsync(string method, IMessage request, ServerCallContext context)
    {
        if (ResponseDelay > TimeSpan.Zero)
        {
            await Task.Delay(ResponseDelay, context.CancellationToken);
        }

        var headers = context.RequestHeaders
            .Where(h => !h.IsBinary)
            .GroupBy(h => h.Key)
            .ToDictionary(g => g.Key, g => string.Join(",", g.Select(h => h.Value)));
        Calls.Enqueue(new RecordedCall(method, request, headers, context.Deadline));
        return AsyncHandler is { } handler ? await handler(method, request, context) : Handler(method, request, context);
    }

    /// <summary>The operation a batch call starts by default: named after the queue's location, already done.</summary>
    public static Operation DoneBatchOperation(string queue, IMessage response, IMessage metadata) => new()
    {
        Name = string.Join('/', queue.Split('/').Take(4)) + "/operations/op-" + Guid.NewGuid().ToString("N"),
        Done = true,
        Metadata = Any.Pack(metadata),
        Response = Any.Pack(response),
    };

    private static IMessage DefaultResponse(string method, IMessage request, ServerCallContext context) => request switch
    {
        ListQueuesRequest => new ListQueuesResponse(),
        GetQueueRequest r => new Queue { Name = r.Name },
        CreateQueueRequest r => new Queue(r.Queue) { State = Queue.Types.State.Running },
        UpdateQueueRequest r => r.Queue,
        DeleteQueueRequest or DeleteTaskRequest => new Empty(),
        PurgeQueueRequest r => new Queue { Name = r.Name, PurgeTime = Timestamp.FromDateTime(DateTime.UnixEpoch) },
        PauseQueueRequest r => new Queue { Name = r.Name, State = Queue.Types.State.Paused },
        ResumeQueueRequest r => new Queue { Name = r.Name, State = Queue.Types.State.Running },
        GetIamPolicyRequest => new Policy { Etag = ByteString.CopyFromUtf8("e1") },
        SetIamPolicyRequest r => r.Policy,
        TestIamPermissionsRequest r => new TestIamPermissionsResponse { Permissions = { r.Permissions } },
        ListTasksRequest => new ListTasksResponse(),
        GetTaskRequest r => new TaskMessage { Name = r.Name, View = r.ResponseView },
        CreateTaskRequest r => new TaskMessage(r.Task) { Name = string.IsNullOrEmpty(r.Task.Name) ? r.Parent + "/tasks/generated" : r.Task.Name },
        RunTaskRequest r => new TaskMessage { Name = r.Name, DispatchCount = 1 },
        GetCmekConfigRequest r => new CmekConfig { Name = r.Name },
        UpdateCmekConfigRequest r => r.CmekConfig,
        BatchCreateTasksRequest r => DoneBatchOperation(
            r.Parent,
            new BatchCreateTasksResponse { Tasks = { r.Requests.Select(c => new TaskMessage(c.Task)) } },
            new BatchCreateTasksMetadata { State = BatchCreateTasksMetadata.Types.State.Succeeded }),
        BatchDeleteTasksRequest r => DoneBatchOperation(r.Parent, new Empty(), new BatchDeleteTasksMetadata { State = BatchDeleteTasksMetadata.Types.State.Succeeded }),
        GetOperationRequest r => new Operation { Name = r.Name, Done = true, Response = Any.Pack(new Empty()) },
        WaitOperationRequest r => new Operation { Name = r.Name, Done = true, Response = Any.Pack(new Empty()) },
        ListOperationsRequest => new ListOperationsResponse(),
        CancelOperationRequest or DeleteOperationRequest => new Empty(),
        _ => throw new RpcException(new Status(StatusCode.Unimplemented, method)),
    };

    private static X509Certificate2 CreateSelfSignedCertificate()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        san.AddDnsName("localhost");
        request.CertificateExtensions.Add(san.Build());
        using var cert = request.CreateSelfSigned(TimeProvider.System.GetUtcNow().AddMinutes(-5), TimeProvider.System.GetUtcNow().AddHours(1));
        return X509CertificateLoader.LoadPkcs12(cert.Export(X509ContentType.Pfx), null);
    }

    private sealed class RecordingService : CloudTasks.V2Beta3.CloudTasks.CloudTasksBase
    {
        public RecordingCloudTasksServer Owner { get; set; } = null!;

        private async Task<T> Run<T>(string method, IMessage request, ServerCallContext context)
            where T : IMessage => (T)await Owner.HandleAsync(method, request, context);

        public override Task<ListQueuesResponse> ListQueues(ListQueuesRequest request, ServerCallContext context) => Run<ListQueuesResponse>("ListQueues", request, context);

        public override Task<Queue> GetQueue(GetQueueRequest request, ServerCallContext context) => Run<Queue>("GetQueue", request, context);

        public override Task<Queue> CreateQueue(CreateQueueRequest request, ServerCallContext context) => Run<Queue>("CreateQueue", request, context);

        public override Task<Queue> UpdateQueue(UpdateQueueRequest request, ServerCallContext context) => Run<Queue>("UpdateQueue", request, context);

        public override Task<Empty> DeleteQueue(DeleteQueueRequest request, ServerCallContext context) => Run<Empty>("DeleteQueue", request, context);

        public override Task<Queue> PurgeQueue(PurgeQueueRequest request, ServerCallContext context) => Run<Queue>("PurgeQueue", request, context);

        public override Task<Queue> PauseQueue(PauseQueueRequest request, ServerCallContext context) => Run<Queue>("PauseQueue", request, context);

        public override Task<Queue> ResumeQueue(ResumeQueueRequest request, ServerCallContext context) => Run<Queue>("ResumeQueue", request, context);

        public override Task<Policy> GetIamPolicy(GetIamPolicyRequest request, ServerCallContext context) => Run<Policy>("GetIamPolicy", request, context);

        public override Task<Policy> SetIamPolicy(SetIamPolicyRequest request, ServerCallContext context) => Run<Policy>("SetIamPolicy", request, context);

        public override Task<TestIamPermissionsResponse> TestIamPermissions(TestIamPermissionsRequest request, ServerCallContext context) => Run<TestIamPermissionsResponse>("TestIamPermissions", request, context);

        public override Task<ListTasksResponse> ListTasks(ListTasksRequest request, ServerCallContext context) => Run<ListTasksResponse>("ListTasks", request, context);

        public override Task<TaskMessage> GetTask(GetTaskRequest request, ServerCallContext context) => Run<TaskMessage>("GetTask", request, context);

        public override Task<TaskMessage> CreateTask(CreateTaskRequest request, ServerCallContext context) => Run<TaskMessage>("CreateTask", request, context);

        public override Task<Empty> DeleteTask(DeleteTaskRequest request, ServerCallContext context) => Run<Empty>("DeleteTask", request, context);

        public override Task<TaskMessage> RunTask(RunTaskRequest request, ServerCallContext context) => Run<TaskMessage>("RunTask", request, context);

        public override Task<CmekConfig> GetCmekConfig(GetCmekConfigRequest request, ServerCallContext context) => Run<CmekConfig>("GetCmekConfig", request, context);

        public override Task<CmekConfig> UpdateCmekConfig(UpdateCmekConfigRequest request, ServerCallContext context) => Run<CmekConfig>("UpdateCmekConfig", request, context);

        public override Task<Operation> BatchCreateTasks(BatchCreateTasksRequest request, ServerCallContext context) => Run<Operation>("BatchCreateTasks", request, context);

        public override Task<Operation> BatchDeleteTasks(BatchDeleteTasksRequest request, ServerCallContext context) => Run<Operation>("BatchDeleteTasks", request, context);
    }

    private sealed class RecordingOperationsService : Operations.OperationsBase
    {
        public RecordingCloudTasksServer Owner { get; set; } = null!;

        private async Task<T> Run<T>(string method, IMessage request, ServerCallContext context)
            where T : IMessage => (T)await Owner.HandleAsync(method, request, context);

        public override Task<Operation> GetOperation(GetOperationRequest request, ServerCallContext context) => Run<Operation>("GetOperation", request, context);

        public override Task<ListOperationsResponse> ListOperations(ListOperationsRequest request, ServerCallContext context) => Run<ListOperationsResponse>("ListOperations", request, context);

        public override Task<Empty> CancelOperation(CancelOperationRequest request, ServerCallContext context) => Run<Empty>("CancelOperation", request, context);

        public override Task<Empty> DeleteOperation(DeleteOperationRequest request, ServerCallContext context) => Run<Empty>("DeleteOperation", request, context);

        public override Task<Operation> WaitOperation(WaitOperationRequest request, ServerCallContext context) => Run<Operation>("WaitOperation", request, context);
    }
}
