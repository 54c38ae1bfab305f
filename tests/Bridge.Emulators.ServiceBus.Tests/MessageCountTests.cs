using Azure.Messaging.ServiceBus;

namespace Bridge.Emulators.ServiceBus.Tests;

/// <summary>The read-only counts API the dashboard uses: what the broker holds, exactly, without peeking.</summary>
public sealed class MessageCountTests
{
    [Fact]
    public async Task Counts_are_exact_with_locked_and_deferred_messages_active_and_scheduled_and_dead_lettered_apart()
    {
        await using var f = EmulatorFixture.Start(o => o.Topics.Add(new TopicDefinition { Name = "events", Subscriptions = { new SubscriptionDefinition { Name = "audit" } } }));
        await using var sender = f.Client.CreateSender("orders");
        await sender.SendMessagesAsync(Enumerable.Range(0, 5).Select(i => new ServiceBusMessage($"m{i}")));
        await sender.ScheduleMessageAsync(new ServiceBusMessage("later"), f.Time.GetUtcNow().AddHours(1));
        await using var receiver = f.Client.CreateReceiver("orders");
        var locked = await receiver.ReceiveMessageAsync(EmulatorFixture.Wait);
        var deferred = await receiver.ReceiveMessageAsync(EmulatorFixture.Wait);
        var dead = await receiver.ReceiveMessageAsync(EmulatorFixture.Wait);
        Assert.NotNull(locked);
        await receiver.DeferMessageAsync(deferred!);
        await receiver.DeadLetterMessageAsync(dead!, "test");
        await using var topic = f.Client.CreateSender("events");
        await topic.ScheduleMessageAsync(new ServiceBusMessage("later"), f.Time.GetUtcNow().AddHours(1));
        await topic.SendMessageAsync(new ServiceBusMessage("now"));

        Assert.Equal(new EntityMessageCounts(4, 1, 1), f.Emulator.GetMessageCounts("orders"));
        Assert.Equal(new EntityMessageCounts(4, 1, 1), f.Emulator.GetMessageCounts("/Orders"));
        Assert.Equal(new EntityMessageCounts(0, 1, 0), f.Emulator.GetMessageCounts("events"));
        Assert.Equal(new EntityMessageCounts(1, 0, 0), f.Emulator.GetMessageCounts("events/Subscriptions/audit"));
        Assert.Null(f.Emulator.GetMessageCounts("nope"));
        Assert.Null(f.Emulator.GetMessageCounts("orders/$deadletterqueue"));
    }
}
