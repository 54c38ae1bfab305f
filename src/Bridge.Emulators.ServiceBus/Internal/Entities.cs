using Microsoft.Azure.Amqp;

namespace Bridge.Emulators.ServiceBus.Internal;

/// <summary>Something messages can be sent to: a queue or a topic.</summary>
internal abstract class SendTarget(string path, EntityProperties properties)
{
    public string Path { get; } = path;

    public EntityProperties Properties { get; } = properties;

    /// <summary>MessageIds seen within the duplicate detection window, with when they were first accepted.</summary>
    public Dictionary<string, DateTimeOffset> DuplicateHistory { get; } = new(StringComparer.Ordinal);
}

/// <summary>A queue, a subscription, or either one's dead-letter queue: messages that receivers lock and settle.</summary>
internal sealed class MessageEntity(string path, EntityProperties properties, bool isDeadLetterQueue) : SendTarget(path, properties)
{
    public bool IsDeadLetterQueue { get; } = isDeadLetterQueue;

    public MessageEntity? DeadLetterQueue { get; set; }

    /// <summary>For subscriptions: the rules that select messages from the topic (any match copies the message).</summary>
    public List<SubscriptionRule> Rules { get; init; } = [];

    public SortedDictionary<long, BrokerMessage> Messages { get; } = [];

    /// <summary>Active, unlocked messages in sequence order: what receivers get next.</summary>
    public SortedSet<long> Available { get; } = [];

    public Dictionary<Guid, BrokerMessage> Locks { get; } = [];

    public List<Consumer> Consumers { get; } = [];

    public int NextConsumer { get; set; }
}

internal sealed class TopicEntity(string path, EntityProperties properties) : SendTarget(path, properties)
{
    public List<MessageEntity> Subscriptions { get; } = [];

    /// <summary>Messages scheduled on the topic; they reach the subscriptions when due.</summary>
    public SortedDictionary<long, BrokerMessage> Scheduled { get; } = [];
}

/// <summary>A receiving client's link: the broker sends it messages while it has credit.</summary>
internal sealed class Consumer(MessageEntity entity, SendingAmqpLink link, bool receiveAndDelete)
{
    public MessageEntity Entity { get; } = entity;

    public SendingAmqpLink Link { get; } = link;

    public bool ReceiveAndDelete { get; } = receiveAndDelete;

    /// <summary>Messages the client has asked for and not yet been sent; guarded by the broker's lock.</summary>
    public long Credit { get; set; }
}

/// <summary>A message to put on a link once the broker's lock is released.</summary>
internal readonly record struct Outbound(SendingAmqpLink Link, AmqpMessage Message, ArraySegment<byte> DeliveryTag);

/// <summary>A named rule of a subscription, as configured or added over <c>$management</c>.</summary>
internal sealed record SubscriptionRule(string Name, RuleDefinition Definition, RuleFilter Filter, DateTimeOffset CreatedAt);
