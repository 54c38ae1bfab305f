using Azure.Messaging.ServiceBus;
using Bridge.Emulators.CloudTasks;
using Bridge.Emulators.ServiceBus;
using Bridge.Testing;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;

namespace Bridge.Server.Tests;

/// <summary>
/// The failure policy of Service Bus intake, end to end: the local Service Bus emulator over AMQP, the runner, and its
/// embedded Cloud Tasks emulator with injected faults. Short budgets and backoffs are configured; every wait is a
/// bounded wait on a condition.
/// </summary>
public sealed class ServiceBusFailurePolicyTests
{
    private const string Queue = "policy-in";
    private const string DeadLetters = Queue + ServiceBusPeek.DeadLetterQueue;
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(90);

    private static readonly string[] FastRetries =
    [
        "--Bridge:CloudTasks:Timeout=00:00:01", // in-invocation retries end within a second
        "--Bridge:RetryInitialDelay=00:00:00.200",
        "--Bridge:RetryMaxDelay=00:00:01",
    ];

    // Where the error is answered at once (not an outage), the call's deadline only has to outlast a slow answer on a
    // busy machine: with 1 s, a late answer was recorded as CloudTasksUnavailable instead of the injected error.
    private static readonly string[] FastRetriesPatientCalls =
    [
        "--Bridge:CloudTasks:Timeout=00:00:10",
        "--Bridge:RetryInitialDelay=00:00:00.200",
        "--Bridge:RetryMaxDelay=00:00:01",
    ];

    [Fact]
    public async Task While_Cloud_Tasks_is_unreachable_messages_are_handed_back_not_dead_lettered_and_each_becomes_one_task_after()
    {
        await using var h = await PolicyHarness.StartAsync([.. FastRetries, "--Bridge:Routes:demo:RetryBudget=00:10:00"]);
        h.Faults.MakeUnreachable(TimeSpan.FromMinutes(10));
        await using var sender = h.Client.CreateSender(Queue);

        for (var i = 0; i < 5; i++)
        {
            await sender.SendMessageAsync(new ServiceBusMessage($"{{\"n\":{i}}}") { MessageId = $"outage-{i}" });
        }

        // Every message has come back at least twice while more keep arriving.
        await h.WaitUntilHandedBackAsync(5, times: 2);
        for (var i = 5; i < 8; i++)
        {
            await sender.SendMessageAsync(new ServiceBusMessage($"{{\"n\":{i}}}") { MessageId = $"outage-{i}" });
        }

        await h.WaitUntilHandedBackAsync(8, times: 1);
        Assert.Empty(await h.PeekAsync(DeadLetters));

        h.Faults.Clear();
        await h.Server.WaitForOutcomesAsync(8, Wait);
        await h.WaitUntilCountAsync(Queue, 0);
        await h.Server.WaitForIdleAsync();

        var outcomes = await h.Server.OutcomesAsync();
        Assert.Equal(8, outcomes.Count); // one task per message: no copy became a second task
        Assert.Equal(Enumerable.Range(0, 8).Select(i => $"outage-{i}").Order(StringComparer.Ordinal), outcomes.Select(o => o.GetProperty("data").GetProperty("correlationId").GetString()).Order(StringComparer.Ordinal));
        Assert.Empty(await h.PeekAsync(DeadLetters));
    }

    [Fact]
    public async Task Permission_denied_is_retried_within_the_budget_until_the_permission_arrives()
    {
        await using var h = await PolicyHarness.StartAsync([.. FastRetriesPatientCalls, "--Bridge:Routes:demo:RetryBudget=00:10:00"]);
        var denied = h.Faults.Fail(StatusCode.PermissionDenied, ["CreateTask", "BatchCreateTasks"], message: "Permission 'cloudtasks.tasks.create' denied");
        await using var sender = h.Client.CreateSender(Queue);

        for (var i = 0; i < 3; i++)
        {
            await sender.SendMessageAsync(new ServiceBusMessage("{}") { MessageId = $"iam-{i}" });
        }

        await h.WaitUntilHandedBackAsync(3, times: 2);
        Assert.Empty(await h.PeekAsync(DeadLetters));
        var reasons = (await h.PeekAsync(Queue)).Select(m => m.ApplicationProperties["bridge-last-error"]).Distinct();
        Assert.Equal(["NotAuthorized"], reasons);

        Assert.True(h.Faults.Remove(denied.Id));
        await h.Server.WaitForOutcomesAsync(3, Wait);
        await h.WaitUntilCountAsync(Queue, 0);
        await h.Server.WaitForIdleAsync();
        Assert.Equal(3, (await h.Server.OutcomesAsync()).Count);
        Assert.Empty(await h.PeekAsync(DeadLetters));
    }

