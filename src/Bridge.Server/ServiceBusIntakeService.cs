using Azure.Messaging.ServiceBus;
using Bridge.Core;
using Bridge.Core.Intake;
using Bridge.Emulators.ServiceBus;

namespace Bridge.Server;

/// <summary>
/// Service Bus → Cloud Tasks with <c>ServiceBusProcessor</c>: peek-lock, bounded concurrency, each message settled by
/// the same decision as the function app (complete / dead-letter with reason / hand back for later); stopping lets in-flight
/// messages finish.
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
    private ServiceBusClient? _client;
    private ServiceBusProcessor? _processor;
    private ServiceBusSender? _handBackSender;

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
        _handBackSender = _client.CreateSender(_entity);
        var concurrency = configuration.GetValue(ServiceBusConnection.MaxConcurrentCallsSetting, DefaultMaxConcurrentCalls);
        _processor = _client.CreateProcessor(_entity, new ServiceBusProcessorOptions
        {
            AutoCompleteMessages = false,
            MaxConcurrentCalls = concurrency,
            PrefetchCount = configuration.GetValue(PrefetchCountSetting, concurrency * DefaultPrefetchPerCall),
            ReceiveMode = ServiceBusReceiveMode.PeekLock,
        });
        _processor.ProcessMessageAsync += ProcessAsync;
        _processor.ProcessErrorAsync += args =>
        {
            LogReceiveError(args.ErrorSource.ToString(), args.Exception);
            return Task.CompletedTask;
        };
        await _processor.StartProcessingAsync(cancellationToken);
        LogStarted(_entity);
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
        if (_processor is not null)
        {
            LogDraining(_entity);
            await using var _ = cancellationToken.Register(() => _shutdownExpired.Cancel());
            await _processor.StopProcessingAsync(cancellationToken);
            LogDrained(_entity);
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_processor is not null)
        {
            // Detaches the receiver link now, while the broker is still reachable: a message delivered to the link
            // but not yet handed to a handler is released at once rather than held until its lock expires.
            await _processor.CloseAsync(cancellationToken);
        }
    }

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Settles one message; public so tests drive it with messages from ServiceBusModelFactory.</summary>
    public Task ProcessAsync(ProcessMessageEventArgs args)
    {
        ArgumentNullException.ThrowIfNull(args);
        return handler.HandleAsync(args.Message, _entity, new ProcessorSettler(args, _handBackSender), _shutdownExpired.Token);
    }

    public async ValueTask DisposeAsync()
    {
        _shutdownExpired.Dispose();
        if (_processor is not null)
        {
            await _processor.DisposeAsync();
        }

        if (_handBackSender is not null)
        {
            await _handBackSender.DisposeAsync();
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

    [LoggerMessage(EventId = 401, Level = LogLevel.Warning, Message = "Service Bus receive error ({Source})")]
    private partial void LogReceiveError(string source, Exception exception);

    /// <summary>Settlement through the processor's event arguments (the message's receiver link).</summary>
    private sealed class ProcessorSettler(ProcessMessageEventArgs args, ServiceBusSender? handBackSender) : IServiceBusSettler
    {
        public Task CompleteAsync(CancellationToken cancellationToken) => args.CompleteMessageAsync(args.Message, cancellationToken);

        public Task DeadLetterAsync(string reason, string description, CancellationToken cancellationToken) =>
            args.DeadLetterMessageAsync(args.Message, reason, description, cancellationToken);

        public Task AbandonAsync(CancellationToken cancellationToken) => args.AbandonMessageAsync(args.Message, cancellationToken: cancellationToken);

        public Task ScheduleCopyAsync(ServiceBusMessage copy, CancellationToken cancellationToken) =>
            (handBackSender ?? throw new InvalidOperationException("The intake has not started.")).SendMessageAsync(copy, cancellationToken);
    }
}
