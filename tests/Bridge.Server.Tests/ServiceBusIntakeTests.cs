using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Azure.Messaging.ServiceBus;
using Bridge.Emulators.CloudTasks;
using Bridge.Emulators.ServiceBus;
using Bridge.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Bridge.Server.Tests;

/// <summary>
/// The runner's Service Bus intake against the local Service Bus emulator over AMQP: messages sent with the official
/// SDK, received by the runner's ServiceBusProcessor, forwarded to the embedded Cloud Tasks emulator, settled for real.
/// </summary>
public sealed class ServiceBusIntakeTests
{
    private const string Queue = "orders-in";
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task A_message_is_completed_once_its_task_exists_and_comes_back_as_one_delivered_outcome()
    {
        await using var h = await Harness.StartAsync();
        await using var sender = h.Client.CreateSender(Queue);

        await sender.SendMessageAsync(new ServiceBusMessage("{\"order\":1}") { MessageId = "m1", ContentType = "application/json" });

        var outcome = Assert.Single(await h.Server.WaitForOutcomesAsync(1));
        await h.WaitUntilEmptyAsync(Queue);
        await h.WaitUntilCloudTasksIdleAsync();
        Assert.Single(await h.Server.OutcomesAsync());
        var data = outcome.GetProperty("data");
        Assert.Equal("dev.bridge.task.delivered", outcome.GetProperty("type").GetString());
        Assert.Equal("{\"order\":1}", Encoding.UTF8.GetString(Convert.FromBase64String(data.GetProperty("payload").GetString()!)));
        Assert.Equal("servicebus-message-id", data.GetProperty("identityKind").GetString());
        Assert.Equal("m1", data.GetProperty("correlationId").GetString());
        Assert.Empty(await h.PeekAsync(Queue + ServiceBusPeek.DeadLetterQueue));
    }

    [Fact]
    public async Task Each_MessageId_sent_one_to_three_times_becomes_exactly_one_task_and_one_delivered_outcome()
    {
        await using var h = await Harness.StartAsync();
        await using var sender = h.Client.CreateSender(Queue);

        for (var i = 0; i < 3; i++)
        {
            for (var copy = 0; copy <= i; copy++)
            {
                await sender.SendMessageAsync(new ServiceBusMessage($"{{\"order\":{i}}}") { MessageId = $"order-{i}", CorrelationId = $"corr-{i}" });
            }
        }

        await h.Server.WaitForOutcomesAsync(3);
        await h.WaitUntilEmptyAsync(Queue); // all six settled: every CreateTask has returned
        await h.WaitUntilCloudTasksIdleAsync(); // and every task it created has been dispatched and reported

        var outcomes = await h.Server.OutcomesAsync();
        Assert.Equal(3, outcomes.Count);
        Assert.Equal(3, outcomes.Select(o => o.GetProperty("subject").GetString()).Distinct().Count());
        Assert.All(outcomes, o => Assert.Equal("dev.bridge.task.delivered", o.GetProperty("type").GetString()));
        Assert.Equal(["corr-0", "corr-1", "corr-2"], outcomes.Select(o => o.GetProperty("data").GetProperty("correlationId").GetString()).Order(StringComparer.Ordinal));
        Assert.Empty(await h.PeekAsync(Queue + ServiceBusPeek.DeadLetterQueue));
    }

    [Fact]
    public async Task Messages_sent_in_batches_with_each_MessageId_one_to_three_times_become_exactly_one_task_each()
    {
        await using var h = await Harness.StartAsync();
        await using var sender = h.Client.CreateSender(Queue);
        var messages = Enumerable.Range(0, 40)
            .SelectMany(i => Enumerable.Range(0, (i % 3) + 1).Select(_ => i))
            .OrderBy(i => (i * 7919) % 83) // copies spread over different batches, and some in the same one
            .Select(i => new ServiceBusMessage($"{{\"order\":{i}}}") { MessageId = $"batched-{i}", CorrelationId = $"corr-{i}" })
            .ToList();

        foreach (var chunk in messages.Chunk(30))
        {
            await sender.SendMessagesAsync(chunk);
        }

        await h.Server.WaitForOutcomesAsync(40, Wait);
        await h.WaitUntilEmptyAsync(Queue);
        await h.WaitUntilCloudTasksIdleAsync();

        var outcomes = await h.Server.OutcomesAsync();
        Assert.Equal(40, outcomes.Count); // one task per MessageId, however often and in whichever batch it came
        Assert.Equal(Enumerable.Range(0, 40).Select(i => $"corr-{i}").Order(StringComparer.Ordinal), outcomes.Select(o => o.GetProperty("data").GetProperty("correlationId").GetString()).Order(StringComparer.Ordinal));
        Assert.Empty(await h.PeekAsync(Queue + ServiceBusPeek.DeadLetterQueue));
    }

