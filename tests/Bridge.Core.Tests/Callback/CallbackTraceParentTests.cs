using System.Diagnostics;
using System.Text;
using Bridge.Core.Callback;
using Bridge.Core.Internal;
using Bridge.Core.Routing;
using Bridge.Core.Telemetry;
using Bridge.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using OpenTelemetry;
using OpenTelemetry.Trace;

namespace Bridge.Core.Tests.Callback;

/// <summary>
/// Where the receiver's <c>callback dispatch</c> span hangs: under the host's activity only when a listener records
/// it, else under the task's traceparent, so the span never hangs off a span nobody exports.
/// </summary>
public sealed class CallbackTraceParentTests : IAsyncLifetime
{
    private const string Audience = "https://bridge.example.com/api/tasks/callback";
    private const string Caller = "invoker@p.iam.gserviceaccount.com";
    private const string TaskTraceParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    // Stands in for a host source the app's tracer provider records (as UseFunctionsWorkerDefaults adds the worker's).
    private static readonly ActivitySource RecordedHost = new("Bridge.Core.Tests.RecordedHost", "1.0");

    // A host source only a propagation-only listener sees: its activities exist but are sampled out.
    private static readonly ActivitySource SampledOutHost = new("Bridge.Core.Tests.SampledOutHost", "1.0");

    private readonly CallbackSpans _spans = new();
    private TestTokenIssuer _issuer = null!;
    private CallbackReceiver _receiver = null!;
    private TracerProvider _tracer = null!;

    public async Task InitializeAsync()
    {
        _issuer = await TestTokenIssuer.StartAsync();
        var options = Options.Create(new CallbackOptions
        {
            Issuers = [new TrustedIssuer { Issuer = _issuer.Issuer, DiscoveryUrl = _issuer.DiscoveryUrl }],
            Audiences = [Audience],
            AllowedServiceAccounts = [Caller],
        });
        var bridge = new BridgeOptions();
        bridge.Routes["orders"] = new RouteOptions { Queue = "projects/p/locations/l/queues/orders", TargetUrl = Audience, ServiceAccountEmail = Caller };
        _receiver = new CallbackReceiver(new OidcTokenVerifier(options, TimeProvider.System), new NullSink(), options, TimeProvider.System, NullLogger<CallbackReceiver>.Instance, new RouteTable(bridge));
        _tracer = Sdk.CreateTracerProviderBuilder().AddSource(BridgeDiagnostics.SourceName, RecordedHost.Name).AddProcessor(new SimpleActivityExportProcessor(_spans)).Build();
    }

    public async Task DisposeAsync()
    {
        _tracer.Dispose();
        await _issuer.DisposeAsync();
    }

    [Fact]
    public async Task Under_an_activity_no_listener_records_the_span_continues_the_tasks_traceparent()
    {
        // What ASP.NET Core starts for its logging scopes when no instrumentation listens: never exported.
        using var unrecorded = new Activity("Microsoft.AspNetCore.Hosting.HttpRequestIn").SetParentId(TaskTraceParent).Start();

        var callback = await CallbackSpanAsync();

        Assert.Equal("0af7651916cd43dd8448eb211c80319c", callback.TraceId.ToHexString());
        Assert.Equal("b7ad6b7169203331", callback.ParentSpanId.ToHexString());
        Assert.NotEqual(unrecorded.SpanId, callback.ParentSpanId);
    }

    [Fact]
    public async Task Under_a_sampled_out_host_activity_the_span_continues_the_tasks_traceparent()
    {
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source == SampledOutHost,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.PropagationData,
        };
        ActivitySource.AddActivityListener(listener);
        using var sampledOut = SampledOutHost.StartActivity("POST /api/tasks/callback", ActivityKind.Server);
        Assert.NotNull(sampledOut);
        Assert.False(sampledOut.IsAllDataRequested);

        var callback = await CallbackSpanAsync();

        Assert.Equal("b7ad6b7169203331", callback.ParentSpanId.ToHexString());
    }

    [Fact]
    public async Task Under_a_recorded_host_activity_the_span_is_its_child()
    {
        // As the Functions worker starts its invocation span: from the host's trace context, recorded.
        using var invocation = RecordedHost.StartActivity("Invoke", ActivityKind.Server, ActivityContext.Parse("00-11111111111111111111111111111111-2222222222222222-01", null));
        Assert.NotNull(invocation);

        var callback = await CallbackSpanAsync();

        Assert.Equal(invocation.TraceId, callback.TraceId);
        Assert.Equal(invocation.SpanId, callback.ParentSpanId);
    }

    [Fact]
    public async Task With_no_host_activity_the_span_continues_the_tasks_traceparent()
    {
        Assert.Null(Activity.Current);

        var callback = await CallbackSpanAsync();

        Assert.Equal("0af7651916cd43dd8448eb211c80319c", callback.TraceId.ToHexString());
        Assert.Equal("b7ad6b7169203331", callback.ParentSpanId.ToHexString());
    }

    private async Task<Activity> CallbackSpanAsync()
    {
        var request = new CallbackRequest(
            new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
            {
                ["Authorization"] = "Bearer " + _issuer.Mint(TestTokenIssuer.Claims(_issuer.Issuer, Audience, Caller)),
                ["X-CloudTasks-QueueName"] = "orders",
                ["X-CloudTasks-TaskName"] = Guid.NewGuid().ToString("N"), // one outcome id per call
                ["traceparent"] = TaskTraceParent,
            },
            Encoding.UTF8.GetBytes("{}"),
            "application/json");

        var response = await _receiver.HandleAsync(request);

        Assert.Equal(200, response.Status);
        _tracer.ForceFlush();
        return Assert.Single(_spans.Snapshot(), s => (string?)s.GetTagItem("bridge.outcome.id") == response.OutcomeId);
    }

    /// <summary>Callback spans ended while this test ran (listeners are process-wide: other tests' spans arrive too).</summary>
    private sealed class CallbackSpans : BaseExporter<Activity>
    {
        private readonly List<Activity> _spans = [];

        public override ExportResult Export(in Batch<Activity> batch)
        {
            lock (_spans)
            {
                foreach (var span in batch)
                {
                    if (span.DisplayName == "callback dispatch")
                    {
                        _spans.Add(span);
                    }
                }
            }

            return ExportResult.Success;
        }

        public List<Activity> Snapshot()
        {
            lock (_spans)
            {
                return [.. _spans];
            }
        }
    }

    private sealed class NullSink : IOutcomeSink
    {
        public Task PublishAsync(TaskOutcome outcome, CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
