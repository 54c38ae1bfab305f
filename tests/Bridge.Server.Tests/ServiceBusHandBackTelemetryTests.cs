using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Azure.Messaging.ServiceBus;
using Bridge.Core.Telemetry;
using Bridge.Emulators.CloudTasks;
using Bridge.Emulators.ServiceBus;
using Bridge.Testing;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Trace;

namespace Bridge.Server.Tests;

/// <summary>
/// Issue 14's "metrics and spans show retries and hand-backs by reason", as the runner ships: its own tracer
/// provider with an in-memory exporter added, a meter listener on Bridge's meter, Cloud Tasks unreachable.
/// </summary>
public sealed class ServiceBusHandBackTelemetryTests
{
    private const string Queue = "telemetry-in"; // only this test uses it: parallel tests share the meter
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task A_hand_back_is_counted_by_route_reason_and_entity_and_each_failed_forward_span_carries_its_reason()
    {
        var (handBacks, spans) = await HandBackOnceAsync();

        // Metrics: each hand-back counted once, by route, reason and the entity it went back to.
        Assert.All(handBacks, h =>
        {
            Assert.Equal(1, h.Value);
            Assert.Equal("demo", h.Tags[BridgeDiagnostics.Tags.Route]);
            Assert.Equal("CloudTasksUnavailable", h.Tags[BridgeDiagnostics.Tags.Reason]);
        });

        // Spans: each failed attempt's forward span says why (the Cloud Tasks client's own retries are "retry" events on
        // its call span: GaxParityTests, on a fake clock).
        var failedForwards = spans.Where(s => s.Source.Name == BridgeDiagnostics.SourceName && s.DisplayName.StartsWith("forward", StringComparison.Ordinal) && s.Status == ActivityStatusCode.Error).ToList();
        Assert.True(failedForwards.Count >= 2, $"{failedForwards.Count} failed forward spans");
        Assert.All(failedForwards, s => Assert.Equal("CloudTasksUnavailable", s.GetTagItem(BridgeDiagnostics.Tags.Reason)));
    }

    /// <summary>
    /// The hand-back as a span event with its reason. ServiceBusMessageHandler adds "bridge.handback" to
    /// Activity.Current, but the runner settles after the forward span has ended and starts no span around a received
    /// batch, so nothing is current and the event is dropped: found by this audit, left for the issue-14 owner.
    /// </summary>
    [Fact(Skip = "Gap (issue 14): the runner exports no span for a hand-back; remove this Skip once a span is current when it settles")]
    public async Task A_hand_back_is_an_exported_span_event_with_its_reason()
    {
        var (_, spans) = await HandBackOnceAsync();

        Assert.Contains(spans, s => s.Events.Any(e => e.Name == "bridge.handback" && Equals(e.Tags.FirstOrDefault(t => t.Key == BridgeDiagnostics.Tags.Reason).Value, "CloudTasksUnavailable")));
    }

    /// <summary>
    /// The runner (its own tracer provider with an in-memory exporter added) on the Service Bus emulator, Cloud Tasks
    /// failing UNAVAILABLE until one message has been handed back twice, then healthy until its task's outcome.
    /// </summary>
    private static async Task<(List<(long Value, Dictionary<string, object?> Tags)> HandBacks, List<Activity> Spans)> HandBackOnceAsync()
    {
        var handBacks = new ConcurrentQueue<(long Value, Dictionary<string, object?> Tags)>();
        using var meters = new MeterListener();
        meters.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == BridgeDiagnostics.SourceName && instrument.Name == "bridge.servicebus.handbacks")
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        meters.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            var map = new Dictionary<string, object?>(StringComparer.Ordinal);
            foreach (var tag in tags)
            {
                map[tag.Key] = tag.Value;
            }

            if (Equals(map.GetValueOrDefault(BridgeDiagnostics.Tags.MessagingDestination), Queue))
            {
                handBacks.Enqueue((value, map));
            }
        });
        meters.Start();

        await using var serviceBus = ServiceBusEmulator.Start(new ServiceBusEmulatorOptions { Port = 0, Queues = { new QueueDefinition { Name = Queue } } }, TimeProvider.System);
        var exported = new LockedCollection<Activity>();
        await using var server = await RunningServer.StartAsync(
            b => b.Services.ConfigureOpenTelemetryTracerProvider(t => t.AddInMemoryExporter(exported)),
            $"--BridgeServiceBus={serviceBus.ConnectionString}",
            $"--BridgeServiceBusQueue={Queue}",
            "--Bridge:Server:EmbeddedEmulator=true",
            $"--Bridge:Routes:demo:ServiceBusEntity={Queue}",
            "--Bridge:CloudTasks:Timeout=00:00:01",
            "--Bridge:RetryInitialDelay=00:00:00.200",
            "--Bridge:RetryMaxDelay=00:00:01");
        var faults = server.Services.GetRequiredService<CloudTasksEmulator>().Faults;
        faults.Fail(Grpc.Core.StatusCode.Unavailable, ["CreateTask", "BatchCreateTasks"]);

        await using var client = new ServiceBusClient(serviceBus.ConnectionString);
        await using var sender = client.CreateSender(Queue);
        await sender.SendMessageAsync(new ServiceBusMessage("{}") { MessageId = "telemetry-1" });

        await Eventually.HoldsAsync(() => Task.FromResult(handBacks.Count >= 2), Wait, () => $"{handBacks.Count} hand-backs counted");
        faults.Clear();
        await server.WaitForOutcomesAsync(1, Wait);
        await server.WaitForIdleAsync();
        return ([.. handBacks], exported.Snapshot());
    }

    /// <summary>The exporter adds from its own thread while the test reads: every access under one lock.</summary>
    private sealed class LockedCollection<T> : ICollection<T>
    {
        private readonly List<T> _items = [];

        public int Count
        {
            get
            {
                lock (_items)
                {
                    return _items.Count;
                }
            }
        }

        public bool IsReadOnly => false;

        public List<T> Snapshot()
        {
            lock (_items)
            {
                return [.. _items];
            }
        }

        public void Add(T item)
        {
            lock (_items)
            {
                _items.Add(item);
            }
        }

        public void Clear()
        {
            lock (_items)
            {
                _items.Clear();
            }
        }

        public bool Contains(T item) => Snapshot().Contains(item);

        public void CopyTo(T[] array, int arrayIndex) => Snapshot().CopyTo(array, arrayIndex);

        public bool Remove(T item)
        {
            lock (_items)
            {
                return _items.Remove(item);
            }
        }

        public IEnumerator<T> GetEnumerator() => Snapshot().GetEnumerator();

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
