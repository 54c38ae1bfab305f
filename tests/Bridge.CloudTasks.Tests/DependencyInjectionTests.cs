using Bridge.CloudTasks.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Bridge.CloudTasks.Tests;

public sealed class DependencyInjectionTests
{
    private static ServiceProvider Build(Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        return new ServiceCollection().AddCloudTasksClient(configuration.GetSection(CloudTasksClientOptions.SectionName)).BuildServiceProvider();
    }

    [Fact]
    public async Task A_client_bound_to_an_emulator_host_from_configuration_talks_to_it()
    {
        await using var server = await RecordingCloudTasksServer.StartAsync();
        // A configured timeout far from the 20 s default, and long enough that a first call on a busy machine (JIT,
        // HTTP/2 set-up) can't run out of it: 5 s did, and the test failed for the machine, not the code.
        await using var services = Build(new() { ["Bridge:CloudTasks:EmulatorHost"] = server.HostPort, ["Bridge:CloudTasks:Timeout"] = "00:02:00" });

        var client = services.GetRequiredService<CloudTasksClient>();
        await client.GetQueueAsync(new QueueName("p", "l", "q"));

        Assert.Same(client, services.GetRequiredService<CloudTasksClient>());
        var call = server.Single("GetQueue");
        Assert.False(call.Headers.ContainsKey("authorization"));
        Assert.InRange(call.Deadline - TimeProvider.System.GetUtcNow().UtcDateTime, TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(2) + TimeSpan.FromSeconds(1));
    }

    [Theory]
    [InlineData("Bridge:CloudTasks:EmulatorHost", "localhost", "Bridge:CloudTasks:EmulatorHost 'localhost' must be 'host:port'")]
    [InlineData("Bridge:CloudTasks:Endpoint", "http://cloudtasks.example.com", "Bridge:CloudTasks:Endpoint 'http://cloudtasks.example.com' must be")]
    [InlineData("Bridge:CloudTasks:Timeout", "00:30:00", "Bridge:CloudTasks:Timeout '00:30:00' must be")]
    [InlineData("Bridge:CloudTasks:Credential", "File", "Bridge:CloudTasks:CredentialsPath is required")]
    [InlineData("Bridge:CloudTasks:Credential", "AzureWorkloadIdentity", "Bridge:CloudTasks:WorkloadIdentity:Audience is required")]
    [InlineData("Bridge:CloudTasks:Credential", "AzureWorkloadIdentity", "Bridge:CloudTasks:WorkloadIdentity:AzureTokenAudience is required")]
    public void Bad_configuration_fails_at_start_up_naming_the_key(string key, string value, string expected)
    {
        using var services = Build(new() { [key] = value });

        var error = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IStartupValidator>().Validate());

        Assert.Contains(error.Failures, f => f.StartsWith(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void Workload_identity_configuration_is_accepted_when_complete()
    {
        using var services = Build(new()
        {
            ["Bridge:CloudTasks:Credential"] = "AzureWorkloadIdentity",
            ["Bridge:CloudTasks:WorkloadIdentity:Audience"] = "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/a/providers/b",
            ["Bridge:CloudTasks:WorkloadIdentity:ManagedIdentityClientId"] = "00000000-0000-0000-0000-000000000001",
            ["Bridge:CloudTasks:WorkloadIdentity:AzureTokenAudience"] = "api://bridge-gcp-federation",
            ["Bridge:CloudTasks:WorkloadIdentity:AzureTokenScope"] = "api://bridge-gcp-federation/.default",
        });

        services.GetRequiredService<IStartupValidator>().Validate();
        var options = services.GetRequiredService<IOptions<CloudTasksClientOptions>>().Value;
        Assert.Equal(CloudTasksCredentialSource.AzureWorkloadIdentity, options.Credential);
        Assert.Equal("api://bridge-gcp-federation", options.WorkloadIdentity.AzureTokenAudience);
        Assert.Equal("api://bridge-gcp-federation/.default", options.WorkloadIdentity.EffectiveAzureTokenScope);
        Assert.NotNull(services.GetRequiredService<CloudTasksClient>());
    }

    [Fact]
    public void Options_are_copied_so_later_changes_do_not_reach_the_client()
    {
        var original = new CloudTasksClientOptions { EmulatorHost = "localhost:1" };
        var copy = original.Clone();
        original.WorkloadIdentity.Audience = "changed";
        Assert.Empty(copy.WorkloadIdentity.Audience);
    }

    [Fact]
    public void Registration_does_not_replace_an_existing_client()
    {
        using var existing = new CloudTasksClientBuilder { EmulatorHost = "localhost:1", EmulatorDetection = EmulatorDetection.None }.Build();
        var services = new ServiceCollection().AddSingleton(existing).AddCloudTasksClient(configure: o => o.EmulatorHost = "localhost:2");
        using var provider = services.BuildServiceProvider();
        Assert.Same(existing, provider.GetRequiredService<CloudTasksClient>());
    }
}
