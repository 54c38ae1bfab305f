using System.Text.Json;
using Bridge.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Bridge.Functions.Tests;

/// <summary>local.settings.sample.json is what a new user copies: it must pass the app's start-up validation.</summary>
public sealed class SampleSettingsTests
{
    [Fact]
    public void The_sample_local_settings_configure_a_valid_app()
    {
        using var sample = JsonDocument.Parse(File.ReadAllText(Path.Combine(RepositoryPaths.Root, "local.settings.sample.json")));
        var values = sample.RootElement.GetProperty("Values").EnumerateObject()
            .ToDictionary(p => p.Name.Replace("__", ":", StringComparison.Ordinal), p => (string?)p.Value.GetString());
        values.Remove("CLOUD_TASKS_EMULATOR_HOST");
        values["Bridge:CloudTasks:EmulatorHost"] = "127.0.0.1:8123";
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(values).Build();
        using var services = new ServiceCollection().AddLogging().AddBridgeFunctions(configuration).BuildServiceProvider();

        services.GetRequiredService<IStartupValidator>().Validate();

        Assert.Equal("orders-in", configuration[Functions.ServiceBusForwardFunction.QueueSetting]);
        Assert.Equal([("X-Api-Version", "2")], services.GetRequiredService<IOptions<Bridge.Core.Routing.BridgeOptions>>().Value.Routes["orders"].Headers.Select(h => (h.Name, h.Value)));

        // Every name is one Linux app settings accept (letters, digits, '.', '_'), so the sample deploys as it is.
        Assert.All(sample.RootElement.GetProperty("Values").EnumerateObject(), p => Assert.Matches("^[A-Za-z0-9._]+$", p.Name));
        Assert.Equal("orders-in", configuration["Bridge:Routes:orders:ServiceBusEntity"]);
    }
}
