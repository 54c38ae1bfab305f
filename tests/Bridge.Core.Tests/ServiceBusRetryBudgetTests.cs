using System.Diagnostics.Metrics;
using Azure.Messaging.ServiceBus;
using Bridge.Core.Forwarding;
using Bridge.Core.Intake;
using Bridge.Core.Internal;
using Bridge.Core.Routing;
using Bridge.Core.Telemetry;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Bridge.Core.Tests;

/// <summary>
/// The hand-back policy on a fake clock: the delay's growth from the first hand-back to the cap, the route's budget,
/// the dead-letter once it is spent, and where a topic subscription's message goes.
/// </summary>
public sealed class ServiceBusRetryBudgetTests
{
    private const string Queue = "orders-in";
    private const string Subscription = "orders/subscriptions/bridge";
    private const string HandBackQueue = "bridge-handback";
    private static readonly TimeSpan Initial = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Cap = TimeSpan.FromMinutes(2);
    private static readonly TimeSpan Budget = TimeSpan.FromMinutes(30);

    [Fact]
    public async Task Hand_backs_wait_longer_each_time_up_to_the_cap_and_the_message_is_dead_lettered_with_the_last_error_when_the_budget_is_spent()
    {
        var route = "budget-" + Guid.NewGuid().ToString("N")[..8];
        var h = new Harness(route, Queue);
        using var handBacks = new CounterRecorder("bridge.servicebus.handbacks", route);
        using var exhausted = new CounterRecorder("bridge.servicebus.retries_exhausted", route);
        var start = h.Time.GetUtcNow();
        h.Forwarder.Error = new ForwardingException(ForwardingFailureReason.CloudTasksUnavailable, "Cloud Tasks is unavailable");

        var message = Received("m1", []);
        var delays = new List<TimeSpan>();
        Settlement settlement;
        while (true)
        {
            settlement = await h.Handler.HandleAsync(message, Queue, h.Settler, CancellationToken.None);
            if (settlement.Action != SettlementAction.HandBack)
            {
                break;
            }

            var (entity, copy) = Assert.Single(h.Settler.Copies);
            h.Settler.Copies.Clear();
            Assert.Equal(Queue, entity); // a queue's message comes back to its own queue
            Assert.Equal(1, h.Settler.Completed);
            h.Settler.Completed = 0;
            var now = h.Time.GetUtcNow();
            delays.Add(copy.ScheduledEnqueueTime - now);
            Assert.True(delays.Count < 1000, "still handing back after 1000 tries: the budget never ends"); // fake time: without a bound this would spin
            Assert.Equal(settlement.RetryAt, copy.ScheduledEnqueueTime);
            if (delays.Count == 6)
            {
                // The error changes on the way: the dead-letter names the last one.
                h.Forwarder.Error = new ForwardingException(ForwardingFailureReason.NotAuthorized, "Permission 'cloudtasks.tasks.create' denied");
            }

            h.Time.SetUtcNow(copy.ScheduledEnqueueTime);
            message = Received(copy.MessageId, copy.ApplicationProperties);
        }

        // First delay: from the upper half of the initial delay; each next one from the upper half of twice the last
        // ceiling, until the cap; the last one ends exactly at the budget's end.
        for (var i = 0; i < delays.Count - 1; i++)
        {
            var ceiling = TimeSpan.FromTicks(Math.Min(Initial.Ticks << Math.Min(i, 20), Cap.Ticks));
            Assert.InRange(delays[i], ceiling / 2, ceiling);
        }

        Assert.InRange(delays[0], Initial / 2, Initial);
        Assert.True(delays.Count > 15, $"{delays.Count} hand-backs: the cap was not reached"); // 30 min at ≤ 2 min each
        Assert.Equal(start + Budget, h.Time.GetUtcNow()); // the last try came at the budget's end, not before
        Assert.Equal(SettlementAction.DeadLetter, settlement.Action);
        Assert.True(settlement.RetriesExhausted);
        var (reason, description) = Assert.Single(h.Settler.DeadLettered);
        Assert.Equal(Settlement.RetriesExhaustedReason, reason);
        Assert.StartsWith("NotAuthorized: Permission 'cloudtasks.tasks.create' denied (tried since " + start.ToString("O"), description, StringComparison.Ordinal);
        Assert.Equal(delays.Count, settlement.Attempt);
        Assert.Equal(0, h.Settler.Abandoned);

        Assert.Equal(delays.Count, handBacks.Total);
        Assert.Equal(6, handBacks.ByReason["CloudTasksUnavailable"]);
        Assert.Equal(delays.Count - 6, handBacks.ByReason["NotAuthorized"]);
        Assert.Equal(1, exhausted.ByReason["NotAuthorized"]);
    }

