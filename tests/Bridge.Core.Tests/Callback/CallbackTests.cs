using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using Bridge.CloudTasks;
using Bridge.CloudTasks.V2Beta3;
using Bridge.Core.Callback;
using Bridge.Core.Forwarding;
using Bridge.Core.Internal;
using Bridge.Testing;
using CloudNative.CloudEvents;
using Google.Protobuf.WellKnownTypes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Trace;
using Task = System.Threading.Tasks.Task;

namespace Bridge.Core.Tests.Callback;

/// <summary>Records outcomes; can be told to fail, as a sink outage would.</summary>
public sealed class RecordingSink : IOutcomeSink
{
    public ConcurrentQueue<CloudEvent> Published { get; } = new();

    public Func<CloudEvent, bool> Fail { get; set; } = _ => false;

    public int Failures;

    public Task PublishAsync(TaskOutcome published, CancellationToken cancellationToken)
    {
        var outcome = published.ToCloudEvent();
        if (Fail(outcome))
        {
            Interlocked.Increment(ref Failures);
            throw new InvalidOperationException("sink down");
        }

        Published.Enqueue(outcome);
        return Task.CompletedTask;
    }
}

/// <summary>
/// End to end on real ports: the forwarder creates a task whose target is the callback receiver; the emulator
/// dispatches it with a token it signed; the receiver verifies it against the emulator's discovery and reports.
/// </summary>
public sealed class CallbackTests : IAsyncLifetime
{
    private const string Invoker = "invoker@p.iam.gserviceaccount.com";
    private const string Reporter = "worker@p.iam.gserviceaccount.com";

    private EmulatorHost _emulator = null!;
    private TestTokenIssuer _google = null!;
    private WebApplicationBuilder _builder = null!;
    private WebApplication _app = null!;
    private Uri _callback = null!;
    private readonly RecordingSink _sink = new();
    private readonly ErrorLogGuard _errors = new();
    private readonly System.Net.Sockets.Socket _listener = new(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);

    private IServiceProvider Services => _app.Services;

