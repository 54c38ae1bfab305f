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

    [Theory]
    [InlineData("POST", "/v2beta3/projects/rest/locations/l/queues", "{\"name\":\"projects/rest/locations/l/queues/bad\",\"rateLimits\":{\"maxDispatchesPerSecond\":1000}}", 400, "INVALID_ARGUMENT")]
    [InlineData("GET", "/v2beta3/projects/rest/locations/l/queues/none", null, 404, "NOT_FOUND")]
    [InlineData("POST", "/v2beta3/projects/rest/locations/l/queues", "{\"name\":\"projects/rest/locations/l/queues/dup\"}", 409, "ALREADY_EXISTS")]
    public async Task Errors_over_rest_use_googles_error_envelope(string method, string path, string? body, int httpStatus, string status)
    {
        await _http.PostAsync("/v2beta3/projects/rest/locations/l/queues", new StringContent("{\"name\":\"projects/rest/locations/l/queues/dup\"}", System.Text.Encoding.UTF8, "application/json"));
        using var request = new HttpRequestMessage(new HttpMethod(method), path) { Content = body is null ? null : new StringContent(body, System.Text.Encoding.UTF8, "application/json") };

        var response = await _http.SendAsync(request);

        Assert.Equal(httpStatus, (int)response.StatusCode);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var error = json.RootElement.GetProperty("error");
        Assert.Equal(httpStatus, error.GetProperty("code").GetInt32());
        Assert.Equal(status, error.GetProperty("status").GetString());
        Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
        Assert.Equal(JsonValueKind.Array, error.GetProperty("details").ValueKind);
        Assert.Single(json.RootElement.EnumerateObject()); // nothing beside "error"
        if (status == "INVALID_ARGUMENT")
        {
            var detail = Assert.Single(error.GetProperty("details").EnumerateArray());
            Assert.Equal("type.googleapis.com/google.rpc.BadRequest", detail.GetProperty("@type").GetString());
            Assert.Equal("queue.rate_limits.max_dispatches_per_second", detail.GetProperty("fieldViolations")[0].GetProperty("field").GetString());
        }
    }

    [Fact]
    public async Task V2_over_rest_serves_the_queues_and_tasks_of_v2beta3_without_the_fields_v2_lacks()
    {
        var created = await _http.PostAsJsonAsync("/v2/projects/rest/locations/l/queues", new { name = "projects/rest/locations/l/queues/both", appEngineRoutingOverride = new { service = "worker" } });
        Assert.Equal(HttpStatusCode.OK, created.StatusCode);
        await _http.PostAsync("/v2/projects/rest/locations/l/queues/both:pause", JsonContent.Create(new { }));

        using var v2 = JsonDocument.Parse(await _http.GetStringAsync("/v2/projects/rest/locations/l/queues/both"));
        Assert.Equal("PAUSED", v2.RootElement.GetProperty("state").GetString());
        Assert.Equal("worker", v2.RootElement.GetProperty("appEngineRoutingOverride").GetProperty("service").GetString());
        Assert.False(v2.RootElement.TryGetProperty("tombstoneTtl", out _));
        Assert.False(v2.RootElement.TryGetProperty("type", out _));
        using var beta = JsonDocument.Parse(await _http.GetStringAsync("/v2beta3/projects/rest/locations/l/queues/both"));
        Assert.Equal("PAUSED", beta.RootElement.GetProperty("state").GetString());
        Assert.Equal("worker", beta.RootElement.GetProperty("appEngineHttpQueue").GetProperty("appEngineRoutingOverride").GetProperty("service").GetString());
        Assert.Equal("3600s", beta.RootElement.GetProperty("tombstoneTtl").GetString());

        // gcloud (apitools) writes bytes in the URL-safe alphabet: ">>>???" is Pj4-Pz8_ there and Pj4+Pz8/ in the standard one.
        var task = await _http.PostAsync("/v2/projects/rest/locations/l/queues/both/tasks", new StringContent(
            "{\"task\":{\"name\":\"projects/rest/locations/l/queues/both/tasks/t\",\"appEngineHttpRequest\":{\"relativeUri\":\"/w\",\"body\":\"Pj4-Pz8_\"}}}", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, task.StatusCode);
        using var seen = JsonDocument.Parse(await _http.GetStringAsync("/v2beta3/projects/rest/locations/l/queues/both/tasks/t?responseView=FULL"));
        Assert.Equal("Pj4+Pz8/", seen.RootElement.GetProperty("appEngineHttpRequest").GetProperty("body").GetString());

        var betaOnly = await _http.PatchAsync("/v2/projects/rest/locations/l/queues/both?updateMask=tombstoneTtl", JsonContent.Create(new { }));
        Assert.Equal(HttpStatusCode.BadRequest, betaOnly.StatusCode);
        Assert.Contains("tombstoneTtl", await betaOnly.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_pull_queue_and_its_tasks_are_seen_through_v2_without_what_v2_cannot_express()
    {
        await _http.PostAsJsonAsync("/v2beta3/projects/rest/locations/l/queues", new { name = "projects/rest/locations/l/queues/pull", type = "PULL" });
        var created = await _http.PostAsJsonAsync("/v2beta3/projects/rest/locations/l/queues/pull/tasks", new { task = new { name = "projects/rest/locations/l/queues/pull/tasks/p", pullMessage = new { payload = "aGk=", tag = "t" } } });
        Assert.Equal(HttpStatusCode.OK, created.StatusCode);

        using var queue = JsonDocument.Parse(await _http.GetStringAsync("/v2/projects/rest/locations/l/queues/pull"));
        Assert.False(queue.RootElement.TryGetProperty("type", out _));
        using var task = JsonDocument.Parse(await _http.GetStringAsync("/v2/projects/rest/locations/l/queues/pull/tasks/p?responseView=FULL"));
        Assert.Equal("projects/rest/locations/l/queues/pull/tasks/p", task.RootElement.GetProperty("name").GetString());
        Assert.False(task.RootElement.TryGetProperty("pullMessage", out _));
        Assert.False(task.RootElement.TryGetProperty("httpRequest", out _));

        // v2 can only make push tasks: one put into a pull queue is refused, naming the problem.
        var push = await _http.PostAsJsonAsync("/v2/projects/rest/locations/l/queues/pull/tasks", new { task = new { httpRequest = new { url = "http://127.0.0.1:9/x" } } });
        Assert.Equal(HttpStatusCode.BadRequest, push.StatusCode);
    }

    [Fact]
    public async Task Set_iam_policy_over_rest_takes_the_etag_in_the_url_safe_alphabet_as_gcloud_sends_it()
    {
        await _http.PostAsJsonAsync("/v2/projects/rest/locations/l/queues", new { name = "projects/rest/locations/l/queues/iam" });
        using var policy = JsonDocument.Parse(await (await _http.PostAsync("/v2/projects/rest/locations/l/queues/iam:getIamPolicy", JsonContent.Create(new { }))).Content.ReadAsStringAsync());
        var etag = policy.RootElement.GetProperty("etag").GetString()!;
        var urlSafe = etag.Replace('+', '-').Replace('/', '_').TrimEnd('=');

        var set = await _http.PostAsJsonAsync("/v2/projects/rest/locations/l/queues/iam:setIamPolicy", new
        {
            policy = new { etag = urlSafe, bindings = new[] { new { role = "roles/cloudtasks.enqueuer", members = new[] { "serviceAccount:a@p.iam.gserviceaccount.com" } } } },
        });

        Assert.Equal(HttpStatusCode.OK, set.StatusCode);
        Assert.Contains("roles/cloudtasks.enqueuer", await set.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{\"policy\":{\"etag\":\"-42n61sbOZ4=\"}}", "{\"policy\":{\"etag\":\"+42n61sbOZ4=\"}}")]
    [InlineData("{\"task\":{\"httpRequest\":{\"body\":\"Pj4-Pz8_\",\"headers\":{\"body\":\"a-b\"}}}}", "{\"task\":{\"httpRequest\":{\"body\":\"Pj4+Pz8/\",\"headers\":{\"body\":\"a-b\"}}}}")]
    [InlineData("{\"task\":{\"pull_message\":{\"payload\":\"aGk\"}}}", "{\"task\":{\"pull_message\":{\"payload\":\"aGk=\"}}}")]
    [InlineData("{\"requests\":[{\"task\":{\"httpRequest\":{\"body\":\"Pj4-\"}}},{\"task\":{\"httpRequest\":{\"body\":\"Pz8_\"}}}]}", "{\"requests\":[{\"task\":{\"httpRequest\":{\"body\":\"Pj4+\"}}},{\"task\":{\"httpRequest\":{\"body\":\"Pz8/\"}}}]}")]
    [InlineData("{\"requests\":{\"task\":{\"httpRequest\":{\"body\":\"Pj4-\"}}}}", null)]
    [InlineData("{\"policy\":{\"etag\":\"+42n61sbOZ4=\"}}", null)]
    [InlineData("{\"policy\":{\"etag\":\"not base64!\"}}", null)]
    [InlineData("not json", null)]
    public void Rest_bytes_fields_are_rewritten_to_the_standard_base64_alphabet_and_nothing_else(string body, string? expected)
    {
        var rewritten = Internal.UrlSafeBase64Middleware.Rewrite(System.Text.Encoding.UTF8.GetBytes(body));

        if (expected is null)
        {
            Assert.Null(rewritten);
        }
        else
        {
            Assert.NotNull(rewritten);
            Assert.True(System.Text.Json.Nodes.JsonNode.DeepEquals(System.Text.Json.Nodes.JsonNode.Parse(expected), System.Text.Json.Nodes.JsonNode.Parse(rewritten)), System.Text.Encoding.UTF8.GetString(rewritten));
        }
    }

    [Fact]
    public async Task Update_queue_over_rest_takes_camel_case_sub_field_masks_as_gcloud_sends_them()
    {
        await _http.PostAsJsonAsync("/v2beta3/projects/rest/locations/l/queues", new { name = "projects/rest/locations/l/queues/patched", retryConfig = new { maxAttempts = 9 } });

        var patch = await _http.PatchAsync(
            "/v2beta3/projects/rest/locations/l/queues/patched?updateMask=rateLimits.maxDispatchesPerSecond,retryConfig.maxDoublings",
            JsonContent.Create(new { rateLimits = new { maxDispatchesPerSecond = 4, maxConcurrentDispatches = 3 }, retryConfig = new { maxDoublings = 2, maxAttempts = 1 } }));

        Assert.Equal(HttpStatusCode.OK, patch.StatusCode);
        using var queue = JsonDocument.Parse(await _http.GetStringAsync("/v2beta3/projects/rest/locations/l/queues/patched"));
        var rate = queue.RootElement.GetProperty("rateLimits");
        Assert.Equal(4, rate.GetProperty("maxDispatchesPerSecond").GetDouble());
        Assert.Equal(4, rate.GetProperty("maxBurstSize").GetInt32());
        Assert.Equal(1000, rate.GetProperty("maxConcurrentDispatches").GetInt32());
        Assert.Equal(2, queue.RootElement.GetProperty("retryConfig").GetProperty("maxDoublings").GetInt32());
        Assert.Equal(9, queue.RootElement.GetProperty("retryConfig").GetProperty("maxAttempts").GetInt32());
    }

    [Fact]
    public async Task Locations_are_listed_and_described_over_rest()
    {
        await _http.PostAsJsonAsync("/v2beta3/projects/loc/locations/moon-base1/queues", new { name = "projects/loc/locations/moon-base1/queues/q" });

        using var list = JsonDocument.Parse(await _http.GetStringAsync("/v2beta3/projects/loc/locations"));
        var ids = list.RootElement.GetProperty("locations").EnumerateArray().Select(l => l.GetProperty("locationId").GetString()).ToList();
        using var one = JsonDocument.Parse(await _http.GetStringAsync("/v2beta3/projects/loc/locations/europe-west1"));

        Assert.Contains("us-central1", ids);
        Assert.Contains("moon-base1", ids); // where the project's queues are
        Assert.Equal("projects/loc/locations/europe-west1", one.RootElement.GetProperty("name").GetString());
        Assert.Equal("europe-west1", one.RootElement.GetProperty("locationId").GetString());
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
