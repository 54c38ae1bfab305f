using Bridge.CloudTasks;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Bridge.Testing;

/// <summary>
/// The pipeline's services as a host registers them, from configuration, against the emulator and a target on
/// loopback ports: two routes (<c>orders</c>, the default, taking Service Bus entity <c>orders-in</c>; <c>delayed</c>,
/// ten minutes by default) and a callback trusting the emulator's issuer. Core and Functions tests share it; each
/// passes its own registration (<c>AddBridgeCore</c>, <c>AddBridgeFunctions</c>). Errors logged by the code under test
/// fail the test (see <see cref="ErrorLogGuard.CheckOnStop"/>), unless <see cref="Errors"/> expects them.
/// </summary>
public sealed class PipelineHarness : IAsyncDisposable
{
    public const string CallerAccount = "invoker@p.iam.gserviceaccount.com";

    private PipelineHarness(EmulatorHost emulator, HttpTargetServer target, ServiceProvider services, IConfiguration configuration, QueueName orders, QueueName delayed, ErrorLogGuard errors)
    {
        Emulator = emulator;
        Target = target;
        Services = services;
        Configuration = configuration;
        Orders = orders;
        Delayed = delayed;
        Errors = errors;
    }

    public EmulatorHost Emulator { get; }

    public HttpTargetServer Target { get; }

    public ServiceProvider Services { get; }

    public IConfiguration Configuration { get; }

    public QueueName Orders { get; }

    public QueueName Delayed { get; }

    public ErrorLogGuard Errors { get; }

    /// <summary>A class with its dependencies from the harness's services, as a host would activate it.</summary>
    public T Create<T>() => ActivatorUtilities.CreateInstance<T>(Services);

    /// <param name="register">The host's registration, e.g. <c>(s, c) => s.AddBridgeCore(c)</c>.</param>
    /// <param name="paused">Pause both queues, so tasks stay where the test can read them.</param>
    /// <param name="configure">Changes to the settings before the services are built.</param>
    public static async Task<PipelineHarness> StartAsync(Func<IServiceCollection, IConfiguration, IServiceCollection> register, bool paused = true, Action<Dictionary<string, string?>>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(register);
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
            ["BridgeServiceBusQueue"] = "orders-in",
            ["Bridge:CloudTasks:EmulatorHost"] = emulator.GrpcHostPort,
            ["Bridge:CloudTasks:EmulatorDetection"] = "None",
            ["Bridge:MaxBodyBytes"] = "4096",
            ["Bridge:DefaultRoute"] = "orders",
            ["Bridge:Routes:orders:Queue"] = orders.ToString(),
            ["Bridge:Routes:orders:TargetUrl"] = target.Url("/orders").ToString(),
            ["Bridge:Routes:orders:ServiceAccountEmail"] = CallerAccount,
            ["Bridge:Routes:orders:Headers:0:Name"] = "X-Api-Version",
            ["Bridge:Routes:orders:Headers:0:Value"] = "2",
            ["Bridge:Routes:orders:ServiceBusEntity"] = "orders-in",
            ["Bridge:Routes:orders:CarryProperties:0"] = "tenant",
            ["Bridge:Routes:orders:CarryHeaders:0"] = "X-Tenant",
            ["Bridge:Routes:delayed:Queue"] = delayed.ToString(),
            ["Bridge:Routes:delayed:TargetUrl"] = target.Url("/delayed").ToString(),
            ["Bridge:Routes:delayed:DefaultDelay"] = "00:10:00",
            ["Bridge:Callback:PublicUrl"] = "https://bridge.example.com/api/tasks/callback",
            ["Bridge:Callback:AllowedServiceAccounts:0"] = CallerAccount,
            ["Bridge:Callback:Issuers:0:Issuer"] = emulator.Emulator.Issuer,
            ["Bridge:Callback:Issuers:0:DiscoveryUrl"] = new Uri(emulator.HttpAddress, "/.well-known/openid-configuration").ToString(),
        };
        configure?.Invoke(settings);
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var errors = new ErrorLogGuard();
        var services = new ServiceCollection().AddLogging(l => l.AddProvider(errors)).AddSingleton<IConfiguration>(configuration);
        return new PipelineHarness(emulator, target, register(services, configuration).BuildServiceProvider(), configuration, orders, delayed, errors);
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

    public async ValueTask DisposeAsync() => await Teardown.AllAsync(Services, Emulator, Target, Errors.CheckOnDispose());
}
