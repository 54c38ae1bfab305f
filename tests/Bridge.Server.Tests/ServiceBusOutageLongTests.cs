using System.Diagnostics;
using System.Net.Sockets;
using Azure.Messaging.ServiceBus;
using Bridge.Emulators.CloudTasks;
using Bridge.Emulators.ServiceBus;
using Bridge.Testing;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Bridge.Server.Tests;

/// <summary>A test of minutes, run only with <c>BRIDGE_LONG_TESTS=1</c> (not part of the default run).</summary>
internal sealed class LongFactAttribute : FactAttribute
{
    public LongFactAttribute()
    {
        if (Environment.GetEnvironmentVariable("BRIDGE_LONG_TESTS") != "1")
        {
            Skip = "a scenario of minutes: run with BRIDGE_LONG_TESTS=1";
        }
    }
}

/// <summary>
/// Issue 14's scenarios at their real length, with the default backoff (10 s doubling, 10 min cap) and the default
/// Cloud Tasks call deadline: outages of a minute while messages keep arriving, and a permanent error dead-lettered
/// after its route's budget. Run: <c>BRIDGE_LONG_TESTS=1 dotnet test tests/Bridge.Server.Tests -c Release --filter FullyQualifiedName~ServiceBusOutageLongTests</c>.
/// </summary>
public sealed class ServiceBusOutageLongTests(ITestOutputHelper output)
{
    private const string Queue = "long-in";
    private static readonly TimeSpan Wait = TimeSpan.FromMinutes(6);

