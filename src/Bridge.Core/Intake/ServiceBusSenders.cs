using System.Collections.Concurrent;
using Azure.Messaging.ServiceBus;

namespace Bridge.Core.Intake;

/// <summary>
/// Senders for what a host sends to Service Bus itself (hand-back copies where the trigger gives no sender, as in the
/// function app; outcomes): one <see cref="ServiceBusClient"/> (one AMQP connection) per namespace, created on first
/// use and shared by every sender to that namespace, and one sender per entity.
/// </summary>
public sealed class ServiceBusSenders(ServiceBusConnection connection) : IAsyncDisposable
{
    // Keyed by the connection's value: the intake's and the outcome sink's settings naming the same namespace with
    // the same identity share one client, whatever setting each came from.
    private readonly ConcurrentDictionary<ServiceBusConnection, Lazy<ServiceBusClient>> _clients = new();
    private readonly ConcurrentDictionary<(ServiceBusConnection Connection, string Entity), ServiceBusSender> _senders = new();

    /// <summary>Clients opened so far: one per namespace (and identity).</summary>
    public int ClientCount => _clients.Values.Count(c => c.IsValueCreated);

    /// <summary>A sender to <paramref name="entity"/> on the intake's connection.</summary>
    public ServiceBusSender For(string entity) => For(connection, entity);

    /// <summary>A sender to <paramref name="entity"/> in the namespace <paramref name="target"/> names, on that namespace's one client.</summary>
    public ServiceBusSender For(ServiceBusConnection target, string entity)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentException.ThrowIfNullOrEmpty(entity);
        return _senders.GetOrAdd((target, entity.ToLowerInvariant()), key =>
            _clients.GetOrAdd(key.Connection, c => new Lazy<ServiceBusClient>(c.CreateClient)).Value.CreateSender(entity));
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var sender in _senders.Values)
        {
            await sender.DisposeAsync().ConfigureAwait(false);
        }

        foreach (var client in _clients.Values.Where(c => c.IsValueCreated))
        {
            await client.Value.DisposeAsync().ConfigureAwait(false);
        }
    }
}
