using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Bridge.Testing;
using Task = System.Threading.Tasks.Task;

namespace Bridge.Emulators.CloudTasks.Tests;

/// <summary>The same RPCs over REST/JSON (as curl would use them), plus health and the test endpoints.</summary>
public sealed class RestAndAdminTests : IAsyncLifetime
{
    private EmulatorHost _host = null!;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        _host = await EmulatorHost.StartAsync();
        _http = new HttpClient { BaseAddress = _host.HttpAddress };
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _host.DisposeAsync();
    }

    [Fact]
    public async Task Queues_and_tasks_work_over_rest()
    {
        await using var target = await HttpTargetServer.StartAsync();
        var created = await _http.PostAsJsonAsync("/v2beta3/projects/rest/locations/l/queues", new { name = "projects/rest/locations/l/queues/q1", rateLimits = new { maxDispatchesPerSecond = 10 } });
        Assert.Equal(HttpStatusCode.OK, created.StatusCode);

        using var queue = JsonDocument.Parse(await _http.GetStringAsync("/v2beta3/projects/rest/locations/l/queues/q1"));
        Assert.Equal("RUNNING", queue.RootElement.GetProperty("state").GetString());
        Assert.Equal(10, queue.RootElement.GetProperty("rateLimits").GetProperty("maxDispatchesPerSecond").GetDouble());

        var task = await _http.PostAsJsonAsync("/v2beta3/projects/rest/locations/l/queues/q1/tasks", new
        {
            task = new { name = "projects/rest/locations/l/queues/q1/tasks/t1", httpRequest = new { url = target.Url("/from-rest").ToString(), body = Convert.ToBase64String("hi"u8.ToArray()) } },
            responseView = "FULL",
        });
        Assert.Equal(HttpStatusCode.OK, task.StatusCode);
        var received = Assert.Single(await target.WaitForRequestsAsync(1));
        Assert.Equal("hi", System.Text.Encoding.UTF8.GetString(received.Body));

        var paused = await _http.PostAsync("/v2beta3/projects/rest/locations/l/queues/q1:pause", JsonContent.Create(new { }));
        using var pausedJson = JsonDocument.Parse(await paused.Content.ReadAsStringAsync());
        Assert.Equal("PAUSED", pausedJson.RootElement.GetProperty("state").GetString());

        using var list = JsonDocument.Parse(await _http.GetStringAsync("/v2beta3/projects/rest/locations/l/queues?pageSize=10"));
        Assert.Equal(1, list.RootElement.GetProperty("queues").GetArrayLength());

        Assert.Equal(HttpStatusCode.OK, (await _http.DeleteAsync("/v2beta3/projects/rest/locations/l/queues/q1")).StatusCode);
    }

    [Fact]
    public async Task Errors_over_rest_carry_the_status_and_the_field_violation()
    {
        var response = await _http.PostAsJsonAsync("/v2beta3/projects/rest/locations/l/queues", new { name = "projects/rest/locations/l/queues/bad", rateLimits = new { maxDispatchesPerSecond = 1000 } });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal(3, body.RootElement.GetProperty("code").GetInt32());
        Assert.Contains("max_dispatches_per_second", body.RootElement.GetProperty("message").GetString(), StringComparison.Ordinal);

        var missing = await _http.GetAsync("/v2beta3/projects/rest/locations/l/queues/none");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task Health_reset_and_wait_idle_endpoints_work()
    {
        Assert.Equal(HttpStatusCode.OK, (await _http.GetAsync("/health")).StatusCode);
        var queue = await _host.CreateQueueAsync();
        await _host.Client.PauseQueueAsync(queue);
        await _host.Client.CreateTaskAsync(queue, new Bridge.CloudTasks.V2Beta3.Task { HttpRequest = new Bridge.CloudTasks.V2Beta3.HttpRequest { Url = "http://127.0.0.1:9/x" } });

        var busy = await _http.PostAsync($"/admin/wait-idle?queue={Uri.EscapeDataString(queue.ToString())}&timeoutSeconds=1", null);
        Assert.Equal(HttpStatusCode.RequestTimeout, busy.StatusCode);

        Assert.Equal(HttpStatusCode.NoContent, (await _http.PostAsync("/admin/reset", null)).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await _http.PostAsync("/admin/wait-idle?timeoutSeconds=1", null)).StatusCode);
        await Assert.ThrowsAsync<Bridge.CloudTasks.CloudTasksException>(() => _host.Client.GetQueueAsync(queue));
    }
}
