using Azure.Messaging.ServiceBus;
using Bridge.CloudTasks;
using Bridge.Testing;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Bridge.Functions.Tests;

/// <summary>The function app's DI graph (as Program builds it) against the emulator and a target on loopback.</summary>
public sealed class FunctionHarness : IAsyncDisposable
{
    private FunctionHarness(EmulatorHost emulator, ServiceProvider services, QueueName queue, IConfiguration configuration)
    {
        Emulator = emulator;
        Services = services;
        Queue = queue;
        Configuration = configuration;
    }

    public EmulatorHost Emulator { get; }

    public ServiceProvider Services { get; }

    public QueueName Queue { get; }

    public IConfiguration Configuration { get; }

    public T Create<T>() => ActivatorUtilities.CreateInstance<T>(Services);

    public static async Task<FunctionHarness> StartAsync(string? emulatorHostOverride = null)
    {
        var emulator = await EmulatorHost.StartAsync();
        var queue = await emulator.CreateQueueAsync();
        await emulator.Client.PauseQueueAsync(queue);
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["BridgeServiceBusQueue"] = "orders-in",
            ["Bridge:CloudTasks:EmulatorHost"] = emulatorHostOverride ?? emulator.GrpcHostPort,
            ["Bridge:CloudTasks:EmulatorDetection"] = "None",
            ["Bridge:MaxBodyBytes"] = "2048",
            ["Bridge:Routes:orders:Queue"] = queue.ToString(),
            ["Bridge:Routes:orders:TargetUrl"] = "https://worker.example.com/orders",
            ["Bridge:Routes:orders:ServiceBusEntity"] = "orders-in",
            ["Bridge:Callback:PublicUrl"] = "https://bridge.example.com/api/tasks/callback",
            ["Bridge:Callback:AllowedServiceAccounts:0"] = "invoker@p.iam.gserviceaccount.com",
            ["Bridge:Callback:Issuers:0:Issuer"] = emulator.Emulator.Issuer,
            ["Bridge:Callback:Issuers:0:DiscoveryUrl"] = new Uri(emulator.HttpAddress, "/.well-known/openid-configuration").ToString(),
        }).Build();
        var services = new ServiceCollection().AddLogging().AddSingleton<IConfiguration>(configuration).AddBridgeFunctions(configuration).AddMvcCore().Services.BuildServiceProvider();
        return new FunctionHarness(emulator, services, queue, configuration);
    }

    public async Task<int> TaskCountAsync()
    {
        var count = 0;
        await foreach (var _ in Emulator.Client.ListTasks(Queue))
        {
            count++;
        }

        return count;
    }

    public async ValueTask DisposeAsync()
    {
        await Services.DisposeAsync();
        await Emulator.DisposeAsync();
    }
}

/// <summary>Records settlement the way a test would mock the official ServiceBusMessageActions.</summary>
public sealed class RecordingMessageActions : ServiceBusMessageActions
{
    public List<string> Calls { get; } = [];

    public string? DeadLetterReason { get; private set; }

    public string? DeadLetterDescription { get; private set; }

    public override Task CompleteMessageAsync(ServiceBusReceivedMessage message, CancellationToken cancellationToken = default)
    {
        Calls.Add("complete:" + message.MessageId);
        return Task.CompletedTask;
    }

    public override Task AbandonMessageAsync(ServiceBusReceivedMessage message, IDictionary<string, object>? propertiesToModify = null, CancellationToken cancellationToken = default)
    {
        Calls.Add("abandon:" + message.MessageId);
        return Task.CompletedTask;
    }

    public override Task DeadLetterMessageAsync(ServiceBusReceivedMessage message, Dictionary<string, object>? propertiesToModify = null, string? deadLetterReason = null, string? deadLetterErrorDescription = null, CancellationToken cancellationToken = default)
    {
        Calls.Add("deadletter:" + message.MessageId);
        DeadLetterReason = deadLetterReason;
        DeadLetterDescription = deadLetterErrorDescription;
        return Task.CompletedTask;
    }
}