    [Fact]
    public async Task A_missing_queue_is_dead_lettered_as_RetriesExhausted_after_the_budget_not_after_MaxDeliveryCount()
    {
        // The runner creates its routes' queues in the embedded emulator, so the missing queue is injected.
        await using var h = await PolicyHarness.StartAsync([.. FastRetriesPatientCalls, "--Bridge:Routes:demo:RetryBudget=00:00:03"]);
        h.Faults.Fail(StatusCode.NotFound, ["CreateTask", "BatchCreateTasks"], message: "Queue does not exist.");
        await using var sender = h.Client.CreateSender(Queue);

        await sender.SendMessageAsync(new ServiceBusMessage("{}") { MessageId = "nowhere" });

        await h.WaitUntilCountAsync(DeadLetters, 1);
        var dead = Assert.Single(await h.PeekAsync(DeadLetters));
        Assert.Equal("RetriesExhausted", dead.DeadLetterReason);
        Assert.StartsWith("QueueNotFound: ", dead.DeadLetterErrorDescription, StringComparison.Ordinal);
        Assert.Equal("nowhere", dead.ApplicationProperties["bridge-original-message-id"]);
        Assert.True((int)dead.ApplicationProperties["bridge-handback-attempt"] >= 1);
        Assert.Equal(1, dead.DeliveryCount); // each copy delivered once: never redelivered to MaxDeliveryCount
        Assert.Empty(await h.PeekAsync(Queue));
    }

    [Fact]
    public async Task A_permanent_error_is_still_dead_lettered_at_once_with_its_reason()
    {
        await using var h = await PolicyHarness.StartAsync([.. FastRetries, "--Bridge:MaxBodyBytes=100"]);
        await using var sender = h.Client.CreateSender(Queue);

        await sender.SendMessageAsync(new ServiceBusMessage(new byte[500]) { MessageId = "big" });

        await h.WaitUntilCountAsync(DeadLetters, 1);
        var dead = Assert.Single(await h.PeekAsync(DeadLetters));
        Assert.Equal("PayloadTooLarge", dead.DeadLetterReason);
        Assert.False(dead.ApplicationProperties.ContainsKey("bridge-handback-attempt"));
    }

    private sealed class PolicyHarness : IAsyncDisposable
    {
        private PolicyHarness(ServiceBusEmulator emulator, ServiceBusClient client, RunningServer server)
        {
            Emulator = emulator;
            Client = client;
            Server = server;
        }

        public ServiceBusEmulator Emulator { get; }

        public ServiceBusClient Client { get; }

        public RunningServer Server { get; }

        public EmulatorFaults Faults => Server.Services.GetRequiredService<CloudTasksEmulator>().Faults;

        public static async Task<PolicyHarness> StartAsync(string[] settings)
        {
            // MaxDeliveryCount 2: were the bridge still abandoning, a message would be dead-lettered within seconds.
            var emulator = ServiceBusEmulator.Start(new ServiceBusEmulatorOptions { Port = 0, Queues = { new QueueDefinition { Name = Queue, Properties = { MaxDeliveryCount = 2 } } } }, TimeProvider.System);
            var server = await RunningServer.StartAsync(
            [
                $"--BridgeServiceBus={emulator.ConnectionString}",
                $"--BridgeServiceBusQueue={Queue}",
                "--Bridge:Server:EmbeddedEmulator=true",
                $"--Bridge:Routes:demo:ServiceBusEntity={Queue}",
                .. settings,
            ]);
            return new PolicyHarness(emulator, new ServiceBusClient(emulator.ConnectionString), server);
        }

        public Task<IReadOnlyList<ServiceBusReceivedMessage>> PeekAsync(string path) => Client.PeekAllAsync(path);

        public Task WaitUntilCountAsync(string path, int count) =>
            Eventually.HoldsAsync(async () => (await PeekAsync(path)).Count == count, Wait, () => $"{count} messages in {path}");

        /// <summary>Waits until <paramref name="messages"/> distinct messages have copies handed back at least <paramref name="times"/> times.</summary>
        public Task WaitUntilHandedBackAsync(int messages, int times) =>
            Eventually.HoldsAsync(
                async () => (await PeekAsync(Queue))
                    .Where(m => m.ApplicationProperties.TryGetValue("bridge-handback-attempt", out var a) && (int)a >= times)
                    .Select(m => m.ApplicationProperties["bridge-original-message-id"])
                    .Distinct()
                    .Count() >= messages,
                Wait,
                () => $"{messages} messages handed back {times} times");

        public async ValueTask DisposeAsync() => await Teardown.AllAsync(Server, Client, Emulator);
    }
}
