using Azure.Messaging.ServiceBus;
using Bridge.Testing;

namespace Bridge.Emulators.ServiceBus.Tests;

/// <summary>
/// Held settlements (<see cref="ServiceBusEmulatorFaults"/>): a client's complete waits unanswered and unapplied
/// while the fault holds it, is applied when the fault ends, and is dropped when its link closed meanwhile.
/// </summary>
public sealed class SettlementFaultTests
{
    [Fact]
    public async Task A_held_complete_is_neither_applied_nor_answered_until_the_fault_is_removed()
    {
        await using var f = EmulatorFixture.Start();
        await using var sender = f.Client.CreateSender("orders");
        await sender.SendMessageAsync(new ServiceBusMessage("held") { MessageId = "h-1" });
        var fault = f.Emulator.Faults.HoldSettlements("orders", [SettlementKind.Complete]);

        await using var receiver = f.Client.CreateReceiver("orders");
        var message = await receiver.ReceiveMessageAsync(EmulatorFixture.Wait);
        var completing = receiver.CompleteMessageAsync(message);
        await UntilHeldAsync(f.Emulator, fault.Id, 1);

        Assert.False(completing.IsCompleted);
        Assert.Equal(1, f.Emulator.GetMessageCounts("orders")!.Active); // still there, still locked
        Assert.True(f.Emulator.Faults.Remove(fault.Id));
        await completing.WaitAsync(EmulatorFixture.Wait);
        Assert.Equal(0, f.Emulator.GetMessageCounts("orders")!.Active);
        Assert.Empty(f.Emulator.Faults.Active);
    }

    [Fact]
    public async Task A_held_complete_whose_link_closed_is_dropped_and_the_message_comes_back_when_its_lock_expires()
    {
        await using var f = EmulatorFixture.Start(o => o.Queues[0].Properties.LockDuration = TimeSpan.FromSeconds(5));
        await using var sender = f.Client.CreateSender("orders");
        await sender.SendMessageAsync(new ServiceBusMessage("cut") { MessageId = "c-1" });
        var fault = f.Emulator.Faults.HoldSettlements("orders");

        // Its own client (connection), closed while the complete is held, as a process killed in the gap.
        var doomed = new ServiceBusClient(f.Emulator.ConnectionString);
        var receiver = doomed.CreateReceiver("orders");
        var message = await receiver.ReceiveMessageAsync(EmulatorFixture.Wait);
        var completing = receiver.CompleteMessageAsync(message);
        await UntilHeldAsync(f.Emulator, fault.Id, 1);
        Assert.Equal(1, f.Emulator.Faults.Find(fault.Id)!.HeldOnOpenLinks);
        await doomed.DisposeAsync();
        await Assert.ThrowsAnyAsync<Exception>(() => completing.WaitAsync(EmulatorFixture.Wait));

        // Still held, but over a link the broker has seen close: what a test waits for before it ends the fault.
        await UntilAsync(f.Emulator, fault.Id, h => h.HeldOnOpenLinks == 0);
        Assert.Equal(1, f.Emulator.Faults.Find(fault.Id)!.Held);

        // Back once its lock expires, while the fault still holds the dead link's complete; removing the fault then
        // can't apply it (the link is closed, and its lock is gone either way).
        await using var again = f.Client.CreateReceiver("orders");
        var back = await again.ReceiveMessageAsync(EmulatorFixture.Wait);
        Assert.NotNull(back);
        Assert.True(f.Emulator.Faults.Remove(fault.Id));
        Assert.Equal("c-1", back.MessageId);
        Assert.True(back.DeliveryCount >= 2, $"delivery {back.DeliveryCount}"); // more if the lock ran out on a loaded machine before the close
        await again.CompleteMessageAsync(back);
    }

