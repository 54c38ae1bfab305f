using System.Text.Json;
using Bridge.Testing;

namespace Bridge.Functions.Tests;

/// <summary>The functions.metadata the Worker SDK generated for the app, as the Functions host will read it.</summary>
public sealed class FunctionsMetadataTests
{
    private static string OutputDir =>
        Path.Combine(RepositoryPaths.Root, "src", "Bridge.Functions", "bin", AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal) ? "Release" : "Debug", "net10.0");

    private static JsonElement Function(string name)
    {
        var path = Path.Combine(OutputDir, "functions.metadata");
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
        // A flat setting name: binding expressions are resolved by the scale controller too (see the function).
        Assert.Equal("%BridgeServiceBusQueue%", trigger.GetProperty("queueName").GetString());
        Assert.Matches("^[A-Za-z0-9_]+$", Functions.ServiceBusForwardFunction.QueueSetting);
        Assert.Equal("BridgeServiceBus", trigger.GetProperty("connection").GetString());
        Assert.False(trigger.GetProperty("autoCompleteMessages").GetBoolean()); // the function settles messages itself
        // Batched, in both builds: the Worker SDK writes the attribute's IsBatched as the binding's cardinality, and
        // for an array of ServiceBusReceivedMessage (neither string nor binary) it writes no data type.
        Assert.Equal("Many", trigger.GetProperty("cardinality").GetString());
        Assert.False(trigger.TryGetProperty("dataType", out _));
        Assert.False(trigger.TryGetProperty("isBatched", out _));
    }

    [Fact]
    public void The_hand_back_function_has_a_service_bus_trigger_on_the_hand_back_queue_setting_and_the_same_connection()
    {
        var trigger = Trigger(Function("ForwardHandedBackServiceBusMessage"));

        Assert.Equal("serviceBusTrigger", trigger.GetProperty("type").GetString());
        Assert.Equal("In", trigger.GetProperty("direction").GetString());
        // The setting the runner reads too, flat for the scale controller; infra/azure always sets it. Unset, the host
        // disables this function alone (an unresolved %setting% fails only its indexing).
        Assert.Equal("%BridgeServiceBusHandBackQueue%", trigger.GetProperty("queueName").GetString());
        Assert.Equal(Bridge.Core.ServiceBusConnection.HandBackQueueSetting, Functions.ServiceBusHandBackFunction.QueueSetting);
        Assert.Matches("^[A-Za-z0-9_]+$", Functions.ServiceBusHandBackFunction.QueueSetting);
        Assert.Equal("BridgeServiceBus", trigger.GetProperty("connection").GetString());
        Assert.False(trigger.GetProperty("autoCompleteMessages").GetBoolean()); // settles each copy itself, as the intake does
        Assert.Equal("Many", trigger.GetProperty("cardinality").GetString());
        Assert.False(trigger.TryGetProperty("dataType", out _));
    }

    [Fact]
    public void The_two_service_bus_functions_take_different_settings_so_neither_receives_the_other_s_entity()
    {
        var queues = new[] { "ForwardServiceBusMessage", "ForwardHandedBackServiceBusMessage" }
            .Select(name => Trigger(Function(name)).GetProperty("queueName").GetString())
            .ToList();
        Assert.Equal(2, queues.Distinct(StringComparer.OrdinalIgnoreCase).Count());
    }

    /// <summary>
    /// The build the workflow deploys (-p:UseOfficialServiceBusExtension=true) must make the Functions host install
    /// its Service Bus extension; the default build must say it does not (its stand-ins can't run under the host).
    /// </summary>
    [Fact]
    public void The_service_bus_extension_is_installed_exactly_in_the_official_build()
    {
        var functionsAssembly = typeof(Functions.ServiceBusForwardFunction).Assembly.GetReferencedAssemblies().Select(a => a.Name).ToList();
        var extensionEntries = Directory.GetFiles(OutputDir, "extensions.json", SearchOption.AllDirectories)
            .SelectMany(file =>
            {
                using var document = JsonDocument.Parse(File.ReadAllText(file));
                return document.RootElement.TryGetProperty("extensions", out var list)
                    ? list.EnumerateArray().Select(e => e.GetProperty("typeName").GetString() ?? string.Empty).ToList()
                    : [];
            })
            .ToList();
#if OFFICIAL_SERVICEBUS_EXTENSION
        Assert.Contains("Microsoft.Azure.Functions.Worker.Extensions.ServiceBus", functionsAssembly);
        Assert.Contains(extensionEntries, t => t.Contains("ServiceBus", StringComparison.Ordinal));
#else
        Assert.DoesNotContain("Microsoft.Azure.Functions.Worker.Extensions.ServiceBus", functionsAssembly);
        Assert.DoesNotContain(extensionEntries, t => t.Contains("ServiceBus", StringComparison.Ordinal));
#endif
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
    public void The_queue_check_needs_the_host_master_key()
    {
        var trigger = Trigger(Function("CheckQueues"));
        Assert.Equal("Admin", trigger.GetProperty("authLevel").GetString());
        Assert.Equal(["get"], trigger.GetProperty("methods").EnumerateArray().Select(m => m.GetString()));
        Assert.Equal("checks/queues", trigger.GetProperty("route").GetString());
    }

    [Fact]
    public void Health_is_an_anonymous_get()
    {
        var trigger = Trigger(Function("Health"));
        Assert.Equal("Anonymous", trigger.GetProperty("authLevel").GetString());
        Assert.Equal("health", trigger.GetProperty("route").GetString());
    }

    [Fact]
    public void Health_details_need_a_function_key()
    {
        var trigger = Trigger(Function("HealthDetails"));
        Assert.Equal("Function", trigger.GetProperty("authLevel").GetString());
        Assert.Equal("health/details", trigger.GetProperty("route").GetString());
    }

    [Fact]
    public void The_root_host_json_is_deployed_with_the_app_and_asks_for_manual_settlement()
    {
        var deployed = Path.Combine(OutputDir, "host.json");
        Assert.Equal(File.ReadAllText(Path.Combine(RepositoryPaths.Root, "host.json")), File.ReadAllText(deployed));
        using var host = JsonDocument.Parse(File.ReadAllText(deployed));
        Assert.False(host.RootElement.GetProperty("extensions").GetProperty("serviceBus").GetProperty("autoCompleteMessages").GetBoolean());
        Assert.Equal(100, host.RootElement.GetProperty("extensions").GetProperty("serviceBus").GetProperty("maxMessageBatchSize").GetInt32()); // one BatchCreateTasks call
        Assert.Equal("api", host.RootElement.GetProperty("extensions").GetProperty("http").GetProperty("routePrefix").GetString());
    }
}
