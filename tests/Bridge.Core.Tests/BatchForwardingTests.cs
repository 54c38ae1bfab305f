using System.Text;
using Bridge.CloudTasks.LongRunning;
using Bridge.Core.Forwarding;
using Bridge.Core.Internal;
using Bridge.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Bridge.Core.Tests;

/// <summary>Groups of events through the batch forwarder into the emulator: each event settles on its own result.</summary>
public sealed class BatchForwardingTests : IAsyncLifetime
{
    private PipelineHarness _h = null!;

    // The body limit at the task limit, so a body that passes Bridge's check can still be refused by Cloud Tasks.
    public async Task InitializeAsync() => _h = await CoreHarness.StartAsync(configure: s => s["Bridge:MaxBodyBytes"] = "1048569");

    public async Task DisposeAsync() => await _h.DisposeAsync();

    private IBatchEventForwarder Batch => _h.Services.GetRequiredService<IBatchEventForwarder>();

    private InboundEvent Message(string id, int bodyBytes = 16, string entity = "orders-in") =>
        _h.ServiceBus.Map(new ServiceBusMessageData { MessageId = id, Body = Encoding.UTF8.GetBytes(id.PadRight(bodyBytes, '.')), ContentType = "text/plain" }, entity);

    private InboundEvent Delayed(string id) => _h.Http.Map("delayed", new Dictionary<string, string> { ["Idempotency-Key"] = id }, Encoding.UTF8.GetBytes(id), "text/plain");

    private async Task<List<Operation>> OperationsAsync()
    {
        var all = new List<Operation>();
        await foreach (var operation in _h.Emulator.Client.ListOperations(_h.Orders.Location))
        {
            all.Add(operation);
        }

        return all;
    }

    [Fact]
    public async Task Events_for_two_queues_go_in_chunks_of_at_most_100_and_each_gets_its_own_result_in_order()
    {
        var events = new List<InboundEvent>();
        events.AddRange(Enumerable.Range(0, 230).Select(i => Message($"m-{i}")));
        events.Insert(5, Delayed("d-1"));
        events.Insert(150, Delayed("d-2"));
        events.Add(Message("m-7")); // the same message again within the batch: deduplicated, not created twice

        var results = await Batch.ForwardBatchAsync(events);

        Assert.Equal(events.Count, results.Count);
        Assert.Equal(232, results.Count(r => r.Status == BatchForwardStatus.Created));
        // Chunks run concurrently: either copy may be the one that created the task, the other finds it.
        var copies = new[] { results[events.FindIndex(e => e.Identity == events[^1].Identity)], results[^1] };
        Assert.Equal([BatchForwardStatus.Created, BatchForwardStatus.AlreadyExisted], copies.Select(r => r.Status).Order());
        Assert.Single(copies.Select(r => r.Forwarded!.TaskName).Distinct());
        Assert.Equal("delayed", results[5].Forwarded!.Route);
        Assert.Equal("delayed", results[150].Forwarded!.Route);
        Assert.NotNull(results[5].Forwarded!.ScheduleTime); // the route's default delay

        var orders = await _h.TasksAsync(_h.Orders);
        Assert.Equal(230, orders.Count);
        Assert.Equal(orders.Select(t => t.Name).Order(StringComparer.Ordinal), results.Where(r => r.Forwarded!.Route == "orders").Select(r => r.Forwarded!.TaskName).Distinct().Order(StringComparer.Ordinal));
        Assert.Equal(2, (await _h.TasksAsync(_h.Delayed)).Count);

        // Each task carries its own event's body: no event's task went to another.
        foreach (var (inbound, result) in events.Zip(results).Where(p => p.First.Route == "orders"))
        {
            var task = orders.Single(t => t.Name == result.Forwarded!.TaskName);
            Assert.Equal(inbound.Body.ToArray(), task.HttpRequest.Body.ToByteArray());
        }

        // 231 order events in chunks of 100, 100, 31; the two delayed events in one.
        var operations = await OperationsAsync();
        Assert.Equal(4, operations.Count);
        Assert.All(operations, o => Assert.True(o.Done));
    }

    [Fact]
    public async Task A_redelivered_batch_is_all_already_existed_and_creates_nothing()
    {
        var events = Enumerable.Range(0, 40).Select(i => Message($"r-{i}")).ToList();
        var first = await Batch.ForwardBatchAsync(events);
        var again = await Batch.ForwardBatchAsync(events);

        Assert.All(first, r => Assert.Equal(BatchForwardStatus.Created, r.Status));
        Assert.All(again, r => Assert.Equal(BatchForwardStatus.AlreadyExisted, r.Status));
        Assert.Equal(first.Select(r => r.Forwarded!.TaskName), again.Select(r => r.Forwarded!.TaskName));
        Assert.Equal(40, (await _h.TasksAsync(_h.Orders)).Count);
    }

    [Fact]
    public async Task Failures_are_reported_only_for_the_events_that_caused_them()
    {
        var events = new List<InboundEvent>
        {
            Message("ok-1"),
            new InboundEvent { Route = "nope", Source = "http", Body = "x"u8.ToArray() }, // unknown route: refused before any call
            Message("too-big", bodyBytes: 1_048_569), // passes Bridge's limit, over Cloud Tasks' task limit with its headers
            Message("ok-2"),
        };

        var results = await Batch.ForwardBatchAsync(events);

        Assert.Equal(BatchForwardStatus.Created, results[0].Status);
        Assert.Equal(BatchForwardStatus.PermanentFailure, results[1].Status);
        Assert.Equal(ForwardingFailureReason.UnknownRoute, results[1].Failure!.Reason);
        Assert.Equal(BatchForwardStatus.PermanentFailure, results[2].Status);
        Assert.Equal(ForwardingFailureReason.RejectedByCloudTasks, results[2].Failure!.Reason);
        Assert.Contains("Task size too large", results[2].Failure!.Message, StringComparison.Ordinal);
        Assert.Equal(BatchForwardStatus.Created, results[3].Status);
        Assert.Equal(2, (await _h.TasksAsync(_h.Orders)).Count);
    }

    [Fact]
    public async Task A_missing_queue_fails_its_own_events_and_not_those_of_another_queue()
    {
        await _h.Emulator.Client.DeleteQueueAsync(_h.Delayed);

        var results = await Batch.ForwardBatchAsync([Message("a"), Delayed("gone-1"), Message("b"), Delayed("gone-2")]);

        Assert.Equal([BatchForwardStatus.Created, BatchForwardStatus.PermanentFailure, BatchForwardStatus.Created, BatchForwardStatus.PermanentFailure], results.Select(r => r.Status));
        Assert.All(new[] { results[1], results[3] }, r => Assert.Equal(ForwardingFailureReason.QueueNotFound, r.Failure!.Reason));
    }

    [Fact]
    public async Task Large_events_are_split_so_a_call_stays_under_the_byte_budget()
    {
        // Six events of ~1 MB: at most four fit in the 4 MiB budget, so two calls.
        var events = Enumerable.Range(0, 6).Select(i => Message($"big-{i}", bodyBytes: 1_000_000)).ToList();

        var results = await Batch.ForwardBatchAsync(events);

        Assert.All(results, r => Assert.Equal(BatchForwardStatus.Created, r.Status));
        Assert.Equal(2, (await OperationsAsync()).Count);
    }

    [Fact]
    public async Task An_empty_group_needs_no_call()
    {
        Assert.Empty(await Batch.ForwardBatchAsync([]));
        Assert.Empty(await OperationsAsync());
    }
}
