using System.Text;
using Bridge.Core.Forwarding;
using Bridge.Core.Internal;
using Bridge.Testing;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;

namespace Bridge.Core.Tests;

/// <summary>
/// A BatchCreateTasks call that fails as a whole: each event still gets its own result, transient where the call
/// may succeed later, permanent with the reason where it never will.
/// </summary>
public sealed class BatchForwardingErrorTests : IAsyncLifetime
{
    private PipelineHarness _h = null!;

    // The default call timeout: a 1 s one made the one-by-one retries below time out on a busy machine.
    public async Task InitializeAsync() => _h = await CoreHarness.StartAsync();

    public async Task DisposeAsync() => await _h.DisposeAsync();

    private IBatchEventForwarder Batch => _h.Services.GetRequiredService<IBatchEventForwarder>();

    private List<InboundEvent> Messages(params string[] ids) => Messages(_h, ids);

    private static List<InboundEvent> Messages(PipelineHarness h, params string[] ids) =>
        [.. ids.Select(id => h.ServiceBus.Map(new ServiceBusMessageData { MessageId = id, Body = Encoding.UTF8.GetBytes(id), ContentType = "text/plain" }, "orders-in"))];

    [Theory]
    [InlineData(StatusCode.Unavailable)]
    [InlineData(StatusCode.DeadlineExceeded)]
    public async Task A_call_that_stays_unavailable_makes_every_event_transient(StatusCode status)
    {
        // Retries of a failing call end within a second.
        await using var h = await CoreHarness.StartAsync(configure: s => s["Bridge:CloudTasks:Timeout"] = "00:00:01");
        h.Emulator.Emulator.Faults.Fail(status, ["BatchCreateTasks"], message: "try later");

        var results = await h.Services.GetRequiredService<IBatchEventForwarder>().ForwardBatchAsync(Messages(h, "a", "b", "c"));

        Assert.All(results, r =>
        {
            Assert.Equal(BatchForwardStatus.TransientFailure, r.Status);
            Assert.Equal(ForwardingFailureReason.CloudTasksUnavailable, r.Failure!.Reason);
        });
        Assert.Empty(await h.TasksAsync(h.Orders));
    }

    [Fact]
    public async Task A_call_refused_as_invalid_is_retried_event_by_event_and_each_keeps_its_own_result()
    {
        _h.Emulator.Emulator.Faults.Fail(StatusCode.InvalidArgument, ["BatchCreateTasks"], message: "request too large");

        var results = await Batch.ForwardBatchAsync(Messages("a", "b"));

        Assert.All(results, r => Assert.Equal(BatchForwardStatus.Created, r.Status)); // one by one, each fits
        Assert.Equal(2, (await _h.TasksAsync(_h.Orders)).Count);
    }

    [Fact]
    public async Task Invalid_argument_for_the_call_and_each_event_is_permanent_with_the_reason()
    {
        _h.Emulator.Emulator.Faults.Fail(StatusCode.InvalidArgument, ["BatchCreateTasks", "CreateTask"], message: "bad task field");

        var results = await Batch.ForwardBatchAsync(Messages("a", "b"));

        Assert.All(results, r =>
        {
            Assert.Equal(BatchForwardStatus.PermanentFailure, r.Status);
            Assert.Equal(ForwardingFailureReason.RejectedByCloudTasks, r.Failure!.Reason);
            Assert.Contains("bad task field", r.Failure.Message, StringComparison.Ordinal);
        });
    }

    [Fact]
    public async Task Not_found_for_the_whole_call_is_queue_not_found_for_each_event_with_the_reason()
    {
        _h.Emulator.Emulator.Faults.Fail(StatusCode.NotFound, ["BatchCreateTasks"], message: "Queue does not exist.");

        var results = await Batch.ForwardBatchAsync(Messages("a", "b"));

        Assert.All(results, r =>
        {
            Assert.Equal(BatchForwardStatus.PermanentFailure, r.Status);
            Assert.Equal(ForwardingFailureReason.QueueNotFound, r.Failure!.Reason);
            Assert.Contains("Queue does not exist.", r.Failure.Message, StringComparison.Ordinal);
        });
    }
}
