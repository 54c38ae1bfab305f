using Azure.Messaging.ServiceBus;

namespace Bridge.Emulators.ServiceBus.Tests;

public sealed class ManagementTests
{
    static readonly TimeSpan NoMessage = TimeSpan.FromMilliseconds(500);

    [Fact]
    public async Task Peek_shows_messages_in_order_without_locking_them_and_pages_by_sequence_number()
    {
        await using var f = EmulatorFixture.Start();
        await using var sender = f.Client.CreateSender("orders");
        await sender.SendMessagesAsync(Enumerable.Range(0, 5).Select(i => new ServiceBusMessage($"m{i}")));

        await using var receiver = f.Client.CreateReceiver("orders");
        var firstPage = await receiver.PeekMessagesAsync(3);
        var secondPage = await receiver.PeekMessagesAsync(3);
        Assert.Equal(["m0", "m1", "m2"], firstPage.Select(m => m.Body.ToString()));
        Assert.Equal(["m3", "m4"], secondPage.Select(m => m.Body.ToString()));
        Assert.All(firstPage, m => Assert.Equal(0, m.DeliveryCount));
        var fromThird = await receiver.PeekMessagesAsync(10, firstPage[2].SequenceNumber);
        Assert.Equal(3, fromThird.Count);

        var received = await receiver.ReceiveMessageAsync(EmulatorFixture.Wait);
        Assert.Equal("m0", received.Body.ToString());
        var peekedLocked = await receiver.PeekMessageAsync(received.SequenceNumber);
        Assert.Equal(1, peekedLocked.DeliveryCount);
        Assert.Empty(await f.Client.CreateReceiver("orders", new ServiceBusReceiverOptions { SubQueue = SubQueue.DeadLetter }).PeekMessagesAsync(5));
    }

    [Fact]
    public async Task Scheduled_messages_arrive_at_their_time_and_cancelled_ones_never()
    {
        var time = EmulatorFixture.NewFakeTime();
        await using var f = EmulatorFixture.Start(time: time);
        await using var sender = f.Client.CreateSender("orders");
        var at = time.GetUtcNow().AddMinutes(5);
        var kept = await sender.ScheduleMessageAsync(new ServiceBusMessage("later"), at);
        var cancelled = await sender.ScheduleMessageAsync(new ServiceBusMessage("never"), at);
        var viaProperty = new ServiceBusMessage("also later") { ScheduledEnqueueTime = at.AddMinutes(1) };
        await sender.SendMessageAsync(viaProperty);
        Assert.NotEqual(kept, cancelled);
        await sender.CancelScheduledMessageAsync(cancelled);

        await using var receiver = f.Client.CreateReceiver("orders");
        var peeked = await receiver.PeekMessagesAsync(10);
        Assert.Equal(2, peeked.Count);
        Assert.All(peeked, m => Assert.Equal(ServiceBusMessageState.Scheduled, m.State));
        Assert.Null(await receiver.ReceiveMessageAsync(NoMessage));

        time.Advance(TimeSpan.FromMinutes(5));
        var first = await receiver.ReceiveMessageAsync(EmulatorFixture.Wait);
        Assert.Equal("later", first.Body.ToString());
        Assert.Equal(kept, first.SequenceNumber);
        Assert.Equal(at, first.ScheduledEnqueueTime, TimeSpan.FromMilliseconds(1));
        Assert.Null(await receiver.ReceiveMessageAsync(NoMessage));

        time.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal("also later", (await receiver.ReceiveMessageAsync(EmulatorFixture.Wait)).Body.ToString());
        var missing = await Assert.ThrowsAsync<ServiceBusException>(() => sender.CancelScheduledMessageAsync(cancelled));
        Assert.Equal(ServiceBusFailureReason.MessageNotFound, missing.Reason);
    }

