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

    private static async Task<int> RetryAfterAsync(RunningServer server, string key)
    {
        using var response = await server.PostEventAsync("{}", key);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        return int.Parse(response.Headers.GetValues("Retry-After").Single(), CultureInfo.InvariantCulture);
    }
}
