using System.Diagnostics.Metrics;
using Azure.Messaging.ServiceBus;
using Bridge.Emulators.ServiceBus;
using Bridge.Server;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Bridge.Bench;

/// <summary>
/// What the Service Bus benchmarks share: the emulator with their queues, a runner built as <c>dotnet run</c> builds
/// it (production environment, so its OpenTelemetry tracer and meter listen), messages sent in batches with the .NET
/// SDK, the forwarded-events counter that tells when a side is done, and the checks and figures around a run.
/// In its own folder so benchmarks without Service Bus (which link <c>Shared/*.cs</c>) don't take it in.
/// </summary>
internal static class ServiceBusBench
{
    /// <summary>Messages per send (one SDK batch).</summary>
    public const int SendBatch = 100;

    public static ServiceBusEmulator StartEmulator(params string[] queues)
    {
        var options = new ServiceBusEmulatorOptions { Port = 0 };
        foreach (var queue in queues)
        {
            options.Queues.Add(new QueueDefinition { Name = queue });
        }

        return ServiceBusEmulator.Start(options);
    }

    /// <summary>
    /// A runner taking <paramref name="queue"/> from the emulator, plus <paramref name="settings"/> (<c>--key=value</c>).
    /// Its ports are bound as 0 when it is built; read them back with <see cref="Ports"/>.
    /// </summary>
    public static WebApplication BuildRunner(ServiceBusEmulator serviceBus, string queue, params string[] settings) => BridgeServerApp.Build(
    [
        "--Bridge:Server:Port=0",
        "--Bridge:Server:EmulatorGrpcPort=0",
        "--environment=Production",
        "--Logging:LogLevel:Default=Warning",
        $"--BridgeServiceBus={serviceBus.ConnectionString}",
        $"--BridgeServiceBusQueue={queue}",
        .. settings,
    ]);

    /// <summary>Sends <paramref name="count"/> messages named <c>{prefix}-{i}</c> in batches of <see cref="SendBatch"/>.</summary>
    public static async Task SendAsync(ServiceBusSender sender, string prefix, byte[] body, int count)
    {
        for (var sent = 0; sent < count;)
        {
            using var batch = await sender.CreateMessageBatchAsync();
            while (sent < count && batch.Count < SendBatch && batch.TryAddMessage(new ServiceBusMessage(body) { MessageId = $"{prefix}-{sent}", ContentType = "application/json" }))
            {
                sent++;
            }

            await sender.SendMessagesAsync(batch);
        }
    }

    /// <summary>Waits (bounded) until <paramref name="forwarded"/> reaches <paramref name="target"/>.</summary>
    public static async Task WaitForAsync(Func<long> forwarded, long target, string what)
    {
        var deadline = TimeProvider.System.GetTimestamp();
        while (forwarded() < target)
        {
            if (TimeProvider.System.GetElapsedTime(deadline) > TimeSpan.FromMinutes(5))
            {
                throw new TimeoutException($"{what}: {target - forwarded()} short of {target} forwarded after five minutes.");
            }

            await Task.Delay(1);
        }
    }

    /// <summary>Fails the run when a runner dead-lettered a benchmark message: its figures would not compare.</summary>
    public static async Task EnsureNothingDeadLetteredAsync(ServiceBusClient client, params string[] entities)
    {
        foreach (var entity in entities)
        {
            await using var deadLetters = client.CreateReceiver(entity, new ServiceBusReceiverOptions { SubQueue = SubQueue.DeadLetter });
            if ((await deadLetters.PeekMessagesAsync(1, 0)).Count > 0)
            {
                throw new InvalidOperationException($"The runner dead-lettered benchmark messages from {entity}; the figures are not comparable.");
            }
        }
    }

    /// <summary>
    /// The ports a runner built on port 0 holds: its HTTP port and its embedded emulator's gRPC port (bound by
    /// <see cref="BridgeServerApp.Build"/> itself, so nothing else can take them between the pick and the bind).
    /// </summary>
    public static (int Http, int EmulatorGrpc) Ports(WebApplication runner)
    {
        var options = runner.Services.GetRequiredService<IOptions<ServerOptions>>().Value;
        return (options.Port, options.EmulatorGrpcPort);
    }

    public static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "unknown";

    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted[sorted.Count / 2];
    }
}

/// <summary>
/// The runners' forwarded events by route, from the meter production exports (<c>bridge.events.forwarded</c>), to see
/// when a side has forwarded every message it was sent.
/// </summary>
internal sealed class ForwardedCounter : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, StrongBox> _byRoute = new(StringComparer.Ordinal);
    private long _total;

    public ForwardedCounter()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == "Bridge.Core" && instrument.Name == "bridge.events.forwarded")
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            Interlocked.Add(ref _total, value);
            foreach (var tag in tags)
            {
                if (tag.Key == "bridge.route" && tag.Value is string route)
                {
                    Interlocked.Add(ref _byRoute.GetOrAdd(route, _ => new StrongBox()).Value, value);
                }
            }
        });
        _listener.Start();
    }

    public long Total => Interlocked.Read(ref _total);

    public long ForRoute(string route) => _byRoute.TryGetValue(route, out var box) ? Interlocked.Read(ref box.Value) : 0;

    public void Dispose() => _listener.Dispose();

    private sealed class StrongBox
    {
        public long Value;
    }
}
