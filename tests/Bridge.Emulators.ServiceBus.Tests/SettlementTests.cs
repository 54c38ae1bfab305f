using Azure.Messaging.ServiceBus;

namespace Bridge.Emulators.ServiceBus.Tests;

public sealed class SettlementTests
{
    static readonly TimeSpan NoMessage = TimeSpan.FromMilliseconds(500);

    [Fact]
    public async Task A_batch_arrives_whole_and_in_order_with_rising_sequence_numbers()
    {
        await using var f = EmulatorFixture.Start();
        await using var sender = f.Client.CreateSender("orders");
        using var batch = await sender.CreateMessageBatchAsync();
        for (var i = 0; i < 10; i++)
        {
            Assert.True(batch.TryAddMessage(new ServiceBusMessage($"m{i}") { MessageId = $"id-{i}" }));
        }

        await sender.SendMessagesAsync(batch);
        await sender.SendMessagesAsync([new ServiceBusMessage("m10"), new ServiceBusMessage("m11")]);

        await using var receiver = f.Client.CreateReceiver("orders");
        var received = await ReceiveAsync(receiver, 12);
        Assert.Equal(Enumerable.Range(0, 12).Select(i => $"m{i}"), received.Select(m => m.Body.ToString()));
        Assert.Equal("id-3", received[3].MessageId);
        Assert.True(received.Zip(received.Skip(1)).All(p => p.First.SequenceNumber < p.Second.SequenceNumber));
    }

    [Fact]
    public async Task Receive_and_delete_removes_the_message_on_delivery()
    {
        await using var f = EmulatorFixture.Start();
        await using var sender = f.Client.CreateSender("orders");
        await sender.SendMessageAsync(new ServiceBusMessage("once"));

        await using var receiver = f.Client.CreateReceiver("orders", new ServiceBusReceiverOptions { ReceiveMode = ServiceBusReceiveMode.ReceiveAndDelete });
        var received = await receiver.ReceiveMessageAsync(EmulatorFixture.Wait);
        Assert.Equal("once", received.Body.ToString());
        await using var other = f.Client.CreateReceiver("orders");
        Assert.Null(await other.ReceiveMessageAsync(NoMessage));
        Assert.Empty(await other.PeekMessagesAsync(10));
    }

    [Fact]
    public async Task Abandon_with_properties_redelivers_with_the_properties_and_the_next_delivery_count()
    {
        await using var f = EmulatorFixture.Start();
        await using var sender = f.Client.CreateSender("orders");
        await sender.SendMessageAsync(new ServiceBusMessage("retry me") { ApplicationProperties = { ["kept"] = "yes" } });

        await using var receiver = f.Client.CreateReceiver("orders");
        var first = await receiver.ReceiveMessageAsync(EmulatorFixture.Wait);
        Assert.Equal(1, first.DeliveryCount);
        await receiver.AbandonMessageAsync(first, new Dictionary<string, object> { ["reason"] = "busy", ["tries"] = 1 });

        var second = await receiver.ReceiveMessageAsync(EmulatorFixture.Wait);
        Assert.Equal(first.SequenceNumber, second.SequenceNumber);
        Assert.Equal(2, second.DeliveryCount);
        Assert.Equal("busy", second.ApplicationProperties["reason"]);
        Assert.Equal(1, second.ApplicationProperties["tries"]);
        Assert.Equal("yes", second.ApplicationProperties["kept"]);
        await receiver.CompleteMessageAsync(second);
    }

    [Fact]
    public async Task Dead_lettering_moves_the_message_to_the_dead_letter_queue_with_reason_and_description()
    {
        await using var f = EmulatorFixture.Start();
        await using var sender = f.Client.CreateSender("orders");
        await sender.SendMessageAsync(new ServiceBusMessage("poison") { MessageId = "p-1" });

        await using var receiver = f.Client.CreateReceiver("orders");
        var message = await receiver.ReceiveMessageAsync(EmulatorFixture.Wait);
        await receiver.DeadLetterMessageAsync(message, "UnknownRoute", "no route named 'x'");
        Assert.Null(await receiver.ReceiveMessageAsync(NoMessage));

        await using var deadLetters = f.Client.CreateReceiver("orders", new ServiceBusReceiverOptions { SubQueue = SubQueue.DeadLetter });
        var dead = await deadLetters.ReceiveMessageAsync(EmulatorFixture.Wait);
        Assert.Equal("p-1", dead.MessageId);
        Assert.Equal("poison", dead.Body.ToString());
        Assert.Equal("UnknownRoute", dead.DeadLetterReason);
        Assert.Equal("no route named 'x'", dead.DeadLetterErrorDescription);
        // Dead-lettering from the dead-letter queue keeps the message there: there is nowhere further to go.
        await deadLetters.DeadLetterMessageAsync(dead, "Again");
        var still = await deadLetters.ReceiveMessageAsync(EmulatorFixture.Wait);
        Assert.Equal("p-1", still.MessageId);
        await deadLetters.CompleteMessageAsync(still);
        Assert.Null(await deadLetters.ReceiveMessageAsync(NoMessage));
    }

