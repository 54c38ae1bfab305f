using Azure.Messaging.ServiceBus;
using Bridge.Core.Forwarding;
using Bridge.Core.Intake;
using Bridge.Core.Internal;
using Bridge.Core.Routing;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Bridge.Core.Tests;

/// <summary>
/// A batch's hand-back copies go out together, in as few ServiceBusMessageBatch as the size limit allows, and each
/// original is completed only after the batch holding its copy was sent; a batch that can't be sent leaves its
/// messages unsettled (the host gives them back) and the others are settled as usual.
/// </summary>
public sealed class ServiceBusBatchedHandBackTests
{
    private const string Queue = "orders-in";

    [Fact]
    public async Task The_copies_go_out_in_full_batches_and_every_original_is_completed_after_its_copy_was_sent()
    {
        var log = new List<string>();
        var sender = new RecordingSender(log, perBatch: 3);
        var messages = Enumerable.Range(0, 7).Select(i => Received($"m{i}")).ToList();
        var settlers = messages.Select(m => new RecordingSettler(log, m.MessageId, sender)).ToList();

        var settlements = await Handler().HandleBatchAsync(messages, Queue, settlers, CancellationToken.None);

        Assert.All(settlements, s => Assert.Equal(SettlementAction.HandBack, s.Action));
        Assert.Equal(new[] { 3, 3, 1 }, sender.Batches.Select(b => b.Count));
        Assert.Empty(sender.Singles);
        Assert.All(settlers, s => Assert.Equal(0, s.CopiesOneByOne));
        var copies = sender.Batches.SelectMany(b => b).ToList();
        Assert.Equal(messages.Select(m => m.MessageId + ":handback:1"), copies.Select(c => c.MessageId));
        Assert.All(copies, c => Assert.Equal(1, c.ApplicationProperties["bridge-handback-attempt"]));
        Assert.All(copies, c => Assert.True(c.ScheduledEnqueueTime > DateTimeOffset.MinValue));
        foreach (var message in messages)
        {
            var completed = log.IndexOf("complete " + message.MessageId);
            var sent = log.FindIndex(e => e.StartsWith("send ", StringComparison.Ordinal) && e.Split(' ')[1].Split(',').Contains(message.MessageId + ":handback:1"));
            Assert.True(sent >= 0 && completed > sent, $"{message.MessageId}: copy sent at {sent}, original completed at {completed}\n{string.Join('\n', log)}");
        }
    }

    [Fact]
    public async Task A_batch_that_cannot_be_sent_leaves_its_originals_unsettled_and_the_rest_are_handed_back()
    {
        var log = new List<string>();
        var sender = new RecordingSender(log, perBatch: 3, failingBatch: 1);
        var messages = Enumerable.Range(0, 7).Select(i => Received($"m{i}")).ToList();
        var settlers = messages.Select(m => new RecordingSettler(log, m.MessageId, sender)).ToList();

        var error = await Assert.ThrowsAsync<AggregateException>(() => Handler().HandleBatchAsync(messages, Queue, settlers, CancellationToken.None));

        Assert.Equal(3, error.InnerExceptions.Count);
        Assert.All(error.InnerExceptions, e => Assert.IsType<ServiceBusException>(e));
        Assert.Equal(new[] { true, true, true, false, false, false, true }, settlers.Select(s => s.Completed));
        Assert.Equal(new[] { "m0:handback:1", "m1:handback:1", "m2:handback:1", "m6:handback:1" }, sender.Batches.SelectMany(b => b).Select(c => c.MessageId));
    }

    [Fact]
    public async Task A_copy_too_large_for_a_batch_of_its_own_is_sent_alone_so_the_broker_names_the_problem()
    {
        var log = new List<string>();
        var sender = new RecordingSender(log, perBatch: 2, refuse: id => id.StartsWith("big", StringComparison.Ordinal));
        List<ServiceBusReceivedMessage> messages = [Received("m0"), Received("big"), Received("m2")];
        var settlers = messages.Select(m => new RecordingSettler(log, m.MessageId, sender)).ToList();

        await Handler().HandleBatchAsync(messages, Queue, settlers, CancellationToken.None);

        Assert.Equal(new[] { "big:handback:1" }, sender.Singles.Select(c => c.MessageId));
        Assert.Equal(new[] { "m0:handback:1", "m2:handback:1" }, sender.Batches.SelectMany(b => b).Select(c => c.MessageId));
        Assert.All(settlers, s => Assert.True(s.Completed));
    }

