using System.Globalization;
using System.Net;
using Bridge.Emulators.CloudTasks;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;

namespace Bridge.Server.Tests;

/// <summary>HTTP intake's answer while Cloud Tasks fails: 503 with a Retry-After that grows like a Service Bus hand-back.</summary>
public sealed class HttpRetryAfterTests
{
    [Fact]
    public async Task Retry_after_doubles_with_consecutive_failures_of_the_route_and_starts_over_after_a_success()
    {
        await using var server = await RunningServer.StartAsync(
            "--Bridge:CloudTasks:Timeout=00:00:01", "--Bridge:RetryInitialDelay=00:00:04", "--Bridge:RetryMaxDelay=00:00:30");
        var faults = server.Services.GetRequiredService<CloudTasksEmulator>().Faults;
        faults.Fail(StatusCode.Unavailable, ["CreateTask"]);

        var waits = new List<int>();
        for (var i = 0; i < 4; i++)
        {
            waits.Add(await RetryAfterAsync(server, $"down-{i}"));
        }

        // Each drawn from the upper half of 4 s, 8 s, 16 s, then the 30 s cap.
        Assert.InRange(waits[0], 2, 4);
        Assert.InRange(waits[1], 4, 8);
        Assert.InRange(waits[2], 8, 16);
        Assert.InRange(waits[3], 15, 30);

        faults.Clear();
        Assert.Equal(HttpStatusCode.Accepted, (await server.PostEventAsync("{}", "up")).StatusCode);
        faults.Fail(StatusCode.Unavailable, ["CreateTask"]);
        Assert.InRange(await RetryAfterAsync(server, "down-again"), 2, 4);
    }

    [Fact]
    public async Task Each_retry_after_answer_is_counted_by_route_and_reason_and_a_success_is_not()
    {
        const string route = "retry_after_metric"; // only this test uses it: parallel tests share the meter
        var counted = new System.Collections.Concurrent.ConcurrentQueue<(long Value, string? Reason)>();
        using var meters = new System.Diagnostics.Metrics.MeterListener();
        meters.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == Bridge.Core.Telemetry.BridgeDiagnostics.SourceName && instrument.Name == "bridge.http.retry_after")
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        meters.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            string? measuredRoute = null, reason = null;
            foreach (var tag in tags)
            {
                measuredRoute = tag.Key == Bridge.Core.Telemetry.BridgeDiagnostics.Tags.Route ? tag.Value as string : measuredRoute;
                reason = tag.Key == Bridge.Core.Telemetry.BridgeDiagnostics.Tags.Reason ? tag.Value as string : reason;
            }

            if (measuredRoute == route)
            {
                counted.Enqueue((value, reason));
            }
        });
        meters.Start();
        await using var server = await RunningServer.StartAsync(
            "--Bridge:CloudTasks:Timeout=00:00:01",
            "--Bridge:Server:EmbeddedEmulator=true",
            $"--Bridge:Routes:{route}:Queue={RunningServer.DemoQueue}",
            $"--Bridge:Routes:{route}:TargetUrl=https://worker.example.com/metric");
        var faults = server.Services.GetRequiredService<CloudTasksEmulator>().Faults;
        faults.Fail(StatusCode.Unavailable, ["CreateTask"]);

        for (var i = 0; i < 2; i++)
        {
            using var refused = await server.PostEventAsync("{}", $"metric-down-{i}", route);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        }

        faults.Clear();
        using var accepted = await server.PostEventAsync("{}", "metric-up", route);
        Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);

        Assert.Equal([(1L, "CloudTasksUnavailable"), (1L, "CloudTasksUnavailable")], counted.ToArray());
    }

    private static async Task<int> RetryAfterAsync(RunningServer server, string key)
    {
        using var response = await server.PostEventAsync("{}", key);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        return int.Parse(response.Headers.GetValues("Retry-After").Single(), CultureInfo.InvariantCulture);
    }
}