    [Fact]
    public async Task An_expired_lock_redelivers_the_message_and_settling_with_the_old_lock_reports_MessageLockLost()
    {
        await using var f = EmulatorFixture.StartWithLockDuration(TimeSpan.FromSeconds(30));
        var time = f.FakeTime;
        await f.SendAsync("orders", "slow");

        await using var receiver = f.Client.CreateReceiver("orders");
        var first = await receiver.ReceiveMessageAsync(EmulatorFixture.Wait);
        Assert.Equal(time.GetUtcNow() + TimeSpan.FromSeconds(30), first.LockedUntil, TimeSpan.FromMilliseconds(1));
        Assert.Null(await receiver.ReceiveMessageAsync(NoMessage));

        time.Advance(TimeSpan.FromSeconds(31));
        var second = await receiver.ReceiveMessageAsync(EmulatorFixture.Wait);
        Assert.Equal(first.SequenceNumber, second.SequenceNumber);
        Assert.Equal(2, second.DeliveryCount);
        Assert.NotEqual(first.LockToken, second.LockToken);

        var lost = await Assert.ThrowsAsync<ServiceBusException>(() => receiver.CompleteMessageAsync(first));
        Assert.Equal(ServiceBusFailureReason.MessageLockLost, lost.Reason);
        await receiver.CompleteMessageAsync(second);
        Assert.Empty(await receiver.PeekMessagesAsync(10));
    }

    [Fact]
    public async Task Renewing_a_lock_keeps_the_message_past_its_first_lock_duration()
    {
        await using var f = EmulatorFixture.StartWithLockDuration(TimeSpan.FromSeconds(30));
        var time = f.FakeTime;
        await f.SendAsync("orders", "long job");

        await using var receiver = f.Client.CreateReceiver("orders");
        var message = await receiver.ReceiveMessageAsync(EmulatorFixture.Wait);
        time.Advance(TimeSpan.FromSeconds(20));
        await receiver.RenewMessageLockAsync(message);
        Assert.Equal(time.GetUtcNow() + TimeSpan.FromSeconds(30), message.LockedUntil, TimeSpan.FromMilliseconds(1));
        time.Advance(TimeSpan.FromSeconds(20));

        Assert.Null(await receiver.ReceiveMessageAsync(NoMessage));
        await receiver.CompleteMessageAsync(message);

        time.Advance(TimeSpan.FromSeconds(31));
        var renewLost = await Assert.ThrowsAsync<ServiceBusException>(() => receiver.RenewMessageLockAsync(message));
        Assert.Equal(ServiceBusFailureReason.MessageLockLost, renewLost.Reason);
    }

