using Azure.Messaging.ServiceBus;
using Bridge.Emulators.ServiceBus;

namespace Bridge.Testing;

/// <summary>
/// The Service Bus side of a topic subscription as the bridge's intake: the local emulator on port 0 with the topic, its
/// <see cref="Intake"/> subscription, a second consumer (<see cref="AuditSubscription"/>, which must see each message
/// once) and the <see cref="HandBackQueue"/>, and a client to it. MaxDeliveryCount 2 on the intake and the hand-back
/// queue: were the bridge abandoning, a message would be dead-lettered within seconds.
/// </summary>
public sealed class SubscriptionHandBackBus : IAsyncDisposable
{
    public const string Topic = "orders";
    public const string Intake = Topic + "/subscriptions/bridge";
    public const string AuditSubscription = Topic + "/subscriptions/audit";
    public const string HandBackQueue = "bridge-handback";

    /// <summary>The suffix that names an entity's dead-letter queue for <see cref="PeekAsync"/>.</summary>
    public const string DeadLetterQueue = ServiceBusPeek.DeadLetterQueue;

    private SubscriptionHandBackBus(ServiceBusEmulator emulator)
    {
        Emulator = emulator;
        Client = new ServiceBusClient(emulator.ConnectionString);
    }

    public ServiceBusEmulator Emulator { get; }

    public ServiceBusClient Client { get; }

    public string ConnectionString => Emulator.ConnectionString;

    public static SubscriptionHandBackBus Start() => new(ServiceBusEmulator.Start(
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
                        new SubscriptionDefinition { Name = "audit" },
                    },
                },
            },
        },
        TimeProvider.System));

    /// <summary>Sends <paramref name="messages"/> to the topic, one at a time.</summary>
    public async Task SendAsync(params ServiceBusMessage[] messages)
    {
        await using var sender = Client.CreateSender(Topic);
        foreach (var message in messages)
        {
            await sender.SendMessageAsync(message);
        }
    }

    /// <summary>The emulator's counts for a queue or <c>topic/subscriptions/name</c>.</summary>
    public EntityMessageCounts Counts(string entity) =>
        Emulator.GetMessageCounts(entity) ?? throw new InvalidOperationException($"No entity {entity}.");

    /// <summary>Every message of a queue or subscription, or of its dead-letter queue (<paramref name="path"/> ending in <see cref="DeadLetterQueue"/>), without settling any.</summary>
    public Task<IReadOnlyList<ServiceBusReceivedMessage>> PeekAsync(string path) => Client.PeekAllAsync(path);

    public async ValueTask DisposeAsync() => await Teardown.AllAsync(Client, Emulator);
}