    [Fact]
    public async Task A_count_holds_only_that_many_and_other_kinds_and_entities_pass()
    {
        await using var f = EmulatorFixture.Start(o => o.Queues.Add(new QueueDefinition { Name = "other" }));
        await using var sender = f.Client.CreateSender("orders");
        await sender.SendMessagesAsync([new ServiceBusMessage("1"), new ServiceBusMessage("2"), new ServiceBusMessage("3")]);
        await using var otherSender = f.Client.CreateSender("other");
        await otherSender.SendMessageAsync(new ServiceBusMessage("elsewhere"));
        var fault = f.Emulator.Faults.HoldSettlements("orders", [SettlementKind.Complete], count: 1);

        await using var receiver = f.Client.CreateReceiver("orders");
        var messages = new List<ServiceBusReceivedMessage>();
        while (messages.Count < 3)
        {
            messages.AddRange(await receiver.ReceiveMessagesAsync(3 - messages.Count, EmulatorFixture.Wait));
        }

        var first = receiver.CompleteMessageAsync(messages[0]);
        await UntilHeldAsync(f.Emulator, fault.Id, 1);
        await receiver.CompleteMessageAsync(messages[1]).WaitAsync(EmulatorFixture.Wait); // the count is spent
        await receiver.AbandonMessageAsync(messages[2]).WaitAsync(EmulatorFixture.Wait); // another kind
        await using var otherReceiver = f.Client.CreateReceiver("other");
        await otherReceiver.CompleteMessageAsync(await otherReceiver.ReceiveMessageAsync(EmulatorFixture.Wait)).WaitAsync(EmulatorFixture.Wait);

        Assert.False(first.IsCompleted);
        Assert.Equal(0, f.Emulator.Faults.Find(fault.Id)!.RemainingCount);
        f.Emulator.Faults.Clear();
        await first.WaitAsync(EmulatorFixture.Wait);
        Assert.Equal(1, f.Emulator.GetMessageCounts("orders")!.Active); // the abandoned one
    }

    [Fact]
    public async Task A_fault_with_a_duration_ends_by_itself_and_applies_what_it_held()
    {
        var time = EmulatorFixture.NewFakeTime();
        await using var f = EmulatorFixture.Start(time: time);
        await using var sender = f.Client.CreateSender("orders");
        await sender.SendMessageAsync(new ServiceBusMessage("later"));
        var fault = f.Emulator.Faults.HoldSettlements("orders", duration: TimeSpan.FromSeconds(10));

        await using var receiver = f.Client.CreateReceiver("orders");
        var message = await receiver.ReceiveMessageAsync(EmulatorFixture.Wait);
        var completing = receiver.CompleteMessageAsync(message);
        await UntilHeldAsync(f.Emulator, fault.Id, 1);
        Assert.Equal(time.GetUtcNow() + TimeSpan.FromSeconds(10), fault.ExpiresAt);

        time.Advance(TimeSpan.FromSeconds(10));
        await completing.WaitAsync(EmulatorFixture.Wait);
        Assert.Null(f.Emulator.Faults.Find(fault.Id));
        Assert.Equal(0, f.Emulator.GetMessageCounts("orders")!.Active);
    }

    [Theory]
    [InlineData("", null, null, "entityPath")]
    [InlineData("orders", 0, null, "duration")]
    [InlineData("orders", null, 0, "count")]
    public void Out_of_range_faults_are_refused_naming_the_argument(string path, int? seconds, int? count, string argument)
    {
        var emulator = ServiceBusEmulator.Start(new ServiceBusEmulatorOptions { Port = 0 });
        try
        {
            var error = Assert.ThrowsAny<ArgumentException>(() => emulator.Faults.HoldSettlements(path, duration: seconds is { } s ? TimeSpan.FromSeconds(s) : null, count: count));
            Assert.Equal(argument, error.ParamName);
        }
        finally
        {
            emulator.Dispose();
        }
    }

    /// <summary>Waits (bounded) until the fault holds <paramref name="count"/> settlements.</summary>
    static Task UntilHeldAsync(ServiceBusEmulator emulator, string id, int count) => UntilAsync(emulator, id, h => h.Held == count, $"holding {count} settlement(s)");

    /// <summary>
    /// Waits (bounded) until the fault's snapshot satisfies <paramref name="condition"/>: the fault API has no event
    /// for a settlement arriving or a link closing, so its snapshot is polled.
    /// </summary>
    static Task UntilAsync(ServiceBusEmulator emulator, string id, Func<HeldSettlementsFault, bool> condition, string what = "its expected state") =>
        Eventually.HoldsAsync(
            () => Task.FromResult(emulator.Faults.Find(id) is { } held && condition(held)),
            EmulatorFixture.Wait,
            () => $"Fault {id} did not reach {what}; now: {emulator.Faults.Find(id)?.ToString() ?? "over"}.");
}