    [Fact]
    public async Task After_MaxDeliveryCount_deliveries_the_message_is_dead_lettered_with_MaxDeliveryCountExceeded()
    {
        var time = EmulatorFixture.NewFakeTime();
        await using var f = EmulatorFixture.Start(o => o.Queues[0].Properties.MaxDeliveryCount = 3, time);
        await using var sender = f.Client.CreateSender("orders");
        await sender.SendMessageAsync(new ServiceBusMessage("fails") { MessageId = "f-1" });

        await using var receiver = f.Client.CreateReceiver("orders");
        for (var attempt = 1; attempt <= 2; attempt++)
        {
            var message = await receiver.ReceiveMessageAsync(EmulatorFixture.Wait);
            Assert.Equal(attempt, message.DeliveryCount);
            await receiver.AbandonMessageAsync(message);
        }

        // The third delivery's lock expires instead of being abandoned: it counts the same.
        var last = await receiver.ReceiveMessageAsync(EmulatorFixture.Wait);
        Assert.Equal(3, last.DeliveryCount);
        time.Advance(TimeSpan.FromMinutes(2));
        Assert.Null(await receiver.ReceiveMessageAsync(NoMessage));

        await using var deadLetters = f.Client.CreateReceiver("orders", new ServiceBusReceiverOptions { SubQueue = SubQueue.DeadLetter });
        var dead = await deadLetters.ReceiveMessageAsync(EmulatorFixture.Wait);
        Assert.Equal("f-1", dead.MessageId);
        Assert.Equal("MaxDeliveryCountExceeded", dead.DeadLetterReason);
        Assert.Contains("3", dead.DeadLetterErrorDescription, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Settling_through_the_management_link_after_the_receiver_closed_works_and_reports_lost_locks()
    {
        await using var f = EmulatorFixture.Start();
        await using var sender = f.Client.CreateSender("orders");
        await sender.SendMessagesAsync([new ServiceBusMessage("a"), new ServiceBusMessage("b")]);

        var receiver = f.Client.CreateReceiver("orders");
        var messages = await ReceiveAsync(receiver, 2);
        await receiver.CloseAsync();

        // A new receiver does not know these deliveries: the client falls back to update-disposition on $management.
        await using var second = f.Client.CreateReceiver("orders");
        await second.CompleteMessageAsync(messages[0]);
        await second.DeadLetterMessageAsync(messages[1], "Late", "settled by another link");
        var again = await Assert.ThrowsAsync<ServiceBusException>(() => second.CompleteMessageAsync(messages[0]));
        Assert.Equal(ServiceBusFailureReason.MessageLockLost, again.Reason);

        await using var deadLetters = f.Client.CreateReceiver("orders", new ServiceBusReceiverOptions { SubQueue = SubQueue.DeadLetter });
        Assert.Equal("Late", (await deadLetters.ReceiveMessageAsync(EmulatorFixture.Wait)).DeadLetterReason);
    }

    /// <summary>
    /// Service Bus keeps a message's lock when the link that received it closes (Azure.Messaging.ServiceBus drains its
    /// link credit on close "so that they do not remain locked by the service after closing the link", and settles a
    /// message of a closed link by lock token over $management): the message stays locked until its lock expires, then
    /// comes back with the next delivery count; its old lock token then fails with MessageLockLost.
    /// </summary>
    [Fact]
    public async Task A_closed_receivers_message_stays_locked_until_its_lock_expires_as_on_the_service()
    {
        await using var f = EmulatorFixture.StartWithLockDuration(TimeSpan.FromSeconds(30));
        var time = f.FakeTime;
        await f.SendAsync("orders", "held", "not yet received");

        var closing = f.Client.CreateReceiver("orders");
        var held = await closing.ReceiveMessageAsync(EmulatorFixture.Wait);
        Assert.Equal("held", held.Body.ToString());
        await closing.CloseAsync();

        // The drained credit left the second message available at once; the first is still locked.
        await using var next = f.Client.CreateReceiver("orders");
        var other = await next.ReceiveMessageAsync(EmulatorFixture.Wait);
        Assert.Equal("not yet received", other.Body.ToString());
        Assert.Equal(1, other.DeliveryCount);
        Assert.Null(await next.ReceiveMessageAsync(NoMessage));
        await next.CompleteMessageAsync(other);

        time.Advance(TimeSpan.FromSeconds(31));
        var again = await next.ReceiveMessageAsync(EmulatorFixture.Wait);
        Assert.Equal(held.SequenceNumber, again.SequenceNumber);
        Assert.Equal(2, again.DeliveryCount);
        var lost = await Assert.ThrowsAsync<ServiceBusException>(() => next.CompleteMessageAsync(held));
        Assert.Equal(ServiceBusFailureReason.MessageLockLost, lost.Reason);
        await next.CompleteMessageAsync(again);
        Assert.Empty(await next.PeekMessagesAsync(10));
    }

    internal static async Task<List<ServiceBusReceivedMessage>> ReceiveAsync(ServiceBusReceiver receiver, int count)
    {
        var result = new List<ServiceBusReceivedMessage>();
        using var deadline = new CancellationTokenSource(EmulatorFixture.Wait);
        while (result.Count < count)
        {
            result.AddRange(await receiver.ReceiveMessagesAsync(count - result.Count, TimeSpan.FromSeconds(5), deadline.Token));
        }

        return result;
    }
}
