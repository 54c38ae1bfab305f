using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using OpenTelemetry;
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

        var outcomes = await server.WaitForOutcomesAsync(3);
        await Task.Delay(500); // nothing more may arrive
        outcomes = await server.OutcomesAsync();

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
    public async Task Forward_dispatch_and_callback_spans_share_one_trace()
    {
        var spans = new List<Activity>();
        using var tracer = Sdk.CreateTracerProviderBuilder().AddSource("Bridge.Core", "Bridge.Emulators.CloudTasks").AddInMemoryExporter(spans).Build();
        await using var server = await RunningServer.StartAsync();

        await server.PostEventAsync("{\"traced\":true}", "traced");
        var outcome = Assert.Single(await server.WaitForOutcomesAsync(1));
        tracer.ForceFlush();

        lock (spans)
        {
            var forward = spans.Single(s => s.DisplayName == "forward demo" && (string?)s.GetTagItem("cloudtasks.task.name") == outcome.GetProperty("subject").GetString());
            var dispatch = spans.Single(s => s.Source.Name == "Bridge.Emulators.CloudTasks" && s.TraceId == forward.TraceId);
            var callback = spans.Single(s => s.DisplayName == "callback dispatch" && s.TraceId == forward.TraceId);
            Assert.Equal(forward.TraceId, dispatch.TraceId);
            Assert.Equal(forward.TraceId, callback.TraceId);
        }
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

        await server.PostEventAsync("{}", "sink-down"); // the file's folder doesn't exist yet: the sink fails, the callback answers 503
        await Task.Delay(700);
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
        var port = RunningServer.FreePort();
        var grpc = RunningServer.FreePort();
        string[] settings = [$"--Bridge:Server:EmulatorData={data}", $"--Bridge:Server:OutcomesFile={outcomes}"];
        var accepted = new List<string>();
        await using (var first = await RunningServer.StartOnAsync(port, grpc, settings))
        {
            for (var i = 0; i < 20; i++)
            {
                var response = await first.PostEventAsync("{}", $"stream-{i}", headers: ("X-Bridge-Delay", i < 10 ? "0" : "1"));
                Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
                accepted.Add(JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("taskName").GetString()!);
            }
        }

        await using (var second = await RunningServer.StartOnAsync(port, grpc, settings))
        {
            var until = TimeProvider.System.GetUtcNow().AddSeconds(30);
            HashSet<string> delivered;
            do
            {
                await Task.Delay(100);
                delivered = File.ReadAllLines(outcomes).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("subject").GetString()!).ToHashSet();
            }
            while (!accepted.All(delivered.Contains) && TimeProvider.System.GetUtcNow() < until);

            var lost = accepted.Where(a => !delivered.Contains(a)).ToList();
            Assert.True(lost.Count == 0, $"{lost.Count} accepted events never delivered");
        }

        Directory.Delete(data, recursive: true);
    }
}