    [Fact]
    public async Task A_hand_back_and_a_dead_letter_each_end_a_settle_span_in_the_message_s_trace_with_reason_attempt_and_delay()
    {
        const string traceId = "0af7651916cd43dd8448eb211c80319c";
        var route = "spans-" + Guid.NewGuid().ToString("N")[..8];
        var h = new Harness(route, Queue);
        var spans = new List<System.Diagnostics.Activity>();
        using var listener = new System.Diagnostics.ActivityListener
        {
            ShouldListenTo = source => source.Name == BridgeDiagnostics.SourceName,
            Sample = (ref System.Diagnostics.ActivityCreationOptions<System.Diagnostics.ActivityContext> _) => System.Diagnostics.ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = span =>
            {
                if (Equals(span.GetTagItem(BridgeDiagnostics.Tags.Route), route))
                {
                    lock (spans)
                    {
                        spans.Add(span);
                    }
                }
            },
        };
        System.Diagnostics.ActivitySource.AddActivityListener(listener);
        var traced = new Dictionary<string, object> { ["traceparent"] = $"00-{traceId}-b7ad6b7169203331-01" };

        h.Forwarder.Error = new ForwardingException(ForwardingFailureReason.CloudTasksUnavailable, "down");
        var handedBack = await h.Handler.HandleAsync(Received("m1", traced), Queue, h.Settler, CancellationToken.None);
        h.Forwarder.Error = new ForwardingException(ForwardingFailureReason.InvalidEvent, "not JSON");
        await h.Handler.HandleAsync(Received("m2", traced), Queue, h.Settler, CancellationToken.None);
        h.Forwarder.Error = null;
        await h.Handler.HandleAsync(Received("m3", traced), Queue, h.Settler, CancellationToken.None);

        // A plain complete has no settle span; the hand-back and the dead-letter have one each.
        Assert.Equal([$"handback {Queue}", $"dead_letter {Queue}"], spans.Select(s => s.DisplayName));
        Assert.All(spans, s => Assert.Equal(traceId, s.TraceId.ToHexString()));
        var handBack = Assert.Single(spans[0].Events);
        Assert.Equal("bridge.handback", handBack.Name);
        var tags = handBack.Tags.ToDictionary(t => t.Key, t => t.Value, StringComparer.Ordinal);
        Assert.Equal("CloudTasksUnavailable", tags[BridgeDiagnostics.Tags.Reason]);
        Assert.Equal(1, tags[BridgeDiagnostics.Tags.HandBackAttempt]);
        Assert.Equal(Queue, tags[BridgeDiagnostics.Tags.HandBackEntity]);
        Assert.Equal((handedBack.RetryAt!.Value - h.Time.GetUtcNow()).TotalSeconds, tags[BridgeDiagnostics.Tags.HandBackDelay]);
        Assert.Equal("m1", spans[0].GetTagItem(BridgeDiagnostics.Tags.MessagingMessageId));
        var deadLetter = Assert.Single(spans[1].Events);
        Assert.Equal("bridge.deadletter", deadLetter.Name);
        Assert.Equal("InvalidEvent", deadLetter.Tags.Single(t => t.Key == BridgeDiagnostics.Tags.Reason).Value);
        Assert.Equal(false, deadLetter.Tags.Single(t => t.Key == BridgeDiagnostics.Tags.RetriesExhausted).Value);
        Assert.Equal("InvalidEvent", spans[1].GetTagItem(BridgeDiagnostics.Tags.Reason));
    }

    [Fact]
    public async Task The_service_s_retry_after_is_waited_for_when_longer_but_never_past_the_cap()
    {
        var h = new Harness("after-" + Guid.NewGuid().ToString("N")[..8], Queue);
        h.Forwarder.Error = new ForwardingException(ForwardingFailureReason.CloudTasksUnavailable, "busy", retryAfter: TimeSpan.FromSeconds(90));

        var settlement = await h.Handler.HandleAsync(Received("m1", []), Queue, h.Settler, CancellationToken.None);
        Assert.Equal(h.Time.GetUtcNow() + TimeSpan.FromSeconds(90), settlement.RetryAt);

        h.Forwarder.Error = new ForwardingException(ForwardingFailureReason.CloudTasksUnavailable, "busy", retryAfter: TimeSpan.FromHours(2));
        settlement = await h.Handler.HandleAsync(Received("m2", []), Queue, h.Settler, CancellationToken.None);
        Assert.InRange(settlement.RetryAt!.Value - h.Time.GetUtcNow(), Initial / 2, Initial);
    }