    public async Task InitializeAsync()
    {
        _emulator = await EmulatorHost.StartAsync();
        _google = await TestTokenIssuer.StartAsync();
        var builder = WebApplication.CreateSlimBuilder(["--hostBuilder:reloadConfigOnChange=false"]); // settings read once: no inotify watch of the working directory and all below it
        builder.Logging.ClearProviders().AddProvider(_errors);

        // The callback URL is the route's target, so its port must be known before the host starts: bind port 0 here
        // and hand the socket to Kestrel (no pre-picked port another test could take).
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(64);
        _callback = new Uri($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndPoint!).Port}/api/tasks/callback");
        builder.WebHost.ConfigureKestrel(k => k.ListenHandle((ulong)_listener.Handle));
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Bridge:CloudTasks:EmulatorHost"] = _emulator.GrpcHostPort,
            ["Bridge:CloudTasks:EmulatorDetection"] = "None",
            ["Bridge:Routes:loopback:Queue"] = "projects/p/locations/l/queues/placeholder",
            ["Bridge:Routes:loopback:TargetUrl"] = _callback.ToString(),
            ["Bridge:Routes:loopback:ServiceAccountEmail"] = Invoker,
            ["Bridge:Routes:loopback:ServiceBusEntity"] = "loop-in",
            ["Bridge:Routes:loopback:ReportingServiceAccounts:0"] = Reporter,
            ["Bridge:Callback:PublicUrl"] = _callback.ToString(),
            ["Bridge:Callback:AllowedServiceAccounts:0"] = Invoker,
            ["Bridge:Callback:AllowedServiceAccounts:1"] = Reporter,
            ["Bridge:Callback:Issuers:0:Issuer"] = _emulator.Emulator.Issuer,
            ["Bridge:Callback:Issuers:0:DiscoveryUrl"] = new Uri(_emulator.HttpAddress, "/.well-known/openid-configuration").ToString(),
            ["Bridge:Callback:Issuers:1:Issuer"] = _google.Issuer,
            ["Bridge:Callback:Issuers:1:DiscoveryUrl"] = _google.DiscoveryUrl,
        });
        _builder = builder;
        await Task.CompletedTask;
    }

    private async Task<QueueName> StartAsync(Action<Queue>? queue = null)
    {
        var name = await _emulator.CreateQueueAsync(queue);
        _builder.Configuration["Bridge:Routes:loopback:Queue"] = name.ToString();
        _builder.Services.AddBridgeCore(_builder.Configuration).AddBridgeCallback(_builder.Configuration);
        _builder.Services.AddSingleton<IOutcomeSink>(_sink);
        _app = _builder.Build();
        _app.MapPost("/api/tasks/callback", async (HttpContext context, CallbackReceiver receiver) =>
        {
            using var body = new MemoryStream();
            await context.Request.Body.CopyToAsync(body);
            var headers = context.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase);
            var response = await receiver.HandleAsync(new CallbackRequest(headers, body.ToArray(), context.Request.ContentType), context.RequestAborted);
            return Results.Json(new { response.OutcomeId, response.Reason }, statusCode: response.Status);
        });
        await _app.StartAsync();
        return name;
    }

    public async Task DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }

        _listener.Dispose(); // Kestrel does not close a socket it was handed
        await _google.DisposeAsync();
        await _emulator.DisposeAsync();
        _errors.ThrowIfUnexpected();
    }

    private Task<ForwardResult> ForwardAsync(string id, string body = "{\"order\":7}") =>
        Services.GetRequiredService<IEventForwarder>().ForwardAsync(Services.GetRequiredService<ServiceBusIntake>().Map(
            new ServiceBusMessageData { MessageId = id, CorrelationId = "corr-" + id, Body = Encoding.UTF8.GetBytes(body), ContentType = "application/json" }, "loop-in"));

    private async Task<List<CloudEvent>> WaitForOutcomesAsync(int count)
    {
        await Eventually.HoldsAsync(() => Task.FromResult(_sink.Published.Count >= count), describe: () => $"{_sink.Published.Count} outcomes, expected {count}.");
        return _sink.Published.ToList();
    }

    private static JsonElement Data(CloudEvent outcome) => JsonSerializer.SerializeToElement(outcome.Data);

    [Fact]
    public async Task A_task_signed_by_the_emulator_is_accepted_and_its_outcome_reaches_the_sink_with_every_field()
    {
        var queue = await StartAsync();
        var spans = new List<Activity>();
        using var tracer = Sdk.CreateTracerProviderBuilder().AddSource("Bridge.Core").AddInMemoryExporter(spans).Build();

        var forwarded = await ForwardAsync("order-7");
        var outcome = Assert.Single(await WaitForOutcomesAsync(1));
        await _emulator.Emulator.WaitForIdleAsync(queue.ToString());

        Assert.Equal("dev.bridge.task.delivered", outcome.Type);
        Assert.Equal(forwarded.TaskName, outcome.Subject);
        var data = Data(outcome);
        Assert.Equal("delivered", data.GetProperty("status").GetString());
        Assert.Equal(forwarded.TaskName, data.GetProperty("taskName").GetString());
        Assert.Equal(queue.ToString(), data.GetProperty("queue").GetString());
        Assert.Equal("loopback", data.GetProperty("route").GetString());
        Assert.Equal(EventIdentity.ServiceBusMessageId, data.GetProperty("identityKind").GetString());
        Assert.Equal("corr-order-7", data.GetProperty("correlationId").GetString());
        Assert.Equal(0, data.GetProperty("retryCount").GetInt32());
        Assert.Equal(0, data.GetProperty("executionCount").GetInt32());
        Assert.Equal(Invoker, data.GetProperty("reportedBy").GetString());
        Assert.Matches("^[0-9a-f]{24}$", data.GetProperty("taskInstance").GetString()); // the forwarder's stamp, carried by the task
        Assert.Equal("{\"order\":7}", Encoding.UTF8.GetString(Convert.FromBase64String(data.GetProperty("payload").GetString()!)));
        Assert.Equal("application/json", data.GetProperty("payloadContentType").GetString());
        Assert.True(data.GetProperty("eta").GetDateTimeOffset() <= data.GetProperty("receivedAt").GetDateTimeOffset());

        tracer.ForceFlush();
        lock (spans)
        {
            var forward = spans.Single(s => s.DisplayName == "forward loopback");
            var callback = spans.Single(s => s.DisplayName == "callback dispatch");
            Assert.Equal(forward.TraceId, callback.TraceId); // one trace from the event to its callback
            Assert.Equal("0", callback.GetTagItem("cloudtasks.task.retry_count"));
            Assert.Equal(forward.GetTagItem("cloudtasks.task.name"), callback.GetTagItem("cloudtasks.task.name")); // one name per concept
        }
    }

    [Fact]
    public async Task A_sink_failure_answers_503_and_the_retried_call_yields_exactly_one_outcome()
    {
        var queue = await StartAsync();
        var calls = 0;
        _sink.Fail = _ => Interlocked.Increment(ref calls) == 1;
        _errors.Expect("Bridge.Core.Internal.CallbackReceiver", eventId: 302); // the sink failure is an error, as it should be

        await ForwardAsync("flaky-sink");
        await _emulator.Emulator.WaitForIdleAsync(queue.ToString());

        Assert.Equal(1, _sink.Failures);
        var outcome = Assert.Single(_sink.Published);
        Assert.Equal(1, Data(outcome).GetProperty("retryCount").GetInt32());
        Assert.Equal(503, Data(outcome).GetProperty("previousResponse").GetInt32());
    }

    [Fact]
    public async Task On_the_last_allowed_attempt_a_failed_outcome_is_reported_before_answering()
    {
        var queue = await StartAsync(q => q.RetryConfig = new RetryConfig { MaxAttempts = 2, MinBackoff = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(50)), MaxBackoff = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(50)) });
        _sink.Fail = outcome => outcome.Type == "dev.bridge.task.delivered";
        _errors.Expect("Bridge.Core.Internal.CallbackReceiver", eventId: 302);

        await ForwardAsync("never-delivered");
        await _emulator.Emulator.WaitForIdleAsync(queue.ToString());

        Assert.Equal(2, _sink.Failures);
        var failed = Assert.Single(_sink.Published);
        Assert.Equal("dev.bridge.task.failed", failed.Type);
        Assert.Contains("last attempt", Data(failed).GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(1, Data(failed).GetProperty("retryCount").GetInt32());
    }

    [Theory]
    [InlineData(10, false)] // max_attempts reached, max_retry_duration not: Cloud Tasks still retries
    [InlineData(90, true)]  // both reached: this was the last attempt
    public async Task The_final_failure_waits_for_max_retry_duration_too(int minutesSinceDue, bool final)
    {
        var queue = await StartAsync(q => q.RetryConfig = new RetryConfig { MaxAttempts = 2, MaxRetryDuration = Duration.FromTimeSpan(TimeSpan.FromHours(1)) });
        _sink.Fail = outcome => outcome.Type == "dev.bridge.task.delivered";
        _errors.Expect("Bridge.Core.Internal.CallbackReceiver", eventId: 302);
        var token = _google.Mint(TestTokenIssuer.Claims(_google.Issuer, _callback.ToString(), Invoker));
        var due = TimeProvider.System.GetUtcNow().AddMinutes(-minutesSinceDue).ToUnixTimeSeconds();

        var response = await Services.GetRequiredService<CallbackReceiver>().HandleAsync(new CallbackRequest(
            new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
            {
                ["Authorization"] = "Bearer " + token,
                ["X-CloudTasks-QueueName"] = queue.QueueId,
                ["X-CloudTasks-TaskName"] = "late",
                ["X-CloudTasks-TaskRetryCount"] = "1",
                ["X-Bridge-Task-Due"] = due.ToString(System.Globalization.CultureInfo.InvariantCulture),
            },
            "x"u8.ToArray(),
            "text/plain"));

        Assert.Equal(503, response.Status);
        Assert.Equal(final ? ["dev.bridge.task.failed"] : [], _sink.Published.Select(p => p.Type).ToArray());
    }

    [Fact]
    public async Task The_same_call_delivered_twice_produces_the_same_outcome_id()
    {
        var queue = await StartAsync();
        var receiver = Services.GetRequiredService<CallbackReceiver>();
        var token = _google.Mint(TestTokenIssuer.Claims(_google.Issuer, _callback.ToString(), Invoker));
        var request = new CallbackRequest(
            new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
            {
                ["Authorization"] = "Bearer " + token,
                ["X-CloudTasks-QueueName"] = queue.QueueId,
                ["X-CloudTasks-TaskName"] = "abc",
                ["X-CloudTasks-TaskRetryCount"] = "0",
                ["X-CloudTasks-TaskETA"] = "1764355200.000000",
                ["X-Bridge-Task-Instance"] = "a1b2c3",
            },
            "x"u8.ToArray(),
            "text/plain");

        var first = await receiver.HandleAsync(request);
        var second = await receiver.HandleAsync(request with { Headers = new Dictionary<string, string>(request.Headers, StringComparer.OrdinalIgnoreCase) { ["X-CloudTasks-TaskRetryCount"] = "1", ["X-CloudTasks-TaskETA"] = "1764355260.500000" } });

        Assert.Equal(200, first.Status);
        Assert.Equal(first.OutcomeId, second.OutcomeId);
        Assert.Equal([first.OutcomeId, first.OutcomeId], _sink.Published.Select(p => p.Id));
    }

    [Fact]
    public async Task A_target_reports_the_final_outcome_with_its_own_token()
    {
        var queue = await StartAsync();
        using var http = new HttpClient();
        var token = _google.Mint(TestTokenIssuer.Claims(_google.Issuer, _callback.ToString(), Reporter));
        using var request = new HttpRequestMessage(System.Net.Http.HttpMethod.Post, _callback)
        {
            Content = new StringContent($$"""{"taskName":"{{queue}}/tasks/t1","status":"failed","detail":"card declined"}""", Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);

        var response = await http.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var outcome = Assert.Single(_sink.Published);
        Assert.Equal("dev.bridge.task.failed", outcome.Type);
        Assert.Equal("card declined", Data(outcome).GetProperty("detail").GetString());
        Assert.Equal(Reporter, Data(outcome).GetProperty("reportedBy").GetString());
        Assert.Equal(queue.ToString(), Data(outcome).GetProperty("queue").GetString());
        Assert.Equal("loopback", Data(outcome).GetProperty("route").GetString());
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("""{"status":"succeeded"}""")]
    [InlineData("""{"taskName":"t1","status":"succeeded"}""")]
    [InlineData("""{"taskName":"projects/p/locations/l/queues/q/tasks/t1","status":"maybe"}""")]
    public async Task Malformed_reports_are_400_with_a_reason(string body)
    {
        await StartAsync();
        var token = _google.Mint(TestTokenIssuer.Claims(_google.Issuer, _callback.ToString(), Reporter));
        var response = await Services.GetRequiredService<CallbackReceiver>().HandleAsync(new CallbackRequest(
            new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase) { ["Authorization"] = "Bearer " + token }, Encoding.UTF8.GetBytes(body), "application/json"));

        Assert.Equal(400, response.Status);
        Assert.Equal("InvalidReport", response.Reason);
        Assert.Empty(_sink.Published);
    }

    [Fact]
    public async Task Calls_without_a_valid_token_are_refused_and_the_answer_names_no_token()
    {
        await StartAsync();
        using var http = new HttpClient();
        var forged = "eyJhbGciOiJub25lIn0.eyJlbWFpbCI6ImF0dGFja2VyIn0.";
        using var request = new HttpRequestMessage(System.Net.Http.HttpMethod.Post, _callback) { Content = new StringContent("x") };
        request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + forged);
        request.Headers.TryAddWithoutValidation("X-CloudTasks-TaskName", "t");

        var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Contains("WrongAlgorithm", text, StringComparison.Ordinal);
        Assert.DoesNotContain(forged, text, StringComparison.Ordinal);
        Assert.Empty(_sink.Published);
    }
}
