using Bridge.CloudTasks.Internal;
using Bridge.CloudTasks.Tests.Infrastructure;
using Bridge.CloudTasks.V2Beta3;
using Google.Apis.Auth.OAuth2;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Task = System.Threading.Tasks.Task;
using TaskMessage = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.CloudTasks.Tests;

/// <summary>
/// The client behaves as Google's generated .NET clients (GAX) do: the published retry policy per method, retries
/// until the deadline, the quota project header, no receive limit, and the emulator switch through DI.
/// </summary>
public sealed class GaxParityTests : IAsyncLifetime
{
    private static readonly QueueName Queue = new("p", "l", "q");

    private RecordingCloudTasksServer _server = null!;
    private readonly ObservedTimeProvider _time = new();

    public async Task InitializeAsync() => _server = await RecordingCloudTasksServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private CloudTasksClient CreateClient() =>
        new CloudTasksClientBuilder { EmulatorHost = _server.HostPort, EmulatorDetection = EmulatorDetection.None, TimeProvider = _time }.Build();

    [Fact]
    public void Idempotent_methods_follow_the_published_configuration_with_no_attempt_cap()
    {
        // googleapis google/cloud/tasks/v2beta3/cloudtasks_grpc_service_config.json: 20 s; 0.1 s ×1.3 to 10 s;
        // DEADLINE_EXCEEDED and UNAVAILABLE; UpdateCmekConfig and GetCmekConfig in the retried class.
        var s = CloudTasksSettings.GetDefault();
        var retried = new[]
        {
            s.ListQueuesSettings, s.GetQueueSettings, s.DeleteQueueSettings, s.GetIamPolicySettings, s.TestIamPermissionsSettings,
            s.ListTasksSettings, s.GetTaskSettings, s.DeleteTaskSettings, s.GetCmekConfigSettings, s.UpdateCmekConfigSettings, s.CreateNamedTaskSettings,
        };
        Assert.All(retried, c =>
        {
            Assert.Equal(TimeSpan.FromSeconds(20), c.Timeout);
            Assert.Equal(RetrySettings.UnlimitedAttempts, c.Retry!.MaxAttempts);
            Assert.Equal(TimeSpan.FromMilliseconds(100), c.Retry.InitialBackoff);
            Assert.Equal(TimeSpan.FromSeconds(10), c.Retry.MaxBackoff);
            Assert.Equal(1.3, c.Retry.BackoffMultiplier);
            Assert.Equal(new HashSet<StatusCode> { StatusCode.Unavailable, StatusCode.DeadlineExceeded }, c.Retry.RetryableStatusCodes);
            Assert.True(c.Retry.Jitter);
        });
    }

    [Fact]
    public async Task An_idempotent_call_retries_past_any_fixed_count_until_the_deadline()
    {
        using var client = CreateClient();
        _server.FailFirst(int.MaxValue, StatusCode.Unavailable);

        var call = client.GetQueueAsync(Queue);
        var delays = await _time.AdvanceThroughTimersAsync(call);
        var error = await Assert.ThrowsAsync<CloudTasksException>(() => call);

        Assert.Equal(CloudTasksFailureReason.Unavailable, error.Reason);
        Assert.Equal(delays.Count + 1, _server.Calls.Count);
        Assert.True(delays.Count > 10, $"expected retries until the 20 s deadline, saw {delays.Count}");

        // Each wait is jittered below its ceiling, and no retry starts past the deadline.
        var retry = RetrySettings.IdempotentDefault;
        Assert.All(delays.Select((d, i) => (d, i)), x => Assert.InRange(x.d, TimeSpan.Zero, retry.BackoffCeiling(x.i + 1)));
        Assert.True(delays.Aggregate(TimeSpan.Zero, (a, b) => a + b) < CloudTasksSettings.DefaultTimeout);
    }

    [Fact]
    public async Task A_named_create_task_is_retried_by_default_and_an_unnamed_one_is_not()
    {
        using var client = CreateClient();
        _server.FailFirst(7, StatusCode.Unavailable);

        var named = client.CreateTaskAsync(new CreateTaskRequest { Parent = Queue.ToString(), Task = new TaskMessage { Name = Queue.Task("t1").ToString() } });
        await _time.AdvanceThroughTimersAsync(named);

        Assert.Equal(Queue.Task("t1").ToString(), (await named).Name);
        Assert.Equal(8, _server.Calls.Count);

        _server.FailFirst(1, StatusCode.Unavailable);
        await Assert.ThrowsAsync<CloudTasksException>(() => client.CreateTaskAsync(Queue, new TaskMessage()));
        Assert.Equal(9, _server.Calls.Count);
    }