    [Fact]
    public async Task A_subscription_s_message_goes_to_the_hand_back_queue_naming_its_subscription_and_keeps_its_route_there()
    {
        var route = "sub-" + Guid.NewGuid().ToString("N")[..8];
        var h = new Harness(route, Subscription, HandBackQueue);
        using var handBacks = new CounterRecorder("bridge.servicebus.handbacks", route);
        h.Forwarder.Error = new ForwardingException(ForwardingFailureReason.CloudTasksUnavailable, "down");

        var first = await h.Handler.HandleAsync(Received("m1", []), Subscription, h.Settler, CancellationToken.None);

        Assert.Equal(SettlementAction.HandBack, first.Action);
        var (entity, copy) = Assert.Single(h.Settler.Copies);
        Assert.Equal(HandBackQueue, entity); // not the topic: that would reach every subscription
        Assert.Equal(Subscription, copy.ApplicationProperties[ServiceBusHandBack.OriginEntityProperty]);
        Assert.Equal("m1", copy.ApplicationProperties[ServiceBusHandBack.OriginalMessageIdProperty]);
        Assert.Equal(1, h.Settler.Completed);
        Assert.Equal(1, handBacks.ByReason["CloudTasksUnavailable"]);
        Assert.Equal(1, handBacks.ByDestination[HandBackQueue]);

        // Still failing on the hand-back queue: handed back to the same queue, still naming the subscription.
        h.Settler.Copies.Clear();
        var second = await h.Handler.HandleAsync(Received(copy.MessageId, copy.ApplicationProperties), HandBackQueue, h.Settler, CancellationToken.None);
        Assert.Equal(SettlementAction.HandBack, second.Action);
        var (again, secondCopy) = Assert.Single(h.Settler.Copies);
        Assert.Equal(HandBackQueue, again);
        Assert.Equal(Subscription, secondCopy.ApplicationProperties[ServiceBusHandBack.OriginEntityProperty]);
        Assert.Equal(2, secondCopy.ApplicationProperties[ServiceBusHandBack.AttemptProperty]);

        // Cloud Tasks is back: the copy takes the subscription's route and names the task by the original message.
        h.Forwarder.Error = null;
        var done = await h.Handler.HandleAsync(Received(secondCopy.MessageId, secondCopy.ApplicationProperties), HandBackQueue, h.Settler, CancellationToken.None);
        Assert.Equal(SettlementAction.Complete, done.Action);
        var forwarded = h.Forwarder.Forwarded[^1];
        Assert.Equal(route, forwarded.Route);
        Assert.Equal("m1", forwarded.Identity!.Value);
    }

    [Fact]
    public async Task Without_a_hand_back_queue_a_subscription_s_message_is_abandoned_and_counted()
    {
        var route = "nohb-" + Guid.NewGuid().ToString("N")[..8];
        var h = new Harness(route, Subscription);
        using var abandoned = new CounterRecorder("bridge.servicebus.abandoned", route);
        h.Forwarder.Error = new ForwardingException(ForwardingFailureReason.CloudTasksUnavailable, "down");

        Assert.True(h.Handler.AbandonsInsteadOfHandingBack(Subscription));
        Assert.False(h.Handler.AbandonsInsteadOfHandingBack(Queue));
        var settlement = await h.Handler.HandleAsync(Received("m1", []), Subscription, h.Settler, CancellationToken.None);

        Assert.Equal(SettlementAction.Abandon, settlement.Action);
        Assert.Equal(1, h.Settler.Abandoned);
        Assert.Empty(h.Settler.Copies);
        Assert.Equal(1, abandoned.ByReason["CloudTasksUnavailable"]);
    }

    [Fact]
    public async Task A_message_on_the_hand_back_queue_that_names_no_origin_is_dead_lettered_with_a_reason_not_forwarded()
    {
        var h = new Harness("noorigin-" + Guid.NewGuid().ToString("N")[..8], Subscription, HandBackQueue);

        var settlement = await h.Handler.HandleAsync(Received("stray", []), HandBackQueue, h.Settler, CancellationToken.None);

        Assert.Equal(SettlementAction.DeadLetter, settlement.Action);
        var (reason, description) = Assert.Single(h.Settler.DeadLettered);
        Assert.Equal("InvalidEvent", reason);
        Assert.Contains(ServiceBusHandBack.OriginEntityProperty, description, StringComparison.Ordinal);
        Assert.Empty(h.Forwarder.Forwarded);
    }

