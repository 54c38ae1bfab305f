using Azure.Messaging.ServiceBus;
using Bridge.Emulators.ServiceBus;
using Bridge.Testing;

namespace Bridge.Server.Tests;

/// <summary>
/// The runner sending outcomes to the Service Bus emulator's outcome queue (duplicate detection on) and to the Local
/// sink (so <see cref="RunningServer.WaitForOutcomesAsync"/> sees them), with a client of that emulator.
/// </summary>
internal sealed record ServiceBusOutcomeRunner(ServiceBusEmulator Emulator, ServiceBusClient Client, RunningServer Server) : IAsyncDisposable
{
    public const string OutcomeQueue = "outcomes";

    /// <summary>Starts the emulator and the runner; <paramref name="settings"/> adds to the runner's outcome settings.</summary>
    public static async Task<ServiceBusOutcomeRunner> StartAsync(params string[] settings)
    {
        var options = new ServiceBusEmulatorOptions { Port = 0 };
        options.Queues.Add(new QueueDefinition { Name = OutcomeQueue, Properties = { RequiresDuplicateDetection = true } });
        var emulator = ServiceBusEmulator.Start(options);
        var client = new ServiceBusClient(emulator.ConnectionString);
        try
        {
            var server = await RunningServer.StartAsync(
            [
                "--Bridge:Outcomes:Sinks:0=ServiceBus",
                "--Bridge:Outcomes:Sinks:1=Local",
                $"--Bridge:Outcomes:ServiceBusConnectionString={emulator.ConnectionString}",
                $"--Bridge:Outcomes:ServiceBusEntity={OutcomeQueue}",
                .. settings,
            ]);
            return new ServiceBusOutcomeRunner(emulator, client, server);
        }
        catch
        {
            await client.DisposeAsync();
            await emulator.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync() => await Teardown.AllAsync(Server, Client, Emulator);
}
