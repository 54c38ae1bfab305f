using Azure.Messaging.ServiceBus;
using Bridge.Emulators.CloudTasks;
using Bridge.Emulators.ServiceBus;
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
    private const string Topic = "orders";
    private const string Intake = Topic + "/subscriptions/bridge";
    private const string Audit = "audit";
    private const string HandBackQueue = "bridge-handback";
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task While_Cloud_Tasks_is_down_a_subscription_s_messages_go_to_the_hand_back_queue_and_each_becomes_one_task_after()
    {
        // MaxDeliveryCount 2: were the bridge abandoning, the messages would be dead-lettered within seconds.
        await using var emulator = ServiceBusEmulator.Start(
            new ServiceBusEmulatorOptions
            {
                Port = 0,
                Queues = { new QueueDefinition { Name = HandBackQueue, Properties = { MaxDeliveryCount = 2 } } },
                Topics =
                {
                    new TopicDefinition
                    {
                        Name = Topic,
                        Subscriptions =
                        {
                            new SubscriptionDefinition { Name = "bridge", Properties = { MaxDeliveryCount = 2 } },
                            new SubscriptionDefinition { Name = Audit }, // another consumer of the topic: must see each message once
                        },
                    },
                },
            },
            TimeProvider.System);
        await using var server = await RunningServer.StartAsync(
            $"--BridgeServiceBus={emulator.ConnectionString}",
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
        await using var client = new ServiceBusClient(emulator.ConnectionString);
        await using var sender = client.CreateSender(Topic);

        for (var i = 0; i < 5; i++)
        {
            await sender.SendMessageAsync(new ServiceBusMessage($"{{\"n\":{i}}}") { MessageId = $"sub-{i}" });
        }

        // Every message has been handed back at least twice, to the hand-back queue, naming its subscription.
        await Eventually.HoldsAsync(
            async () => (await PeekAsync(client, HandBackQueue))
                .Where(m => m.ApplicationProperties.TryGetValue("bridge-handback-attempt", out var a) && (int)a >= 2)
                .Select(m => m.ApplicationProperties["bridge-original-message-id"])
                .Distinct()
                .Count() == 5,
            Wait,
            () => "5 messages handed back twice");
        Assert.All(await PeekAsync(client, HandBackQueue), m => Assert.Equal(Intake, m.ApplicationProperties["bridge-handback-origin"]));
        Assert.Equal(5, (await PeekAsync(client, $"{Topic}/subscriptions/{Audit}")).Count); // no copy went to the topic
        Assert.Empty(await PeekAsync(client, Intake + "/$deadletterqueue"));
        Assert.Empty(await PeekAsync(client, HandBackQueue + "/$deadletterqueue"));

        faults.Clear();
        await server.WaitForOutcomesAsync(5, Wait);
        await Eventually.HoldsAsync(async () => (await PeekAsync(client, HandBackQueue)).Count == 0 && (await PeekAsync(client, Intake)).Count == 0, Wait, () => "both entities drained");
        await server.WaitForIdleAsync();

        var outcomes = await server.OutcomesAsync();
        Assert.Equal(
            Enumerable.Range(0, 5).Select(i => $"sub-{i}").Order(StringComparer.Ordinal),
            outcomes.Select(o => o.GetProperty("data").GetProperty("correlationId").GetString()).Order(StringComparer.Ordinal)); // one task each
        Assert.Empty(await PeekAsync(client, Intake + "/$deadletterqueue"));
        Assert.Empty(await PeekAsync(client, HandBackQueue + "/$deadletterqueue"));
        Assert.Equal(5, (await PeekAsync(client, $"{Topic}/subscriptions/{Audit}")).Count);
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

    private static async Task<IReadOnlyList<ServiceBusReceivedMessage>> PeekAsync(ServiceBusClient client, string path)
    {
        var deadLetter = path.EndsWith("/$deadletterqueue", StringComparison.Ordinal);
        var entity = deadLetter ? path[..^"/$deadletterqueue".Length] : path;
        var parts = entity.Split("/subscriptions/");
        var options = new ServiceBusReceiverOptions { SubQueue = deadLetter ? SubQueue.DeadLetter : SubQueue.None };
        await using var receiver = parts.Length == 2 ? client.CreateReceiver(parts[0], parts[1], options) : client.CreateReceiver(entity, options);
        return await receiver.PeekMessagesAsync(500, fromSequenceNumber: 0);
    }
}
