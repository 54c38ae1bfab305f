using System.Collections.Concurrent;
using System.Globalization;
using System.Text.RegularExpressions;
using Azure.Messaging.ServiceBus;
using Bridge.Testing;
using Xunit.Abstractions;

namespace Bridge.Emulators.ServiceBus.Tests;

/// <summary>With a data directory, acknowledged sends and settlements survive a restart and SIGKILL.</summary>
public sealed partial class DurabilityTests(ITestOutputHelper output) : IDisposable
{
    readonly string data = Directory.CreateTempSubdirectory("sb-emulator-").FullName;

    public void Dispose()
    {
        try
        {
            Directory.Delete(data, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    [Fact]
    public async Task Messages_settlements_delivery_counts_and_schedules_survive_a_restart()
    {
        long scheduled;
        long deferred;
        await using (var f = EmulatorFixture.Start(o => o.DataDirectory = data))
        {
            await using var sender = f.Client.CreateSender("orders");
            await sender.SendMessagesAsync(Enumerable.Range(0, 4).Select(i => new ServiceBusMessage($"m{i}") { MessageId = $"id-{i}" }));
            scheduled = await sender.ScheduleMessageAsync(new ServiceBusMessage("tomorrow"), TimeProvider.System.GetUtcNow().AddDays(1));
            await using var receiver = f.Client.CreateReceiver("orders");
            var received = await SettlementTests.ReceiveAsync(receiver, 4);
            await receiver.CompleteMessageAsync(received[0]);
            await receiver.DeadLetterMessageAsync(received[1], "Poison", "kept across restarts");
            await receiver.DeferMessageAsync(received[2]);
            deferred = received[2].SequenceNumber;
            // received[3] stays locked: after the restart it is available again, counted as delivered once.
        }

        await using (var f = EmulatorFixture.Start(o => o.DataDirectory = data))
        {
            await using var receiver = f.Client.CreateReceiver("orders");
            var peeked = await receiver.PeekMessagesAsync(10);
            Assert.Equal(["m2", "m3", "tomorrow"], peeked.Select(m => m.Body.ToString()));
            Assert.Equal(ServiceBusMessageState.Scheduled, peeked.Single(m => m.SequenceNumber == scheduled).State);
            var again = await receiver.ReceiveMessageAsync(EmulatorFixture.Wait);
            Assert.Equal("m3", again.Body.ToString());
            Assert.Equal(2, again.DeliveryCount);
            Assert.Equal("m2", (await receiver.ReceiveDeferredMessageAsync(deferred)).Body.ToString());
            await using var deadLetters = f.Client.CreateReceiver("orders", new ServiceBusReceiverOptions { SubQueue = SubQueue.DeadLetter });
            Assert.Equal("Poison", (await deadLetters.ReceiveMessageAsync(EmulatorFixture.Wait)).DeadLetterReason);

            await using var sender = f.Client.CreateSender("orders");
            await sender.SendMessageAsync(new ServiceBusMessage("new"));
            var newest = (await receiver.PeekMessagesAsync(10, 0)).Max(m => m.SequenceNumber);
            Assert.True(newest > scheduled, "sequence numbers are never reused after a restart");
        }
    }

    [Fact]
    public async Task The_duplicate_detection_history_survives_a_restart()
    {
        void Configure(ServiceBusEmulatorOptions o)
        {
            o.DataDirectory = data;
            o.Queues[0].Properties.RequiresDuplicateDetection = true;
        }

        await using (var f = EmulatorFixture.Start(Configure))
        {
            await using var sender = f.Client.CreateSender("orders");
            await sender.SendMessageAsync(new ServiceBusMessage("first") { MessageId = "outcome-1" });
        }

        await using (var f = EmulatorFixture.Start(Configure))
        {
            await using var sender = f.Client.CreateSender("orders");
            await sender.SendMessageAsync(new ServiceBusMessage("repeat") { MessageId = "outcome-1" });
            await sender.SendMessageAsync(new ServiceBusMessage("second") { MessageId = "outcome-2" });
            await using var receiver = f.Client.CreateReceiver("orders");
            Assert.Equal(["first", "second"], (await receiver.PeekMessagesAsync(10)).Select(m => m.Body.ToString()));
        }
    }

    [Fact]
    public async Task Rules_changed_at_run_time_survive_a_restart()
    {
        void Configure(ServiceBusEmulatorOptions o)
        {
            o.DataDirectory = data;
            o.Topics.Add(new TopicDefinition { Name = "events", Subscriptions = { new SubscriptionDefinition { Name = "eu" } } });
        }

        await using (var f = EmulatorFixture.Start(Configure))
        {
            await using var rules = f.Client.CreateRuleManager("events", "eu");
            await rules.CreateRuleAsync("region", new Azure.Messaging.ServiceBus.Administration.CorrelationRuleFilter { ApplicationProperties = { ["region"] = "eu", ["tier"] = 2 } });
            await rules.DeleteRuleAsync("$Default");
        }

        await using (var f = EmulatorFixture.Start(Configure))
        {
            await using var sender = f.Client.CreateSender("events");
            await sender.SendMessagesAsync(
            [
                new ServiceBusMessage("eu-2") { ApplicationProperties = { ["region"] = "eu", ["tier"] = 2 } },
                new ServiceBusMessage("eu-3") { ApplicationProperties = { ["region"] = "eu", ["tier"] = 3 } },
                new ServiceBusMessage("us-2") { ApplicationProperties = { ["region"] = "us", ["tier"] = 2 } },
            ]);
            await using var receiver = f.Client.CreateReceiver("events", "eu");
            Assert.Equal(["eu-2"], (await receiver.PeekMessagesAsync(10)).Select(m => m.Body.ToString()));
        }
    }

    [Fact]
    public async Task Every_acknowledged_send_and_settlement_survives_sigkill_of_the_emulator_process()
    {
        var config = Path.Combine(data, "Config.json");
        await File.WriteAllTextAsync(config, """
            {"UserConfig":{"Namespaces":[{"Name":"sbemulatorns","Queues":[{"Name":"durable","Properties":{"LockDuration":"PT5M","MaxDeliveryCount":10}}]}]}}
            """);
        var acknowledged = new ConcurrentBag<string>();
        var completed = new HashSet<string>();
        var deadLettered = new HashSet<string>();
        var killing = 0;

        var (emulator, connectionString) = await StartProcessAsync(config);
        using (emulator)
        {
            await using var client = new ServiceBusClient(connectionString, new ServiceBusClientOptions { RetryOptions = new ServiceBusRetryOptions { MaxRetries = 0, TryTimeout = TimeSpan.FromSeconds(20) } });
            await using var sender = client.CreateSender("durable");
            for (var i = 0; i < 60; i++)
            {
                await sender.SendMessageAsync(new ServiceBusMessage($"first-{i}") { MessageId = $"first-{i}" });
                acknowledged.Add($"first-{i}");
            }

            await using var receiver = client.CreateReceiver("durable");
            var received = await SettlementTests.ReceiveAsync(receiver, 30);
            foreach (var message in received.Take(20))
            {
                await receiver.CompleteMessageAsync(message);
                completed.Add(message.MessageId);
            }

            foreach (var message in received.Skip(20).Take(5))
            {
                await receiver.DeadLetterMessageAsync(message, "Poison");
                deadLettered.Add(message.MessageId);
            }

            using var stop = new CancellationTokenSource();
            var midStream = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var writers = Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
            {
                await using var writer = client.CreateSender("durable");
                for (var i = 0; !stop.IsCancellationRequested; i++)
                {
                    var id = $"w{w}-{i}";
                    try
                    {
                        await writer.SendMessagesAsync([new ServiceBusMessage(id) { MessageId = id }]);
                        acknowledged.Add(id);
                        if (acknowledged.Count >= 160)
                        {
                            midStream.TrySetResult();
                        }
                    }
                    catch (Exception) when (Volatile.Read(ref killing) == 1)
                    {
                        return; // cut off by the kill: never acknowledged
                    }
                }
            })).ToList();

            // The kill comes once 160 sends are acknowledged, while the writers keep sending; a writer that fails
            // before then fails the test at once rather than at the bound.
            await Task.WhenAny(midStream.Task, Task.WhenAll(writers)).WaitAsync(TimeSpan.FromSeconds(60));
            if (!midStream.Task.IsCompleted)
            {
                await Task.WhenAll(writers);
                throw new InvalidOperationException($"The writers stopped after {acknowledged.Count} acknowledged sends, before 160.");
            }

            Volatile.Write(ref killing, 1);
            await emulator.KillAsync(); // SIGKILL to the process holding the SQLite file, mid-stream
            await stop.CancelAsync();
            await Task.WhenAll(writers);
        }

        var (restarted, restartedConnection) = await StartProcessAsync(config);
        using (restarted)
        {
            await using var client = new ServiceBusClient(restartedConnection);
            await using var receiver = client.CreateReceiver("durable");
            var present = new HashSet<string>();
            long from = 0;
            while (true)
            {
                var page = await receiver.PeekMessagesAsync(250, from);
                if (page.Count == 0)
                {
                    break;
                }

                Assert.True(page[^1].SequenceNumber >= from, $"a peek from {from} went back to {page[^1].SequenceNumber}: the paging would never end");

                present.UnionWith(page.Select(m => m.MessageId));
                from = page[^1].SequenceNumber + 1;
            }

            await using var deadLetters = client.CreateReceiver("durable", new ServiceBusReceiverOptions { SubQueue = SubQueue.DeadLetter });
            var dead = (await deadLetters.PeekMessagesAsync(100)).Select(m => m.MessageId).ToHashSet();

            var lost = acknowledged.Where(id => !completed.Contains(id) && !deadLettered.Contains(id) && !present.Contains(id)).ToList();
            output.WriteLine($"acknowledged sends: {acknowledged.Count}; present after restart: {present.Count}; completed: {completed.Count}; dead-lettered: {dead.Count}");
            Assert.True(lost.Count == 0, $"{lost.Count} acknowledged messages lost: {string.Join(", ", lost.Take(10))}");
            Assert.Empty(completed.Intersect(present));
            Assert.Equal(deadLettered.Order(), dead.Order());
            Assert.Empty(deadLettered.Intersect(present));
            await restarted.KillAsync();
        }
    }

    async Task<(ChildProcess Process, string ConnectionString)> StartProcessAsync(string config)
    {
        var start = ChildProcess.DotnetStartInfo("Bridge.Emulators.ServiceBus.dll", ["--port", "0", "--config", config, "--data", data]);
        start.Environment["SERVICEBUS_EMULATOR_SAS_KEY"] = "a2V5LWZyb20tZW52";
        var process = await ChildProcess.StartAsync(start, "The Service Bus emulator", TimeSpan.FromSeconds(60), ConnectionStringLine());
        var started = process.Values[0];
        Assert.Contains("SharedAccessKey=a2V5LWZyb20tZW52", started, StringComparison.Ordinal);
        Assert.DoesNotContain(":0;", started, StringComparison.Ordinal);
        _ = int.Parse(started.Split(';')[0].Split(':')[^1], CultureInfo.InvariantCulture);
        return (process, started);
    }

    [GeneratedRegex("^  connection string: (.+)$")]
    private static partial Regex ConnectionStringLine();
}
