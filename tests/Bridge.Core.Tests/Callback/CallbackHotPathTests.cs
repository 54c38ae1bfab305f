using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using Bridge.Core.Callback;
using Bridge.Core.Internal;
using Bridge.Core.Routing;
using Bridge.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using OpenTelemetry;
using OpenTelemetry.Trace;

namespace Bridge.Core.Tests.Callback;

/// <summary>
/// What the receiver's allocation-light paths must keep exactly as before: the outcome's id and type, the JWS
/// segment limits, and the refusal of a signature that is not base64url.
/// </summary>
public sealed class CallbackHotPathTests
{
    [Theory]
    [InlineData("projects/p/locations/l/queues/q", "projects/p/locations/l/queues/q/tasks/t1", "abc123", OutcomeStatus.Delivered)]
    [InlineData(null, "projects/p/locations/l/queues/q/tasks/t1", null, OutcomeStatus.Failed)]
    [InlineData("projects/p/locations/l/queues/q", "projects/p/locations/l/queues/q/tasks/tâche-ü-😀", "", OutcomeStatus.Succeeded)]
    public void The_outcome_id_is_the_sha256_of_queue_task_instance_and_status_as_before(string? queue, string task, string? instance, OutcomeStatus status)
    {
        var outcome = new TaskOutcome { Status = status, TaskName = task, Queue = queue, TaskInstance = instance, ReportedBy = "a@b", ReceivedAt = DateTimeOffset.UnixEpoch };

        Assert.Equal(ReferenceId(queue, task, instance, status), outcome.Id);
    }

    [Theory]
    [InlineData("1795000000.123456")]
    [InlineData("1795000000")]
    [InlineData("1795000000.")]
    [InlineData("0")]
    [InlineData("0.0000001")]
    [InlineData("1.99999999999")]
    [InlineData("00000000001.5")]
    [InlineData("99999999999.999999999999999")]
    public void A_task_eta_reads_as_the_decimal_parse_did(string text)
    {
        Assert.True(CallbackReceiver.TryReadUnixTicks(text, out var ticks));

        Assert.True(decimal.TryParse(text, System.Globalization.NumberStyles.AllowDecimalPoint, System.Globalization.CultureInfo.InvariantCulture, out var seconds));
        Assert.Equal((long)(seconds * TimeSpan.TicksPerSecond), ticks);
    }

    [Theory]
    [InlineData("")]
    [InlineData(".5")]
    [InlineData("-1")]
    [InlineData("1e9")]
    [InlineData(" 1")]
    [InlineData("1.2.3")]
    [InlineData("253402300799")] // 12 digits: the decimal path decides (this one is past the limit)
    [InlineData("1.1234567890123456")] // over 15 decimals
    public void Any_other_eta_is_left_to_the_decimal_path(string text) =>
        Assert.False(CallbackReceiver.TryReadUnixTicks(text, out _));

    [Fact]
    public void An_outcome_id_over_the_stack_buffer_is_computed_the_same_way()
    {
        var task = "projects/p/locations/l/queues/q/tasks/" + new string('x', 500) + new string('é', 400);
        var outcome = new TaskOutcome { Status = OutcomeStatus.Delivered, TaskName = task, Queue = "projects/p/locations/l/queues/q", TaskInstance = "i1", ReportedBy = "a@b", ReceivedAt = DateTimeOffset.UnixEpoch };

        Assert.Equal(ReferenceId(outcome.Queue, task, "i1", OutcomeStatus.Delivered), outcome.Id);
    }

    [Theory]
    [InlineData(OutcomeStatus.Delivered, "dev.bridge.task.delivered")]
    [InlineData(OutcomeStatus.Succeeded, "dev.bridge.task.succeeded")]
    [InlineData(OutcomeStatus.Failed, "dev.bridge.task.failed")]
    public void The_outcome_type_names_its_status(OutcomeStatus status, string type) =>
        Assert.Equal(type, new TaskOutcome { Status = status, TaskName = "t", ReportedBy = "a@b", ReceivedAt = DateTimeOffset.UnixEpoch }.Type);

    [Fact]
    public void A_header_segment_is_read_up_to_six_KiB_and_refused_beyond()
    {
        static string Segment(int decodedBytes)
        {
            const string prefix = "{\"alg\":\"RS256\",\"kid\":\"k\",\"pad\":\"";
            var json = prefix + new string('x', decodedBytes - prefix.Length - 2) + "\"}";
            Assert.Equal(decodedBytes, Encoding.UTF8.GetByteCount(json));
            return TestTokenIssuer.Encode(Encoding.UTF8.GetBytes(json));
        }

        Assert.True(JwtParts.TryReadHeader(Segment(6 * 1024), out var header));
        Assert.Equal((true, "k"), (header.IsRs256, header.Kid));
        Assert.False(JwtParts.TryReadHeader(Segment((6 * 1024) + 3), out _));
    }

    [Fact]
    public async Task A_signature_that_is_not_base64url_is_a_bad_signature_before_any_key_is_fetched()
    {
        await using var issuer = await TestTokenIssuer.StartAsync();
        var verifier = new OidcTokenVerifier(Options.Create(new CallbackOptions
        {
            Issuers = [new TrustedIssuer { Issuer = issuer.Issuer, DiscoveryUrl = issuer.DiscoveryUrl }],
            Audiences = ["https://bridge.example.com/api/tasks/callback"],
            AllowedServiceAccounts = ["invoker@p.iam.gserviceaccount.com"],
        }), TimeProvider.System);
        var token = issuer.Mint(TestTokenIssuer.Claims(issuer.Issuer, "https://bridge.example.com/api/tasks/callback", "invoker@p.iam.gserviceaccount.com"));
        var signed = token[..token.LastIndexOf('.')];

        var notBase64 = await verifier.VerifyAsync("Bearer " + signed + ".!!!!");
        Assert.Equal(TokenRejection.BadSignature, notBase64.Rejection);
        Assert.Equal(0, verifier.KeysOf(issuer.Issuer).Fetches);

        var valid = await verifier.VerifyAsync("Bearer " + token);
        Assert.True(valid.IsValid, valid.Rejection?.ToString());
        Assert.Equal(["https://bridge.example.com/api/tasks/callback"], valid.Audiences);
    }

