using System.Globalization;
using Azure.Messaging.ServiceBus;
using Bridge.Core;
using Bridge.Core.Intake;
using Bridge.Emulators.ServiceBus;
using Bridge.Server.Internal;

namespace Bridge.Server;

/// <summary>
/// Service Bus → Cloud Tasks in batches: several receive loops, each taking up to <see cref="MaxBatchSizeSetting"/>
/// peek-locked messages at a time, forwarding them together (BatchCreateTasks per queue) and settling each message on
/// its own result by the same decision as the function app (complete / dead-letter with reason / hand back for later).
/// Locks are renewed while a batch is under way; stopping lets the batches under way finish. With a hand-back queue
/// configured (<c>BridgeServiceBusHandBackQueue</c>) it receives from that queue too, on the same connection: a topic
/// subscription's messages are handed back there.
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
    TimeProvider time,
    ServiceBusEmulatorHost? embeddedServiceBus = null) : IHostedLifecycleService, IAsyncDisposable
{
    /// <summary>Logged when stopping begins and the messages under way are being finished.</summary>
    public const int DrainingEventId = 403;

    /// <summary>Messages received and forwarded together at most: 1 to 100 (one BatchCreateTasks call), default 100.</summary>
    public const string MaxBatchSizeSetting = "Bridge:ServiceBus:MaxBatchSize";

    /// <summary>
    /// Messages the receiver fetches ahead of the loops; default 0 (each receive asks for a batch's worth).
    /// Prefetched messages are locked; stopping releases them.
    /// </summary>
    public const string PrefetchCountSetting = "Bridge:ServiceBus:PrefetchCount";

    /// <summary>Receive loops, so batches under way at once (setting <c>Bridge:ServiceBus:MaxConcurrentCalls</c>).</summary>
    public const int DefaultConcurrentBatches = 4;

    /// <summary>How long one receive waits for a first message before asking again (and noticing a stop).</summary>
    public static readonly TimeSpan ReceiveMaxWait = TimeSpan.FromSeconds(5);

    /// <summary>Locks are renewed for this long at most, like the processor's MaxAutoLockRenewalDuration.</summary>
    public static readonly TimeSpan MaxLockRenewal = TimeSpan.FromMinutes(5);

    /// <summary>Bounds giving a message back after its batch failed, so a broker that is gone can't hold stopping up.</summary>
    private static readonly TimeSpan AbandonTimeout = TimeSpan.FromSeconds(30);

    /// <summary>The wait after a receive error before the loop tries again.</summary>
    private static readonly TimeSpan ReceiveErrorBackoff = TimeSpan.FromSeconds(1);

    private readonly string _entity = configuration[ServiceBusConnection.QueueSetting] ?? string.Empty;

    // Cancels the forwards under way only when the host's shutdown timeout runs out. Stopping itself only ends the
    // receives (_stopReceiving), which would otherwise cut off the very forwards stopping waits for.
    private readonly CancellationTokenSource _shutdownExpired = new();
    private readonly CancellationTokenSource _stopReceiving = new();
    private readonly List<ServiceBusReceiver> _receivers = [];
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, ServiceBusSender> _senders = new(StringComparer.OrdinalIgnoreCase);
    private ServiceBusClient? _client;
    private Task[] _loops = [];

    /// <summary>True when a connection and a queue are configured.</summary>
    public static bool IsConfigured(IConfiguration configuration) =>
        !string.IsNullOrEmpty(configuration[ServiceBusConnection.QueueSetting]) && ServiceBusConnection.FromConfiguration(configuration).IsConfigured;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var maxBatchSize = Setting(MaxBatchSizeSetting, ServiceBusMessageHandler.MaxBatchSize, 1, ServiceBusMessageHandler.MaxBatchSize, "one BatchCreateTasks call's worth");
        var loops = Setting(ServiceBusConnection.MaxConcurrentCallsSetting, DefaultConcurrentBatches, 1, ServiceBusIntakeSettingsValidator.MaxConcurrentCallsLimit, "batches under way at once");
        var prefetch = Setting(PrefetchCountSetting, 0, 0, ServiceBusIntakeSettingsValidator.MaxPrefetchCount, "messages fetched ahead");

        // The embedded endpoint is started by now (registered first); its port may have been 0 until it bound.
        var connection = embeddedServiceBus?.Emulator is { } local
            ? new ServiceBusConnection { ConnectionString = local.ConnectionString }
            : ServiceBusConnection.FromConfiguration(configuration);
        _client = connection.CreateClient();
        if (handler.AbandonsInsteadOfHandingBack(_entity))
        {
            LogNoHandBackQueue(_entity, ServiceBusConnection.HandBackQueueSetting);
        }

        var started = new List<Task>();
        string[] entities = handler.HandBackQueue is { } handBackQueue ? [_entity, handBackQueue] : [_entity];
        foreach (var entity in entities)
        {
            var receiver = _client.CreateReceiver(entity, new ServiceBusReceiverOptions { ReceiveMode = ServiceBusReceiveMode.PeekLock, PrefetchCount = prefetch });
            _receivers.Add(receiver);
            started.AddRange(Enumerable.Range(0, loops).Select(_ => Task.Run(() => ReceiveLoopAsync(receiver, entity, maxBatchSize), CancellationToken.None)));
            LogStarted(entity, maxBatchSize, loops);
        }

        _loops = [.. started];
        return Task.CompletedTask;
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>
    /// Stops receiving and waits for the batches under way, while everything they forward to still runs, so no
    /// message is left half-done. If the host's shutdown timeout runs out first, the forwards still running are
    /// cancelled and their messages given back at once (abandoned; a named task deduplicates the redelivery).
    /// </summary>
    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        if (_receivers.Count > 0)
        {
            LogDraining(_entity);
            await using var _ = cancellationToken.Register(() => _shutdownExpired.Cancel());
            await _stopReceiving.CancelAsync();
            await Task.WhenAll(_loops);
            LogDrained(_entity);
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        // Detaches the receiver links now, while the broker is still reachable (the embedded one stops after this). A
        // message prefetched but never handed to a loop stays locked until its lock expires, as Service Bus does.
        foreach (var receiver in _receivers)
        {
            // Bounded on its own: the host's token may have run out already while the batches under way finished.
            using var bounded = new CancellationTokenSource(AbandonTimeout, time);
            await receiver.CloseAsync(bounded.Token);
        }
    }

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>
    /// Forwards one received batch and settles each message through <paramref name="receiver"/>, renewing the locks
    /// meanwhile; a message whose settlement failed is abandoned so it comes back at once. Public so tests drive it
    /// with messages from ServiceBusModelFactory.
    /// </summary>
    public Task ProcessBatchAsync(IReadOnlyList<ServiceBusReceivedMessage> messages, ServiceBusReceiver receiver) =>
        ProcessBatchAsync(messages, receiver, _entity);

    private async Task ProcessBatchAsync(IReadOnlyList<ServiceBusReceivedMessage> messages, ServiceBusReceiver receiver, string entity)
    {
        ArgumentNullException.ThrowIfNull(messages);
        ArgumentNullException.ThrowIfNull(receiver);
        var settlers = messages.Select(m => new ReceiverSettler(receiver, m, SenderFor)).ToList();
        using var renewing = new CancellationTokenSource();
        var renewal = new MessageLockRenewal(
            time,
            MaxLockRenewal,
            async (message, ct) =>
            {
                await receiver.RenewMessageLockAsync(message, ct);
                return message.LockedUntil;
            },
            (message, ex) => LogRenewFailed(message.MessageId, ex.Reason.ToString())).RunAsync(settlers, renewing.Token);
        try
        {
            await handler.HandleBatchAsync(messages, entity, settlers, _shutdownExpired.Token);
        }
#pragma warning disable CA1031 // whatever went wrong, the messages not settled are given back, not left locked
        catch (Exception ex)
#pragma warning restore CA1031
        {
            var unsettled = settlers.Where(s => !s.Settled).ToList();
            LogBatchFailed(entity, messages.Count, unsettled.Count, ex);
            using var bounded = new CancellationTokenSource(AbandonTimeout, time);
            await Task.WhenAll(unsettled.Select(s => s.TryAbandonAsync(bounded.Token)));
        }
        finally
        {
            await renewing.CancelAsync();
            await renewal;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stopReceiving.IsCancellationRequested)
        {
            await _stopReceiving.CancelAsync();
        }

        await Task.WhenAll(_loops).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _shutdownExpired.Dispose();
        _stopReceiving.Dispose();
        foreach (var receiver in _receivers)
        {
            await receiver.DisposeAsync();
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

    private ServiceBusSender SenderFor(string entity) =>
        _senders.GetOrAdd(entity, e => (_client ?? throw new InvalidOperationException("The intake has not started.")).CreateSender(e));

    private async Task ReceiveLoopAsync(ServiceBusReceiver receiver, string entity, int maxBatchSize)
    {
        var stop = _stopReceiving.Token;
        while (!stop.IsCancellationRequested)
        {
            IReadOnlyList<ServiceBusReceivedMessage> batch;
            try
            {
                batch = await receiver.ReceiveMessagesAsync(maxBatchSize, ReceiveMaxWait, stop);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // a receive error (broker restarting, link lost) must not end the loop
            catch (Exception ex)
#pragma warning restore CA1031
            {
                LogReceiveError(entity, ex);
                try
                {
                    await Task.Delay(ReceiveErrorBackoff, time, stop);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                continue;
            }

            if (batch.Count > 0)
            {
                await ProcessBatchAsync(batch, receiver, entity);
            }
        }
    }

    private int Setting(string key, int defaultValue, int min, int max, string meaning)
    {
        var text = configuration[key];
        if (string.IsNullOrEmpty(text))
        {
            return defaultValue;
        }

        return int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max
            ? value
            : throw new InvalidOperationException($"{key} '{text}' must be a whole number from {min} to {max} ({meaning}).");
    }

    [LoggerMessage(EventId = 400, Level = LogLevel.Information, Message = "Receiving Service Bus messages from {Entity} in batches of up to {MaxBatchSize}, {Loops} at once")]
    private partial void LogStarted(string entity, int maxBatchSize, int loops);

    [LoggerMessage(EventId = DrainingEventId, Level = LogLevel.Information, Message = "Stopping: no more messages from {Entity}; finishing the ones under way")]
    private partial void LogDraining(string entity);

    [LoggerMessage(EventId = 402, Level = LogLevel.Information, Message = "Stopped receiving from {Entity}; the messages under way are settled")]
    private partial void LogDrained(string entity);

    [LoggerMessage(EventId = 401, Level = LogLevel.Warning, Message = "Service Bus receive error on {Entity}")]
    private partial void LogReceiveError(string entity, Exception exception);

    [LoggerMessage(EventId = 404, Level = LogLevel.Warning, Message = "A batch of {Count} messages from {Entity} failed; giving back the {Unsettled} not settled")]
    private partial void LogBatchFailed(string entity, int count, int unsettled, Exception exception);

    [LoggerMessage(EventId = 405, Level = LogLevel.Warning, Message = "Could not renew the lock of message {MessageId} ({Reason})")]
    private partial void LogRenewFailed(string messageId, string reason);

    [LoggerMessage(EventId = 406, Level = LogLevel.Warning, Message = "{Entity} is a topic subscription and {Setting} names no hand-back queue: a message whose task can't be created yet is abandoned and redelivered at once, and dead-lettered after the subscription's MaxDeliveryCount (MaxDeliveryCountExceeded), not handed back with a growing delay within its route's retry budget. Configure a hand-back queue")]
    private partial void LogNoHandBackQueue(string entity, string setting);

    /// <summary>Settlement through the receiver that holds the message's lock; remembers whether it settled.</summary>
    private sealed class ReceiverSettler(ServiceBusReceiver receiver, ServiceBusReceivedMessage message, Func<string, ServiceBusSender> senderFor) : IServiceBusSettler, IRenewableLock
    {
        private volatile bool _settled;

        public ServiceBusReceivedMessage Message => message;

        public bool Settled => _settled;

        public async Task CompleteAsync(CancellationToken cancellationToken)
        {
            await receiver.CompleteMessageAsync(message, cancellationToken);
            _settled = true;
        }

        public async Task DeadLetterAsync(string reason, string description, CancellationToken cancellationToken)
        {
            await receiver.DeadLetterMessageAsync(message, reason, description, cancellationToken);
            _settled = true;
        }

        public async Task AbandonAsync(CancellationToken cancellationToken)
        {
            await receiver.AbandonMessageAsync(message, cancellationToken: cancellationToken);
            _settled = true;
        }

        public Task ScheduleCopyAsync(string entity, ServiceBusMessage copy, CancellationToken cancellationToken) =>
            senderFor(entity).SendMessageAsync(copy, cancellationToken);

        public ServiceBusSender? CopySender(string entity) => senderFor(entity);

        /// <summary>Gives the message back after its batch failed; a lock already lost needs nothing.</summary>
        public async Task TryAbandonAsync(CancellationToken cancellationToken)
        {
            try
            {
                await AbandonAsync(cancellationToken);
            }
            catch (ServiceBusException)
            {
                // The lock is gone (expired or the link closed): the broker gives the message out again by itself.
            }
            catch (OperationCanceledException)
            {
                // Bounded: the lock expiring gives it back.
            }
        }
    }
}
