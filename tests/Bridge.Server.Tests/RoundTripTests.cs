using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using Bridge.CloudTasks;
using Bridge.Testing;
using OpenTelemetry.Trace;

namespace Bridge.Server.Tests;

/// <summary>The whole path on real ports: event in, task created, dispatched with a signed token, callback verified, outcome reported.</summary>
public sealed class RoundTripTests
{
    [Fact]
    public async Task Events_with_retried_idempotency_keys_give_one_task_and_one_outcome_each_with_everything_intact()
    {
        await using var server = await RunningServer.StartAsync();
        var tasks = new Dictionary<string, string>();
        for (var i = 0; i < 3; i++)
        {
            for (var attempt = 0; attempt < 2; attempt++)
            {
                var response = await server.PostEventAsync($"{{\"order\":{i}}}", $"order-{i}", headers: ("X-Correlation-Id", $"corr-{i}"));
                Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
                using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
                Assert.Equal(attempt == 1, body.RootElement.GetProperty("deduplicated").GetBoolean());
                tasks[$"order-{i}"] = body.RootElement.GetProperty("taskName").GetString()!;
            }
        }

        await server.WaitForOutcomesAsync(3);
        await server.WaitForIdleAsync(); // every task dispatched and answered: nothing more can arrive
        var outcomes = await server.OutcomesAsync();

        Assert.Equal(3, outcomes.Count);
        for (var i = 0; i < 3; i++)
        {
            var outcome = Assert.Single(outcomes, o => o.GetProperty("subject").GetString() == tasks[$"order-{i}"]);
            var data = outcome.GetProperty("data");
            Assert.Equal("dev.bridge.task.delivered", outcome.GetProperty("type").GetString());
            Assert.Equal($"{{\"order\":{i}}}", Encoding.UTF8.GetString(Convert.FromBase64String(data.GetProperty("payload").GetString()!)));
            Assert.Equal("application/json; charset=utf-8", data.GetProperty("payloadContentType").GetString()); // as the client sent it
            Assert.Equal($"corr-{i}", data.GetProperty("correlationId").GetString());
            Assert.Equal("demo", data.GetProperty("route").GetString());
            Assert.Equal("idempotency-key", data.GetProperty("identityKind").GetString());
            Assert.Equal(BridgeServerApp.DemoServiceAccount, data.GetProperty("reportedBy").GetString());
        }
    }

    [Fact]
    public async Task A_delayed_event_is_delivered_no_earlier_than_its_schedule()
    {
        await using var server = await RunningServer.StartAsync();
        var sent = TimeProvider.System.GetUtcNow();
        await server.PostEventAsync("{}", "later", headers: ("X-Bridge-Delay", "2"));

        var outcome = Assert.Single(await server.WaitForOutcomesAsync(1));

        Assert.True(outcome.GetProperty("data").GetProperty("receivedAt").GetDateTimeOffset() >= sent.AddSeconds(1.9));
    }

    [Fact]
    public async Task An_events_exported_trace_has_one_root_and_no_orphan_spans()
    {
        // The app's own tracer provider (as it ships), with an in-memory exporter added.
        var spans = new List<Activity>();
        await using var server = await RunningServer.StartAsync(b => b.Services.ConfigureOpenTelemetryTracerProvider(t => t.AddInMemoryExporter(spans)));

        await server.PostEventAsync("{\"traced\":true}", "traced");
        var outcome = Assert.Single(await server.WaitForOutcomesAsync(1));
        await server.WaitForIdleAsync();

        // Parents end after their children: wait (bounded) until every span of the trace has its parent exported.
        List<Activity> trace = [];
        List<Activity> orphans = [];
        await Eventually.HoldsAsync(
            () =>
            {
                lock (spans)
                {
                    var forward = spans.SingleOrDefault(s => s.DisplayName == "forward demo" && (string?)s.GetTagItem("cloudtasks.task.name") == outcome.GetProperty("subject").GetString());
                    trace = forward is null ? [] : spans.Where(s => s.TraceId == forward.TraceId).ToList();
                }

                var ids = trace.Select(s => s.SpanId).ToHashSet();
                orphans = trace.Where(s => s.ParentSpanId != default && !ids.Contains(s.ParentSpanId)).ToList();
                return Task.FromResult(trace.Count > 0 && orphans.Count == 0 && trace.Any(s => s.DisplayName == "callback dispatch"));
            },
            describe: () => $"orphan spans: {string.Join(", ", orphans.Select(o => $"{o.Source.Name}/{o.DisplayName}"))}; trace: {string.Join(", ", trace.Select(t => t.DisplayName))}");

        var root = Assert.Single(trace, s => s.ParentSpanId == default);
        Assert.Equal(ActivityKind.Client, root.Kind); // the test's own POST: every other span descends from it
        Assert.Contains(trace, s => s.Source.Name == "Bridge.Emulators.CloudTasks"); // the dispatch
        Assert.Contains(trace, s => s.Source.Name == "Bridge.CloudTasks"); // CreateTask
        Assert.Contains(trace, s => s.Kind == ActivityKind.Client && s.Parent?.DisplayName == "callback dispatch"); // discovery / JWKS, instrumented
    }

