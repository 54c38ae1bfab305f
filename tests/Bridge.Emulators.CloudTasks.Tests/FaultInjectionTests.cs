using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Bridge.CloudTasks;
using Bridge.CloudTasks.V2Beta3;
using Bridge.Testing;
using Grpc.Core;
using Microsoft.Extensions.Time.Testing;
using Task = System.Threading.Tasks.Task;

namespace Bridge.Emulators.CloudTasks.Tests;

/// <summary>Injected failures and outages, through the library API and the admin endpoint, seen by real clients over gRPC and REST.</summary>
public sealed class FaultInjectionTests : IAsyncLifetime
{
    private static readonly CallSettings Once = CallSettings.FromRetry(RetrySettings.None);

    private readonly FakeTimeProvider _time = new(TimeProvider.System.GetUtcNow());
    private EmulatorHost _host = null!;
    private HttpClient _http = null!;
    private QueueName _queue = null!;

    public async Task InitializeAsync()
    {
        _host = await EmulatorHost.StartAsync(time: _time);
        _http = new HttpClient { BaseAddress = _host.HttpAddress };
        _queue = await _host.CreateQueueAsync();
        await _host.Client.PauseQueueAsync(_queue); // creating a queue ignores its state, as the service does
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _host.DisposeAsync();
    }

    private EmulatorFaults Faults => _host.Emulator.Faults;

    private Task<Bridge.CloudTasks.V2Beta3.Task> CreateTaskAsync(string id) => _host.Client.CreateTaskAsync(
        new CreateTaskRequest { Parent = _queue.ToString(), Task = new Bridge.CloudTasks.V2Beta3.Task { Name = _queue.Task(id).ToString(), HttpRequest = new HttpRequest { Url = "http://127.0.0.1:9/x" } } },
        Once);

    [Fact]
    public async Task A_counted_fault_fails_only_the_chosen_rpc_that_many_times()
    {
        Faults.Fail(StatusCode.Unavailable, ["CreateTask"], count: 2);

        var first = await Assert.ThrowsAsync<CloudTasksException>(() => CreateTaskAsync("a"));
        Assert.Equal(CloudTasksFailureReason.Unavailable, first.Reason);
        Assert.Equal(_queue.ToString(), (await _host.Client.GetQueueAsync(new GetQueueRequest { Name = _queue.ToString() }, Once)).Name); // other RPCs unaffected
        await Assert.ThrowsAsync<CloudTasksException>(() => CreateTaskAsync("a"));

        Assert.Equal(_queue.Task("a").ToString(), (await CreateTaskAsync("a")).Name);
        Assert.Empty(Faults.Active);
    }

    [Fact]
    public async Task A_timed_fault_ends_when_its_duration_has_passed()
    {
        Faults.Fail(StatusCode.PermissionDenied, ["CreateTask"], duration: TimeSpan.FromSeconds(30), message: "IAM still propagating");

        var error = await Assert.ThrowsAsync<CloudTasksException>(() => CreateTaskAsync("b"));
        Assert.Equal(CloudTasksFailureReason.PermissionDenied, error.Reason);
        Assert.Contains("IAM still propagating", error.Message, StringComparison.Ordinal);

        _time.Advance(TimeSpan.FromSeconds(29));
        await Assert.ThrowsAsync<CloudTasksException>(() => CreateTaskAsync("b"));

        _time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(_queue.Task("b").ToString(), (await CreateTaskAsync("b")).Name);
    }

    [Fact]
    public async Task Over_rest_a_fault_answers_the_mapped_http_status_in_googles_envelope_and_a_full_name_picks_one_version()
    {
        Faults.Fail(StatusCode.ResourceExhausted, ["google.cloud.tasks.v2beta3.CloudTasks/GetQueue"]);

        var v2beta3 = await _http.GetAsync($"/v2beta3/{_queue}");
        Assert.Equal(HttpStatusCode.TooManyRequests, v2beta3.StatusCode);
        using var envelope = JsonDocument.Parse(await v2beta3.Content.ReadAsStringAsync());
        Assert.Equal(429, envelope.RootElement.GetProperty("error").GetProperty("code").GetInt32());
        Assert.Equal("RESOURCE_EXHAUSTED", envelope.RootElement.GetProperty("error").GetProperty("status").GetString());

        Assert.Equal(HttpStatusCode.OK, (await _http.GetAsync($"/v2/{_queue}")).StatusCode);
    }

