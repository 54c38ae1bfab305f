using Azure.Messaging.ServiceBus;
using Bridge.Core;
using Bridge.Core.Intake;
using Bridge.Emulators.ServiceBus;

namespace Bridge.Server;

/// <summary>
/// Service Bus → Cloud Tasks with <c>ServiceBusProcessor</c>: peek-lock, bounded concurrency, each message settled by
/// the same decision as the function app (complete / dead-letter with reason / hand back for later); stopping lets in-flight
/// messages finish. With a hand-back queue configured (<c>BridgeServiceBusHandBackQueue</c>) it
/// receives from that queue too, on the same connection: a topic subscription's messages are handed back there.
/// </summary>
/// <remarks>
/// Drains in <see cref="StoppingAsync"/>, which the host calls on every lifecycle service before it stops any of them:
/// the web server (and with it the embedded Cloud Tasks emulator's gRPC endpoint) stops in <c>StopAsync</c>, and a
/// forward still under way then would fail and hand its message back instead of completing it.
/// </remarks>
public sealed partial class ServiceBusIntakeService(
    ServiceBusMessageHandler handler,
    IConfiguration configuration,
    ILogger<ServiceBusIntakeService> logger,
    ServiceBusEmulatorHost? embeddedServiceBus = null) : IHostedLifecycleService, IAsyncDisposable
{
    /// <summary>Logged when stopping begins and the messages under way are being finished.</summary>
    public const int DrainingEventId = 403;

    /// <summary>
    /// Messages the processor fetches ahead of its handlers; default twice the concurrency (0: one receive per free
    /// handler). Measured with bench/Bridge.ServiceBusIntake.Bench: prefetch 32 at 16 calls gave a better
    /// Service Bus/HTTP ratio than 0 or 64. Prefetched messages are locked; stopping releases them.
    /// </summary>
    public const string PrefetchCountSetting = "Bridge:ServiceBus:PrefetchCount";

    public const int DefaultMaxConcurrentCalls = 8;

    public const int DefaultPrefetchPerCall = 2;

    private readonly string _entity = configuration[ServiceBusConnection.QueueSetting] ?? string.Empty;

    // Cancels the forwards under way only when the host's shutdown timeout runs out. The processor's own token is
    // signalled as soon as stopping begins, which would cut off the very forwards stopping waits for.
    private readonly CancellationTokenSource _shutdownExpired = new();
    private readonly List<(string Entity, ServiceBusProcessor Processor)> _processors = [];
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, ServiceBusSender> _senders = new(StringComparer.OrdinalIgnoreCase);
    private ServiceBusClient? _client;

    /// <summary>True when a connection and a queue are configured.</summary>
    public static bool IsConfigured(IConfiguration configuration) =>
        !string.IsNullOrEmpty(configuration[ServiceBusConnection.QueueSetting]) && ServiceBusConnection.FromConfiguration(configuration).IsConfigured;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        // The embedded endpoint is started by now (registered first); its port may have been 0 until it bound.
        var connection = embeddedServiceBus?.Emulator is { } local
            ? new ServiceBusConnection { ConnectionString = local.ConnectionString }
            : ServiceBusConnection.FromConfiguration(configuration);
        _client = connection.CreateClient();
        if (handler.AbandonsInsteadOfHandingBack(_entity))
        {
            LogNoHandBackQueue(_entity, ServiceBusConnection.HandBackQueueSetting);
        }

        string[] entities = handler.HandBackQueue is { } handBackQueue ? [_entity, handBackQueue] : [_entity];
        foreach (var entity in entities)
        {
            var concurrency = configuration.GetValue(ServiceBusConnection.MaxConcurrentCallsSetting, DefaultMaxConcurrentCalls);
            var processor = _client.CreateProcessor(entity, new ServiceBusProcessorOptions
            {
                AutoCompleteMessages = false,
                MaxConcurrentCalls = concurrency,
                PrefetchCount = configuration.GetValue(PrefetchCountSetting, concurrency * DefaultPrefetchPerCall),
                ReceiveMode = ServiceBusReceiveMode.PeekLock,
            });
            processor.ProcessMessageAsync += args => ProcessAsync(args, entity);
            processor.ProcessErrorAsync += args =>
            {
                LogReceiveError(args.ErrorSource.ToString(), args.Exception);
                return Task.CompletedTask;
            };
            _processors.Add((entity, processor));
        }

        foreach (var (entity, processor) in _processors)
        {
            await processor.StartProcessingAsync(cancellationToken);
            LogStarted(entity);
        }
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>
    /// Stops receiving and waits for the handlers under way, while everything they forward to still runs, so no
    /// message is left half-done. If the host's shutdown timeout runs out first, the forwards still running are
    /// cancelled and their messages handed back (the processor abandons a message whose handler failed; a named task
    /// deduplicates the redelivery).
    /// </summary>
    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        if (_processors.Count > 0)
        {
            LogDraining(_entity);
            await using var _ = cancellationToken.Register(() => _shutdownExpired.Cancel());
            await Task.WhenAll(_processors.Select(p => p.Processor.StopProcessingAsync(cancellationToken)));
            LogDrained(_entity);
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        // Detaches the receiver links now, while the broker is still reachable: a message delivered to a link but
        // not yet handed to a handler is released at once rather than held until its lock expires.
        foreach (var (_, processor) in _processors)
        {
            await processor.CloseAsync(cancellationToken);
        }
    }

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Settles one message; public so tests drive it with messages from ServiceBusModelFactory.</summary>
    public Task ProcessAsync(ProcessMessageEventArgs args) => ProcessAsync(args, _entity);

    private Task ProcessAsync(ProcessMessageEventArgs args, string entity)
    {
        ArgumentNullException.ThrowIfNull(args);
        return handler.HandleAsync(args.Message, entity, new ProcessorSettler(args, SenderFor), _shutdownExpired.Token);
    }

    /// <summary>A sender on the processors' own client: one connection for receiving and handing back.</summary>
    private ServiceBusSender SenderFor(string entity) =>
        _senders.GetOrAdd(entity, e => (_client ?? throw new InvalidOperationException("The intake has not started.")).CreateSender(e));

    public async ValueTask DisposeAsync()
    {
        _shutdownExpired.Dispose();
        foreach (var (_, processor) in _processors)
        {
            await processor.DisposeAsync();
        }

        foreach (var sender in _senders.Values)
        {
            await sender.DisposeAsync();
        }

        if (_client is not null)
        {
            await _client.DisposeAsync();
        }
    }

    [LoggerMessage(EventId = 400, Level = LogLevel.Information, Message = "Receiving Service Bus messages from {Entity}")]
    private partial void LogStarted(string entity);

    [LoggerMessage(EventId = DrainingEventId, Level = LogLevel.Information, Message = "Stopping: no more messages from {Entity}; finishing the ones under way")]
    private partial void LogDraining(string entity);

    [LoggerMessage(EventId = 402, Level = LogLevel.Information, Message = "Stopped receiving from {Entity}; the messages under way are settled")]
    private partial void LogDrained(string entity);

    [LoggerMessage(EventId = 404, Level = LogLevel.Warning, Message = "{Entity} is a topic subscription and {Setting} names no hand-back queue: a message whose task can't be created yet is abandoned and redelivered at once, and dead-lettered after the subscription's MaxDeliveryCount (MaxDeliveryCountExceeded), not handed back with a growing delay within its route's retry budget. Configure a hand-back queue")]
    private partial void LogNoHandBackQueue(string entity, string setting);

    [LoggerMessage(EventId = 401, Level = LogLevel.Warning, Message = "Service Bus receive error ({Source})")]
    private partial void LogReceiveError(string source, Exception exception);

    /// <summary>Settlement through the processor's event arguments (the message's receiver link).</summary>
    private sealed class ProcessorSettler(ProcessMessageEventArgs args, Func<string, ServiceBusSender> senderFor) : IServiceBusSettler
    {
        public Task CompleteAsync(CancellationToken cancellationToken) => args.CompleteMessageAsync(args.Message, cancellationToken);

        public Task DeadLetterAsync(string reason, string description, CancellationToken cancellationToken) =>
            args.DeadLetterMessageAsync(args.Message, reason, description, cancellationToken);

        public Task AbandonAsync(CancellationToken cancellationToken) => args.AbandonMessageAsync(args.Message, cancellationToken: cancellationToken);

        public Task ScheduleCopyAsync(string entity, ServiceBusMessage copy, CancellationToken cancellationToken) =>
            senderFor(entity).SendMessageAsync(copy, cancellationToken);
    }
}
