using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Azure.Messaging.ServiceBus;
using Bridge.CloudTasks;
using Bridge.Emulators.ServiceBus;
using Bridge.Testing;
using Grpc.Core;

namespace Bridge.Server.Tests;

/// <summary>
/// SIGKILL of the runner while it hands messages back: the runner runs as its own process against a Service Bus
/// emulator (durable, SQLite) and a Cloud Tasks emulator that both outlive it, CreateTask failing so every message
/// is being handed back, and is killed at several points. Whatever step a kill cuts (the copy sent but the original
/// not completed, a message locked but not settled), every message ends as exactly one task.
/// </summary>
public sealed partial class ServiceBusHandBackKillTests
{
    private const string Intake = "kill-in";
    private const int Messages = 30;
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(180);

    [Fact]
    public async Task A_runner_killed_again_and_again_while_handing_back_loses_and_duplicates_nothing()
    {
        var data = Path.Combine(Path.GetTempPath(), "bridge-killsb-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(data);
        RunnerProcess? runner = null;
        try
        {
            // A short lock, so the messages a killed runner held come back soon; MaxDeliveryCount stays the default (each
            // kill costs a held message one delivery, and the bridge must never be what spends them).
            await using var serviceBus = ServiceBusEmulator.Start(
                new ServiceBusEmulatorOptions { Port = 0, DataDirectory = data, Queues = { new QueueDefinition { Name = Intake, Properties = { LockDuration = TimeSpan.FromSeconds(5) } } } },
                TimeProvider.System);
            await using var cloudTasks = await EmulatorHost.StartAsync();
            // Paused after creation (CreateQueue takes no state: a queue starts running), so the tasks stay to be
            // counted. A running queue dispatches each task to the unreachable worker and deletes it after its last
            // attempt; the name stays reserved, so a later copy of the message deduplicates against it: the count
            // then drops below 30 with nothing lost, which is what made this test fail on a loaded machine.
            var queue = await cloudTasks.CreateQueueAsync();
            await cloudTasks.Client.PauseQueueAsync(queue);
            var failing = cloudTasks.Emulator.Faults.Fail(StatusCode.Unavailable, ["CreateTask", "BatchCreateTasks"], message: "Injected outage");
            var settings = Settings(serviceBus, cloudTasks, queue, retryDelay: TimeSpan.FromMilliseconds(100), maxRetryDelay: TimeSpan.FromMilliseconds(500));
            await using var client = new ServiceBusClient(serviceBus.ConnectionString);
            await using (var sender = client.CreateSender(Intake))
            {
                for (var i = 0; i < Messages; i++)
                {
                    await sender.SendMessageAsync(new ServiceBusMessage($"{{\"n\":{i}}}") { MessageId = $"kill-{i}" });
                }
            }

            // Each kill comes once the hand-backs have gone further than before: copies of copies are under way.
            var kills = 0;
            foreach (var handedBackTimes in new[] { 1, 3, 5, 7 })
            {
                runner = await RunnerProcess.StartAsync(Receiving(), settings);
                await HoldsOrDiagnoseAsync(
                    async () => (await client.PeekAllAsync(Intake)).Any(m => m.ApplicationProperties.TryGetValue("bridge-handback-attempt", out var a) && (int)a >= handedBackTimes),
                    $"no message handed back {handedBackTimes} times",
                    serviceBus, client, cloudTasks.Client, queue, runner);
                await runner.KillAsync();
                Assert.Empty(runner.Errors);
                runner.Dispose();
                runner = null;
                kills++;
            }

            if ((await client.PeekAllAsync(Intake + ServiceBusPeek.DeadLetterQueue)).Count > 0)
            {
                Assert.Fail(await DiagnoseAsync("dead-lettered while Cloud Tasks was failing", serviceBus, client, cloudTasks.Client, queue, runner: null));
            }

            Assert.Empty(await ListTaskNamesAsync(cloudTasks.Client, queue)); // nothing got through while failing

            // Cloud Tasks is back; a last runner finishes the work.
            Assert.True(cloudTasks.Emulator.Faults.Remove(failing.Id));
            runner = await RunnerProcess.StartAsync(Receiving(), settings);
            await HoldsOrDiagnoseAsync(
                async () => (await client.PeekAllAsync(Intake)).Count == 0 && (await ListTaskNamesAsync(cloudTasks.Client, queue)).Count >= Messages,
                $"the intake never drained into {Messages} tasks",
                serviceBus, client, cloudTasks.Client, queue, runner);

            var tasks = await ListTaskNamesAsync(cloudTasks.Client, queue);
            Assert.Equal(Messages, tasks.Count); // none lost, none duplicated
            Assert.Equal(Messages, tasks.Distinct(StringComparer.Ordinal).Count());
            Assert.Empty(await client.PeekAllAsync(Intake + ServiceBusPeek.DeadLetterQueue));
            Assert.Equal(4, kills);
            Assert.Empty(runner.Errors);
        }
        finally
        {
            runner?.Dispose();
            Directory.Delete(data, recursive: true);
        }
    }

    /// <summary>
    /// The one gap the kills above hit only by chance, forced: the runner is killed after it sent every message's copy
    /// and before any original is completed (the emulator holds the completions). Both the originals (back when their
    /// locks expire) and the copies (back when scheduled) then reach a runner; each message becomes exactly one task,
    /// and the second of each pair ends as a deduplicated success: completed, not dead-lettered, no second task.
    /// </summary>
    [Fact]
    public async Task A_runner_killed_after_the_copies_are_sent_and_before_the_originals_are_completed_loses_and_duplicates_nothing()
    {
        const int Gap = 10;
        RunnerProcess? runner = null;
        try
        {
            await using var serviceBus = ServiceBusEmulator.Start(
                new ServiceBusEmulatorOptions { Port = 0, Queues = { new QueueDefinition { Name = Intake, Properties = { LockDuration = TimeSpan.FromSeconds(10) } } } },
                TimeProvider.System);
            await using var cloudTasks = await EmulatorHost.StartAsync();
            var queue = await cloudTasks.CreateQueueAsync();
            await cloudTasks.Client.PauseQueueAsync(queue);
            var failing = cloudTasks.Emulator.Faults.Fail(StatusCode.Unavailable, ["CreateTask", "BatchCreateTasks"], message: "Injected outage");

            // Every completion is held, so no message leaves the queue before the kill; the copies come back 10 to 20 s
            // after they are sent, so the kill comes before they are received (on a loaded machine a lock can still
            // run out and a message be handed back twice: the same copy MessageId, the same task).
            var settings = Settings(serviceBus, cloudTasks, queue, retryDelay: TimeSpan.FromSeconds(20), maxRetryDelay: TimeSpan.FromSeconds(20));
            var held = serviceBus.Faults.HoldSettlements(Intake, [SettlementKind.Complete]);
            await using var client = new ServiceBusClient(serviceBus.ConnectionString);
            await using (var sender = client.CreateSender(Intake))
            {
                await sender.SendMessagesAsync(Enumerable.Range(0, Gap).Select(i => new ServiceBusMessage($"{{\"n\":{i}}}") { MessageId = $"gap-{i}" }));
            }

            runner = await RunnerProcess.StartAsync(Receiving(), settings);
            await HoldsOrDiagnoseAsync(
                async () => serviceBus.Faults.Find(held.Id)?.Held >= Gap && CopyIds(await client.PeekAllAsync(Intake)).Count == Gap,
                $"the runner did not reach the completion of all {Gap} originals",
                serviceBus, client, cloudTasks.Client, queue, runner);

            // In the gap: every copy is sent (a copy goes before its original's completion) and no original completed.
            var inGap = await client.PeekAllAsync(Intake);
            Assert.Equal(Gap, inGap.Where(m => !m.ApplicationProperties.ContainsKey("bridge-handback-attempt")).Select(m => m.MessageId).Distinct(StringComparer.Ordinal).Count());
            Assert.Equal(Enumerable.Range(0, Gap).Select(i => $"gap-{i}:handback:1").Order(StringComparer.Ordinal), CopyIds(inGap).Order(StringComparer.Ordinal));
            await runner.KillAsync();
            Assert.Empty(runner.Errors);
            runner.Dispose();
            runner = null;

            // The held completions went with the killed runner's links: once the broker has seen them close, removing
            // the fault applies none of them (before that, it would apply them and skip the duplicate-copy path).
            await HoldsOrDiagnoseAsync(
                () => Task.FromResult(serviceBus.Faults.Find(held.Id)?.HeldOnOpenLinks == 0),
                "the broker never saw the killed runner's links close",
                serviceBus, client, cloudTasks.Client, queue, runner: null);
            Assert.True(serviceBus.Faults.Remove(held.Id));
            Assert.True(cloudTasks.Emulator.Faults.Remove(failing.Id));
            runner = await RunnerProcess.StartAsync(Receiving(), settings);
            await HoldsOrDiagnoseAsync(
                async () => (await client.PeekAllAsync(Intake)).Count == 0 && (await ListTaskNamesAsync(cloudTasks.Client, queue)).Count >= Gap,
                $"originals and copies did not all end as {Gap} tasks",
                serviceBus, client, cloudTasks.Client, queue, runner);

            var tasks = await ListTaskNamesAsync(cloudTasks.Client, queue);
            Assert.Equal(Gap, tasks.Count);
            Assert.Equal(Gap, tasks.Distinct(StringComparer.Ordinal).Count());
            Assert.Empty(await client.PeekAllAsync(Intake + ServiceBusPeek.DeadLetterQueue)); // the second of each pair was completed as a duplicate
            Assert.Empty(runner.Errors);
        }
        finally
        {
            runner?.Dispose();
        }
    }

    /// <summary>The distinct MessageIds of the first hand-back's copies among <paramref name="messages"/>.</summary>
    private static HashSet<string> CopyIds(IEnumerable<ServiceBusReceivedMessage> messages) =>
        messages.Where(m => m.ApplicationProperties.TryGetValue("bridge-handback-attempt", out var a) && a is int and 1).Select(m => m.MessageId).ToHashSet(StringComparer.Ordinal);

    /// <summary>The runner's command line: the route takes the intake, the retry delays given, Cloud Tasks calls bounded to 1 s.</summary>
    private static string[] Settings(ServiceBusEmulator serviceBus, EmulatorHost cloudTasks, QueueName queue, TimeSpan retryDelay, TimeSpan maxRetryDelay) =>
    [
        $"--BridgeServiceBus={serviceBus.ConnectionString}",
        $"--BridgeServiceBusQueue={Intake}",
        $"--{CloudTasksClient.EmulatorHostEnvironmentVariable}={cloudTasks.GrpcHostPort}",
        "--Bridge:Server:Port=0",
        $"--Bridge:Routes:orders:Queue={queue}",
        "--Bridge:Routes:orders:TargetUrl=https://worker.example.com/orders",
        $"--Bridge:Routes:orders:ServiceBusEntity={Intake}",
        "--Bridge:Routes:orders:RetryBudget=01:00:00",
        "--Bridge:Callback:PublicUrl=https://bridge.example.com/api/tasks/callback",
        "--Bridge:Callback:AllowedServiceAccounts:0=a@p.iam.gserviceaccount.com",
        "--Bridge:CloudTasks:Timeout=00:00:01",
        FormattableString.Invariant($"--Bridge:RetryInitialDelay={retryDelay:c}"),
        FormattableString.Invariant($"--Bridge:RetryMaxDelay={maxRetryDelay:c}"),
        "--Logging:LogLevel:Bridge.Server.ServiceBusIntakeService=Information",
    ];

    /// <summary>Waits (bounded) for <paramref name="condition"/>; on timeout fails with the state of everything involved.</summary>
    private static async Task HoldsOrDiagnoseAsync(Func<Task<bool>> condition, string what, ServiceBusEmulator serviceBus, ServiceBusClient client, CloudTasksClient tasks, QueueName queue, RunnerProcess? runner)
    {
        try
        {
            await Eventually.HoldsAsync(condition, Wait);
        }
        catch (TimeoutException)
        {
            Assert.Fail(await DiagnoseAsync(what, serviceBus, client, tasks, queue, runner));
        }
    }

    /// <summary>
    /// What a failure needs to be diagnosed from its message alone: every message of the intake and its dead-letter
    /// queue (state, delivery count, hand-back attempt, scheduled time, dead-letter reason), the broker's own counts,
    /// the messages that became no task, and the runner's last lines.
    /// </summary>
    private static async Task<string> DiagnoseAsync(string what, ServiceBusEmulator serviceBus, ServiceBusClient client, CloudTasksClient tasks, QueueName queue, RunnerProcess? runner)
    {
        var report = new StringBuilder();
        report.AppendLine(CultureInfo.InvariantCulture, $"{what} (at {TimeProvider.System.GetUtcNow():O}); broker counts: {serviceBus.GetMessageCounts(Intake)}");
        foreach (var path in new[] { Intake, Intake + ServiceBusPeek.DeadLetterQueue })
        {
            var messages = await client.PeekAllAsync(path);
            report.AppendLine(CultureInfo.InvariantCulture, $"{path}: {messages.Count} messages");
            foreach (var m in messages)
            {
                m.ApplicationProperties.TryGetValue("bridge-handback-attempt", out var attempt);
                m.ApplicationProperties.TryGetValue("bridge-original-message-id", out var original);
                report.AppendLine(CultureInfo.InvariantCulture,
                    $"  #{m.SequenceNumber} {m.MessageId} (original {original ?? m.MessageId}) state={m.State} deliveries={m.DeliveryCount} attempt={attempt ?? 0} enqueued={m.EnqueuedTime:O} scheduled={m.ScheduledEnqueueTime:O} deadLetter={m.DeadLetterReason}: {m.DeadLetterErrorDescription}");
            }
        }

        try
        {
            var names = await ListTaskNamesAsync(tasks, queue);
            report.AppendLine(CultureInfo.InvariantCulture, $"tasks: {names.Count} ({names.Distinct(StringComparer.Ordinal).Count()} distinct)");
        }
#pragma warning disable CA1031 // a diagnostic must not hide the failure it describes
        catch (Exception ex)
#pragma warning restore CA1031
        {
            report.AppendLine(CultureInfo.InvariantCulture, $"tasks: could not list ({ex.Message})");
        }

        if (runner is not null)
        {
            // Log lines with their messages, without exception stack frames (a batch failure alone has hundreds).
            var output = runner.Output.Where(l => !l.StartsWith("         at ", StringComparison.Ordinal) && !l.Contains("--- End of", StringComparison.Ordinal)).ToList();
            report.AppendLine(CultureInfo.InvariantCulture, $"runner output without stack frames (last 120 of {output.Count} lines):");
            foreach (var line in output.TakeLast(120))
            {
                report.AppendLine(line.Length > 400 ? line[..400] : line);
            }
        }

        return report.ToString();
    }

    private static async Task<List<string>> ListTaskNamesAsync(CloudTasksClient client, QueueName queue)
    {
        var names = new List<string>();
        await foreach (var task in client.ListTasks(queue))
        {
            names.Add(task.Name);
        }

        return names;
    }

    /// <summary>The intake's start-up line: the runner receives from the queue.</summary>
    private static Regex Receiving() => ReceivingLine();

    [GeneratedRegex("Receiving Service Bus messages from " + Intake)]
    private static partial Regex ReceivingLine();
}
