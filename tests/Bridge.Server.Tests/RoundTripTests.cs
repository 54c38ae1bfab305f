using System.Collections.Concurrent;
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
        Assert.Contains("\"demo\"", await server.Http.GetStringAsync("/api/health/details"), StringComparison.Ordinal);
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
    public async Task A_runner_killed_with_SIGKILL_in_the_middle_of_a_stream_and_restarted_on_the_same_data_reports_every_event_exactly_once()
    {
        const int Events = 40;
        var data = Path.Combine(Path.GetTempPath(), "bridge-server-" + Guid.NewGuid().ToString("N"));
        var outcomesFile = Path.Combine(data, "outcomes.jsonl");
        Directory.CreateDirectory(data);
        string[] settings = [$"--Bridge:Server:EmulatorData={data}", $"--Bridge:Server:OutcomesFile={outcomesFile}"];
        var accepted = new ConcurrentDictionary<string, string>(); // idempotency key → task name
        var halfway = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var refused = 0;
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(20) };
        using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        RunnerProcess? second = null;
        try
        {
            using var first = await RunnerProcess.StartAsync([.. settings, "--Bridge:Server:Port=0", "--Bridge:Server:EmulatorGrpcPort=0", "--Bridge:Server:ServiceBusPort=0"]);
            var events = new Uri($"http://localhost:{first.Port}/api/events/demo");

            // The sender a client would be: each event until it is accepted, retried with the same key when the runner
            // is gone (the answer to a post cut by the kill is unknown, so the retry may find the task already there).
            var sender = Task.Run(async () =>
            {
                for (var i = 0; i < Events; i++)
                {
                    if (i == Events / 2)
                    {
                        halfway.SetResult();
                    }

                    var key = $"stream-{i}";
                    await Eventually.HoldsAsync(
                        async () =>
                        {
                            try
                            {
                                using var content = new StringContent($"{{\"event\":{i}}}", Encoding.UTF8, "application/json");
                                using var request = new HttpRequestMessage(HttpMethod.Post, events) { Content = content };
                                request.Headers.Add("Idempotency-Key", key);
                                request.Headers.Add("X-Bridge-Delay", i % 3 == 0 ? "1" : "0"); // some due later: still stored at the kill
                                using var response = await http.SendAsync(request, stop.Token);
                                if (response.StatusCode != HttpStatusCode.Accepted)
                                {
                                    return false;
                                }

                                accepted[key] = JsonDocument.Parse(await response.Content.ReadAsStringAsync(stop.Token)).RootElement.GetProperty("taskName").GetString()!;
                                return true;
                            }
                            catch (HttpRequestException)
                            {
                                Interlocked.Increment(ref refused);
                                return false; // the runner is down: try again
                            }
                        },
                        TimeSpan.FromMinutes(2),
                        () => $"{key} was never accepted");
                }
            });

            // In the middle: half the stream sent, dispatches and callbacks under way, the rest still to come.
            await halfway.Task.WaitAsync(stop.Token);
            await first.KillAsync();
            Assert.Empty(first.Errors);

            // The same ports again: the stored tasks target the first run's callback URL.
            second = await RunnerProcess.StartAsync([.. settings, $"--Bridge:Server:Port={first.Port}", $"--Bridge:Server:EmulatorGrpcPort={first.EmulatorGrpcPort}", "--Bridge:Server:ServiceBusPort=0"]);
            await sender.WaitAsync(stop.Token);
            Assert.Equal(Events, accepted.Count);
            Assert.True(refused > 0, "The stream never met the killed runner: the kill was not in the middle of it.");

            // Every accepted event has its outcome. A callback cut by the kill after the outcome was written but before
            // the emulator recorded the answer is delivered again: Cloud Tasks is at-least-once, so the outcome keeps
            // its id and a consumer drops the repeat. Exactly once means one outcome id per task, and nothing else.
            List<(string Subject, string Id, string Type)> outcomes = [];
            await Eventually.HoldsAsync(
                () =>
                {
                    outcomes = ReadOutcomes(outcomesFile);
                    return Task.FromResult(accepted.Values.All(t => outcomes.Exists(o => o.Subject == t)));
                },
                TimeSpan.FromMinutes(2),
                () => $"{accepted.Values.Count(t => !outcomes.Exists(o => o.Subject == t))} accepted events never delivered; runner output:\n{string.Join('\n', second.Output)}");
            // Then nothing left on the queue (a redelivery has happened, if there was one) before the strict read.
            using var client = new CloudTasksClientBuilder { EmulatorHost = $"127.0.0.1:{second.EmulatorGrpcPort}", EmulatorDetection = EmulatorDetection.None }.Build();
            await Eventually.HoldsAsync(
                async () => !await client.ListTasks(QueueName.Parse(RunningServer.DemoQueue)).AnyAsync(stop.Token),
                TimeSpan.FromMinutes(1),
                () => "the demo queue never emptied");
            outcomes = ReadOutcomes(outcomesFile, complete: true);

            Assert.All(outcomes, o => Assert.Contains(o.Subject, accepted.Values)); // nothing that wasn't sent
            Assert.All(outcomes, o => Assert.Equal("dev.bridge.task.delivered", o.Type));
            Assert.All(accepted.Values, t => Assert.Single(outcomes.Where(o => o.Subject == t).Select(o => o.Id).Distinct()));
            Assert.Equal(Events, outcomes.Select(o => o.Subject).Distinct().Count());
            Assert.Empty(second.Errors);
        }
        finally
        {
            second?.Dispose();
            Directory.Delete(data, recursive: true);
        }
    }

    /// <summary>
    /// Outcome lines as the runner appended them. While it runs, a line being written is left for the next read;
    /// <paramref name="complete"/> reads after the writes: a line cut short (by the kill) fails the test.
    /// </summary>
    private static List<(string Subject, string Id, string Type)> ReadOutcomes(string file, bool complete = false)
    {
        if (!File.Exists(file))
        {
            return [];
        }

        using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream);
        var text = reader.ReadToEnd();
        if (complete)
        {
            Assert.True(text.Length == 0 || text.EndsWith('\n'), "The outcomes file ends in a line cut short.");
        }

        var lines = text.Split('\n');
        return lines.Take(lines.Length - 1).Select(l =>
        {
            var root = JsonDocument.Parse(l).RootElement;
            return (root.GetProperty("subject").GetString()!, root.GetProperty("id").GetString()!, root.GetProperty("type").GetString()!);
        }).ToList();
    }
}
