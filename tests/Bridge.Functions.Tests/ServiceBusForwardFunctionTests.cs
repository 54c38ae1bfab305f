using Azure.Messaging.ServiceBus;
using Bridge.Core.Forwarding;
using Bridge.Core.Internal;
using Bridge.Emulators.ServiceBus;
using Bridge.Functions.Functions;
using Bridge.Testing;

namespace Bridge.Functions.Tests;

/// <summary>The Service Bus function invoked as the host would, with the message it would bind.</summary>
public sealed class ServiceBusForwardFunctionTests : IAsyncLifetime
{
    private PipelineHarness _h = null!;

    public async Task InitializeAsync() => _h = await FunctionHarness.StartAsync();

    public async Task DisposeAsync() => await _h.DisposeAsync();

    private static ServiceBusReceivedMessage Message(string id, string body = "{\"order\":1}", IDictionary<string, object>? properties = null, int deliveryCount = 1) =>
        ServiceBusModelFactory.ServiceBusReceivedMessage(
            body: BinaryData.FromString(body),
            messageId: id,
            contentType: "application/json",
            correlationId: "corr-" + id,
            deliveryCount: deliveryCount,
            properties: properties ?? new Dictionary<string, object>());

    [Fact]
    public async Task A_message_becomes_a_task_and_is_completed_and_its_redelivery_completes_without_a_second_task()
    {
        var function = _h.Create<ServiceBusForwardFunction>();
        var actions = new RecordingMessageActions();

        await function.RunAsync([Message("m-1")], actions, CancellationToken.None);
        await function.RunAsync([Message("m-1", deliveryCount: 2)], actions, CancellationToken.None);

        Assert.Equal(["complete:m-1", "complete:m-1"], actions.Calls);
        Assert.Equal(1, await _h.TaskCountAsync());
    }

    [Fact]
    public async Task A_permanent_error_dead_letters_with_a_machine_readable_reason()
    {
        var function = _h.Create<ServiceBusForwardFunction>();
        var actions = new RecordingMessageActions();

        await function.RunAsync([Message("bad", properties: new Dictionary<string, object> { ["bridge-delay"] = "whenever" })], actions, CancellationToken.None);

        Assert.Equal(["deadletter:bad"], actions.Calls);
        Assert.Equal(nameof(ForwardingFailureReason.InvalidSchedule), actions.DeadLetterReason);
        Assert.Contains("'whenever'", actions.DeadLetterDescription, StringComparison.Ordinal);
        Assert.Equal(0, await _h.TaskCountAsync());
    }

