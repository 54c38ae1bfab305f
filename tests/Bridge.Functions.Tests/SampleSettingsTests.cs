using System.Text.Json;
using Bridge.CloudTasks;
using Bridge.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Bridge.Functions.Tests;

/// <summary>
/// The settings files a new user copies, loaded as they are: local.settings.sample.json (the deployment's template too)
/// and local.settings.emulators.json (<c>func start</c> against the runner's embedded emulators). Each must pass the
/// app's start-up validation.
/// </summary>
public sealed class SampleSettingsTests
{
    [Fact]
    public void The_sample_local_settings_configure_a_valid_app()
    {
        var (names, configuration, services) = Load("local.settings.sample.json");
        using var _ = services;

        services.GetRequiredService<IStartupValidator>().Validate();

        Assert.Equal("orders-in", configuration[Functions.ServiceBusForwardFunction.QueueSetting]);
        Assert.Equal("bridge-handback", configuration[Functions.ServiceBusHandBackFunction.QueueSetting]); // as infra/azure sets it
        Assert.Equal([("X-Api-Version", "2")], services.GetRequiredService<IOptions<Bridge.Core.Routing.BridgeOptions>>().Value.Routes["orders"].Headers.Select(h => (h.Name, h.Value)));

        // Every name is one Linux app settings accept (letters, digits, '.', '_'), so the sample deploys as it is.
        Assert.All(names, name => Assert.Matches("^[A-Za-z0-9._]+$", name));
        Assert.Equal("orders-in", configuration["Bridge:Routes:orders:ServiceBusEntity"]);
    }

    [Fact]
    public void The_emulator_local_settings_configure_a_valid_app_against_the_runners_embedded_endpoints()
    {
        var (_, configuration, services) = Load("local.settings.emulators.json");
        using var __ = services;

        services.GetRequiredService<IStartupValidator>().Validate();

        // Through configuration: the client set up by DI ignores CLOUD_TASKS_EMULATOR_HOST (as GAX does), so a file that
        // named only the variable would send func start's tasks to production.
        Assert.Equal("127.0.0.1:8123", services.GetRequiredService<IOptions<CloudTasksClientOptions>>().Value.EmulatorHost);
        Assert.Equal("demo-in", configuration[Functions.ServiceBusForwardFunction.QueueSetting]);
        Assert.Equal("demo-in", configuration["Bridge:Routes:demo:ServiceBusEntity"]);
        // The runner's embedded Service Bus creates this queue (ServerOptions.DemoHandBackQueue), so the hand-back
        // function starts under func start instead of being disabled for an unresolved setting.
        Assert.Equal("bridge-handback", configuration[Functions.ServiceBusHandBackFunction.QueueSetting]);
        Assert.Equal(
            "Endpoint=sb://localhost:5672;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;",
            configuration["BridgeServiceBus"]);
    }

    private static (List<string> Names, IConfiguration Configuration, ServiceProvider Services) Load(string file)
    {
        using var settings = JsonDocument.Parse(File.ReadAllText(Path.Combine(RepositoryPaths.Root, file)));
        var values = settings.RootElement.GetProperty("Values").EnumerateObject()
            .ToDictionary(p => p.Name.Replace("__", ":", StringComparison.Ordinal), p => (string?)p.Value.GetString());
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(values).Build();
        var services = new ServiceCollection().AddLogging().AddBridgeFunctions(configuration).BuildServiceProvider();
        return ([.. settings.RootElement.GetProperty("Values").EnumerateObject().Select(p => p.Name)], configuration, services);
    }
}
