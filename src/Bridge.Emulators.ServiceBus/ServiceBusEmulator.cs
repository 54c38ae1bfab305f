using Bridge.Emulators.ServiceBus.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Bridge.Emulators.ServiceBus;

/// <summary>
/// A local Azure Service Bus endpoint over AMQP 1.0 that the official SDKs use unchanged, with the connection string
/// convention of Microsoft's emulator (<see cref="ConnectionString"/>). Start it, point a client at it, dispose it.
/// </summary>
public sealed class ServiceBusEmulator : IAsyncDisposable, IDisposable
{
    readonly Broker broker;
    readonly AmqpEndpoint endpoint;
    readonly ServiceBusEmulatorOptions options;

    ServiceBusEmulator(ServiceBusEmulatorOptions options, Broker broker, AmqpEndpoint endpoint, ServiceBusEmulatorFaults faults)
    {
        this.options = options;
        Faults = faults;
        this.broker = broker;
        this.endpoint = endpoint;
    }

    /// <summary>Starts listening. Throws when the options (or the config file they name) are invalid, naming the bad value.</summary>
    public static ServiceBusEmulator Start(ServiceBusEmulatorOptions options, TimeProvider? time = null, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var copy = options.Clone();
        if (!string.IsNullOrWhiteSpace(copy.ConfigFile))
        {
            copy.AddConfigFile(copy.ConfigFile);
        }

        Validate(copy);
        time ??= TimeProvider.System;
        loggerFactory ??= NullLoggerFactory.Instance;
        IMessageStore store = string.IsNullOrWhiteSpace(copy.DataDirectory) ? new InMemoryStore() : new SqliteStore(copy.DataDirectory);
        Broker broker;
        try
        {
            broker = new Broker(copy, store, time, loggerFactory.CreateLogger("Bridge.Emulators.ServiceBus.Broker"));
        }
        catch
        {
            store.Dispose();
            throw;
        }

        var faults = new ServiceBusEmulatorFaults(time);
        var endpoint = new AmqpEndpoint(broker, faults, new SasTokenValidator(copy.SasKeyName, copy.SasKey, time), copy, time,
            loggerFactory.CreateLogger("Bridge.Emulators.ServiceBus.Amqp"));
        try
        {
            endpoint.Start();
        }
        catch
        {
            endpoint.Dispose();
            broker.Dispose();
            throw;
        }

        return new ServiceBusEmulator(copy, broker, endpoint, faults);
    }

    static void Validate(ServiceBusEmulatorOptions o)
    {
        if (o.Port is < 0 or > 65535)
        {
            throw new ArgumentException($"Port {o.Port} is not between 0 and 65535.", nameof(o));
        }

        if (!string.Equals(o.ListenAddress, "localhost", StringComparison.OrdinalIgnoreCase) && !System.Net.IPAddress.TryParse(o.ListenAddress, out _))
        {
            throw new ArgumentException($"ListenAddress '{o.ListenAddress}' is not an IP address (or localhost).", nameof(o));
        }

        if (string.IsNullOrEmpty(o.SasKeyName) || string.IsNullOrEmpty(o.SasKey))
        {
            throw new ArgumentException("SasKeyName and SasKey must not be empty.", nameof(o));
        }

        if (o.MaxMessageSizeBytes is < 1024 or > 100 * 1024 * 1024)
        {
            throw new ArgumentException($"MaxMessageSizeBytes {o.MaxMessageSizeBytes} is not between 1 KB and 100 MB.", nameof(o));
        }
    }

    /// <summary>Fault injection for tests: settlements held between a client's steps (library API only).</summary>
    public ServiceBusEmulatorFaults Faults { get; }

    /// <summary>The AMQP port actually bound (useful when <see cref="ServiceBusEmulatorOptions.Port"/> was 0).</summary>
    public int Port => endpoint.Port;

    /// <summary>Queues, topics, subscriptions and their dead-letter queues, as entity paths.</summary>
    public IReadOnlyCollection<string> Entities => broker.EntityPaths;

    /// <summary>
    /// Exact message counts of a queue, subscription (<c>topic/Subscriptions/sub</c>) or topic, read from the broker
    /// (not by peeking); null when there is no such entity. For tools such as the dashboard.
    /// </summary>
    public EntityMessageCounts? GetMessageCounts(string entityPath)
    {
        ArgumentNullException.ThrowIfNull(entityPath);
        return broker.CountMessages(entityPath);
    }

    /// <summary>A connection string for the official SDKs, in the form Microsoft's emulator uses.</summary>
    public string ConnectionString =>
        $"Endpoint=sb://{(options.ListenAddress is "0.0.0.0" or "::" ? "localhost" : HostOf(options.ListenAddress))}:{Port};" +
        $"SharedAccessKeyName={options.SasKeyName};SharedAccessKey={options.SasKey};UseDevelopmentEmulator=true;";

    static string HostOf(string address) => address is "127.0.0.1" or "::1" || string.Equals(address, "localhost", StringComparison.OrdinalIgnoreCase) ? "localhost" : address.Contains(':', StringComparison.Ordinal) ? $"[{address}]" : address;

    public void Dispose()
    {
        Faults.Dispose();
        endpoint.Dispose();
        broker.Dispose();
    }

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// An entity's messages as the broker holds them: <see cref="Active"/> (locked and deferred included, as Service Bus
/// counts them), <see cref="Scheduled"/> and <see cref="DeadLettered"/>. A topic has only scheduled ones of its own.
/// </summary>
public sealed record EntityMessageCounts(long Active, long Scheduled, long DeadLettered);
