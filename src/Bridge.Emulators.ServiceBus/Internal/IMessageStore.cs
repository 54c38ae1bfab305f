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

    public void Dispose()
    {
    }
}
