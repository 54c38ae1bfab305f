using Azure.Messaging.ServiceBus;
using Bridge.Emulators.CloudTasks;
using Bridge.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Bridge.Server.Tests;

/// <summary>
/// A topic subscription as the intake, end to end over AMQP: while Cloud Tasks is down its messages are handed back to
/// the hand-back queue (not the topic, which would copy them to every subscription), the runner receives them from
/// there, and each becomes one task once Cloud Tasks is back.
/// </summary>
public sealed class ServiceBusSubscriptionHandBackTests
{
    private const string Intake = SubscriptionHandBackBus.Intake;
    private const string HandBackQueue = SubscriptionHandBackBus.HandBackQueue;
    private const string DeadLetterQueue = SubscriptionHandBackBus.DeadLetterQueue;
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task While_Cloud_Tasks_is_down_a_subscription_s_messages_go_to_the_hand_back_queue_and_each_becomes_one_task_after()
    {
        await using var bus = SubscriptionHandBackBus.Start();
        await using var server = await RunningServer.StartAsync(
            $"--BridgeServiceBus={bus.ConnectionString}",
            $"--BridgeServiceBusQueue={Intake}",
            $"--BridgeServiceBusHandBackQueue={HandBackQueue}",
            "--Bridge:Server:EmbeddedEmulator=true",
            $"--Bridge:Routes:demo:ServiceBusEntity={Intake}",
            "--Bridge:Routes:demo:RetryBudget=00:10:00",
            "--Bridge:CloudTasks:Timeout=00:00:01",
            "--Bridge:RetryInitialDelay=00:00:00.200",
            "--Bridge:RetryMaxDelay=00:00:01");
        var faults = server.Services.GetRequiredService<CloudTasksEmulator>().Faults;
        faults.MakeUnreachable(TimeSpan.FromMinutes(10));
        await bus.SendAsync([.. Enumerable.Range(0, 5).Select(i => new ServiceBusMessage($"{{\"n\":{i}}}") { MessageId = $"sub-{i}" })]);

        // Every message has been handed back at least twice, to the hand-back queue, naming its subscription.
        await Eventually.HoldsAsync(
            async () => (await bus.PeekAsync(HandBackQueue))
                .Where(m => m.ApplicationProperties.TryGetValue("bridge-handback-attempt", out var a) && (int)a >= 2)
                .Select(m => m.ApplicationProperties["bridge-original-message-id"])
                .Distinct()
                .Count() == 5,
            Wait,
            () => "5 messages handed back twice");
        Assert.All(await bus.PeekAsync(HandBackQueue), m => Assert.Equal(Intake, m.ApplicationProperties["bridge-handback-origin"]));
        Assert.Equal(5, (await bus.PeekAsync(SubscriptionHandBackBus.AuditSubscription)).Count); // no copy went to the topic
        Assert.Empty(await bus.PeekAsync(Intake + DeadLetterQueue));
        Assert.Empty(await bus.PeekAsync(HandBackQueue + DeadLetterQueue));

        faults.Clear();
        await server.WaitForOutcomesAsync(5, Wait);
        await Eventually.HoldsAsync(async () => (await bus.PeekAsync(HandBackQueue)).Count == 0 && (await bus.PeekAsync(Intake)).Count == 0, Wait, () => "both entities drained");
        await server.WaitForIdleAsync();

        var outcomes = await server.OutcomesAsync();
        Assert.Equal(
            Enumerable.Range(0, 5).Select(i => $"sub-{i}").Order(StringComparer.Ordinal),
            outcomes.Select(o => o.GetProperty("data").GetProperty("correlationId").GetString()).Order(StringComparer.Ordinal)); // one task each
        Assert.Empty(await bus.PeekAsync(Intake + DeadLetterQueue));
        Assert.Empty(await bus.PeekAsync(HandBackQueue + DeadLetterQueue));
        Assert.Equal(5, (await bus.PeekAsync(SubscriptionHandBackBus.AuditSubscription)).Count);
    }

    [Fact]
    public async Task A_hand_back_queue_that_is_also_the_intake_is_refused_at_start_up()
    {
        var error = await Assert.ThrowsAnyAsync<Exception>(() => RunningServer.StartAsync(
            "--BridgeServiceBus=Endpoint=sb://localhost:1;SharedAccessKeyName=k;SharedAccessKey=v;UseDevelopmentEmulator=true;",
            "--BridgeServiceBusQueue=orders-in",
            "--BridgeServiceBusHandBackQueue=orders-in",
            "--Bridge:Server:EmbeddedEmulator=true",
            "--Bridge:Routes:demo:ServiceBusEntity=orders-in"));

        Assert.Contains("BridgeServiceBusHandBackQueue 'orders-in' is also BridgeServiceBusQueue", error.ToString(), StringComparison.Ordinal);
    }
}
