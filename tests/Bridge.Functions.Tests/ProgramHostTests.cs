using System.Reflection;
using Bridge.Testing;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Bridge.Functions.Tests;

/// <summary>The host Program builds (not a hand-assembled service graph): every function resolves from it.</summary>
public sealed class ProgramHostTests
{
    private static readonly Type[] FunctionClasses = typeof(BridgeFunctionsApp).Assembly.GetTypes()
        .Where(t => t.GetMethods().Any(m => m.GetCustomAttribute<FunctionAttribute>() is not null))
        .ToArray();

    private static string[] Settings(EmulatorHost emulator) =>
    [
        "--BridgeServiceBusQueue=orders-in",
        $"--Bridge:CloudTasks:EmulatorHost={emulator.GrpcHostPort}",
        "--Bridge:CloudTasks:EmulatorDetection=None",
        "--Bridge:Routes:orders:Queue=projects/p/locations/l/queues/orders",
        "--Bridge:Routes:orders:TargetUrl=https://worker.example.com/orders",
        "--Bridge:Callback:PublicUrl=https://bridge.example.com/api/tasks/callback",
        "--Bridge:Callback:AllowedServiceAccounts:0=invoker@p.iam.gserviceaccount.com",
    ];

    [Fact]
    public async Task Every_function_resolves_from_the_host_Program_builds_and_its_options_validate()
    {
        await using var emulator = await EmulatorHost.StartAsync();
        using var host = BridgeFunctionsApp.Build(Settings(emulator));

        host.Services.GetRequiredService<IStartupValidator>().Validate(); // what ValidateOnStart runs when the host starts
        Assert.Equal(6, FunctionClasses.Length); // intake (HTTP, Service Bus), the hand-back queue, callback, health, queue check
        foreach (var type in FunctionClasses)
        {
            Assert.NotNull(ActivatorUtilities.CreateInstance(host.Services, type));
        }
    }

    [Fact]
    public async Task A_host_without_routes_fails_validation_naming_the_key()
    {
        await using var emulator = await EmulatorHost.StartAsync();
        using var host = BridgeFunctionsApp.Build([.. Settings(emulator).Where(s => !s.StartsWith("--Bridge:Routes", StringComparison.Ordinal))]);

        var error = Assert.Throws<OptionsValidationException>(() => host.Services.GetRequiredService<IStartupValidator>().Validate());

        Assert.Contains(error.Failures, f => f.StartsWith("Bridge:Routes is empty", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_subscription_with_a_hand_back_queue_validates_and_the_handler_hands_back_to_it()
    {
        await using var emulator = await EmulatorHost.StartAsync();
        using var host = BridgeFunctionsApp.Build([.. Settings(emulator).Select(s => s.Replace("=orders-in", "=orders/subscriptions/bridge", StringComparison.Ordinal)), "--BridgeServiceBusHandBackQueue=bridge-handback"]);

        host.Services.GetRequiredService<IStartupValidator>().Validate();
        var handler = host.Services.GetRequiredService<Bridge.Core.Intake.ServiceBusMessageHandler>();
        Assert.Equal("bridge-handback", handler.HandBackQueue);
        Assert.False(handler.AbandonsInsteadOfHandingBack("orders/subscriptions/bridge"));
    }

    [Fact]
    public async Task A_hand_back_queue_that_is_also_the_intake_is_refused_naming_both_settings()
    {
        await using var emulator = await EmulatorHost.StartAsync();
        using var host = BridgeFunctionsApp.Build([.. Settings(emulator), "--BridgeServiceBusHandBackQueue=orders-in"]);

        var error = Assert.Throws<OptionsValidationException>(() => host.Services.GetRequiredService<IStartupValidator>().Validate());

        Assert.Contains(error.Failures, f => f.StartsWith("BridgeServiceBusHandBackQueue 'orders-in' is also BridgeServiceBusQueue", StringComparison.Ordinal));
    }
}
