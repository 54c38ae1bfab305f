using System.Collections.Concurrent;
using Azure.Messaging.ServiceBus;
using Bridge.Testing;

namespace Bridge.Emulators.ServiceBus.Tests;

/// <summary>The runner's intake uses ServiceBusProcessor: prefetch-free receive loops, auto-complete, lock renewal.</summary>
public sealed class ProcessorTests
{
    [Fact]
    public async Task A_processor_completes_handled_messages_and_abandons_failed_ones_until_they_are_dead_lettered()
    {
        await using var f = EmulatorFixture.Start(o => o.Queues[0].Properties.MaxDeliveryCount = 2);
        await using var sender = f.Client.CreateSender("orders");
        await sender.SendMessagesAsync(Enumerable.Range(0, 20).Select(i => new ServiceBusMessage($"m{i}") { MessageId = $"id-{i}" }));
        await sender.SendMessageAsync(new ServiceBusMessage("boom") { MessageId = "poison" });

        var handled = new ConcurrentDictionary<string, int>();
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var processor = f.Client.CreateProcessor("orders", new ServiceBusProcessorOptions { MaxConcurrentCalls = 4 });
        processor.ProcessMessageAsync += args =>
        {
            handled.AddOrUpdate(args.Message.MessageId, 1, (_, n) => n + 1);
            if (handled.Count(h => h.Key != "poison") == 20 && handled.GetValueOrDefault("poison") == 2)
            {
                done.TrySetResult();
            }

            return args.Message.MessageId == "poison" ? throw new InvalidOperationException("handler failed") : Task.CompletedTask;
        };
        processor.ProcessErrorAsync += _ => Task.CompletedTask;
        await processor.StartProcessingAsync();
        await done.Task.WaitAsync(EmulatorFixture.Wait);
        await processor.StopProcessingAsync();

        await using var receiver = f.Client.CreateReceiver("orders");
        Assert.Empty(await receiver.PeekMessagesAsync(50));
        await using var deadLetters = f.Client.CreateReceiver("orders", new ServiceBusReceiverOptions { SubQueue = SubQueue.DeadLetter });
        var dead = await deadLetters.ReceiveMessageAsync(EmulatorFixture.Wait);
        Assert.Equal("poison", dead.MessageId);
        Assert.Equal("MaxDeliveryCountExceeded", dead.DeadLetterReason);
        Assert.All(handled.Where(h => h.Key != "poison"), h => Assert.Equal(1, h.Value));
    }

    [Fact]
    public async Task Competing_processors_and_senders_see_every_message_exactly_once()
    {
        await using var f = EmulatorFixture.Start();
        const int count = 400;
        var seen = new ConcurrentDictionary<string, int>();
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var processors = new List<ServiceBusProcessor>();
        for (var p = 0; p < 3; p++)
        {
            var processor = f.Client.CreateProcessor("orders", new ServiceBusProcessorOptions { MaxConcurrentCalls = 4, PrefetchCount = p * 10 });
            processor.ProcessMessageAsync += args =>
            {
                seen.AddOrUpdate(args.Message.MessageId, 1, (_, n) => n + 1);
                if (seen.Count == count)
                {
                    done.TrySetResult();
                }

                return Task.CompletedTask;
            };
            processor.ProcessErrorAsync += _ => Task.CompletedTask;
            processors.Add(processor);
            await processor.StartProcessingAsync();
        }

        await Task.WhenAll(Enumerable.Range(0, 4).Select(async w =>
        {
            await using var sender = f.Client.CreateSender("orders");
            for (var i = 0; i < count / 4; i += 10)
            {
                await sender.SendMessagesAsync(Enumerable.Range(i, 10).Select(n => new ServiceBusMessage($"{w}-{n}") { MessageId = $"{w}-{n}" }));
            }
        }));
        await done.Task.WaitAsync(EmulatorFixture.Wait);
        foreach (var processor in processors)
        {
            await processor.StopProcessingAsync();
            await processor.DisposeAsync();
        }

        Assert.Equal(count, seen.Count);
        Assert.All(seen, s => Assert.Equal(1, s.Value));
        await using var receiver = f.Client.CreateReceiver("orders");
        Assert.Empty(await receiver.PeekMessagesAsync(10));
    }

    [Fact]
    public async Task A_processor_renews_the_lock_of_a_slow_handler_so_the_message_is_not_redelivered()
    {
        await using var f = EmulatorFixture.StartWithLockDuration(TimeSpan.FromSeconds(10));
        var time = f.FakeTime;
        await f.SendAsync("orders", "slow");

        var inHandler = new TaskCompletionSource<ServiceBusReceivedMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var deliveries = 0;
        await using var processor = f.Client.CreateProcessor("orders", new ServiceBusProcessorOptions { MaxAutoLockRenewalDuration = TimeSpan.FromMinutes(5) });
        processor.ProcessMessageAsync += async args =>
        {
            Interlocked.Increment(ref deliveries);
            inHandler.TrySetResult(args.Message);
            await release.Task;
        };
        processor.ProcessErrorAsync += _ => Task.CompletedTask;
        await processor.StartProcessingAsync();
        try
        {
            var message = await inHandler.Task.WaitAsync(EmulatorFixture.Wait);

            // The processor renews ahead of LockedUntil on its own clock. Move the emulator's clock 5 s on, wait for a
            // renewal (it extends the lock from there), then go past the first lock: the renewed one holds.
            var firstLock = message.LockedUntil;
            time.Advance(TimeSpan.FromSeconds(5));
            // The SDK raises no event for a renewal; it updates the message's LockedUntil in place.
            await Eventually.HoldsAsync(() => Task.FromResult(message.LockedUntil > firstLock), EmulatorFixture.Wait, () => $"The processor did not renew the lock past {firstLock:O}.");

            time.Advance(TimeSpan.FromSeconds(9));
        }
        finally
        {
            release.TrySetResult();
        }

        await processor.StopProcessingAsync();
        Assert.Equal(1, deliveries);
        await using var receiver = f.Client.CreateReceiver("orders");
        Assert.Empty(await receiver.PeekMessagesAsync(5));
    }
}
