using System.Net;
using System.Text.Json;
using Bridge.Core.Callback;
using Bridge.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Bridge.Server.Tests;

/// <summary>
/// The Service Bus outcome sink against the Service Bus emulator: outcomes from the runner's callback path arrive on
/// a queue with duplicate detection, and a repeated outcome id is dropped there.
/// </summary>
public sealed class ServiceBusOutcomeSinkTests
{
    [Fact]
    public async Task Outcomes_arrive_as_CloudEvents_and_a_repeated_outcome_id_is_dropped_by_duplicate_detection()
    {
        await using var runner = await ServiceBusOutcomeRunner.StartAsync();
        var (client, server) = (runner.Client, runner.Server);

        Assert.Equal(HttpStatusCode.Accepted, (await server.PostEventAsync("{\"order\":1}", "order-1")).StatusCode);
        await server.WaitForOutcomesAsync(1); // the Local sink has it, so every sink has it

        var sent = Assert.Single(await client.PeekAllAsync(ServiceBusOutcomeRunner.OutcomeQueue));
        using var cloudEvent = JsonDocument.Parse(sent.Body.ToString());
        Assert.Equal("dev.bridge.task.delivered", sent.Subject);
        Assert.Equal("application/cloudevents+json; charset=utf-8", sent.ContentType);
        Assert.Equal(sent.MessageId, cloudEvent.RootElement.GetProperty("id").GetString());
        var data = cloudEvent.RootElement.GetProperty("data");

        // The same task instance and status again (a callback delivered twice): same outcome id, dropped by the queue.
        var repeat = Outcome(OutcomeStatus.Delivered, data.GetProperty("taskName").GetString()!, data.GetProperty("queue").GetString()) with { TaskInstance = data.GetProperty("taskInstance").GetString() };
        var sink = server.Services.GetRequiredService<IOutcomeSink>();
        Assert.Equal(sent.MessageId, repeat.Id);
        await sink.PublishAsync(repeat, CancellationToken.None);
        Assert.Single(await client.PeekAllAsync(ServiceBusOutcomeRunner.OutcomeQueue)); // the send was acknowledged and the repeat dropped

        // A different outcome of the same task has another id and is kept.
        await sink.PublishAsync(Outcome(OutcomeStatus.Failed, repeat.TaskName, repeat.Queue), CancellationToken.None);
        var all = await client.PeekAllAsync(ServiceBusOutcomeRunner.OutcomeQueue);
        Assert.Equal(["dev.bridge.task.delivered", "dev.bridge.task.failed"], all.Select(m => m.Subject));
        Assert.Single(all, m => m.MessageId == sent.MessageId);
    }

    [Fact]
    public void An_outcome_derived_with_another_status_has_its_own_id()
    {
        var delivered = Outcome(OutcomeStatus.Delivered, "projects/p/locations/l/queues/q/tasks/t", "projects/p/locations/l/queues/q");
        _ = delivered.Id; // a sink read it

        var failed = delivered with { Status = OutcomeStatus.Failed };

        Assert.Equal(Outcome(OutcomeStatus.Failed, delivered.TaskName, delivered.Queue).Id, failed.Id);
    }

    private static TaskOutcome Outcome(OutcomeStatus status, string taskName, string? queue) => new()
    {
        Status = status,
        TaskName = taskName,
        Queue = queue,
        ReportedBy = BridgeServerApp.DemoServiceAccount,
        ReceivedAt = TimeProvider.System.GetUtcNow(),
    };
}
