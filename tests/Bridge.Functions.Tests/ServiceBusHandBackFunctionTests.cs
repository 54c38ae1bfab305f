using Azure.Messaging.ServiceBus;
using Bridge.Core.Forwarding;
using Bridge.Functions.Functions;
using Bridge.Testing;
using Grpc.Core;

namespace Bridge.Functions.Tests;

/// <summary>
/// A topic subscription bound directly to the function app, end to end over AMQP against the local Service Bus
/// emulator: both Service Bus functions run as the host's trigger runs them (<see cref="ServiceBusTriggerDriver"/>),
/// with the app's own registration. A message whose task can't be created yet goes to the hand-back queue, and the
/// hand-back function forwards the copy on the subscription's route once its delay is over.
/// </summary>
public sealed class ServiceBusHandBackFunctionTests
{
    private const string Intake = SubscriptionHandBackBus.Intake;
    private const string HandBackQueue = SubscriptionHandBackBus.HandBackQueue;
    private const string DeadLetterQueue = SubscriptionHandBackBus.DeadLetterQueue;
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(90);

    private static Task<PipelineHarness> StartAppAsync(SubscriptionHandBackBus bus, Action<Dictionary<string, string?>>? configure = null) =>
        PipelineHarness.StartAsync((services, configuration) => services.AddBridgeFunctions(configuration), configure: settings =>
        {
            settings["BridgeServiceBus"] = bus.ConnectionString;
            settings[ServiceBusForwardFunction.QueueSetting] = Intake;
            settings[ServiceBusHandBackFunction.QueueSetting] = HandBackQueue;
            settings["Bridge:Routes:orders:ServiceBusEntity"] = Intake;
            settings["Bridge:CloudTasks:Timeout"] = "00:00:01";
            settings["Bridge:RetryInitialDelay"] = "00:00:00.200";
            settings["Bridge:RetryMaxDelay"] = "00:00:01";
            configure?.Invoke(settings);
        });

    /// <summary>Both functions as the host runs them: the intake on the subscription, the hand-back function on its queue.</summary>
    private static (ServiceBusTriggerDriver Intake, ServiceBusTriggerDriver HandBack) StartTriggers(PipelineHarness app, SubscriptionHandBackBus bus) =>
        (ServiceBusTriggerDriver.Start(bus.Client, Intake, app.Create<ServiceBusForwardFunction>().RunAsync),
         ServiceBusTriggerDriver.Start(bus.Client, HandBackQueue, app.Create<ServiceBusHandBackFunction>().RunAsync));

    [Fact]
    public async Task A_subscription_message_that_fails_transiently_is_handed_back_and_the_hand_back_function_creates_its_task_once()
    {
        await using var bus = SubscriptionHandBackBus.Start();
        await using var app = await StartAppAsync(bus, s => s["Bridge:Routes:orders:RetryBudget"] = "00:10:00");
        var faults = app.Emulator.Emulator.Faults;
        faults.Fail(StatusCode.Unavailable, ["CreateTask", "BatchCreateTasks"]); // until cleared
        var (intake, handBack) = StartTriggers(app, bus);
        await using (intake)
        await using (handBack)
        {
            await bus.SendAsync(new ServiceBusMessage("{\"order\":1}") { MessageId = "sub-1", ContentType = "application/json" });

            // Handed back twice: once by the intake function, once more by the hand-back function, to the same queue.
            await Eventually.HoldsAsync(
                async () => (await bus.PeekAsync(HandBackQueue)).Any(m => m.ApplicationProperties.TryGetValue("bridge-handback-attempt", out var a) && (int)a >= 2),
                Wait,
                () => $"a second hand-back; settled so far: {string.Join(", ", handBack.Settlements)}");
            Assert.All(await bus.PeekAsync(HandBackQueue), copy =>
            {
                Assert.Equal(Intake, copy.ApplicationProperties["bridge-handback-origin"]); // keeps the subscription's route
                Assert.Equal("sub-1", copy.ApplicationProperties["bridge-original-message-id"]);
            });
            Assert.Equal(0, await app.TaskCountAsync());

            faults.Clear();
            await Eventually.HoldsAsync(
                async () => (await app.TasksAsync(app.Orders)).Count == 1 && bus.Counts(HandBackQueue) is { Active: 0, Scheduled: 0 },
                Wait,
                () => $"the task created and the hand-back queue drained; settled so far: {string.Join(", ", handBack.Settlements)}");

            // The intake function only handed the message back (fault on throughout): the task came from the hand-back function.
            Assert.Equal([new ServiceBusTriggerDriver.Settled("complete", "sub-1", null, null)], intake.Settlements);
            var last = handBack.Settlements[^1];
            Assert.Equal(("complete", "sub-1"), (last.Action, last.OriginalMessageId));
            Assert.All(handBack.Settlements, s => Assert.Equal("complete", s.Action)); // each copy: handed back again, or done
            Assert.Empty(intake.Failures);
            Assert.Empty(handBack.Failures);
        }

        var task = Assert.Single(await app.TasksAsync(app.Orders)); // exactly once
        Assert.Equal("{\"order\":1}", task.HttpRequest.Body.ToStringUtf8());
        Assert.Equal(0, bus.Counts(Intake).DeadLettered);
        Assert.Equal(0, bus.Counts(HandBackQueue).DeadLettered);
        Assert.Equal(0, bus.Counts(Intake).Active);
        Assert.Single(await bus.PeekAsync(SubscriptionHandBackBus.AuditSubscription)); // no copy went to the topic
    }