    [Fact]
    public async Task Deferred_messages_are_received_only_by_sequence_number_and_settled_through_management()
    {
        await using var f = EmulatorFixture.Start();
        await using var sender = f.Client.CreateSender("orders");
        await sender.SendMessagesAsync([new ServiceBusMessage("defer me"), new ServiceBusMessage("next")]);

        await using var receiver = f.Client.CreateReceiver("orders");
        var message = await receiver.ReceiveMessageAsync(EmulatorFixture.Wait);
        await receiver.DeferMessageAsync(message, new Dictionary<string, object> { ["deferred-by"] = "test" });
        var next = await receiver.ReceiveMessageAsync(EmulatorFixture.Wait);
        Assert.Equal("next", next.Body.ToString());
        await receiver.CompleteMessageAsync(next);
        Assert.Null(await receiver.ReceiveMessageAsync(NoMessage));
        Assert.Equal(ServiceBusMessageState.Deferred, (await receiver.PeekMessageAsync(message.SequenceNumber)).State);

        var deferred = await receiver.ReceiveDeferredMessageAsync(message.SequenceNumber);
        Assert.Equal("defer me", deferred.Body.ToString());
        Assert.Equal("test", deferred.ApplicationProperties["deferred-by"]);
        Assert.Equal(2, deferred.DeliveryCount);
        await receiver.AbandonMessageAsync(deferred);
        var again = await receiver.ReceiveDeferredMessageAsync(message.SequenceNumber);
        await receiver.CompleteMessageAsync(again);

        var gone = await Assert.ThrowsAsync<ServiceBusException>(() => receiver.ReceiveDeferredMessageAsync(message.SequenceNumber));
        Assert.Equal(ServiceBusFailureReason.MessageNotFound, gone.Reason);
    }

    [Fact]
    public async Task Expired_messages_are_dead_lettered_when_the_queue_says_so_and_dropped_otherwise()
    {
        var time = EmulatorFixture.NewFakeTime();
        await using var f = EmulatorFixture.Start(o =>
        {
            o.Queues[0].Properties.DeadLetteringOnMessageExpiration = true;
            o.Queues.Add(new QueueDefinition { Name = "short", Properties = { DefaultMessageTimeToLive = TimeSpan.FromMinutes(1) } });
        }, time);
        await using var orders = f.Client.CreateSender("orders");
        await orders.SendMessageAsync(new ServiceBusMessage("stale") { MessageId = "ttl-1", TimeToLive = TimeSpan.FromSeconds(10) });
        await orders.SendMessageAsync(new ServiceBusMessage("fresh"));
        await using var shortSender = f.Client.CreateSender("short");
        await shortSender.SendMessageAsync(new ServiceBusMessage("gone") { TimeToLive = TimeSpan.FromHours(1) });

        time.Advance(TimeSpan.FromMinutes(2));
        await using var receiver = f.Client.CreateReceiver("orders");
        Assert.Equal("fresh", (await receiver.ReceiveMessageAsync(EmulatorFixture.Wait)).Body.ToString());
        await using var deadLetters = f.Client.CreateReceiver("orders", new ServiceBusReceiverOptions { SubQueue = SubQueue.DeadLetter });
        var dead = await deadLetters.ReceiveMessageAsync(EmulatorFixture.Wait);
        Assert.Equal("ttl-1", dead.MessageId);
        Assert.Equal("TTLExpiredException", dead.DeadLetterReason);

        await using var shortReceiver = f.Client.CreateReceiver("short");
        Assert.Empty(await shortReceiver.PeekMessagesAsync(10));
        Assert.Empty(await f.Client.CreateReceiver("short", new ServiceBusReceiverOptions { SubQueue = SubQueue.DeadLetter }).PeekMessagesAsync(10));
    }

    [Fact]
    public async Task Duplicate_detection_drops_a_repeated_MessageId_within_the_window_only()
    {
        var time = EmulatorFixture.NewFakeTime();
        await using var f = EmulatorFixture.Start(o =>
        {
            o.Queues[0].Properties.RequiresDuplicateDetection = true;
            o.Queues[0].Properties.DuplicateDetectionHistoryTimeWindow = TimeSpan.FromMinutes(10);
        }, time);
        await using var sender = f.Client.CreateSender("orders");
        await sender.SendMessageAsync(new ServiceBusMessage("first") { MessageId = "outcome-1" });
        await sender.SendMessageAsync(new ServiceBusMessage("repeat") { MessageId = "outcome-1" });
        await sender.SendMessageAsync(new ServiceBusMessage("other") { MessageId = "outcome-2" });
        time.Advance(TimeSpan.FromMinutes(11));
        await sender.SendMessageAsync(new ServiceBusMessage("after the window") { MessageId = "outcome-1" });

        await using var receiver = f.Client.CreateReceiver("orders");
        var bodies = (await receiver.PeekMessagesAsync(10)).Select(m => m.Body.ToString());
        Assert.Equal(["first", "other", "after the window"], bodies);
    }
}
