using Azure.Messaging.ServiceBus;
using Bridge.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Bridge.Server.Tests;

/// <summary>The processor's handler, fed messages from ServiceBusModelFactory, settles each as the function app does.</summary>
public sealed class ServiceBusProcessorTests
{
    private sealed class RecordingArgs(ServiceBusReceivedMessage message) : ProcessMessageEventArgs(message, receiver: null, CancellationToken.None)
    {
        public List<string> Settled { get; } = [];

        public override Task CompleteMessageAsync(ServiceBusReceivedMessage message, CancellationToken cancellationToken = default)
        {
            Settled.Add("complete");
            return Task.CompletedTask;
        }

        public override Task DeadLetterMessageAsync(ServiceBusReceivedMessage message, string deadLetterReason, string? deadLetterErrorDescription = null, CancellationToken cancellationToken = default)
        {
            Settled.Add($"deadletter:{deadLetterReason}:{deadLetterErrorDescription}");
            return Task.CompletedTask;
        }

        public override Task AbandonMessageAsync(ServiceBusReceivedMessage message, IDictionary<string, object>? propertiesToModify = null, CancellationToken cancellationToken = default)
        {
            Settled.Add("abandon");
            return Task.CompletedTask;
        }
    }

    private static ServiceBusReceivedMessage Message(string id, IDictionary<string, object>? properties = null, int bodySize = 10) =>
        ServiceBusModelFactory.ServiceBusReceivedMessage(body: BinaryData.FromBytes(new byte[bodySize]), messageId: id, properties: properties ?? new Dictionary<string, object>());

    [Fact]
    public async Task Messages_are_completed_dead_lettered_with_a_reason_or_abandoned()
    {
        await using var server = await RunningServer.StartAsync("--BridgeServiceBusQueue=orders-in", "--Bridge:MaxBodyBytes=1000");
        var service = ActivatorUtilities.CreateInstance<ServiceBusIntakeService>(server.Services);

        var ok = new RecordingArgs(Message("m1"));
        var redelivered = new RecordingArgs(Message("m1"));
        var badDelay = new RecordingArgs(Message("m2", new Dictionary<string, object> { ["bridge-delay"] = "eventually" }));
        var tooBig = new RecordingArgs(Message("m3", bodySize: 5000));
        await service.ProcessAsync(ok);
        await service.ProcessAsync(redelivered);
        await service.ProcessAsync(badDelay);
        await service.ProcessAsync(tooBig);

        Assert.Equal(["complete"], ok.Settled);
        Assert.Equal(["complete"], redelivered.Settled);
        Assert.StartsWith("deadletter:InvalidSchedule:", Assert.Single(badDelay.Settled), StringComparison.Ordinal);
        Assert.StartsWith("deadletter:PayloadTooLarge:The body is 5000 bytes", Assert.Single(tooBig.Settled), StringComparison.Ordinal);
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
        var args = new RecordingArgs(Message("later"));

        // Not started: no sender for the copy. The error surfaces (the processor then abandons the message) and the
        // original is not completed, so nothing is lost. Hand-backs that are sent: ServiceBusFailurePolicyTests.
        await Assert.ThrowsAsync<InvalidOperationException>(() => service.ProcessAsync(args));

        Assert.Empty(args.Settled);
    }
}
