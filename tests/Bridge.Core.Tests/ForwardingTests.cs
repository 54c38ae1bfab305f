using System.Diagnostics;
using System.Text;
using Bridge.CloudTasks;
using Bridge.Core.Forwarding;
using Bridge.Core.Internal;
using Bridge.Testing;
using OpenTelemetry;
using OpenTelemetry.Trace;

namespace Bridge.Core.Tests;

/// <summary>Events through intake and forwarder into the emulator on real ports.</summary>
public sealed class ForwardingTests : IAsyncLifetime
{
    private PipelineHarness _h = null!;

    public async Task InitializeAsync() => _h = await CoreHarness.StartAsync();

    public async Task DisposeAsync() => await _h.DisposeAsync();

    private static Dictionary<string, string> Headers(params (string, string)[] pairs) =>
        pairs.ToDictionary(p => p.Item1, p => p.Item2, StringComparer.OrdinalIgnoreCase);

    [Fact]
    public async Task A_stream_with_redeliveries_and_client_retries_makes_exactly_one_task_per_identity()
    {
        var outcomes = new List<ForwardResult>();
        for (var round = 0; round < 3; round++)
        {
            for (var i = 0; i < 10; i++)
            {
                var message = new ServiceBusMessageData { MessageId = $"m-{i}", Body = Encoding.UTF8.GetBytes($"{{\"n\":{i}}}"), ContentType = "application/json", DeliveryCount = round + 1 };
                outcomes.Add(await _h.Forwarder.ForwardAsync(_h.ServiceBus.Map(message, "orders-in")));
                outcomes.Add(await _h.Forwarder.ForwardAsync(_h.Http.Map("orders", Headers(("Idempotency-Key", $"k-{i}")), Encoding.UTF8.GetBytes("x"), "text/plain")));
            }
        }

        var tasks = await _h.TasksAsync(_h.Orders);
        Assert.Equal(20, tasks.Count);
        Assert.Equal(20, outcomes.Count(o => o.Outcome == ForwardOutcome.Created));
        Assert.Equal(40, outcomes.Count(o => o.Outcome == ForwardOutcome.Deduplicated));
        Assert.Equal(tasks.Select(t => t.Name).Order(), outcomes.Select(o => o.TaskName).Distinct().Order());
    }

    [Fact]
    public async Task The_task_carries_body_content_type_route_headers_carried_values_token_and_trace_context()
    {
        var message = new ServiceBusMessageData
        {
            MessageId = "order-42",
            CorrelationId = "corr-7",
            Body = Encoding.UTF8.GetBytes("{\"order\":42}"),
            ContentType = "application/json",
            ApplicationProperties = new Dictionary<string, object?> { ["tenant"] = "contoso", ["ignored"] = "x" },
        };

        var result = await _h.Forwarder.ForwardAsync(_h.ServiceBus.Map(message, "orders-in"));

        var task = Assert.Single(await _h.TasksAsync(_h.Orders));
        Assert.Equal(result.TaskName, task.Name);
        Assert.Equal("{\"order\":42}", task.HttpRequest.Body.ToStringUtf8());
        Assert.Equal(_h.Target.Url("/orders").ToString(), task.HttpRequest.Url);
        var headers = task.HttpRequest.Headers;
        Assert.Equal("application/json", headers["Content-Type"]);
        Assert.Equal("2", headers["X-Api-Version"]);
        Assert.Equal("contoso", headers["X-Bridge-Property-tenant"]);
        Assert.False(headers.ContainsKey("X-Bridge-Property-ignored"));
        Assert.Equal("corr-7", headers["X-Bridge-Correlation-Id"]);
        Assert.Equal("orders", headers["X-Bridge-Route"]);
        Assert.Matches("^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$", headers["traceparent"]);
        Assert.Equal("invoker@p.iam.gserviceaccount.com", task.HttpRequest.OidcToken.ServiceAccountEmail);
        Assert.Equal(_h.Target.Url("/orders").ToString(), task.HttpRequest.OidcToken.Audience);
    }

    [Fact]
    public async Task Schedules_come_from_the_event_or_the_route_default()
    {
        var before = TimeProvider.System.GetUtcNow();
        var delayed = await _h.Forwarder.ForwardAsync(_h.Http.Map("orders", Headers(("Idempotency-Key", "d1"), ("X-Bridge-Delay", "PT2H")), "x"u8.ToArray(), null));
        var defaulted = await _h.Forwarder.ForwardAsync(_h.Http.Map("delayed", Headers(("Idempotency-Key", "d2")), "x"u8.ToArray(), null));
        var absolute = await _h.Forwarder.ForwardAsync(_h.ServiceBus.Map(new ServiceBusMessageData
        {
            MessageId = "d3",
            ApplicationProperties = new Dictionary<string, object?> { ["bridge-schedule-time"] = before.AddDays(2) },
        }, "orders-in"));

        Assert.InRange(delayed.ScheduleTime!.Value, before.AddHours(2), before.AddHours(2).AddMinutes(1));
        Assert.InRange(defaulted.ScheduleTime!.Value, before.AddMinutes(10), before.AddMinutes(11));
        var stored = await _h.Emulator.Client.GetTaskAsync(TaskName.Parse(absolute.TaskName));
        Assert.Equal(before.AddDays(2).ToUnixTimeSeconds(), stored.ScheduleTime.Seconds);
    }