    [Fact]
    public async Task The_admin_endpoint_injects_lists_and_removes_faults()
    {
        var created = await _http.PostAsJsonAsync("/admin/faults", new { methods = new[] { "GetQueue" }, status = "UNAVAILABLE", count = 1 });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        using var fault = JsonDocument.Parse(await created.Content.ReadAsStringAsync());
        Assert.Equal("UNAVAILABLE", fault.RootElement.GetProperty("status").GetString());
        Assert.Equal(1, fault.RootElement.GetProperty("remainingCount").GetInt32());

        var error = await Assert.ThrowsAsync<CloudTasksException>(() => _host.Client.GetQueueAsync(new GetQueueRequest { Name = _queue.ToString() }, Once));
        Assert.Equal(CloudTasksFailureReason.Unavailable, error.Reason);
        await _host.Client.GetQueueAsync(new GetQueueRequest { Name = _queue.ToString() }, Once);

        var lasting = await _http.PostAsJsonAsync("/admin/faults", new { status = 7 });
        using var lastingJson = JsonDocument.Parse(await lasting.Content.ReadAsStringAsync());
        var id = lastingJson.RootElement.GetProperty("id").GetString();
        using (var listed = JsonDocument.Parse(await _http.GetStringAsync("/admin/faults")))
        {
            var only = Assert.Single(listed.RootElement.GetProperty("faults").EnumerateArray());
            Assert.Equal("PERMISSION_DENIED", only.GetProperty("status").GetString());
        }

        Assert.Equal(CloudTasksFailureReason.PermissionDenied, (await Assert.ThrowsAsync<CloudTasksException>(() => CreateTaskAsync("c"))).Reason);
        Assert.Equal(HttpStatusCode.NoContent, (await _http.DeleteAsync($"/admin/faults/{id}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _http.DeleteAsync($"/admin/faults/{id}")).StatusCode);
        await CreateTaskAsync("c");
    }

    [Theory]
    [InlineData("{\"status\":\"OK\"}", "is not a failure")]
    [InlineData("{\"status\":\"BOGUS\"}", "'status' 'BOGUS'")]
    [InlineData("{}", "'status' is required")]
    [InlineData("{\"status\":\"UNAVAILABLE\",\"methods\":[\"CreateTaks\"]}", "methods entry 'CreateTaks'")]
    [InlineData("{\"status\":\"UNAVAILABLE\",\"durationSeconds\":-1}", "'durationSeconds' '-1'")]
    [InlineData("{\"status\":\"UNAVAILABLE\",\"count\":0}", "count '0'")]
    [InlineData("not json", "not valid JSON")]
    public async Task A_bad_fault_is_refused_with_400_naming_the_problem(string body, string expected)
    {
        var response = await _http.PostAsync("/admin/faults", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(expected, await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Empty(Faults.Active);
    }

    [Fact]
    public async Task An_outage_refuses_grpc_and_rest_but_not_admin_until_it_ends()
    {
        var started = await _http.PostAsJsonAsync("/admin/faults/unreachable", new { durationSeconds = 60 });
        Assert.Equal(HttpStatusCode.Created, started.StatusCode);

        var grpc = await Assert.ThrowsAsync<CloudTasksException>(() => _host.Client.GetQueueAsync(new GetQueueRequest { Name = _queue.ToString() }, Once));
        Assert.Equal(CloudTasksFailureReason.Unavailable, grpc.Reason);
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => _http.GetAsync($"/v2beta3/{_queue}"));
        Assert.Equal(HttpStatusCode.OK, (await _http.GetAsync("/health")).StatusCode);

        _time.Advance(TimeSpan.FromSeconds(61));
        Assert.Equal(_queue.ToString(), (await _host.Client.GetQueueAsync(new GetQueueRequest { Name = _queue.ToString() }, Once)).Name);

        Faults.MakeUnreachable(TimeSpan.FromMinutes(5));
        await Assert.ThrowsAsync<CloudTasksException>(() => CreateTaskAsync("d"));
        Assert.Equal(HttpStatusCode.NoContent, (await _http.DeleteAsync("/admin/faults")).StatusCode);
        await CreateTaskAsync("d");
    }

    [Fact]
    public async Task A_retrying_client_rides_out_a_short_outage()
    {
        using var client = new CloudTasksClientBuilder { EmulatorHost = _host.GrpcHostPort, EmulatorDetection = EmulatorDetection.None }.Build();
        Faults.Fail(StatusCode.Unavailable, count: 3);

        var queue = await client.GetQueueAsync(_queue);

        Assert.Equal(_queue.ToString(), queue.Name);
    }
}
