using System.Net;
using System.Text.RegularExpressions;
using Microsoft.Extensions.DependencyInjection;

namespace Bridge.Dashboard.Tests;

/// <summary>What the dashboard refuses and hides, over plain HTTP against the runner's real port.</summary>
public sealed partial class DashboardHttpTests
{
    private static readonly string DemoQueueQuery = Uri.EscapeDataString(DashboardServer.DemoQueue);

    [Fact]
    public async Task A_request_naming_another_host_is_refused_so_a_rebound_name_reads_nothing()
    {
        await using var server = await DashboardServer.StartAsync();
        using var request = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{server.Port}/");
        request.Headers.Host = "attacker.example";

        using var response = await server.Http.SendAsync(request);

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Contains("attacker.example", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        using var loopback = await server.Http.GetAsync($"http://127.0.0.1:{server.Port}/");
        Assert.Equal(HttpStatusCode.OK, loopback.StatusCode);
    }

    [Fact]
    public async Task The_runners_embedded_service_bus_is_counted_exactly_by_its_broker_not_sampled()
    {
        await using var server = await DashboardServer.StartAsync();

        var page = await server.Http.GetStringAsync("/servicebus");

        Assert.Contains("Counts are exact", page, StringComparison.Ordinal);
        Assert.DoesNotContain("sampled", page, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_form_posted_without_its_antiforgery_token_is_refused_and_changes_nothing()
    {
        await using var server = await DashboardServer.StartAsync();

        using var response = await server.Http.PostAsync("/queue/pause", new FormUrlEncodedContent(new Dictionary<string, string> { ["name"] = DashboardServer.DemoQueue }));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("anti-forgery", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Contains("state-running", await server.Http.GetStringAsync($"/queue?name={DemoQueueQuery}"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_post_that_is_not_a_form_is_refused_with_415()
    {
        await using var server = await DashboardServer.StartAsync();

        using var response = await server.Http.PostAsync("/queue/pause", new StringContent("{\"name\":\"x\"}", System.Text.Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        Assert.Contains("HTML forms", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_form_posted_with_its_token_pauses_the_queue_and_returns_to_the_page()
    {
        await using var server = await DashboardServer.StartAsync();
        var page = await server.Http.GetStringAsync("/");
        var token = TokenField().Match(page).Groups[1].Value;
        Assert.NotEmpty(token);

        using var response = await server.Http.PostAsync("/queue/pause", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = token,
            ["name"] = DashboardServer.DemoQueue,
            ["back"] = "//attacker.example/",
        }));

        // HttpClient follows the redirect: the dashboard never sends anyone off-site, whatever "back" says.
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal($"http://localhost:{server.Port}/?notice=paused", response.RequestMessage!.RequestUri!.ToString());
        Assert.Contains("state-paused", await server.Http.GetStringAsync($"/queue?name={DemoQueueQuery}"), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/queue?name=not-a-queue", HttpStatusCode.BadRequest, "is not a queue name")]
    [InlineData("/queue?name=projects%2Flocal-project%2Flocations%2Flocal%2Fqueues%2Fnope", HttpStatusCode.NotFound, "does not exist")]
    [InlineData("/task?name=projects%2Fp", HttpStatusCode.BadRequest, "is not a task name")]
    [InlineData("/trace?id=zz", HttpStatusCode.BadRequest, "is not a trace id")]
    [InlineData("/trace?id=0123456789abcdef0123456789abcdef", HttpStatusCode.NotFound, "not kept")]
    public async Task Bad_input_gets_a_page_naming_the_problem(string path, HttpStatusCode status, string message)
    {
        await using var server = await DashboardServer.StartAsync();

        using var response = await server.Http.GetAsync(path);

        Assert.Equal(status, response.StatusCode);
        Assert.Contains(message, await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_a_Service_Bus_its_page_says_none_is_configured()
    {
        await using var server = await DashboardServer.StartAsync("--Bridge:Server:EmbeddedServiceBus=false");
        const string path = "/servicebus";
        const HttpStatusCode status = HttpStatusCode.NotFound;
        const string message = "No Service Bus is configured";

        using var response = await server.Http.GetAsync(path);

        Assert.Equal(status, response.StatusCode);
        Assert.Contains(message, await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_task_body_is_shown_only_on_request_and_always_encoded()
    {
        await using var server = await DashboardServer.StartAsync();
        using var content = new StringContent("{\"x\":\"<script>alert(1)</script>\"}", System.Text.Encoding.UTF8, "application/json");
        content.Headers.Add("X-Bridge-Delay", "3600");
        using var forwarded = await server.Http.PostAsync("/api/events/demo", content);
        Assert.Equal(HttpStatusCode.Accepted, forwarded.StatusCode);
        var taskName = System.Text.Json.JsonDocument.Parse(await forwarded.Content.ReadAsStringAsync()).RootElement.GetProperty("taskName").GetString()!;

        var list = await server.Http.GetStringAsync($"/queue?name={DemoQueueQuery}");
        var plain = await server.Http.GetStringAsync($"/task?name={Uri.EscapeDataString(taskName)}");
        var withBody = await server.Http.GetStringAsync($"/task?name={Uri.EscapeDataString(taskName)}&body=1");

        Assert.DoesNotContain("alert(1)", list, StringComparison.Ordinal);
        Assert.DoesNotContain("alert(1)", plain, StringComparison.Ordinal);
        Assert.Contains("&lt;script&gt;alert(1)&lt;/script&gt;", withBody, StringComparison.Ordinal);
        Assert.DoesNotContain("<script>alert", withBody, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Outcomes_never_show_payloads()
    {
        await using var server = await DashboardServer.StartAsync();
        using var content = new StringContent("{\"secret\":\"s3cr3t-payload\"}", System.Text.Encoding.UTF8, "application/json");
        content.Headers.Add("Idempotency-Key", "payload-check");
        using var forwarded = await server.Http.PostAsync("/api/events/demo", content);
        await server.Emulator.WaitForIdleAsync(DashboardServer.DemoQueue, TimeSpan.FromSeconds(30));

        var page = await server.Http.GetStringAsync("/outcomes");

        Assert.Contains("payload-check", page, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cr3t", page, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Outcomes_filter_by_route_and_status_and_a_failed_one_links_to_its_tasks_attempts()
    {
        await using var server = await DashboardServer.StartAsync();
        var feed = server.Services.GetRequiredService<Bridge.Dashboard.Internal.OutcomeFeed>();
        const string failedTask = "projects/local-project/locations/local/queues/demo/tasks/failed-1";
        feed.Add(new("f1", "failed", failedTask, DashboardServer.DemoQueue, "demo", "corr-failed", 4, 503, "target answered 503", DateTimeOffset.UnixEpoch, null));
        feed.Add(new("d1", "delivered", "projects/local-project/locations/local/queues/demo/tasks/delivered-1", DashboardServer.DemoQueue, "demo", "corr-delivered", 0, null, null, DateTimeOffset.UnixEpoch, null));
        feed.Add(new("o1", "delivered", "projects/local-project/locations/local/queues/other/tasks/other-1", null, "other", "corr-other", 0, null, null, DateTimeOffset.UnixEpoch, null));

        var failed = await server.Http.GetStringAsync("/outcomes?status=failed");
        var demo = await server.Http.GetStringAsync("/outcomes?route=demo");

        Assert.Contains("corr-failed", failed, StringComparison.Ordinal);
        Assert.DoesNotContain("corr-delivered", failed, StringComparison.Ordinal);
        Assert.Contains($"href=\"/task?name={Uri.EscapeDataString(failedTask)}\">attempts</a>", failed, StringComparison.Ordinal);
        Assert.Contains("corr-delivered", demo, StringComparison.Ordinal);
        Assert.DoesNotContain("corr-other", demo, StringComparison.Ordinal);
        Assert.Contains("data-stream=\"/outcomes/stream?route=demo&amp;status=\"", demo, StringComparison.Ordinal);
    }

    [GeneratedRegex("name=\"__RequestVerificationToken\" value=\"([^\"]+)\"")]
    private static partial Regex TokenField();
}
