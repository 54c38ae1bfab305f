using System.Text;
using Bridge.Core.Forwarding;
using Bridge.Core.Internal;
using Bridge.Testing;

namespace Bridge.Core.Tests;

/// <summary>Malformed events each fail with their own reason and a message naming the problem; nothing crashes and nothing reaches Cloud Tasks.</summary>
public sealed class BadInputTests : IAsyncLifetime
{
    private PipelineHarness _h = null!;

    public async Task InitializeAsync() => _h = await CoreHarness.StartAsync();

    public async Task DisposeAsync() => await _h.DisposeAsync();

    public sealed record BadEvent(string Name, Func<PipelineHarness, InboundEvent> Map, ForwardingFailureReason Reason, string Message)
    {
        public override string ToString() => Name;
    }

    private static Dictionary<string, string> H(params (string, string)[] pairs) => pairs.ToDictionary(p => p.Item1, p => p.Item2, StringComparer.OrdinalIgnoreCase);

    private static InboundEvent Http(PipelineHarness h, string body, string? contentType, params (string, string)[] headers) =>
        h.Http.Map("orders", H(headers), Encoding.UTF8.GetBytes(body), contentType);

    private static InboundEvent Bus(PipelineHarness h, Dictionary<string, object?> properties, string entity = "orders-in", string? subject = null) =>
        h.ServiceBus.Map(new ServiceBusMessageData { MessageId = "m", Body = "x"u8.ToArray(), ApplicationProperties = properties, Subject = subject }, entity);