    [Fact]
    public async Task A_batch_with_mixed_results_settles_each_message_on_its_own_result()
    {
        await using var h = await Harness.StartAsync(settings: ["--Bridge:MaxBodyBytes=1000"]);
        await using var sender = h.Client.CreateSender(Queue);

        await sender.SendMessagesAsync(
        [
            new ServiceBusMessage("{\"ok\":1}") { MessageId = "ok-1" },
            new ServiceBusMessage("{}") { MessageId = "bad-delay", ApplicationProperties = { ["bridge-delay"] = "eventually" } },
            new ServiceBusMessage("{\"ok\":1}") { MessageId = "ok-1" }, // its duplicate, in the same batch
            new ServiceBusMessage(new byte[5000]) { MessageId = "too-big" },
            new ServiceBusMessage("{}") { MessageId = "no-route", ApplicationProperties = { ["bridge-route"] = "nope" } },
            new ServiceBusMessage("{\"ok\":2}") { MessageId = "ok-2" },
        ]);

        await h.WaitUntilCountAsync(Queue + ServiceBusPeek.DeadLetterQueue, 3);
        await h.Server.WaitForOutcomesAsync(2, Wait);
        await h.WaitUntilEmptyAsync(Queue);
        await h.WaitUntilCloudTasksIdleAsync();

        var dead = (await h.PeekAsync(Queue + ServiceBusPeek.DeadLetterQueue)).ToDictionary(m => m.MessageId);
        Assert.Equal(["bad-delay", "no-route", "too-big"], dead.Keys.Order(StringComparer.Ordinal));
        Assert.Equal("InvalidSchedule", dead["bad-delay"].DeadLetterReason);
        Assert.Equal("PayloadTooLarge", dead["too-big"].DeadLetterReason);
        Assert.Equal("UnknownRoute", dead["no-route"].DeadLetterReason);
        var outcomes = await h.Server.OutcomesAsync();
        Assert.Equal(["ok-1", "ok-2"], outcomes.Select(o => o.GetProperty("data").GetProperty("correlationId").GetString()).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task A_batch_size_over_100_stops_the_start_naming_the_setting()
    {
        await using var server = await RunningServer.StartAsync("--BridgeServiceBusQueue=orders-in");
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { [ServiceBusIntakeService.MaxBatchSizeSetting] = "500", ["BridgeServiceBusQueue"] = "orders-in" })
            .Build();
        await using var service = ActivatorUtilities.CreateInstance<ServiceBusIntakeService>(server.Services, configuration);

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => service.StartAsync(CancellationToken.None));

        Assert.Equal("Bridge:ServiceBus:MaxBatchSize '500' must be a whole number from 1 to 100 (one BatchCreateTasks call's worth).", error.Message);
    }

    [Fact]
    public async Task Permanent_failures_are_dead_lettered_with_the_bridges_reason_and_description()
    {
        await using var h = await Harness.StartAsync(settings: ["--Bridge:MaxBodyBytes=1000"]);
        await using var sender = h.Client.CreateSender(Queue);

        await sender.SendMessageAsync(new ServiceBusMessage("{}") { MessageId = "bad-delay", ApplicationProperties = { ["bridge-delay"] = "eventually" } });
        await sender.SendMessageAsync(new ServiceBusMessage(new byte[5000]) { MessageId = "too-big" });
        await sender.SendMessageAsync(new ServiceBusMessage("{}") { MessageId = "no-route", ApplicationProperties = { ["bridge-route"] = "nope" } });

        await h.WaitUntilCountAsync(Queue + ServiceBusPeek.DeadLetterQueue, 3);
        var dead = await h.PeekAsync(Queue + ServiceBusPeek.DeadLetterQueue);
        var byId = dead.ToDictionary(m => m.MessageId);
        Assert.Equal("InvalidSchedule", byId["bad-delay"].DeadLetterReason);
        Assert.Contains("bridge-delay", byId["bad-delay"].DeadLetterErrorDescription, StringComparison.Ordinal);
        Assert.Equal("PayloadTooLarge", byId["too-big"].DeadLetterReason);
        Assert.StartsWith("The body is 5000 bytes", byId["too-big"].DeadLetterErrorDescription, StringComparison.Ordinal);
        Assert.Equal("UnknownRoute", byId["no-route"].DeadLetterReason);
        Assert.Equal("Property 'bridge-route' names route 'nope', which is not configured.", byId["no-route"].DeadLetterErrorDescription);
        Assert.All(dead, m => Assert.Equal(1, m.DeliveryCount)); // dead-lettered on the first delivery, not retried
        Assert.Empty(await h.PeekAsync(Queue));
        await h.WaitUntilCloudTasksIdleAsync();
        Assert.Empty(await h.Server.OutcomesAsync());
    }

