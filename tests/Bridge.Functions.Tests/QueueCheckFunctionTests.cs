using System.Text.Json;
using Bridge.Functions.Functions;
using Bridge.Testing;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;

namespace Bridge.Functions.Tests;

/// <summary>The smoke test's queue check: GetQueue per route through the app's own client, against the emulator.</summary>
public sealed class QueueCheckFunctionTests : IAsyncLifetime
{
    private PipelineHarness _h = null!;

    public async Task InitializeAsync() => _h = await FunctionHarness.StartAsync();

    public async Task DisposeAsync() => await _h.DisposeAsync();

    [Fact]
    public async Task Every_routes_queue_answers_through_the_apps_own_client()
    {
        var result = await _h.Create<QueueCheckFunction>().RunAsync(new DefaultHttpContext().Request, CancellationToken.None);

        var ok = Assert.IsType<OkObjectResult>(result);
        using var body = JsonDocument.Parse(JsonSerializer.Serialize(ok.Value));
        Assert.True(body.RootElement.GetProperty("ok").GetBoolean());
        var queues = body.RootElement.GetProperty("queues").EnumerateArray().ToList();
        Assert.Equal(["delayed", "orders"], queues.Select(q => q.GetProperty("Route").GetString()));
        var queue = queues[1];
        Assert.Equal(_h.Orders.ToString(), queue.GetProperty("Queue").GetString());
        Assert.Equal("Paused", queue.GetProperty("State").GetString()); // the harness pauses it
    }

    [Fact]
    public async Task A_queue_the_app_cannot_get_fails_the_check_naming_the_route_and_reason()
    {
        await _h.Emulator.Client.DeleteQueueAsync(_h.Orders);

        var result = await _h.Create<QueueCheckFunction>().RunAsync(new DefaultHttpContext().Request, CancellationToken.None);

        var failed = Assert.IsType<ObjectResult>(result);
        Assert.Equal(503, failed.StatusCode);
        using var body = JsonDocument.Parse(JsonSerializer.Serialize(failed.Value));
        Assert.False(body.RootElement.GetProperty("ok").GetBoolean());
        var queues = body.RootElement.GetProperty("queues").EnumerateArray().ToList();
        Assert.Null(queues.Single(q => q.GetProperty("Route").GetString() == "delayed").GetProperty("Error").GetString());
        var queue = queues.Single(q => q.GetProperty("Route").GetString() == "orders");
        Assert.StartsWith("NotFound", queue.GetProperty("Error").GetString(), StringComparison.Ordinal);
    }
}