    public static TheoryData<BadEvent> Cases() =>
    [
        new("unknown HTTP route", h => h.Http.Map("nope", H(), "x"u8.ToArray(), null), ForwardingFailureReason.UnknownRoute, "No route named 'nope'"),
        new("route property names an unknown route", h => Bus(h, new() { ["bridge-route"] = "ghost" }), ForwardingFailureReason.UnknownRoute, "names route 'ghost'"),
        new("JSON body that is not JSON", h => Http(h, "{not json", "application/json"), ForwardingFailureReason.InvalidEvent, "not valid JSON"),
        new("JSON body that is empty", h => Http(h, "", "application/json"), ForwardingFailureReason.InvalidEvent, "declared as JSON but is empty"),
        new("+json body that is truncated", h => Http(h, "[1,2", "application/vnd.order+json"), ForwardingFailureReason.InvalidEvent, "not valid JSON"),
        new("structured CloudEvent that is not JSON", h => Http(h, "<event/>", "application/cloudevents+json"), ForwardingFailureReason.InvalidEvent, "structured CloudEvent can't be read"),
        new("structured CloudEvent without id", h => Http(h, """{"specversion":"1.0","source":"/s","type":"t"}""", "application/cloudevents+json"), ForwardingFailureReason.InvalidEvent, "id"),
        new("structured CloudEvent without source", h => Http(h, """{"specversion":"1.0","id":"1","type":"t"}""", "application/cloudevents+json"), ForwardingFailureReason.InvalidEvent, "source"),
        new("structured CloudEvent of an unknown version", h => Http(h, """{"specversion":"0.1","id":"1","source":"/s","type":"t"}""", "application/cloudevents+json"), ForwardingFailureReason.InvalidEvent, "CloudEvent"),
        new("structured CloudEvent that is an array", h => Http(h, "[]", "application/cloudevents+json"), ForwardingFailureReason.InvalidEvent, "structured CloudEvent can't be read"),
        new("CloudEvents batch", h => Http(h, "[]", "application/cloudevents-batch+json"), ForwardingFailureReason.InvalidEvent, "batches are not accepted"),
        new("binary CloudEvent without ce-id", h => Http(h, "x", "text/plain", ("ce-specversion", "1.0"), ("ce-source", "/s"), ("ce-type", "t")), ForwardingFailureReason.InvalidEvent, "lacks required attributes: id"),
        new("binary CloudEvent of an unknown version", h => Http(h, "x", "text/plain", ("ce-specversion", "9.9"), ("ce-id", "1"), ("ce-source", "/s"), ("ce-type", "t")), ForwardingFailureReason.InvalidEvent, "ce-specversion '9.9'"),
        new("binary CloudEvent with a bad time", h => Http(h, "x", "text/plain", ("ce-specversion", "1.0"), ("ce-id", "1"), ("ce-source", "/s"), ("ce-type", "t"), ("ce-time", "yesterday")), ForwardingFailureReason.InvalidEvent, "ce-* header is invalid"),
        new("binary CloudEvent with JSON data that is not JSON", h => Http(h, "{", "application/json", ("ce-specversion", "1.0"), ("ce-id", "1"), ("ce-source", "/s"), ("ce-type", "t")), ForwardingFailureReason.InvalidEvent, "not valid JSON"),
        new("idempotency key too long", h => Http(h, "x", null, ("Idempotency-Key", new string('k', 300))), ForwardingFailureReason.InvalidEvent, "Idempotency-Key is 300 characters"),
        new("body over the limit", h => h.Http.Map("orders", H(), new byte[5000], "application/octet-stream"), ForwardingFailureReason.PayloadTooLarge, "5000 bytes; the limit is 4096 bytes"),
        new("Service Bus body over the limit", h => h.ServiceBus.Map(new ServiceBusMessageData { MessageId = "big", Body = new byte[4097] }, "orders-in"), ForwardingFailureReason.PayloadTooLarge, "4097 bytes"),
        new("schedule header that is not a time", h => Http(h, "x", null, ("X-Bridge-Schedule-Time", "next tuesday")), ForwardingFailureReason.InvalidSchedule, "Header X-Bridge-Schedule-Time 'next tuesday'"),
        new("schedule header without offset", h => Http(h, "x", null, ("X-Bridge-Schedule-Time", "2026-12-01T10:00:00")), ForwardingFailureReason.InvalidSchedule, "with an offset"),
        new("delay header that is not a delay", h => Http(h, "x", null, ("X-Bridge-Delay", "a while")), ForwardingFailureReason.InvalidSchedule, "Header X-Bridge-Delay 'a while'"),
        new("negative delay header", h => Http(h, "x", null, ("X-Bridge-Delay", "-30")), ForwardingFailureReason.InvalidSchedule, "is negative"),
        new("delay that overflows the clock", h => Http(h, "x", null, ("X-Bridge-Delay", "300000000000")), ForwardingFailureReason.InvalidSchedule, "Header X-Bridge-Delay '300000000000' is"),
        new("ISO 8601 delay that overflows the clock", h => Http(h, "x", null, ("X-Bridge-Delay", "P9000000D")), ForwardingFailureReason.InvalidSchedule, "720h"),
        new("delay over 30 days", h => Http(h, "x", null, ("X-Bridge-Delay", "P45D")), ForwardingFailureReason.InvalidSchedule, "720h"),
        new("schedule time over 30 days", h => Http(h, "x", null, ("X-Bridge-Schedule-Time", "2099-01-01T00:00:00Z")), ForwardingFailureReason.InvalidSchedule, "720h"),
        new("CloudEvent delay extension that is not a delay", h => Http(h, """{"specversion":"1.0","id":"1","source":"/s","type":"t","bridgedelay":"soon"}""", "application/cloudevents+json"), ForwardingFailureReason.InvalidSchedule, "CloudEvent attribute 'bridgedelay'"),
        new("Service Bus delay property that is not a delay", h => Bus(h, new() { ["bridge-delay"] = "later" }), ForwardingFailureReason.InvalidSchedule, "Property 'bridge-delay' 'later'"),
        new("Service Bus schedule property of a binary type", h => Bus(h, new() { ["bridge-schedule-time"] = new byte[] { 1, 2 } }), ForwardingFailureReason.InvalidEvent, "Property 'bridge-schedule-time' has type Byte[]"),
        new("Service Bus carried property of a list type", h => Bus(h, new() { ["tenant"] = new List<string> { "a" } }), ForwardingFailureReason.InvalidEvent, "Property 'tenant' has type List`1"),
        new("Service Bus schedule time in the far future", h => Bus(h, new() { ["bridge-schedule-time"] = TimeProvider.System.GetUtcNow().AddYears(1) }), ForwardingFailureReason.InvalidSchedule, "720h"),
    ];

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Each_malformed_event_fails_with_its_specific_reason(BadEvent bad)
    {
        var error = await Assert.ThrowsAsync<ForwardingException>(async () => await _h.Forwarder.ForwardAsync(bad.Map(_h)));

        Assert.Equal(bad.Reason, error.Reason);
        Assert.Contains(bad.Message, error.Message, StringComparison.Ordinal);
        Assert.False(error.IsTransient);
        Assert.Empty(await _h.TasksAsync(_h.Orders));
    }

    [Fact]
    public void The_table_covers_at_least_25_cases()
    {
        Assert.True(Cases().Count >= 25);
    }
}
