using Azure.Messaging.ServiceBus;
using Bridge.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Bridge.Server.Tests;

/// <summary>The runner's batch handling, fed messages from ServiceBusModelFactory, settles each as the function app does.</summary>
public sealed class ServiceBusProcessorTests
{
    /// <summary>Records each message's settlement, as a mocked receiver would.</summary>
    private sealed class RecordingReceiver : ServiceBusReceiver
    {
        private readonly Dictionary<ServiceBusReceivedMessage, List<string>> _settled = new(ReferenceEqualityComparer.Instance);

        public List<string> Settled(ServiceBusReceivedMessage message)
        {
            lock (_settled)
            {
                return _settled.TryGetValue(message, out var list) ? [.. list] : [];
            }
        }

        public override Task CompleteMessageAsync(ServiceBusReceivedMessage message, CancellationToken cancellationToken = default) => Record(message, "complete");

        public override Task DeadLetterMessageAsync(ServiceBusReceivedMessage message, string deadLetterReason, string? deadLetterErrorDescription = null, CancellationToken cancellationToken = default) =>
            Record(message, $"deadletter:{deadLetterReason}:{deadLetterErrorDescription}");

        public override Task AbandonMessageAsync(ServiceBusReceivedMessage message, IDictionary<string, object>? propertiesToModify = null, CancellationToken cancellationToken = default) =>
            Record(message, "abandon");

        private Task Record(ServiceBusReceivedMessage message, string what)
        {
            lock (_settled)
            {
                if (!_settled.TryGetValue(message, out var list))
                {
                    _settled[message] = list = [];
                }

                list.Add(what);
            }

            return Task.CompletedTask;
        }
    }

    private static ServiceBusReceivedMessage Message(string id, IDictionary<string, object>? properties = null, int bodySize = 10) =>
        ServiceBusModelFactory.ServiceBusReceivedMessage(body: BinaryData.FromBytes(new byte[bodySize]), messageId: id, properties: properties ?? new Dictionary<string, object>());

    [Fact]
    public async Task Each_message_of_a_batch_is_completed_or_dead_lettered_with_its_own_reason()
    {
        await using var server = await RunningServer.StartAsync("--BridgeServiceBusQueue=orders-in", "--Bridge:MaxBodyBytes=1000");
        var service = ActivatorUtilities.CreateInstance<ServiceBusIntakeService>(server.Services);

        var receiver = new RecordingReceiver();
        var ok = Message("m1");
        var redelivered = Message("m1"); // the same message again in the same batch
        var badDelay = Message("m2", new Dictionary<string, object> { ["bridge-delay"] = "eventually" });
        var tooBig = Message("m3", bodySize: 5000);

        await service.ProcessBatchAsync([ok, badDelay, redelivered, tooBig], receiver);

        Assert.Equal(["complete"], receiver.Settled(ok));
        Assert.Equal(["complete"], receiver.Settled(redelivered));
        Assert.StartsWith("deadletter:InvalidSchedule:", Assert.Single(receiver.Settled(badDelay)), StringComparison.Ordinal);
        Assert.StartsWith("deadletter:PayloadTooLarge:The body is 5000 bytes", Assert.Single(receiver.Settled(tooBig)), StringComparison.Ordinal);
        await server.WaitForOutcomesAsync(1); // the completed message became a task and came back
    }

    [Fact]
    public async Task A_transient_failure_is_not_completed_when_its_hand_back_copy_cannot_be_sent()
    {
        using var down = new UnreachableEndpoint();
        await using var server = await RunningServer.StartAsync(
            "--BridgeServiceBusQueue=orders-in",
            "--Bridge:Server:EmbeddedEmulator=false",
            "--Bridge:CloudTasks:EmulatorHost=" + down.HostPort,
            "--Bridge:Routes:orders:Queue=projects/p/locations/l/queues/q",
            "--Bridge:Routes:orders:TargetUrl=https://worker.example.com/x",
            "--Bridge:Routes:orders:ServiceBusEntity=orders-in",
            "--Bridge:Callback:PublicUrl=https://bridge.example.com/api/tasks/callback",
            "--Bridge:Callback:AllowedServiceAccounts:0=a@p.iam.gserviceaccount.com");
        var service = ActivatorUtilities.CreateInstance<ServiceBusIntakeService>(server.Services);
        var receiver = new RecordingReceiver();
        var later = Message("later");

        // Not started: no sender for the copy. The message is given back (abandoned) and the original is not
        // completed, so nothing is lost. Hand-backs that are sent: ServiceBusFailurePolicyTests.
        await service.ProcessBatchAsync([later], receiver);

        Assert.Equal(["abandon"], receiver.Settled(later));
    }
}
