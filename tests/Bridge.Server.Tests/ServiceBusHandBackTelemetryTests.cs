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
    private const string TraceId = "4bf92f3577b34da6a3ce929d0e0e4736"; // the message's own trace context
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
        // Only this message's trace: listeners are process-wide, so the exporter also sees parallel tests' runners.
        var failedForwards = spans.Where(s => s.Source.Name == BridgeDiagnostics.SourceName && s.TraceId.ToHexString() == TraceId && s.DisplayName.StartsWith("forward", StringComparison.Ordinal) && s.Status == ActivityStatusCode.Error).ToList();
        Assert.True(failedForwards.Count >= 2, $"{failedForwards.Count} failed forward spans");
        Assert.All(failedForwards, s => Assert.Equal("CloudTasksUnavailable", s.GetTagItem(BridgeDiagnostics.Tags.Reason)));
    }

    /// <summary>
    /// The hand-back as an exported span event with its reason, attempt, delay and entity. The runner settles after
    /// the forward span has ended and starts no span around a received batch, so each hand-back has a settle span of
    /// its own, in the message's trace (its traceparent), beside the failed forward spans.
    /// </summary>
    [Fact]
    public async Task A_hand_back_is_an_exported_span_event_with_its_reason()
    {
        var (_, spans) = await HandBackOnceAsync();

        var handBacks = spans.Where(s => s.Source.Name == BridgeDiagnostics.SourceName && s.DisplayName == $"handback {Queue}").ToList();
        Assert.True(handBacks.Count >= 2, $"{handBacks.Count} hand-back spans");
        Assert.All(handBacks, s =>
        {
            Assert.Equal(TraceId, s.TraceId.ToHexString()); // the message's trace, like its forward spans
            Assert.Equal("settle", s.GetTagItem(BridgeDiagnostics.Tags.MessagingOperation));
            Assert.StartsWith("telemetry-1", (string)s.GetTagItem(BridgeDiagnostics.Tags.MessagingMessageId)!, StringComparison.Ordinal); // the original, or a copy handed back
            Assert.Equal("demo", s.GetTagItem(BridgeDiagnostics.Tags.Route));
            var handBack = Assert.Single(s.Events, e => e.Name == "bridge.handback");
            var tags = handBack.Tags.ToDictionary(t => t.Key, t => t.Value, StringComparer.Ordinal);
            Assert.Equal("CloudTasksUnavailable", tags[BridgeDiagnostics.Tags.Reason]);
            Assert.Equal(Queue, tags[BridgeDiagnostics.Tags.HandBackEntity]);
            Assert.InRange((double)tags[BridgeDiagnostics.Tags.HandBackDelay]!, 0.1, 1.0); // RetryInitialDelay 0.2 s doubling to the 1 s cap
            Assert.True(DateTimeOffset.TryParse((string)tags[BridgeDiagnostics.Tags.HandBackRetryAt]!, System.Globalization.CultureInfo.InvariantCulture, out _));
        });
        var attempts = handBacks.Select(s => (int)s.Events.Single(e => e.Name == "bridge.handback").Tags.First(t => t.Key == BridgeDiagnostics.Tags.HandBackAttempt).Value!).ToList();
        Assert.Contains(1, attempts);
        Assert.Contains(2, attempts);
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
        await sender.SendMessageAsync(new ServiceBusMessage("{}") { MessageId = "telemetry-1", ApplicationProperties = { ["traceparent"] = $"00-{TraceId}-00f067aa0ba902b7-01" } });

        await Eventually.HoldsAsync(() => Task.FromResult(handBacks.Count >= 2), Wait, () => $"{handBacks.Count} hand-backs counted");
        faults.Clear();
        await server.WaitForOutcomesAsync(1, Wait);
        await server.WaitForIdleAsync();
        return ([.. handBacks], exported.Snapshot());
    }
}
