using System.Text.Json;
using Bridge.CloudTasks.V2Beta3;
using Bridge.Emulators.CloudTasks.Internal;
using Bridge.Testing;
using Google.Protobuf;
using Task = System.Threading.Tasks.Task;
using TaskMessage = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.Emulators.CloudTasks.Tests;

/// <summary>
/// The request a dispatch sends, header by header (names and values exactly, nothing more), with and without the
/// task's own headers, on a retry, and with an OIDC token: the request is built with fewer allocations, and must not
/// change on the wire.
/// </summary>
public sealed class DispatchRequestTests : EmulatorWithTargetTests
{
    private const string Invoker = "invoker@emulator-project.iam.gserviceaccount.com";

    /// <summary>The received headers but those HTTP itself adds (Host, and Content-Length with a body).</summary>
    private static Dictionary<string, string> SentHeaders(ReceivedRequest request) =>
        request.Headers.Where(h => h.Key is not ("Host" or "Content-Length")).ToDictionary(h => h.Key, h => h.Value, StringComparer.OrdinalIgnoreCase);

    private static Dictionary<string, string> CloudTasksHeaders(string queueId, string taskId, TaskMessage created, string retryCount = "0", string executionCount = "0") => new(StringComparer.OrdinalIgnoreCase)
    {
        ["User-Agent"] = "Google-Cloud-Tasks",
        ["X-CloudTasks-QueueName"] = queueId,
        ["X-CloudTasks-TaskName"] = taskId,
        ["X-CloudTasks-TaskRetryCount"] = retryCount,
        ["X-CloudTasks-TaskExecutionCount"] = executionCount,
        ["X-CloudTasks-TaskETA"] = Dispatcher.FormatEta(created.ScheduleTime.ToDateTimeOffset()),
    };

    [Fact]
    public async Task A_task_without_headers_or_body_gets_exactly_the_cloud_tasks_headers()
    {
        var queue = await Host.CreateQueueAsync();
        var created = await Client.CreateTaskAsync(queue, new TaskMessage { Name = queue.Task("plain-1").ToString(), HttpRequest = new HttpRequest { Url = Target.Url("/plain").ToString() } });

        var received = Assert.Single(await Target.WaitForRequestsAsync(1));

        Assert.Equal("POST", received.Method);
        Assert.Empty(received.Body);
        Assert.Equal(CloudTasksHeaders(queue.QueueId, "plain-1", created), SentHeaders(received));
    }

    [Fact]
    public async Task A_tasks_own_headers_are_sent_beside_the_cloud_tasks_headers_and_reserved_ones_are_dropped()
    {
        var queue = await Host.CreateQueueAsync();
        var created = await Client.CreateTaskAsync(queue, new TaskMessage
        {
            Name = queue.Task("own-1").ToString(),
            HttpRequest = new HttpRequest
            {
                Url = Target.Url("/own").ToString(),
                Body = ByteString.CopyFromUtf8("{}"),
                Headers = { ["Content-Type"] = "application/json", ["X-Custom"] = "a b", ["X-CloudTasks-TaskName"] = "forged", ["X-Google-Thing"] = "dropped" },
            },
        });

        var received = Assert.Single(await Target.WaitForRequestsAsync(1));

        var expected = CloudTasksHeaders(queue.QueueId, "own-1", created);
        expected["Content-Type"] = "application/json";
        expected["X-Custom"] = "a b";
        Assert.Equal(expected, SentHeaders(received));
        Assert.Equal("{}", received.Text);
    }

    [Fact]
    public async Task A_retry_adds_the_previous_response_and_an_empty_retry_reason()
    {
        var queue = await Host.CreateQueueAsync();
        Target.Respond = (_, n) => new TargetResponse(n == 0 ? 404 : 200);
        await Client.CreateTaskAsync(queue, new TaskMessage { Name = queue.Task("retried-1").ToString(), HttpRequest = new HttpRequest { Url = Target.Url("/retried").ToString() } });

        var requests = await Target.WaitForRequestsAsync(2);
        await Host.Emulator.WaitForIdleAsync(queue.ToString());

        var retry = SentHeaders(requests[1]);
        Assert.Equal(
            ["User-Agent", "X-CloudTasks-QueueName", "X-CloudTasks-TaskETA", "X-CloudTasks-TaskExecutionCount", "X-CloudTasks-TaskName", "X-CloudTasks-TaskPreviousResponse", "X-CloudTasks-TaskRetryCount", "X-CloudTasks-TaskRetryReason"],
            retry.Keys.Order(StringComparer.OrdinalIgnoreCase));
        Assert.Equal("1", retry["X-CloudTasks-TaskRetryCount"]);
        Assert.Equal("1", retry["X-CloudTasks-TaskExecutionCount"]);
        Assert.Equal("404", retry["X-CloudTasks-TaskPreviousResponse"]);
        Assert.Equal(string.Empty, retry["X-CloudTasks-TaskRetryReason"]);
        Assert.Equal("retried-1", retry["X-CloudTasks-TaskName"]);
    }

