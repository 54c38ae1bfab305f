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
        Assert.Equal(5, FunctionClasses.Length); // intake (HTTP, Service Bus), callback, health, queue check
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
    public async Task A_hand_back_queue_is_refused_since_the_function_app_has_no_trigger_on_one()
    {
        await using var emulator = await EmulatorHost.StartAsync();
        using var host = BridgeFunctionsApp.Build([.. Settings(emulator), "--BridgeServiceBusHandBackQueue=bridge-handback"]);

        var error = Assert.Throws<OptionsValidationException>(() => host.Services.GetRequiredService<IStartupValidator>().Validate());

        Assert.Contains(error.Failures, f => f.StartsWith("BridgeServiceBusHandBackQueue is served by the self-hosted runner only", StringComparison.Ordinal));
    }
}
