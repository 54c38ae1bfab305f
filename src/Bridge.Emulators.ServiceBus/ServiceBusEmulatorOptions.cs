namespace Bridge.Emulators.ServiceBus;

/// <summary>Settings of the local Service Bus endpoint: where it listens, the key tokens are checked against, its entities.</summary>
public sealed class ServiceBusEmulatorOptions
{
    public const string SectionName = "ServiceBusEmulator";

    /// <summary>The placeholder key of Microsoft's Service Bus emulator, so its connection strings work unchanged.</summary>
    public const string DefaultSasKey = "SAS_KEY_VALUE";

    /// <summary>Service Bus Standard's largest message, in bytes.</summary>
    public const int DefaultMaxMessageSizeBytes = 256 * 1024;

    /// <summary>AMQP port; 0 picks a free one (read it back from <see cref="ServiceBusEmulator.Port"/>).</summary>
    public int Port { get; set; } = 5672;

    /// <summary>Address to bind; loopback unless you mean to serve other machines.</summary>
    public string ListenAddress { get; set; } = "127.0.0.1";

    public string SasKeyName { get; set; } = "RootManageSharedAccessKey";

    public string SasKey { get; set; } = DefaultSasKey;

    /// <summary>Largest encoded message a sender may transfer; larger ones are refused with <c>amqp:link:message-size-exceeded</c>.</summary>
    public int MaxMessageSizeBytes { get; set; } = DefaultMaxMessageSizeBytes;

    /// <summary>Folder for the SQLite file that keeps messages across restarts; none keeps everything in memory.</summary>
    public string? DataDirectory { get; set; }

    /// <summary>Optional path of a Config.json in the official emulator's format, read at start.</summary>
    public string? ConfigFile { get; set; }

    public IList<QueueDefinition> Queues { get; set; } = [];

    public IList<TopicDefinition> Topics { get; set; } = [];

    public ServiceBusEmulatorOptions Clone() => new()
    {
        Port = Port,
        ListenAddress = ListenAddress,
        SasKeyName = SasKeyName,
        SasKey = SasKey,
        MaxMessageSizeBytes = MaxMessageSizeBytes,
        DataDirectory = DataDirectory,
        ConfigFile = ConfigFile,
        Queues = Queues.Select(q => q.Clone()).ToList(),
        Topics = Topics.Select(t => t.Clone()).ToList(),
    };

    /// <summary>Adds the queues and topics of an official emulator Config.json to these options.</summary>
    public ServiceBusEmulatorOptions AddConfigFile(string path)
    {
        EmulatorConfigFile.ReadInto(File.ReadAllText(path), this);
        return this;
    }
}

/// <summary>Behaviour shared by queues and subscriptions (and, for the last three, topics).</summary>
public sealed class EntityProperties
{
    public TimeSpan LockDuration { get; set; } = TimeSpan.FromMinutes(1);

    public int MaxDeliveryCount { get; set; } = 10;

    /// <summary>Lifetime of messages that set none (or a longer one); none means they never expire.</summary>
    public TimeSpan? DefaultMessageTimeToLive { get; set; }

    public bool DeadLetteringOnMessageExpiration { get; set; }

    /// <summary>Where every message that arrives is moved on to (a queue or topic).</summary>
    public string? ForwardTo { get; set; }

    /// <summary>Where dead-lettered messages go instead of the entity's own <c>$deadletterqueue</c>.</summary>
    public string? ForwardDeadLetteredMessagesTo { get; set; }

    public bool RequiresDuplicateDetection { get; set; }

    public TimeSpan DuplicateDetectionHistoryTimeWindow { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Sessions are not served yet; an entity that asks for them is refused at start.</summary>
    public bool RequiresSession { get; set; }

    public EntityProperties Clone() => (EntityProperties)MemberwiseClone();
}

public sealed class QueueDefinition
{
    public string Name { get; set; } = "";

    public EntityProperties Properties { get; set; } = new();

    public QueueDefinition Clone() => new() { Name = Name, Properties = Properties.Clone() };
}

public sealed class TopicDefinition
{
    public string Name { get; set; } = "";

    public EntityProperties Properties { get; set; } = new();

    public IList<SubscriptionDefinition> Subscriptions { get; set; } = [];

    public TopicDefinition Clone() => new()
    {
        Name = Name,
        Properties = Properties.Clone(),
        Subscriptions = Subscriptions.Select(s => s.Clone()).ToList(),
    };
}

public sealed class SubscriptionDefinition
{
    public string Name { get; set; } = "";

    public EntityProperties Properties { get; set; } = new();

    /// <summary>A message is copied to the subscription when any rule matches; no rules means every message.</summary>
    public IList<RuleDefinition> Rules { get; set; } = [];

    public SubscriptionDefinition Clone() => new()
    {
        Name = Name,
        Properties = Properties.Clone(),
        Rules = Rules.Select(r => r.Clone()).ToList(),
    };
}

/// <summary>A subscription rule: a correlation filter, or a SQL filter over system and application properties.</summary>
public sealed class RuleDefinition
{
    public string Name { get; set; } = "$Default";

    public CorrelationFilterDefinition? Correlation { get; set; }

    public string? SqlExpression { get; set; }

    public RuleDefinition Clone() => new()
    {
        Name = Name,
        Correlation = Correlation?.Clone(),
        SqlExpression = SqlExpression,
    };
}

/// <summary>Every field that is set must equal the message's; unset fields match anything.</summary>
public sealed class CorrelationFilterDefinition
{
    public string? CorrelationId { get; set; }
    public string? MessageId { get; set; }
    public string? To { get; set; }
    public string? ReplyTo { get; set; }
    public string? Subject { get; set; }
    public string? SessionId { get; set; }
    public string? ReplyToSessionId { get; set; }
    public string? ContentType { get; set; }
    public IDictionary<string, object?> ApplicationProperties { get; set; } = new Dictionary<string, object?>(StringComparer.Ordinal);

    public CorrelationFilterDefinition Clone()
    {
        var copy = (CorrelationFilterDefinition)MemberwiseClone();
        copy.ApplicationProperties = new Dictionary<string, object?>(ApplicationProperties, StringComparer.Ordinal);
        return copy;
    }
}