    [Fact]
    public async Task An_oidc_task_gets_a_bearer_token_with_exactly_the_claims_google_puts_in_one_reused_for_the_same_audience()
    {
        var queue = await Host.CreateQueueAsync();
        const string audience = "https://bridge.example.com/api/tasks/callback";
        for (var i = 0; i < 2; i++)
        {
            await Client.CreateTaskAsync(queue, new TaskMessage
            {
                Name = queue.Task($"oidc-{i}").ToString(),
                HttpRequest = new HttpRequest { Url = Target.Url("/oidc").ToString(), Headers = { ["Authorization"] = "Bearer the-tasks-own" }, OidcToken = new OidcToken { ServiceAccountEmail = Invoker, Audience = audience } },
            });
            await Target.WaitForRequestsAsync(i + 1); // one after the other: two attempts at once may both sign
        }

        var requests = await Target.WaitForRequestsAsync(2);

        var authorizations = requests.Select(r => r.Header("Authorization")!).ToList();
        Assert.All(authorizations, a => Assert.StartsWith("Bearer ey", a, StringComparison.Ordinal));
        Assert.Equal(authorizations[0], authorizations[1]); // well within its lifetime: the same token, as Google's token service hands out
        var parts = authorizations[0]["Bearer ".Length..].Split('.');
        Assert.Equal(3, parts.Length);
        using var header = JsonDocument.Parse(Base64UrlDecode(parts[0]));
        using var claims = JsonDocument.Parse(Base64UrlDecode(parts[1]));
        Assert.Equal(["alg", "kid", "typ"], header.RootElement.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal));
        Assert.Equal("RS256", header.RootElement.GetProperty("alg").GetString());
        Assert.Equal(["aud", "azp", "email", "email_verified", "exp", "iat", "iss", "sub"], claims.RootElement.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal));
        Assert.Equal(audience, claims.RootElement.GetProperty("aud").GetString());
        Assert.Equal(Invoker, claims.RootElement.GetProperty("email").GetString());
        Assert.True(claims.RootElement.GetProperty("email_verified").GetBoolean());
        Assert.Equal(Host.Emulator.Issuer, claims.RootElement.GetProperty("iss").GetString());
        Assert.Equal($"http://localhost:{Host.HttpAddress.Port}", claims.RootElement.GetProperty("iss").GetString());
        Assert.Equal(OidcIssuer.SubjectFor(Invoker), claims.RootElement.GetProperty("sub").GetString());
        Assert.Equal(claims.RootElement.GetProperty("sub").GetString(), claims.RootElement.GetProperty("azp").GetString());
        Assert.Equal(3600, claims.RootElement.GetProperty("exp").GetInt64() - claims.RootElement.GetProperty("iat").GetInt64());
    }

    [Fact]
    public void The_default_issuer_follows_the_bound_address_and_a_configured_one_wins()
    {
        using var state = new EmulatorState(new InMemoryStore(), new EmulatorOptions(), TimeProvider.System);
        var emulator = new CloudTasksEmulator(state, new EmulatorOptions { HttpPort = 0 });

        Assert.Equal("http://localhost:0", emulator.Issuer); // read before the port is bound: made once for this address
        emulator.UseHttpAddress(new Uri("http://127.0.0.1:4321"));
        Assert.Equal("http://localhost:4321", emulator.Issuer);
        Assert.Same(emulator.Issuer, emulator.Issuer); // not formatted again on every read
        emulator.UseHttpAddress(new Uri("http://127.0.0.1:4322"));
        Assert.Equal("http://localhost:4322", emulator.Issuer);
        Assert.Equal("https://issuer.example.com", new CloudTasksEmulator(state, new EmulatorOptions { Issuer = "https://issuer.example.com/" }).Issuer);
    }

    private static byte[] Base64UrlDecode(string text) => Convert.FromBase64String(text.Replace('-', '+').Replace('_', '/') + new string('=', (4 - (text.Length % 4)) % 4));
}
