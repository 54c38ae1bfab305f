using System.Collections.Concurrent;
using Azure.Messaging.ServiceBus;

namespace Bridge.Core.Intake;

/// <summary>
/// Senders to the entities intake receives from, for hosts whose trigger gives them no sender (the function app):
/// one client for the <see cref="ServiceBusConnection"/>, created on first use, and one sender per entity.
/// </summary>
public sealed class ServiceBusSenders(ServiceBusConnection connection) : IAsyncDisposable
{
    private readonly Lazy<ServiceBusClient> _client = new(connection.CreateClient);
    private readonly ConcurrentDictionary<string, ServiceBusSender> _senders = new(StringComparer.OrdinalIgnoreCase);

    public ServiceBusSender For(string entity) => _senders.GetOrAdd(entity, e => _client.Value.CreateSender(e));

    public async ValueTask DisposeAsync()
    {
        foreach (var sender in _senders.Values)
        {
            await sender.DisposeAsync().ConfigureAwait(false);
        }

        if (_client.IsValueCreated)
        {
            await _client.Value.DisposeAsync().ConfigureAwait(false);
        }
    }
}
