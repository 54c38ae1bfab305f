using Bridge.CloudTasks;
using Bridge.Core.Forwarding;
using Bridge.Core.Intake;
using Bridge.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Bridge.Core.Tests;

/// <summary>The Core pipeline wired by DI from configuration, against the emulator and a target on loopback ports.</summary>
public sealed class CoreHarness : IAsyncDisposable
{
    private readonly ServiceProvider _services;

    private CoreHarness(EmulatorHost emulator, HttpTargetServer target, ServiceProvider services, QueueName orders, QueueName delayed)
    {
        Emulator = emulator;
        Target = target;
        _services = services;
        Orders = orders;
        Delayed = delayed;
    }

    public EmulatorHost Emulator { get; }

    public HttpTargetServer Target { get; }

    public QueueName Orders { get; }

    public QueueName Delayed { get; }

    public IEventForwarder Forwarder => _services.GetRequiredService<IEventForwarder>();

    public HttpIntake Http => _services.GetRequiredService<HttpIntake>();

    public ServiceBusIntake ServiceBus => _services.GetRequiredService<ServiceBusIntake>();

    public static async Task<CoreHarness> StartAsync(bool paused = true, Action<Dictionary<string, string?>>? configure = null)
    {
        var emulator = await EmulatorHost.StartAsync();
        var target = await HttpTargetServer.StartAsync();
        var orders = await emulator.CreateQueueAsync();
        var delayed = await emulator.CreateQueueAsync();
        if (paused)
        {
            await emulator.Client.PauseQueueAsync(orders);
            await emulator.Client.PauseQueueAsync(delayed);
        }

        var settings = new Dictionary<string, string?>
        {
            ["Bridge:CloudTasks:EmulatorHost"] = emulator.GrpcHostPort,
            ["Bridge:CloudTasks:EmulatorDetection"] = "None",
            ["Bridge:MaxBodyBytes"] = "4096",
            ["Bridge:DefaultRoute"] = "orders",
            ["Bridge:Routes:orders:Queue"] = orders.ToString(),
            ["Bridge:Routes:orders:TargetUrl"] = target.Url("/orders").ToString(),
            ["Bridge:Routes:orders:ServiceAccountEmail"] = "invoker@p.iam.gserviceaccount.com",
            ["Bridge:Routes:orders:Headers:0:Name"] = "X-Api-Version",
            ["Bridge:Routes:orders:Headers:0:Value"] = "2",
            ["Bridge:Routes:orders:ServiceBusEntity"] = "orders-in",
            ["Bridge:Routes:orders:CarryProperties:0"] = "tenant",
            ["Bridge:Routes:orders:CarryHeaders:0"] = "X-Tenant",
            ["Bridge:Routes:delayed:Queue"] = delayed.ToString(),
            ["Bridge:Routes:delayed:TargetUrl"] = target.Url("/delayed").ToString(),
            ["Bridge:Routes:delayed:DefaultDelay"] = "00:10:00",
        };
        configure?.Invoke(settings);
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var services = new ServiceCollection().AddLogging().AddBridgeCore(configuration).BuildServiceProvider();
        return new CoreHarness(emulator, target, services, orders, delayed);
    }

    public async Task<List<Bridge.CloudTasks.V2Beta3.Task>> TasksAsync(QueueName queue)
    {
        var tasks = new List<Bridge.CloudTasks.V2Beta3.Task>();
        await foreach (var task in Emulator.Client.ListTasks(queue, Bridge.CloudTasks.V2Beta3.Task.Types.View.Full))
        {
            tasks.Add(task);
        }

        return tasks;
    }

    public async ValueTask DisposeAsync()
    {
        await _services.DisposeAsync();
        await Emulator.DisposeAsync();
        await Target.DisposeAsync();
    }
}