    [Fact]
    public async Task The_lock_is_renewed_while_a_slow_forward_runs_and_the_message_is_completed_once()
    {
        await using var relay = GatedRelay.Start();
        await using var h = await Harness.StartAsync(q => q.Properties.LockDuration = TimeSpan.FromSeconds(2), relay);
        await using var sender = h.Client.CreateSender(Queue);

        await sender.SendMessageAsync(new ServiceBusMessage("{\"slow\":true}") { MessageId = "slow" });
        await relay.Held.WaitAsync(Wait); // the CreateTask is on its way and held
        await h.BrokerLog.ReachedAsync(BrokerLog.LockRenewed, 3).WaitAsync(Wait); // three lock renewals: well past the first lock's two seconds
        Assert.Single(await h.PeekAsync(Queue)); // not completed before the task exists
        relay.Open();

        Assert.Single(await h.Server.WaitForOutcomesAsync(1));
        await h.WaitUntilEmptyAsync(Queue);
        Assert.Equal(0, h.BrokerLog.Count(BrokerLog.LockExpired));
        Assert.Empty(await h.PeekAsync(Queue + ServiceBusPeek.DeadLetterQueue));
    }

    [Fact]
    public async Task Stopping_the_runner_with_messages_in_flight_leaves_none_locked_and_unsettled()
    {
        await using var relay = GatedRelay.Start();
        await using var h = await Harness.StartAsync(q => q.Properties.LockDuration = TimeSpan.FromMinutes(5), relay);
        await using var sender = h.Client.CreateSender(Queue);
        for (var i = 0; i < 3; i++)
        {
            await sender.SendMessageAsync(new ServiceBusMessage($"{{\"order\":{i}}}") { MessageId = $"in-flight-{i}" });
        }

        await relay.Held.WaitAsync(Wait);
        await WaitForAsync(async () => (await h.PeekAsync(Queue)).Count(m => m.DeliveryCount >= 1) == 3, "all three messages locked by the runner");
        var stop = h.StopServerAsync();
        await h.Draining.Task.WaitAsync(Wait); // stopping has begun: no new messages, the three under way still held
        relay.Open(); // the forwards under way finish while the runner stops
        await stop.WaitAsync(Wait);

        // Whatever is left must be available at once: a five-minute lock still held would keep it from this receiver.
        var left = await h.PeekAsync(Queue);
        await using var receiver = h.Client.CreateReceiver(Queue);
        var received = await ReceiveAsync(receiver, left.Count, TimeSpan.FromSeconds(20));
        Assert.Equal(left.Select(m => m.MessageId).Order(StringComparer.Ordinal), received.Select(m => m.MessageId).Order(StringComparer.Ordinal));
        Assert.Empty(left); // drained: the in-flight forwards finished and their messages were completed
        Assert.Empty(await h.PeekAsync(Queue + ServiceBusPeek.DeadLetterQueue));
    }

    [Fact]
    public async Task A_forward_still_running_when_the_shutdown_timeout_runs_out_hands_its_message_back_at_once()
    {
        await using var relay = GatedRelay.Start(); // never opened: the CreateTask never returns
        await using var h = await Harness.StartAsync(q => q.Properties.LockDuration = TimeSpan.FromMinutes(5), relay,
            configure: b => b.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(2)));
        await using var sender = h.Client.CreateSender(Queue);
        await sender.SendMessageAsync(new ServiceBusMessage("{\"order\":1}") { MessageId = "stuck" });
        await relay.Held.WaitAsync(Wait);
        await WaitForAsync(async () => (await h.PeekAsync(Queue)).Count(m => m.DeliveryCount >= 1) == 1, "the message locked by the runner");

        await h.StopServerAsync().WaitAsync(Wait);

