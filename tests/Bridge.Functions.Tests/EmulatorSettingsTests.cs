using System.Text.Json;
using Bridge.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Bridge.Functions.Tests;

/// <summary>
/// local.settings.emulators.json points <c>func start</c> at the runner's embedded emulators (Service Bus on 5672,
/// Cloud Tasks on 8123): it must pass the app's start-up validation and name what the runner hosts.
/// </summary>
public sealed class EmulatorSettingsTests
{
    [Fact]
    public void The_emulator_local_settings_configure_a_valid_app_against_the_runners_embedded_endpoints()
    {
        using var sample = JsonDocument.Parse(File.ReadAllText(Path.Combine(RepositoryPaths.Root, "local.settings.emulators.json")));
        var values = sample.RootElement.GetProperty("Values").EnumerateObject()
            .ToDictionary(p => p.Name.Replace("__", ":", StringComparison.Ordinal), p => (string?)p.Value.GetString());
        values.Remove("CLOUD_TASKS_EMULATOR_HOST");
        values["Bridge:CloudTasks:EmulatorHost"] = "127.0.0.1:8123";
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(values).Build();
        using var services = new ServiceCollection().AddLogging().AddBridgeFunctions(configuration).BuildServiceProvider();

        services.GetRequiredService<IStartupValidator>().Validate();

        Assert.Equal("demo-in", configuration[Functions.ServiceBusForwardFunction.QueueSetting]);
        Assert.Equal("demo-in", configuration["Bridge:Routes:demo:ServiceBusEntity"]);
        Assert.Equal(
            "Endpoint=sb://localhost:5672;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;",
            configuration["BridgeServiceBus"]);
    }
}