    private static ServiceBusMessageHandler Handler()
    {
        var options = new BridgeOptions
        {
            RetryInitialDelay = TimeSpan.FromSeconds(10),
            RetryMaxDelay = TimeSpan.FromMinutes(1),
            Routes = { ["orders"] = new RouteOptions { Queue = "projects/p/locations/l/queues/q", TargetUrl = "https://worker.example.com/", ServiceBusEntity = Queue } },
        };
        var routes = new RouteTable(options);
        return new ServiceBusMessageHandler(new ServiceBusIntake(routes, Options.Create(options)), new FailingForwarder(), new FailingForwarder(), routes, options, new FakeTimeProvider(new DateTimeOffset(2026, 11, 29, 0, 0, 0, TimeSpan.Zero)));
    }

    private static ServiceBusReceivedMessage Received(string id) =>
        ServiceBusModelFactory.ServiceBusReceivedMessage(BinaryData.FromString("{}"), messageId: id);

    /// <summary>Cloud Tasks unavailable: every message is handed back.</summary>
    private sealed class FailingForwarder : IEventForwarder, IBatchEventForwarder
    {
        private static ForwardingException Unavailable => new(ForwardingFailureReason.CloudTasksUnavailable, "Cloud Tasks is unavailable");

        public Task<ForwardResult> ForwardAsync(InboundEvent inbound, CancellationToken cancellationToken = default) => throw Unavailable;

        public Task<IReadOnlyList<BatchForwardResult>> ForwardBatchAsync(IReadOnlyList<InboundEvent> events, CancellationToken cancellationToken = default) =>
            Task.FromResult<IReadOnlyList<BatchForwardResult>>([.. events.Select(_ => BatchForwardResult.Failed(Unavailable))]);
    }

    /// <summary>A sender whose batches hold <c>perBatch</c> copies; batch number <c>failingBatch</c> (0-based) fails to send.</summary>
    private sealed class RecordingSender(List<string> log, int perBatch, int failingBatch = -1, Func<string, bool>? refuse = null) : ServiceBusSender
    {
        private readonly Dictionary<ServiceBusMessageBatch, List<ServiceBusMessage>> _contents = [];
        private int _sends;

        public List<List<ServiceBusMessage>> Batches { get; } = [];

        public List<ServiceBusMessage> Singles { get; } = [];

        public override ValueTask<ServiceBusMessageBatch> CreateMessageBatchAsync(CancellationToken cancellationToken = default)
        {
            var store = new List<ServiceBusMessage>();
            var batch = ServiceBusModelFactory.ServiceBusMessageBatch(1024, store, tryAddCallback: m => store.Count < perBatch && refuse?.Invoke(m.MessageId) != true);
            lock (log)
            {
                _contents[batch] = store;
            }

            return ValueTask.FromResult(batch);
        }

        public override Task SendMessagesAsync(ServiceBusMessageBatch messageBatch, CancellationToken cancellationToken = default)
        {
            lock (log)
            {
                var copies = _contents[messageBatch];
                if (_sends++ == failingBatch)
                {
                    throw new ServiceBusException("Injected: the link is gone", ServiceBusFailureReason.ServiceCommunicationProblem);
                }

                Batches.Add([.. copies]);
                log.Add("send " + string.Join(',', copies.Select(c => c.MessageId)));
            }

            return Task.CompletedTask;
        }

        public override Task SendMessageAsync(ServiceBusMessage message, CancellationToken cancellationToken = default)
        {
            lock (log)
            {
                Singles.Add(message);
                log.Add("send " + message.MessageId);
            }

            return Task.CompletedTask;
        }
    }

    private sealed class RecordingSettler(List<string> log, string messageId, ServiceBusSender sender) : IServiceBusSettler
    {
        public bool Completed { get; private set; }

        public int CopiesOneByOne { get; private set; }

        public Task CompleteAsync(CancellationToken cancellationToken)
        {
            lock (log)
            {
                Completed = true;
                log.Add("complete " + messageId);
            }

            return Task.CompletedTask;
        }

        public Task DeadLetterAsync(string reason, string description, CancellationToken cancellationToken) => throw new InvalidOperationException("not expected");

        public Task AbandonAsync(CancellationToken cancellationToken) => throw new InvalidOperationException("not expected");

        public Task ScheduleCopyAsync(string entity, ServiceBusMessage copy, CancellationToken cancellationToken)
        {
            CopiesOneByOne++;
            return Task.CompletedTask;
        }

        public ServiceBusSender? CopySender(string entity) => sender;
    }
}
