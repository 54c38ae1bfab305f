using System.Text;
using System.Text.Json;
using Bridge.Functions.Functions;
using Microsoft.AspNetCore.Http;
using Bridge.Testing;

namespace Bridge.Functions.Tests;

/// <summary>The HTTP functions invoked with a DefaultHttpContext, their results executed as ASP.NET Core would.</summary>
public sealed class HttpForwardFunctionTests : IAsyncLifetime
{
    private PipelineHarness _h = null!;

    public async Task InitializeAsync() => _h = await FunctionHarness.StartAsync();

    public async Task DisposeAsync() => await _h.DisposeAsync();

    private Task<(int Status, IHeaderDictionary Headers, JsonElement Body)> PostAsync(string route, string body, string? contentType, params (string, string)[] headers) =>
        InvokeAsync(_h.Services, request =>
        {
            request.Method = "POST";
            request.ContentType = contentType;
            var bytes = Encoding.UTF8.GetBytes(body);
            request.Body = new MemoryStream(bytes);
            request.ContentLength = bytes.Length;
            foreach (var (name, value) in headers)
            {
                request.Headers[name] = value;
            }

            return _h.Create<HttpForwardFunction>().RunAsync(request, route);
        });

    /// <summary>Builds a request in a DefaultHttpContext, runs the function on it, executes its result as ASP.NET Core would and reads the JSON answer.</summary>
    private static async Task<(int Status, IHeaderDictionary Headers, JsonElement Body)> InvokeAsync(IServiceProvider services, Func<HttpRequest, Task<IResult>> function)
    {
        var context = new DefaultHttpContext { RequestServices = services };
        context.Response.Body = new MemoryStream();
        var result = await function(context.Request);
        await result.ExecuteAsync(context);
        context.Response.Body.Position = 0;
        using var document = await JsonDocument.ParseAsync(context.Response.Body);
        return (context.Response.StatusCode, context.Response.Headers, document.RootElement.Clone());
    }

    [Fact]
    public async Task An_event_is_accepted_with_its_task_and_a_retry_is_deduplicated()
    {
        var first = await PostAsync("orders", "{\"n\":1}", "application/json", ("Idempotency-Key", "abc"));
        var retry = await PostAsync("orders", "{\"n\":1}", "application/json", ("Idempotency-Key", "abc"));

        Assert.Equal(202, first.Status);
        Assert.False(first.Body.GetProperty("deduplicated").GetBoolean());
        Assert.StartsWith(_h.Orders + "/tasks/", first.Body.GetProperty("taskName").GetString(), StringComparison.Ordinal);
        Assert.Equal(202, retry.Status);
        Assert.True(retry.Body.GetProperty("deduplicated").GetBoolean());
        Assert.Equal(first.Body.GetProperty("taskName").GetString(), retry.Body.GetProperty("taskName").GetString());
        Assert.Equal(1, await _h.TaskCountAsync());
    }

    [Theory]
    [InlineData("nope", "x", null, 404, "UnknownRoute")]
    [InlineData("orders", "{bad", "application/json", 400, "InvalidEvent")]
    public async Task Bad_events_get_problem_details_with_their_reason(string route, string body, string? contentType, int status, string reason)
    {
        var response = await PostAsync(route, body, contentType);

        Assert.Equal(status, response.Status);
        Assert.Equal(reason, response.Body.GetProperty("reason").GetString());
        Assert.Equal("urn:bridge:forwarding:" + reason, response.Body.GetProperty("type").GetString());
        Assert.StartsWith("application/problem+json", response.Headers.ContentType.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_body_over_the_limit_is_413_without_reading_it_all()
    {
        var response = await PostAsync("orders", new string('x', 5000), "text/plain");
        Assert.Equal(413, response.Status);
        Assert.Equal("PayloadTooLarge", response.Body.GetProperty("reason").GetString());
    }

    [Fact]
    public async Task A_schedule_beyond_thirty_days_is_400_naming_the_limit()
    {
        var response = await PostAsync("orders", "x", "text/plain", ("X-Bridge-Delay", "P40D"));
        Assert.Equal(400, response.Status);
        Assert.Contains("720h", response.Body.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task When_cloud_tasks_is_down_the_answer_is_503_with_retry_after()
    {
        using var down = new UnreachableEndpoint();
        await using var offline = await FunctionHarness.StartAsync(emulatorHostOverride: down.HostPort);
        var (status, headers, _) = await InvokeAsync(offline.Services, request =>
        {
            request.Method = "POST";
            request.Body = new MemoryStream("x"u8.ToArray());
            request.Headers["Idempotency-Key"] = "k";
            return offline.Create<HttpForwardFunction>().RunAsync(request, "orders");
        });

        Assert.Equal(503, status);
        Assert.True(int.Parse(headers.RetryAfter.ToString(), System.Globalization.CultureInfo.InvariantCulture) > 0);
    }

    [Fact]
    public async Task Anonymous_health_says_ok_and_names_no_route()
    {
        var (status, _, body) = await InvokeAsync(_h.Services, request => Task.FromResult(_h.Create<HealthFunction>().Run(request)));

        Assert.Equal(200, status);
        Assert.Equal("ok", body.GetProperty("status").GetString());
        Assert.False(body.TryGetProperty("routes", out _));
    }

    [Fact]
    public async Task Health_details_behind_the_function_key_list_the_routes()
    {
        var (status, _, body) = await InvokeAsync(_h.Services, request => Task.FromResult(_h.Create<HealthFunction>().Details(request)));

        Assert.Equal(200, status);
        Assert.Equal("ok", body.GetProperty("status").GetString());
        Assert.Equal(["delayed", "orders"], body.GetProperty("routes").EnumerateArray().Select(r => r.GetString()));
    }
}
