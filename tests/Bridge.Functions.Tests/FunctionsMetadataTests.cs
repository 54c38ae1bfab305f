using System.Text.Json;
using Bridge.Testing;

namespace Bridge.Functions.Tests;

/// <summary>The functions.metadata the Worker SDK generated for the app, as the Functions host will read it.</summary>
public sealed class FunctionsMetadataTests
{
    private static JsonElement Function(string name)
    {
        var configuration = AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal) ? "Release" : "Debug";
        var path = Path.Combine(RepositoryPaths.Root, "src", "Bridge.Functions", "bin", configuration, "net10.0", "functions.metadata");
        Assert.True(File.Exists(path), $"{path} was not generated");
        using var document = JsonDocument.Parse(File.ReadAllText(path));
        return document.RootElement.EnumerateArray().Single(f => f.GetProperty("name").GetString() == name).Clone();
    }

    private static JsonElement Trigger(JsonElement function) =>
        function.GetProperty("bindings").EnumerateArray().Single(b => b.GetProperty("type").GetString()!.EndsWith("Trigger", StringComparison.Ordinal));

    [Fact]
    public void The_service_bus_function_has_a_service_bus_trigger_on_the_configured_queue_and_connection()
    {
        var trigger = Trigger(Function("ForwardServiceBusMessage"));

        Assert.Equal("serviceBusTrigger", trigger.GetProperty("type").GetString());
        Assert.Equal("In", trigger.GetProperty("direction").GetString());
        Assert.Equal("%Bridge:ServiceBus:Queue%", trigger.GetProperty("queueName").GetString());
        Assert.Equal("BridgeServiceBus", trigger.GetProperty("connection").GetString());
        Assert.False(trigger.GetProperty("autoCompleteMessages").GetBoolean()); // the function settles messages itself
        // One message per invocation: "One", or absent (the host's default) in the build without the official package.
        Assert.True(!trigger.TryGetProperty("cardinality", out var cardinality) || cardinality.GetString() == "One");
    }

    [Fact]
    public void Http_intake_is_a_function_key_post_on_events_route()
    {
        var trigger = Trigger(Function("ForwardHttpEvent"));
        Assert.Equal("httpTrigger", trigger.GetProperty("type").GetString());
        Assert.Equal("Function", trigger.GetProperty("authLevel").GetString());
        Assert.Equal(["post"], trigger.GetProperty("methods").EnumerateArray().Select(m => m.GetString()));
        Assert.Equal("events/{route}", trigger.GetProperty("route").GetString());
    }

    [Fact]
    public void The_callback_is_an_anonymous_post_because_the_oidc_token_is_the_authentication()
    {
        var trigger = Trigger(Function("TaskCallback"));
        Assert.Equal("Anonymous", trigger.GetProperty("authLevel").GetString());
        Assert.Equal(["post"], trigger.GetProperty("methods").EnumerateArray().Select(m => m.GetString()));
        Assert.Equal("tasks/callback", trigger.GetProperty("route").GetString());
    }

    [Fact]
    public void Health_is_an_anonymous_get()
    {
        var trigger = Trigger(Function("Health"));
        Assert.Equal("Anonymous", trigger.GetProperty("authLevel").GetString());
        Assert.Equal("health", trigger.GetProperty("route").GetString());
    }

    [Fact]
    public void The_root_host_json_is_deployed_with_the_app_and_asks_for_manual_settlement()
    {
        var configuration = AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal) ? "Release" : "Debug";
        var deployed = Path.Combine(RepositoryPaths.Root, "src", "Bridge.Functions", "bin", configuration, "net10.0", "host.json");
        Assert.Equal(File.ReadAllText(Path.Combine(RepositoryPaths.Root, "host.json")), File.ReadAllText(deployed));
        using var host = JsonDocument.Parse(File.ReadAllText(deployed));
        Assert.False(host.RootElement.GetProperty("extensions").GetProperty("serviceBus").GetProperty("autoCompleteMessages").GetBoolean());
        Assert.Equal("api", host.RootElement.GetProperty("extensions").GetProperty("http").GetProperty("routePrefix").GetString());
    }
}
