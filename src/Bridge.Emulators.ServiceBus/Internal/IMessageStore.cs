namespace Bridge.Emulators.ServiceBus.Internal;

/// <summary>
/// Where the broker writes every accepted message and settlement before it answers the client. Called under the
/// broker's lock only.
/// </summary>
internal interface IMessageStore : IDisposable
{
    void Upsert(string entityPath, BrokerMessage message);

    void Delete(string entityPath, long sequenceNumber);

    /// <summary>Groups the writes of one operation into one durable commit; nested scopes join the outer one.</summary>
    IDisposable Batch();

    /// <summary>The highest sequence number ever handed out, so numbers are never reused after a restart.</summary>
    long LastSequenceNumber { get; }

    IEnumerable<(string EntityPath, BrokerMessage Message)> Load();

    /// <summary>Remembers a MessageId accepted by an entity with duplicate detection.</summary>
    void RecordMessageId(string entityPath, string messageId, DateTimeOffset seen);

    IEnumerable<(string EntityPath, string MessageId, DateTimeOffset Seen)> LoadMessageIds();

    /// <summary>Drops MessageIds that fell out of an entity's duplicate detection window.</summary>
    void ForgetMessageIds(string entityPath, DateTimeOffset seenBefore);

    /// <summary>Keeps a subscription's rules once they were changed over $management; they replace the configured ones.</summary>
    void SaveRules(string subscriptionPath, IReadOnlyList<RuleDefinition> rules);

    IEnumerable<(string SubscriptionPath, IReadOnlyList<RuleDefinition> Rules)> LoadRules();
}

internal sealed class InMemoryStore : IMessageStore
{
    sealed class NoBatch : IDisposable
    {
        public static readonly NoBatch Instance = new();

        public void Dispose()
        {
        }
    }

    public void Upsert(string entityPath, BrokerMessage message)
    {
    }

    public void Delete(string entityPath, long sequenceNumber)
    {
    }

    public IDisposable Batch() => NoBatch.Instance;

    public long LastSequenceNumber => 0;

    public IEnumerable<(string EntityPath, BrokerMessage Message)> Load() => [];

    public void RecordMessageId(string entityPath, string messageId, DateTimeOffset seen)
    {
    }

    public IEnumerable<(string EntityPath, string MessageId, DateTimeOffset Seen)> LoadMessageIds() => [];

    public void ForgetMessageIds(string entityPath, DateTimeOffset seenBefore)
    {
    }

    public void SaveRules(string subscriptionPath, IReadOnlyList<RuleDefinition> rules)
    {
    }

    public IEnumerable<(string SubscriptionPath, IReadOnlyList<RuleDefinition> Rules)> LoadRules() => [];

    public void Dispose()
    {
    }
}