    [Fact]
    public async Task Bad_events_get_problem_details_and_health_lists_the_routes()
    {
        await using var server = await RunningServer.StartAsync();

        var unknown = await server.PostEventAsync("{}", "x", route: "nope");
        var badJson = await server.PostEventAsync("{oops", "y");

        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Equal("UnknownRoute", JsonDocument.Parse(await unknown.Content.ReadAsStringAsync()).RootElement.GetProperty("reason").GetString());
        Assert.Equal(HttpStatusCode.BadRequest, badJson.StatusCode);
        Assert.Equal("InvalidEvent", JsonDocument.Parse(await badJson.Content.ReadAsStringAsync()).RootElement.GetProperty("reason").GetString());
        Assert.Contains("\"demo\"", await server.Http.GetStringAsync("/api/health"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unauthenticated_callback_is_refused()
    {
        await using var server = await RunningServer.StartAsync();
        var response = await server.Http.PostAsync("/api/tasks/callback", new StringContent("{}"));
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("Bearer", response.Headers.WwwAuthenticate.ToString());
    }

    [Fact]
    public async Task A_failing_sink_makes_the_emulator_retry_and_still_yields_one_outcome()
    {
        var dir = Path.Combine(Path.GetTempPath(), "bridge-outcomes-" + Guid.NewGuid().ToString("N"));
        var file = Path.Combine(dir, "outcomes.jsonl");
        await using var server = await RunningServer.StartAsync($"--Bridge:Server:OutcomesFile={file}");
        server.Errors.Expect("Bridge.Core.Internal.CallbackReceiver", eventId: 302); // the sink failure is logged as an error
        using var emulator = new CloudTasksClientBuilder { EmulatorHost = $"127.0.0.1:{server.EmulatorGrpcPort}", EmulatorDetection = EmulatorDetection.None }.Build();

        await server.PostEventAsync("{}", "sink-down"); // the file's folder doesn't exist yet: the sink fails, the callback answers 503
        await Eventually.HoldsAsync(async () =>
        {
            await foreach (var task in emulator.ListTasks(QueueName.Parse(RunningServer.DemoQueue), Bridge.CloudTasks.V2Beta3.Task.Types.View.Full))
            {
                return task.ResponseCount >= 1; // the first attempt was answered (with 503)
            }

            return false;
        });
        Assert.Empty(await server.OutcomesAsync());
        Directory.CreateDirectory(dir);

        var outcome = Assert.Single(await server.WaitForOutcomesAsync(1));

        Assert.True(outcome.GetProperty("data").GetProperty("retryCount").GetInt32() >= 1);
        Assert.Single(await File.ReadAllLinesAsync(file));
        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public async Task A_restart_on_the_same_data_in_the_middle_of_a_stream_loses_no_event()
    {
        var data = Path.Combine(Path.GetTempPath(), "bridge-server-" + Guid.NewGuid().ToString("N"));
        var outcomes = Path.Combine(data, "outcomes.jsonl");
        Directory.CreateDirectory(data);
        string[] settings = [$"--Bridge:Server:EmulatorData={data}", $"--Bridge:Server:OutcomesFile={outcomes}"];
        var accepted = new List<string>();
        int port, grpc;
        await using (var first = await RunningServer.StartAsync(settings))
        {
            (port, grpc) = (first.Port, first.EmulatorGrpcPort);
            for (var i = 0; i < 20; i++)
            {
                var response = await first.PostEventAsync("{}", $"stream-{i}", headers: ("X-Bridge-Delay", i < 10 ? "0" : "10"));
                Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
                accepted.Add(JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("taskName").GetString()!);
            }

            // Stop between dispatches: the ten due now are done, the ten due in 10 s wait in the store. (A dispatch cut
            // by a graceful stop waits for its lease, the dispatch deadline, before it is retried: not what this tests.)
            await first.WaitForOutcomesAsync(10);
        }

        // The same ports again: the stored tasks target the first run's callback URL.
        await using (var second = await RunningServer.StartAsync([.. settings, $"--Bridge:Server:Port={port}", $"--Bridge:Server:EmulatorGrpcPort={grpc}"]))
        {
            HashSet<string> delivered = [];
            await Eventually.HoldsAsync(
                () =>
                {
                    delivered = File.Exists(outcomes) ? File.ReadAllLines(outcomes).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("subject").GetString()!).ToHashSet() : [];
                    return Task.FromResult(accepted.All(delivered.Contains));
                },
                describe: () => $"{accepted.Count(a => !delivered.Contains(a))} accepted events never delivered (ports {port}/{grpc}, restarted on {second.Port}/{second.EmulatorGrpcPort})");
        }

        Directory.Delete(data, recursive: true);
    }
}
