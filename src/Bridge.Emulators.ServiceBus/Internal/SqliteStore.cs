namespace Bridge.Emulators.ServiceBus.Internal;

internal sealed class SqliteStore(string directory) : IMessageStore
{
    public string Directory { get; } = directory;

    public void Upsert(string entityPath, BrokerMessage message) => throw new NotImplementedException();

    public void Delete(string entityPath, long sequenceNumber) => throw new NotImplementedException();

    public IEnumerable<(string EntityPath, BrokerMessage Message)> Load() => throw new NotImplementedException();

    public void Dispose()
    {
    }
}