    [Fact]
    public async Task A_dispatch_s_task_headers_read_once_reach_its_span_and_its_outcome_as_before()
    {
        const string Audience = "https://bridge.example.com/api/tasks/callback";
        const string Caller = "invoker@p.iam.gserviceaccount.com";
        await using var issuer = await TestTokenIssuer.StartAsync();
        var options = Options.Create(new CallbackOptions
        {
            Issuers = [new TrustedIssuer { Issuer = issuer.Issuer, DiscoveryUrl = issuer.DiscoveryUrl }],
            Audiences = [Audience],
            AllowedServiceAccounts = [Caller],
        });
        var bridge = new BridgeOptions();
        bridge.Routes["orders"] = new RouteOptions { Queue = "projects/p/locations/l/queues/orders", TargetUrl = Audience, ServiceAccountEmail = Caller };
        var sink = new CapturingSink();
        var receiver = new CallbackReceiver(new OidcTokenVerifier(options, TimeProvider.System), sink, options, TimeProvider.System, NullLogger<CallbackReceiver>.Instance, new RouteTable(bridge));
        var spans = new List<Activity>();
        using var tracer = Sdk.CreateTracerProviderBuilder().AddSource("Bridge.Core").AddInMemoryExporter(spans).Build();
        var taskId = "headers-once-" + Guid.NewGuid().ToString("N");
        var reason = new string('r', 70); // tagged cut to 64 characters
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
        {
            ["Authorization"] = "Bearer " + issuer.Mint(TestTokenIssuer.Claims(issuer.Issuer, Audience, Caller)),
            ["X-CloudTasks-QueueName"] = "orders",
            ["X-CloudTasks-TaskName"] = taskId,
            ["x-cloudtasks-taskretrycount"] = "3",
            ["X-CloudTasks-TaskExecutionCount"] = "2",
            ["X-CloudTasks-TaskETA"] = "1795000000.5",
            ["X-CloudTasks-TaskPreviousResponse"] = "503",
            ["X-CloudTasks-TaskRetryReason"] = reason,
            ["TraceParent"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        };

        var traced = await receiver.HandleAsync(new CallbackRequest(headers, "{}"u8.ToArray(), "application/json"));
        headers.Remove("TraceParent");
        headers["tracestate"] = "k=v"; // a state without a parent: nothing to continue
        headers["X-CloudTasks-TaskName"] = taskId + "-2";
        var root = await receiver.HandleAsync(new CallbackRequest(headers, "{}"u8.ToArray(), "application/json"));
        tracer.ForceFlush();

        Assert.Equal((200, 200), (traced.Status, root.Status));
        var outcome = sink.Published.Single(o => o.TaskName.EndsWith("/tasks/" + taskId, StringComparison.Ordinal));
        Assert.Equal((3, 2, 503), (outcome.RetryCount, outcome.ExecutionCount, outcome.PreviousResponse));
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(1_795_000_000_500), outcome.Eta);
        lock (spans)
        {
            var span = spans.Single(s => Equals(s.GetTagItem("bridge.outcome.id"), traced.OutcomeId));
            Assert.Equal("callback dispatch", span.DisplayName);
            Assert.Equal("0af7651916cd43dd8448eb211c80319c", span.TraceId.ToHexString());
            Assert.Equal("b7ad6b7169203331", span.ParentSpanId.ToHexString());
            Assert.Equal("3", span.GetTagItem("cloudtasks.task.retry_count"));
            Assert.Equal("2", span.GetTagItem("cloudtasks.task.execution_count"));
            Assert.Equal("1795000000.5", span.GetTagItem("cloudtasks.task.eta"));
            Assert.Equal("503", span.GetTagItem("cloudtasks.task.previous_response"));
            Assert.Equal(reason[..64], span.GetTagItem("cloudtasks.task.retry_reason"));
            Assert.Equal("projects/p/locations/l/queues/orders/tasks/" + taskId, span.GetTagItem("cloudtasks.task.name"));

            var rootSpan = spans.Single(s => Equals(s.GetTagItem("bridge.outcome.id"), root.OutcomeId));
            Assert.Equal(default, rootSpan.ParentSpanId);
            Assert.NotEqual(span.TraceId, rootSpan.TraceId);
        }
    }

    private sealed class CapturingSink : IOutcomeSink
    {
        private readonly System.Collections.Concurrent.ConcurrentQueue<TaskOutcome> _published = new();

        public IEnumerable<TaskOutcome> Published => _published;

        public Task PublishAsync(TaskOutcome outcome, CancellationToken cancellationToken)
        {
            _published.Enqueue(outcome);
            return Task.CompletedTask;
        }
    }

    /// <summary>The id as first specified: SHA-256 of the UTF-8 of the joined text, first 16 bytes in lower-case hex.</summary>
    private static string ReferenceId(string? queue, string task, string? instance, OutcomeStatus status) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{queue}\n{task}\n{instance}\n{status}"))[..16]);
}
