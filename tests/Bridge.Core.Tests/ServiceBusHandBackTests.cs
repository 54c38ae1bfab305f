using Azure.Messaging.ServiceBus;
using Bridge.Core.Forwarding;
using Bridge.Core.Internal;
using Bridge.Core.Routing;

namespace Bridge.Core.Tests;

/// <summary>What a hand-back copy carries and when it comes back.</summary>
public sealed class ServiceBusHandBackTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 28, 12, 0, 0, TimeSpan.Zero);

    private static ServiceBusReceivedMessage Received(string id, IDictionary<string, object>? properties = null) =>
        ServiceBusModelFactory.ServiceBusReceivedMessage(BinaryData.FromString("{\"a\":1}"), messageId: id, correlationId: "c", subject: "s", contentType: "application/json", properties: properties ?? new Dictionary<string, object>());

    [Fact]
    public void The_first_copy_keeps_body_and_properties_and_names_its_original()
    {
        var copy = ServiceBusHandBack.Copy(Received("m1", new Dictionary<string, object> { ["tenant"] = "t1" }), 1, Now, Now.AddSeconds(10), new ForwardingException(ForwardingFailureReason.CloudTasksUnavailable, "down"));

        Assert.Equal("m1:handback:1", copy.MessageId);
        Assert.Equal(("{\"a\":1}", "c", "s", "application/json"), (copy.Body.ToString(), copy.CorrelationId, copy.Subject, copy.ContentType));
        Assert.Equal("t1", copy.ApplicationProperties["tenant"]);
        Assert.Equal("m1", copy.ApplicationProperties[ServiceBusHandBack.OriginalMessageIdProperty]);
        Assert.Equal(1, copy.ApplicationProperties[ServiceBusHandBack.AttemptProperty]);
        Assert.Equal("CloudTasksUnavailable", copy.ApplicationProperties[ServiceBusHandBack.LastErrorProperty]);
        Assert.Equal(Now.AddSeconds(10), copy.ScheduledEnqueueTime);
    }

    [Fact]
    public void A_copy_of_a_copy_keeps_the_first_original_and_its_first_failure()
    {
        var first = Now.AddMinutes(-5);
        var properties = new Dictionary<string, object>
        {
            [ServiceBusHandBack.OriginalMessageIdProperty] = "m1",
            [ServiceBusHandBack.AttemptProperty] = 3,
            [ServiceBusHandBack.FirstFailureProperty] = first.ToString("O"),
        };
        var received = Received("m1:handback:3", properties);

        Assert.Equal(3, ServiceBusHandBack.Attempt(received.ApplicationProperties));
        Assert.Equal(first, ServiceBusHandBack.FirstFailure(received.ApplicationProperties, Now));
        var copy = ServiceBusHandBack.Copy(received, 4, first, Now, new ForwardingException(ForwardingFailureReason.NotAuthorized, "denied"));
        Assert.Equal("m1:handback:4", copy.MessageId);
        Assert.Equal("m1", copy.ApplicationProperties[ServiceBusHandBack.OriginalMessageIdProperty]);
    }

    [Fact]
    public void Unreadable_or_future_properties_count_as_a_first_failure_now()
    {
        var properties = new Dictionary<string, object?> { [ServiceBusHandBack.AttemptProperty] = "many", [ServiceBusHandBack.FirstFailureProperty] = Now.AddDays(1) };
        Assert.Equal(0, ServiceBusHandBack.Attempt(properties));
        Assert.Equal(Now, ServiceBusHandBack.FirstFailure(properties, Now));
    }

    [Fact]
    public void A_long_message_id_still_gives_a_deterministic_copy_id_within_the_limit()
    {
        var id = new string('x', 128);
        var a = ServiceBusHandBack.CopyMessageId(id, 12);
        Assert.Equal(a, ServiceBusHandBack.CopyMessageId(id, 12));
        Assert.NotEqual(a, ServiceBusHandBack.CopyMessageId(id, 13));
        Assert.True(a.Length <= 128);
    }

    [Fact]
    public void Delays_double_from_the_initial_delay_to_the_cap_drawn_from_the_upper_half()
    {
        var options = new BridgeOptions { RetryInitialDelay = TimeSpan.FromSeconds(10), RetryMaxDelay = TimeSpan.FromMinutes(1) };
        var random = new Random(7);
        for (var attempt = 1; attempt <= 40; attempt++)
        {
            var ceiling = TimeSpan.FromSeconds(Math.Min(10 * Math.Pow(2, attempt - 1), 60));
            Assert.InRange(ServiceBusHandBack.Delay(attempt, options, random), ceiling / 2, ceiling);
        }
    }

    [Theory]
    [InlineData(ForwardingFailureReason.CloudTasksUnavailable, true)]
    [InlineData(ForwardingFailureReason.NotAuthorized, true)]
    [InlineData(ForwardingFailureReason.QueueNotFound, true)]
    [InlineData(ForwardingFailureReason.RejectedByCloudTasks, false)]
    [InlineData(ForwardingFailureReason.InvalidSchedule, false)]
    [InlineData(ForwardingFailureReason.PayloadTooLarge, false)]
    [InlineData(ForwardingFailureReason.UnknownRoute, false)]
    public void Only_failures_worth_waiting_for_are_handed_back(ForwardingFailureReason reason, bool handedBack) =>
        Assert.Equal(handedBack, ServiceBusHandBack.IsRetriedWithinBudget(new ForwardingException(reason, "x")));
}