    [Fact]
    public async Task Update_cmek_config_is_retried_as_published_and_each_retry_is_counted_by_method_and_status()
    {
        var retries = 0;
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == CloudTasksTelemetry.SourceName && instrument.Name == "bridge.cloudtasks.client.retries")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            var t = tags.ToArray().ToDictionary(x => x.Key, x => x.Value);
            if (Equals(t["rpc.method"], "UpdateCmekConfig") && Equals(t["rpc.grpc.status_code"], (int)StatusCode.DeadlineExceeded))
            {
                Interlocked.Add(ref retries, (int)value);
            }
        });
        listener.Start();
        using var client = CreateClient();
        _server.FailFirst(2, StatusCode.DeadlineExceeded);

        var call = client.UpdateCmekConfigAsync(new UpdateCmekConfigRequest { CmekConfig = new CmekConfig { Name = "projects/p/locations/l/cmekConfig" } });
        await _time.AdvanceThroughTimersAsync(call);
        await call;

        Assert.Equal(3, _server.Calls.Count);
        Assert.Equal(2, retries);
    }

    [Fact]
    public async Task The_credentials_quota_project_is_sent_as_x_goog_user_project()
    {
        await using var tlsServer = await RecordingCloudTasksServer.StartAsync(tls: true);
        using var handler = tlsServer.CreateTrustingHandler();
        using var client = new CloudTasksClientBuilder
        {
            Endpoint = tlsServer.Address.ToString(),
            EmulatorDetection = EmulatorDetection.None,
            Credential = GoogleCredential.FromAccessToken("quota-test-token").CreateWithQuotaProject("billing-project"),
            HttpHandler = handler,
        }.Build();

        await client.GetQueueAsync(Queue);

        var call = tlsServer.Single("GetQueue");
        Assert.Equal("Bearer quota-test-token", call.Headers["authorization"]);
        Assert.Equal("billing-project", call.Headers["x-goog-user-project"]);
    }

    [Fact]
    public async Task Without_a_quota_project_no_x_goog_user_project_is_sent()
    {
        await using var tlsServer = await RecordingCloudTasksServer.StartAsync(tls: true);
        using var handler = tlsServer.CreateTrustingHandler();
        using var client = new CloudTasksClientBuilder
        {
            Endpoint = tlsServer.Address.ToString(),
            EmulatorDetection = EmulatorDetection.None,
            Credential = GoogleCredential.FromAccessToken("plain-token"),
            HttpHandler = handler,
        }.Build();

        await client.GetQueueAsync(Queue);

        Assert.False(tlsServer.Single("GetQueue").Headers.ContainsKey("x-goog-user-project"));
    }

    [Fact]
    public async Task A_response_larger_than_four_megabytes_is_received()
    {
        using var client = CreateClient();
        var body = ByteString.CopyFrom(new byte[5 * 1024 * 1024]);
        _server.Handler = (_, _, _) => new ListTasksResponse { Tasks = { new TaskMessage { Name = Queue.Task("big").ToString(), HttpRequest = new HttpRequest { Body = body } } } };

        var page = await client.ListTasks(new ListTasksRequest { Parent = Queue.ToString() }).ReadPageAsync(1);

        Assert.Equal(body.Length, page.Items.Single().HttpRequest.Body.Length);
    }

    [Fact]
    public void Through_di_the_emulator_variable_is_ignored_by_default()
    {
        Assert.Equal(EmulatorDetection.None, new CloudTasksClientOptions().EmulatorDetection);

        using var client = CloudTasksServiceCollectionExtensions.CreateClient(new CloudTasksClientOptions(), _time, EmulatorVariable("127.0.0.1:9"));

        Assert.Equal(new Uri(CloudTasksClient.DefaultEndpoint).Host, ((GrpcCloudTasksClient)client).Endpoint.Host);
    }

    [Fact]
    public void Through_di_an_opted_in_emulator_variable_is_used()
    {
        using var client = CloudTasksServiceCollectionExtensions.CreateClient(
            new CloudTasksClientOptions { EmulatorDetection = EmulatorDetection.EmulatorOrProduction }, _time, EmulatorVariable("127.0.0.1:9"));

        var endpoint = ((GrpcCloudTasksClient)client).Endpoint;
        Assert.Equal(("127.0.0.1", 9), (endpoint.Host, endpoint.Port));
    }

    [Fact]
    public void Workload_identity_plus_the_emulator_variable_is_an_error_naming_both()
    {
        var options = new CloudTasksClientOptions { EmulatorDetection = EmulatorDetection.EmulatorOrProduction, Credential = CloudTasksCredentialSource.AzureWorkloadIdentity };

        var error = Assert.Throws<InvalidOperationException>(() => CloudTasksServiceCollectionExtensions.CreateClient(options, _time, EmulatorVariable("127.0.0.1:9")));

        Assert.Contains(CloudTasksClient.EmulatorHostEnvironmentVariable + " '127.0.0.1:9'", error.Message, StringComparison.Ordinal);
        Assert.Contains("Bridge:CloudTasks:Credential 'AzureWorkloadIdentity'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_emulator_host_plus_a_credential_file_fails_at_start_up_naming_both()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Bridge:CloudTasks:EmulatorHost"] = "127.0.0.1:9",
            ["Bridge:CloudTasks:Credential"] = "File",
            ["Bridge:CloudTasks:CredentialsPath"] = "/secrets/key.json",
        }).Build();
        using var services = new ServiceCollection().AddCloudTasksClient(configuration.GetSection(CloudTasksClientOptions.SectionName)).BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IStartupValidator>().Validate());

        Assert.Contains(error.Failures, f => f.Contains("Bridge:CloudTasks:EmulatorHost '127.0.0.1:9'", StringComparison.Ordinal)
            && f.Contains("Bridge:CloudTasks:Credential 'File'", StringComparison.Ordinal));
    }

    private static Func<string, string?> EmulatorVariable(string value) =>
        name => name == CloudTasksClient.EmulatorHostEnvironmentVariable ? value : null;
}