    [LongFact]
    public async Task Cloud_Tasks_unreachable_for_60_s_and_Service_Bus_down_for_20_s_while_messages_keep_arriving_loses_and_duplicates_nothing()
    {
        var data = Path.Combine(Path.GetTempPath(), "bridge-longsb-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(data);
        try
        {
            var serviceBus = StartServiceBus(0, data);
            var port = serviceBus.Port; // bound as 0 and read back; the restart below takes the same port again
            await using var server = await StartRunnerAsync(serviceBus.ConnectionString);
            var faults = server.Services.GetRequiredService<CloudTasksEmulator>().Faults;
            var clock = Stopwatch.StartNew();
            faults.MakeUnreachable(TimeSpan.FromSeconds(60));

            // One message every 2 s for 80 s; the sender retries a message until Service Bus takes it.
            var sent = 0;
            var sending = Task.Run(async () =>
            {
                using var pace = new PeriodicTimer(TimeSpan.FromSeconds(2));
                for (var i = 0; i < 40; i++)
                {
                    await SendUntilAcceptedAsync(serviceBus.ConnectionString, $"outage-{i}");
                    sent++;
                    await pace.WaitForNextTickAsync();
                }
            });

            // 20 s into the outage Service Bus goes away for 20 s (restarted on its data, same port).
            await Eventually.HoldsAsync(() => Task.FromResult(clock.Elapsed > TimeSpan.FromSeconds(20)), TimeSpan.FromSeconds(40));
            await serviceBus.DisposeAsync();
            var down = clock.Elapsed;
            await Eventually.HoldsAsync(() => Task.FromResult(clock.Elapsed > down + TimeSpan.FromSeconds(20)), TimeSpan.FromSeconds(40));
            serviceBus = StartServiceBus(port, data);
            output.WriteLine($"Service Bus down from {down.TotalSeconds:F0} s to {clock.Elapsed.TotalSeconds:F0} s");

            await sending.WaitAsync(Wait);
            await server.WaitForOutcomesAsync(40, Wait);
            output.WriteLine($"all 40 outcomes at {clock.Elapsed.TotalSeconds:F0} s (Cloud Tasks back at 60 s)");
            await using var client = new ServiceBusClient(serviceBus.ConnectionString);
            await Eventually.HoldsAsync(async () => (await client.PeekAllAsync(Queue)).Count == 0, Wait, () => "the intake never drained");
            await server.WaitForIdleAsync();

            var outcomes = await server.OutcomesAsync();
            Assert.Equal(40, outcomes.Count); // each exactly once
            Assert.Equal(40, outcomes.Select(o => o.GetProperty("data").GetProperty("correlationId").GetString()).Distinct().Count());
            Assert.Empty(await client.PeekAllAsync(Queue + ServiceBusPeek.DeadLetterQueue));
            await serviceBus.DisposeAsync();
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }

    [LongFact]
    public async Task Permission_denied_for_30_s_loses_and_duplicates_nothing()
    {
        await using var serviceBus = StartServiceBus(0, dataDirectory: null);
        await using var server = await StartRunnerAsync(serviceBus.ConnectionString);
        var faults = server.Services.GetRequiredService<CloudTasksEmulator>().Faults;
        var clock = Stopwatch.StartNew();
        faults.Fail(StatusCode.PermissionDenied, ["CreateTask", "BatchCreateTasks"], duration: TimeSpan.FromSeconds(30), message: "Permission 'cloudtasks.tasks.create' denied");

        using var pace = new PeriodicTimer(TimeSpan.FromSeconds(2));
        for (var i = 0; i < 20; i++)
        {
            await SendUntilAcceptedAsync(serviceBus.ConnectionString, $"iam-{i}");
            await pace.WaitForNextTickAsync();
        }

        await server.WaitForOutcomesAsync(20, Wait);
        output.WriteLine($"all 20 outcomes at {clock.Elapsed.TotalSeconds:F0} s (permission back at 30 s)");
        await using var client = new ServiceBusClient(serviceBus.ConnectionString);
        await Eventually.HoldsAsync(async () => (await client.PeekAllAsync(Queue)).Count == 0, Wait, () => "the intake never drained");
        await server.WaitForIdleAsync();
        Assert.Equal(20, (await server.OutcomesAsync()).Count);
        Assert.Empty(await client.PeekAllAsync(Queue + ServiceBusPeek.DeadLetterQueue));
    }

    [LongFact]
    public async Task An_unknown_queue_is_dead_lettered_with_the_bridge_s_reason_after_the_budget_not_after_MaxDeliveryCount()
    {
        await using var serviceBus = StartServiceBus(0, dataDirectory: null);
        await using var server = await StartRunnerAsync(serviceBus.ConnectionString, "--Bridge:Routes:demo:RetryBudget=00:02:00");
        server.Services.GetRequiredService<CloudTasksEmulator>().Faults.Fail(StatusCode.NotFound, ["CreateTask", "BatchCreateTasks"], message: "Queue does not exist.");
        var clock = Stopwatch.StartNew();

        await SendUntilAcceptedAsync(serviceBus.ConnectionString, "nowhere");

        await using var client = new ServiceBusClient(serviceBus.ConnectionString);
        await Eventually.HoldsAsync(async () => (await client.PeekAllAsync(Queue + ServiceBusPeek.DeadLetterQueue)).Count == 1, Wait, () => "never dead-lettered");
        var elapsed = clock.Elapsed;
        var dead = Assert.Single(await client.PeekAllAsync(Queue + ServiceBusPeek.DeadLetterQueue));
        output.WriteLine($"dead-lettered at {elapsed.TotalSeconds:F0} s after {dead.ApplicationProperties["bridge-handback-attempt"]} hand-backs: {dead.DeadLetterReason}: {dead.DeadLetterErrorDescription}");
        Assert.Equal("RetriesExhausted", dead.DeadLetterReason);
        Assert.StartsWith("QueueNotFound: ", dead.DeadLetterErrorDescription, StringComparison.Ordinal);
        Assert.Equal(1, dead.DeliveryCount);
        Assert.True(elapsed >= TimeSpan.FromMinutes(2), $"dead-lettered after {elapsed}, before the 2 min budget");
    }

    private static ServiceBusEmulator StartServiceBus(int port, string? dataDirectory) =>
        ServiceBusEmulator.Start(new ServiceBusEmulatorOptions { Port = port, DataDirectory = dataDirectory, Queues = { new QueueDefinition { Name = Queue, Properties = { MaxDeliveryCount = 3 } } } }, TimeProvider.System);

    private static Task<RunningServer> StartRunnerAsync(string connectionString, params string[] settings) => RunningServer.StartAsync(
    [
        $"--BridgeServiceBus={connectionString}",
        $"--BridgeServiceBusQueue={Queue}",
        "--Bridge:Server:EmbeddedEmulator=true",
        $"--Bridge:Routes:demo:ServiceBusEntity={Queue}",
        .. settings,
    ]);

    private static async Task SendUntilAcceptedAsync(string connectionString, string messageId) =>
        await Eventually.HoldsAsync(
            async () =>
            {
                try
                {
                    await using var client = new ServiceBusClient(connectionString, new ServiceBusClientOptions { RetryOptions = new ServiceBusRetryOptions { MaxRetries = 0, TryTimeout = TimeSpan.FromSeconds(5) } });
                    await using var sender = client.CreateSender(Queue);
                    await sender.SendMessageAsync(new ServiceBusMessage("{}") { MessageId = messageId });
                    return true;
                }
                catch (Exception e) when (e is ServiceBusException or SocketException or TimeoutException or OperationCanceledException)
                {
                    return false; // Service Bus is down: try again
                }
            },
            Wait,
            () => $"{messageId} was never accepted");
}