    [Fact]
    public async Task Cloud_events_are_forwarded_in_binary_mode_and_deduplicated_by_id_and_source()
    {
        var structured = """{"specversion":"1.0","id":"evt-1","source":"/orders","type":"com.example.order.created","datacontenttype":"application/json","data":{"order":1},"bridgedelay":"60"}""";
        var first = await _h.Forwarder.ForwardAsync(_h.Http.Map("orders", Headers(), Encoding.UTF8.GetBytes(structured), "application/cloudevents+json; charset=utf-8"));
        var binary = await _h.Forwarder.ForwardAsync(_h.Http.Map("orders",
            Headers(("ce-specversion", "1.0"), ("ce-id", "evt-1"), ("ce-source", "/orders"), ("ce-type", "com.example.order.created")),
            "{\"order\":1}"u8.ToArray(), "application/json"));

        Assert.Equal(ForwardOutcome.Created, first.Outcome);
        Assert.Equal(ForwardOutcome.Deduplicated, binary.Outcome);
        var task = Assert.Single(await _h.TasksAsync(_h.Orders));
        Assert.Equal("{\"order\":1}", task.HttpRequest.Body.ToStringUtf8());
        Assert.Equal("application/json", task.HttpRequest.Headers["Content-Type"]);
        Assert.Equal("evt-1", task.HttpRequest.Headers["ce-id"]);
        Assert.Equal("/orders", task.HttpRequest.Headers["ce-source"]);
        Assert.Equal("com.example.order.created", task.HttpRequest.Headers["ce-type"]);
        Assert.Equal("1.0", task.HttpRequest.Headers["ce-specversion"]);
        Assert.False(task.HttpRequest.Headers.ContainsKey("ce-bridgedelay"));
        Assert.True(first.ScheduleTime > TimeProvider.System.GetUtcNow().AddSeconds(30));
    }

    [Fact]
    public async Task Events_without_identity_get_service_generated_names()
    {
        var a = await _h.Forwarder.ForwardAsync(_h.Http.Map("orders", Headers(), "same"u8.ToArray(), "text/plain"));
        var b = await _h.Forwarder.ForwardAsync(_h.Http.Map("orders", Headers(), "same"u8.ToArray(), "text/plain"));
        Assert.NotEqual(a.TaskName, b.TaskName);
        Assert.Equal(2, (await _h.TasksAsync(_h.Orders)).Count);
    }

    [Fact]
    public async Task A_forward_span_records_route_outcome_and_task_and_its_context_goes_into_the_task()
    {
        var spans = new List<Activity>();
        using var tracer = Sdk.CreateTracerProviderBuilder().AddSource("Bridge.Core").AddInMemoryExporter(spans).Build();
        var parent = new Activity("servicebus process").SetIdFormat(ActivityIdFormat.W3C);
        parent.ActivityTraceFlags = ActivityTraceFlags.Recorded;
        parent.Start();
        ForwardResult result;
        try
        {
            result = await _h.Forwarder.ForwardAsync(_h.ServiceBus.Map(new ServiceBusMessageData { MessageId = "traced" }, "orders-in"));
        }
        finally
        {
            parent.Stop();
        }

        Activity span;
        lock (spans)
        {
            span = Assert.Single(spans, s => s.TraceId == parent.TraceId);
        }

        Assert.Equal("forward orders", span.DisplayName);
        Assert.Equal(parent.SpanId, span.ParentSpanId);
        Assert.Equal("created", span.GetTagItem("bridge.outcome"));
        Assert.Equal(result.TaskName, span.GetTagItem("cloudtasks.task.name"));
        var task = Assert.Single(await _h.TasksAsync(_h.Orders));
        Assert.Equal($"00-{span.TraceId}-{span.SpanId}-01", task.HttpRequest.Headers["traceparent"]);
    }

    [Fact]
    public async Task A_missing_queue_is_a_permanent_queue_not_found()
    {
        await _h.Emulator.Client.DeleteQueueAsync(_h.Delayed);
        var error = await Assert.ThrowsAsync<ForwardingException>(() => _h.Forwarder.ForwardAsync(_h.Http.Map("delayed", Headers(), "x"u8.ToArray(), null)));
        Assert.Equal(ForwardingFailureReason.QueueNotFound, error.Reason);
        Assert.False(error.IsTransient);
    }

    [Fact]
    public async Task An_unreachable_cloud_tasks_is_transient_after_retries()
    {
        using var down = new UnreachableEndpoint();
        await using var offline = await CoreHarness.StartAsync(configure: s => s["Bridge:CloudTasks:EmulatorHost"] = down.HostPort);
        var error = await Assert.ThrowsAsync<ForwardingException>(() => offline.Forwarder.ForwardAsync(offline.Http.Map("orders", Headers(("Idempotency-Key", "k")), "x"u8.ToArray(), null)));
        Assert.Equal(ForwardingFailureReason.CloudTasksUnavailable, error.Reason);
        Assert.True(error.IsTransient);
    }

    [Fact]
    public async Task Forwarded_tasks_reach_the_target_when_the_queue_runs()
    {
        await using var running = await CoreHarness.StartAsync(paused: false);
        await running.Forwarder.ForwardAsync(running.Http.Map("orders", Headers(("Idempotency-Key", "live"), ("X-Tenant", "fabrikam")), "{\"live\":true}"u8.ToArray(), "application/json"));

        var received = Assert.Single(await running.Target.WaitForRequestsAsync(1));

        Assert.Equal("/orders", received.PathAndQuery);
        Assert.Equal("{\"live\":true}", Encoding.UTF8.GetString(received.Body));
        Assert.Equal("fabrikam", received.Header("X-Tenant"));
        Assert.StartsWith("Bearer ", received.Header("Authorization"), StringComparison.Ordinal);
    }
}