    [Theory]
    [InlineData("bridge-handback", null)]
    [InlineData("orders/subscriptions/bridge", "must be a queue's name")]
    [InlineData("orders-in", "is also BridgeServiceBusQueue")]
    [InlineData("route-entity", "is also Bridge:Routes:r:ServiceBusEntity")]
    public void The_hand_back_queue_is_validated_at_start_up(string queue, string? error)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            [ServiceBusConnection.HandBackQueueSetting] = queue,
            [ServiceBusConnection.QueueSetting] = "orders-in",
        }).Build();
        var options = new BridgeOptions { Routes = { ["r"] = new RouteOptions { ServiceBusEntity = "route-entity" } } };

        var result = new HandBackQueueValidator(configuration).Validate(null, options);

        if (error is null)
        {
            Assert.True(result.Succeeded);
        }
        else
        {
            Assert.Contains(error, result.FailureMessage, StringComparison.Ordinal);
        }
    }

    private static ServiceBusReceivedMessage Received(string id, IEnumerable<KeyValuePair<string, object>> properties) =>
        ServiceBusModelFactory.ServiceBusReceivedMessage(BinaryData.FromString("{}"), messageId: id, properties: properties.ToDictionary(p => p.Key, p => p.Value));

    private sealed class Harness
    {
        public Harness(string route, string entity, string? handBackQueue = null)
        {
            var options = new BridgeOptions
            {
                RetryInitialDelay = Initial,
                RetryMaxDelay = Cap,
                Routes =
                {
                    [route] = new RouteOptions { Queue = "projects/p/locations/l/queues/q", TargetUrl = "https://worker.example.com/", ServiceBusEntity = entity, RetryBudget = Budget },
                },
            };
            var routes = new RouteTable(options);
            Handler = new ServiceBusMessageHandler(new ServiceBusIntake(routes, Options.Create(options)), Forwarder, routes, options, Time, handBackQueue: handBackQueue);
        }

        public FakeTimeProvider Time { get; } = new(new DateTimeOffset(2026, 11, 28, 12, 0, 0, TimeSpan.Zero));

        public FakeForwarder Forwarder { get; } = new();

        public RecordingSettler Settler { get; } = new();

        public ServiceBusMessageHandler Handler { get; }
    }

    private sealed class FakeForwarder : IEventForwarder
    {
        public ForwardingException? Error { get; set; }

        public List<InboundEvent> Forwarded { get; } = [];

        public Task<ForwardResult> ForwardAsync(InboundEvent inbound, CancellationToken cancellationToken = default)
        {
            if (Error is { } error)
            {
                throw error;
            }

            Forwarded.Add(inbound);
            return Task.FromResult(new ForwardResult(ForwardOutcome.Created, "projects/p/locations/l/queues/q/tasks/t", null, inbound.Route));
        }
    }

    private sealed class RecordingSettler : IServiceBusSettler
    {
        public int Completed { get; set; }

        public int Abandoned { get; private set; }

        public List<(string Reason, string Description)> DeadLettered { get; } = [];

        public List<(string Entity, ServiceBusMessage Copy)> Copies { get; } = [];

        public Task CompleteAsync(CancellationToken cancellationToken)
        {
            Completed++;
            return Task.CompletedTask;
        }

        public Task DeadLetterAsync(string reason, string description, CancellationToken cancellationToken)
        {
            DeadLettered.Add((reason, description));
            return Task.CompletedTask;
        }

        public Task AbandonAsync(CancellationToken cancellationToken)
        {
            Abandoned++;
            return Task.CompletedTask;
        }

        public Task ScheduleCopyAsync(string entity, ServiceBusMessage copy, CancellationToken cancellationToken)
        {
            Copies.Add((entity, copy));
            return Task.CompletedTask;
        }
    }

    /// <summary>One of Bridge's counters, for one route only (tests run in parallel on the same Meter).</summary>
    private sealed class CounterRecorder : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly object _gate = new();

        public CounterRecorder(string instrument, string route)
        {
            _listener.InstrumentPublished = (i, l) =>
            {
                if (i.Meter.Name == BridgeDiagnostics.SourceName && i.Name == instrument)
                {
                    l.EnableMeasurementEvents(i);
                }
            };
            _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
            {
                string? r = null, reason = null, destination = null;
                foreach (var tag in tags)
                {
                    switch (tag.Key)
                    {
                        case BridgeDiagnostics.Tags.Route: r = tag.Value as string; break;
                        case BridgeDiagnostics.Tags.Reason: reason = tag.Value as string; break;
                        case BridgeDiagnostics.Tags.MessagingDestination: destination = tag.Value as string; break;
                    }
                }

                if (r != route)
                {
                    return;
                }

                lock (_gate)
                {
                    Total += value;
                    ByReason[reason ?? string.Empty] = ByReason.GetValueOrDefault(reason ?? string.Empty) + value;
                    ByDestination[destination ?? string.Empty] = ByDestination.GetValueOrDefault(destination ?? string.Empty) + value;
                }
            });
            _listener.Start();
        }

        public long Total { get; private set; }

        public Dictionary<string, long> ByReason { get; } = [];

        public Dictionary<string, long> ByDestination { get; } = [];

        public void Dispose() => _listener.Dispose();
    }
}
