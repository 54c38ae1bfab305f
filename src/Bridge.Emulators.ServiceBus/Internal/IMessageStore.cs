namespace Bridge.Emulators.ServiceBus.Internal;

/// <summary>Where the broker writes every accepted message and settlement before it answers the client.</summary>
internal interface IMessageStore : IDisposable
{
    void Upsert(string entityPath, BrokerMessage message);

    void Delete(string entityPath, long sequenceNumber);

    IEnumerable<(string EntityPath, BrokerMessage Message)> Load();
}

internal sealed class InMemoryStore : IMessageStore
{
    public void Upsert(string entityPath, BrokerMessage message)
    {
    }

    public void Delete(string entityPath, long sequenceNumber)
    {
    }

    public IEnumerable<(string EntityPath, BrokerMessage Message)> Load() => [];

    public void Dispose()
    {
    }
}