    [Fact]
    public async Task An_oversized_message_is_dead_lettered_naming_size_and_limit()
    {
        var actions = new RecordingMessageActions();
        await _h.Create<ServiceBusForwardFunction>().RunAsync([Message("big", new string('x', 3000))], actions, CancellationToken.None);
        Assert.Equal(nameof(ForwardingFailureReason.PayloadTooLarge), actions.DeadLetterReason);
        Assert.Contains("3000 bytes; the limit is 2048 bytes", actions.DeadLetterDescription, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_transient_failure_schedules_a_copy_for_later_and_completes_the_original()
    {
        using var down = new UnreachableEndpoint();
        await using var bus = ServiceBusEmulator.Start(new ServiceBusEmulatorOptions { Port = 0, Queues = { new QueueDefinition { Name = "orders-in" } } });
        await using var offline = await PipelineHarness.StartAsync((services, configuration) => services.AddBridgeFunctions(configuration), configure: settings =>
        {
            settings["Bridge:CloudTasks:EmulatorHost"] = down.HostPort; // nothing answers: Cloud Tasks is unavailable
            settings["Bridge:CloudTasks:Timeout"] = "00:00:01";
            settings["BridgeServiceBus"] = bus.ConnectionString;
            settings[ServiceBusForwardFunction.QueueSetting] = "orders-in";
        });
        var actions = new RecordingMessageActions();

        await offline.Create<ServiceBusForwardFunction>().RunAsync([Message("later")], actions, CancellationToken.None);

        Assert.Equal(["complete:later"], actions.Calls);
        await using var client = new ServiceBusClient(bus.ConnectionString);
        await using var receiver = client.CreateReceiver("orders-in");
        var copy = Assert.Single(await receiver.PeekMessagesAsync(10, fromSequenceNumber: 0));
        Assert.Equal("later:handback:1", copy.MessageId);
        Assert.Equal("later", copy.ApplicationProperties["bridge-original-message-id"]);
        Assert.Equal(1, copy.ApplicationProperties["bridge-handback-attempt"]);
        Assert.Equal("CloudTasksUnavailable", copy.ApplicationProperties["bridge-last-error"]);
        Assert.Equal("{\"order\":1}", copy.Body.ToString());
        Assert.Equal("corr-later", copy.CorrelationId);
    }

    [Fact]
    public async Task A_batch_with_mixed_outcomes_settles_each_message_on_its_own_result()
    {
        await using var bus = ServiceBusEmulator.Start(new ServiceBusEmulatorOptions { Port = 0, Queues = { new QueueDefinition { Name = "orders-in" } } });
        await using var h = await PipelineHarness.StartAsync((services, configuration) => services.AddBridgeFunctions(configuration), configure: settings =>
        {
            settings["Bridge:MaxBodyBytes"] = "2048";
            settings["BridgeServiceBus"] = bus.ConnectionString;
            settings[ServiceBusForwardFunction.QueueSetting] = "orders-in";
            // A route whose queue does not exist (yet): worth waiting for, so handed back rather than dead-lettered.
            settings["Bridge:Routes:pending:Queue"] = settings["Bridge:Routes:orders:Queue"] + "-not-created";
            settings["Bridge:Routes:pending:TargetUrl"] = settings["Bridge:Routes:orders:TargetUrl"];
        });
        var function = h.Create<ServiceBusForwardFunction>();
        await function.RunAsync([Message("existing")], new RecordingMessageActions(), CancellationToken.None);
        var actions = new RecordingMessageActions();

        await function.RunAsync(
        [
            Message("new-1"),
            Message("existing", deliveryCount: 2), // its task exists already: a duplicate
            Message("bad", properties: new Dictionary<string, object> { ["bridge-delay"] = "whenever" }),
            Message("later", properties: new Dictionary<string, object> { ["bridge-route"] = "pending" }),
            Message("new-1", deliveryCount: 2), // the same message twice in one batch
            Message("big", new string('x', 3000)),
            Message("new-2"),
        ], actions, CancellationToken.None);

        Assert.Equal(
            ["complete:existing", "complete:later", "complete:new-1", "complete:new-1", "complete:new-2", "deadletter:bad", "deadletter:big"],
            actions.Calls.Order(StringComparer.Ordinal));
        Assert.Equal(nameof(ForwardingFailureReason.InvalidSchedule), actions.DeadLetterOf("bad").Reason);
        Assert.Equal(nameof(ForwardingFailureReason.PayloadTooLarge), actions.DeadLetterOf("big").Reason);
        Assert.Equal(3, (await h.TasksAsync(h.Orders)).Count); // existing, new-1, new-2: one task each
        await using var client = new ServiceBusClient(bus.ConnectionString);
        await using var receiver = client.CreateReceiver("orders-in");
        var copy = Assert.Single(await receiver.PeekMessagesAsync(10, fromSequenceNumber: 0)); // only "later" was handed back
        Assert.Equal("later:handback:1", copy.MessageId);
        Assert.Equal("QueueNotFound", copy.ApplicationProperties["bridge-last-error"]);
    }

    [Fact]
    public async Task A_transient_failure_of_the_whole_batch_hands_every_message_back_on_its_own()
    {
        using var down = new UnreachableEndpoint();
        await using var bus = ServiceBusEmulator.Start(new ServiceBusEmulatorOptions { Port = 0, Queues = { new QueueDefinition { Name = "orders-in" } } });
        await using var offline = await PipelineHarness.StartAsync((services, configuration) => services.AddBridgeFunctions(configuration), configure: settings =>
        {
            settings["Bridge:CloudTasks:EmulatorHost"] = down.HostPort;
            settings["Bridge:CloudTasks:Timeout"] = "00:00:01";
            settings["BridgeServiceBus"] = bus.ConnectionString;
            settings[ServiceBusForwardFunction.QueueSetting] = "orders-in";
        });
        var actions = new RecordingMessageActions();

        await offline.Create<ServiceBusForwardFunction>().RunAsync([Message("a"), Message("b"), Message("bad", properties: new Dictionary<string, object> { ["bridge-delay"] = "whenever" })], actions, CancellationToken.None);

        Assert.Equal(["complete:a", "complete:b", "deadletter:bad"], actions.Calls.Order(StringComparer.Ordinal));
        await using var client = new ServiceBusClient(bus.ConnectionString);
        await using var receiver = client.CreateReceiver("orders-in");
        var copies = await receiver.PeekMessagesAsync(10, fromSequenceNumber: 0);
        Assert.Equal(["a:handback:1", "b:handback:1"], copies.Select(c => c.MessageId).Order(StringComparer.Ordinal));
        Assert.All(copies, c => Assert.Equal("CloudTasksUnavailable", c.ApplicationProperties["bridge-last-error"]));
    }

    [Fact]
    public void The_bound_message_maps_every_field_the_forwarder_uses()
    {
        var message = ServiceBusModelFactory.ServiceBusReceivedMessage(
            body: BinaryData.FromString("b"), messageId: "id", contentType: "text/plain", correlationId: "c", subject: "s",
            deliveryCount: 3, enqueuedTime: new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero), properties: new Dictionary<string, object> { ["k"] = 5 });

        var data = ServiceBusMessages.ToMessageData(message);

        Assert.Equal(("id", "text/plain", "c", "s", 3), (data.MessageId, data.ContentType, data.CorrelationId, data.Subject, data.DeliveryCount));
        Assert.Equal("b", System.Text.Encoding.UTF8.GetString(data.Body.Span));
        Assert.Equal(5, data.ApplicationProperties["k"]);
        Assert.Equal(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero), data.EnqueuedTime);
    }
}