        // Not lost, and not held for the rest of its five-minute lock either: handed back for the next receiver.
        await using var receiver = h.Client.CreateReceiver(Queue);
        var message = Assert.Single(await ReceiveAsync(receiver, 1, TimeSpan.FromSeconds(20)));
        Assert.Equal("stuck", message.MessageId);
        Assert.Equal(2, message.DeliveryCount);
        Assert.Empty(await h.PeekAsync(Queue + ServiceBusPeek.DeadLetterQueue));
    }

    private static async Task<List<ServiceBusReceivedMessage>> ReceiveAsync(ServiceBusReceiver receiver, int count, TimeSpan? timeout = null)
    {
        var result = new List<ServiceBusReceivedMessage>();
        var until = TimeProvider.System.GetUtcNow() + (timeout ?? Wait);
        while (result.Count < count && TimeProvider.System.GetUtcNow() < until)
        {
            result.AddRange(await receiver.ReceiveMessagesAsync(count - result.Count, TimeSpan.FromSeconds(1)));
        }

        return result.Count >= count ? result : throw new TimeoutException($"Received {result.Count} of {count} messages from {receiver.EntityPath}.");
    }

    /// <summary>Waits (bounded) for broker state only a peek shows: the emulator raises no event for it.</summary>
    private static Task WaitForAsync(Func<Task<bool>> condition, string what, TimeSpan? timeout = null) =>
        Eventually.HoldsAsync(condition, timeout ?? Wait, () => $"Waited {timeout ?? Wait} for {what}.");

    /// <summary>A Service Bus emulator with the queue, the runner pointed at it (embedded Cloud Tasks emulator unless settings say otherwise), and an SDK client.</summary>
    private sealed class Harness : IAsyncDisposable
    {
        private bool _stopped;


        private Harness(ServiceBusEmulator emulator, ILoggerFactory loggers, BrokerLog log, ServiceBusClient client, RunningServer server)
        {
            Emulator = emulator;
            Loggers = loggers;
            BrokerLog = log;
            Client = client;
            Server = server;
        }

        public ServiceBusEmulator Emulator { get; }

        public ILoggerFactory Loggers { get; }

        public BrokerLog BrokerLog { get; }

        public ServiceBusClient Client { get; }

        public RunningServer Server { get; }

        /// <summary>Completes when the runner's intake starts draining on stop.</summary>
        public TaskCompletionSource Draining { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public static async Task<Harness> StartAsync(Action<QueueDefinition>? queue = null, GatedRelay? relay = null, bool ownRoutes = false, string[]? settings = null,
            Action<Microsoft.AspNetCore.Builder.WebApplicationBuilder>? configure = null)
        {
            var definition = new QueueDefinition { Name = Queue };
            queue?.Invoke(definition);
            var options = new ServiceBusEmulatorOptions { Port = 0, Queues = { definition } };
            var log = new BrokerLog();
            var loggers = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Debug).AddProvider(log));
            var emulator = ServiceBusEmulator.Start(options, TimeProvider.System, loggers);
            string[] runner =
            [
                $"--BridgeServiceBus={emulator.ConnectionString}",
                $"--BridgeServiceBusQueue={Queue}",
                .. ownRoutes ? ["--Bridge:Server:EmbeddedEmulator=false"] : new[] { "--Bridge:Server:EmbeddedEmulator=true", $"--Bridge:Routes:demo:ServiceBusEntity={Queue}" },
                .. relay is null ? Array.Empty<string>() : [$"--Bridge:CloudTasks:EmulatorHost=127.0.0.1:{relay.Port}"],
                .. settings ?? [],
                "--Logging:LogLevel:Bridge.Server.ServiceBusIntakeService=Information",
            ];
            var draining = new DrainSignal();
            var server = await RunningServer.StartAsync(b =>
            {
                b.Logging.AddProvider(draining);
                configure?.Invoke(b);
            }, runner);
            relay?.RelayTo(server.EmulatorGrpcPort); // calls wait in the relay's backlog until then
            var client = new ServiceBusClient(emulator.ConnectionString);
            var harness = new Harness(emulator, loggers, log, client, server);
            draining.Signal = harness.Draining;
            return harness;
        }

        public async Task StopServerAsync()
        {
            _stopped = true;
            await Server.DisposeAsync();
        }

        public Task<IReadOnlyList<ServiceBusReceivedMessage>> PeekAsync(string path) => Client.PeekAllAsync(path);

        public Task WaitUntilEmptyAsync(string path) => WaitUntilCountAsync(path, 0);

        public Task WaitUntilCountAsync(string path, int count, TimeSpan? timeout = null) =>
            WaitForAsync(async () => (await PeekAsync(path)).Count == count, $"{count} messages in {path}", timeout);

        public Task WaitUntilCloudTasksIdleAsync() => Server.Services.GetRequiredService<CloudTasksEmulator>().WaitForIdleAsync(timeout: Wait);

        public async ValueTask DisposeAsync() => await Teardown.AllAsync(_stopped ? null : Server, Client, Emulator, Loggers);
    }

    /// <summary>Signals when the runner's intake logs that it is draining.</summary>
    private sealed class DrainSignal : ILoggerProvider, ILogger
    {
        public TaskCompletionSource? Signal { get; set; }

        public ILogger CreateLogger(string categoryName) => categoryName == typeof(ServiceBusIntakeService).FullName ? this : Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (eventId.Id == ServiceBusIntakeService.DrainingEventId)
            {
                Signal?.TrySetResult();
            }
        }

        public void Dispose()
        {
        }
    }

    /// <summary>Counts the Service Bus emulator's broker events by id (lock expired, lock renewed), and tells when a count is reached.</summary>
    private sealed class BrokerLog : ILoggerProvider, ILogger
    {
        public const int LockExpired = 3;
        public const int LockRenewed = 4;
        private readonly Lock _gate = new();
        private readonly Dictionary<int, int> _counts = [];
        private readonly List<(int EventId, int Count, TaskCompletionSource Reached)> _waiters = [];

        public int Count(int eventId)
        {
            lock (_gate)
            {
                return _counts.GetValueOrDefault(eventId);
            }
        }

        /// <summary>Completes once the broker has logged <paramref name="eventId"/> <paramref name="count"/> times.</summary>
        public Task ReachedAsync(int eventId, int count)
        {
            lock (_gate)
            {
                if (_counts.GetValueOrDefault(eventId) >= count)
                {
                    return Task.CompletedTask;
                }

                var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _waiters.Add((eventId, count, reached));
                return reached.Task;
            }
        }

        public ILogger CreateLogger(string categoryName) => categoryName == "Bridge.Emulators.ServiceBus.Broker" ? this : Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (_gate)
            {
                var count = _counts[eventId.Id] = _counts.GetValueOrDefault(eventId.Id) + 1;
                foreach (var waiter in _waiters.Where(w => w.EventId == eventId.Id && w.Count <= count).ToList())
                {
                    waiter.Reached.TrySetResult();
                    _waiters.Remove(waiter);
                }
            }
        }

        public void Dispose()
        {
        }
    }

    /// <summary>
    /// A loopback TCP relay in front of the embedded emulator's gRPC port that holds what the runner sends until
    /// <see cref="Open"/>, so CreateTask calls stay in flight for as long as a test needs.
    /// </summary>
    private sealed class GatedRelay : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly TaskCompletionSource _open = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _held = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly CancellationTokenSource _stop = new();
        private readonly ConcurrentBag<TcpClient> _sockets = [];
        private int _upstream;
        private Task _accepting = Task.CompletedTask;

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        /// <summary>Completes when the first bytes of a call have arrived and are being held.</summary>
        public Task Held => _held.Task;

        public static GatedRelay Start()
        {
            var relay = new GatedRelay();
            relay._listener.Start();
            return relay;
        }

        public void RelayTo(int upstreamPort)
        {
            _upstream = upstreamPort;
            _accepting = AcceptAsync();
        }

        public void Open() => _open.TrySetResult();

        private async Task AcceptAsync()
        {
            try
            {
                while (true)
                {
                    var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                    _sockets.Add(client);
                    _ = RelayAsync(client);
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
            }
        }

        private async Task RelayAsync(TcpClient client)
        {
            try
            {
                var upstream = new TcpClient();
                _sockets.Add(upstream);
                await upstream.ConnectAsync(IPAddress.Loopback, _upstream, _stop.Token);
                var down = upstream.GetStream().CopyToAsync(client.GetStream(), _stop.Token);
                var buffer = new byte[16 * 1024];
                var read = await client.GetStream().ReadAsync(buffer, _stop.Token);
                _held.TrySetResult();
                await _open.Task.WaitAsync(_stop.Token);
                await upstream.GetStream().WriteAsync(buffer.AsMemory(0, read), _stop.Token);
                var up = client.GetStream().CopyToAsync(upstream.GetStream(), _stop.Token);
                await Task.WhenAny(up, down);
            }
            catch (Exception ex) when (ex is OperationCanceledException or IOException or SocketException or ObjectDisposedException)
            {
            }
        }

        public async ValueTask DisposeAsync() => await Teardown.AllAsync([() => _stop.CancelAsync(), () => _listener.Stop(), () => _accepting, .. _sockets, _stop]);
    }
}