    [Fact]
    public async Task A_permanent_error_on_a_handed_back_copy_dead_letters_it_with_the_bridge_s_reason()
    {
        await using var bus = SubscriptionHandBackBus.Start();
        await using var app = await StartAppAsync(bus, s => s["Bridge:Routes:orders:RetryBudget"] = "00:10:00");
        var faults = app.Emulator.Emulator.Faults;
        var outage = faults.Fail(StatusCode.Unavailable, ["CreateTask", "BatchCreateTasks"]);
        var (intake, handBack) = StartTriggers(app, bus);
        await using (intake)
        await using (handBack)
        {
            await bus.SendAsync(new ServiceBusMessage("{\"order\":2}") { MessageId = "sub-2" });
            await Eventually.HoldsAsync(async () => (await bus.PeekAsync(HandBackQueue)).Count == 1, Wait, () => "the first hand-back");

            // Cloud Tasks now refuses the task outright: the copy is dead-lettered, not handed back again.
            faults.Fail(StatusCode.InvalidArgument, ["CreateTask", "BatchCreateTasks"], message: "task rejected");
            Assert.True(faults.Remove(outage.Id));
            await Eventually.HoldsAsync(() => Task.FromResult(bus.Counts(HandBackQueue).DeadLettered == 1), Wait, () => $"a dead-lettered copy; settled so far: {string.Join(", ", handBack.Settlements)}");
        }

        var dead = Assert.Single(await bus.PeekAsync(HandBackQueue + DeadLetterQueue));
        Assert.Equal(nameof(ForwardingFailureReason.RejectedByCloudTasks), dead.DeadLetterReason);
        Assert.Contains("task rejected", dead.DeadLetterErrorDescription, StringComparison.Ordinal);
        Assert.Equal("sub-2", dead.ApplicationProperties["bridge-original-message-id"]);
        Assert.Equal(0, await app.TaskCountAsync());
        Assert.Equal(0, bus.Counts(Intake).DeadLettered);
        Assert.Equal((0, 0), (bus.Counts(Intake).Active, bus.Counts(HandBackQueue).Active));
    }

    [Fact]
    public async Task A_copy_still_failing_when_its_route_s_budget_is_spent_is_dead_lettered_as_RetriesExhausted_by_the_hand_back_function()
    {
        await using var bus = SubscriptionHandBackBus.Start();
        await using var app = await StartAppAsync(bus, s =>
        {
            // A queue that does not exist (yet): worth waiting for, within a short budget.
            s["Bridge:Routes:orders:Queue"] = s["Bridge:Routes:orders:Queue"] + "-not-created";
            s["Bridge:Routes:orders:RetryBudget"] = "00:00:03";
        });
        var (intake, handBack) = StartTriggers(app, bus);
        await using (intake)
        await using (handBack)
        {
            await bus.SendAsync(new ServiceBusMessage("{\"order\":3}") { MessageId = "sub-3" });
            await Eventually.HoldsAsync(() => Task.FromResult(bus.Counts(HandBackQueue).DeadLettered == 1), Wait, () => $"a dead-lettered copy; settled so far: {string.Join(", ", handBack.Settlements)}");
            Assert.Equal([new ServiceBusTriggerDriver.Settled("complete", "sub-3", null, null)], intake.Settlements); // handed back, never abandoned
            Assert.Equal(("deadletter", Bridge.Core.Intake.Settlement.RetriesExhaustedReason), (handBack.Settlements[^1].Action, handBack.Settlements[^1].Reason));
        }

        var dead = Assert.Single(await bus.PeekAsync(HandBackQueue + DeadLetterQueue));
        Assert.Equal("RetriesExhausted", dead.DeadLetterReason);
        Assert.StartsWith("QueueNotFound: ", dead.DeadLetterErrorDescription, StringComparison.Ordinal);
        Assert.Equal(0, bus.Counts(Intake).DeadLettered); // not MaxDeliveryCountExceeded on the subscription
    }

    [Fact]
    public async Task A_message_on_the_hand_back_queue_naming_no_origin_is_dead_lettered_saying_so()
    {
        await using var bus = SubscriptionHandBackBus.Start();
        await using var app = await StartAppAsync(bus);
        await using (var handBack = ServiceBusTriggerDriver.Start(bus.Client, HandBackQueue, app.Create<ServiceBusHandBackFunction>().RunAsync))
        {
            await using var sender = bus.Client.CreateSender(HandBackQueue);
            await sender.SendMessageAsync(new ServiceBusMessage("{}") { MessageId = "stray" });
            await Eventually.HoldsAsync(() => Task.FromResult(bus.Counts(HandBackQueue).DeadLettered == 1), Wait, () => "the stray message dead-lettered");
            Assert.Empty(handBack.Failures);
        }

        var dead = Assert.Single(await bus.PeekAsync(HandBackQueue + DeadLetterQueue));
        Assert.Equal(nameof(ForwardingFailureReason.InvalidEvent), dead.DeadLetterReason);
        Assert.Contains("bridge-handback-origin", dead.DeadLetterErrorDescription, StringComparison.Ordinal);
        Assert.Equal(0, await app.TaskCountAsync());
    }
}
