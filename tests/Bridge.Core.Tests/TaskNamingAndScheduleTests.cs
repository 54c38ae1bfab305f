using Bridge.CloudTasks;
using Bridge.Core.Forwarding;
using Bridge.Core.Internal;
using Bridge.Core.Routing;

namespace Bridge.Core.Tests;

public sealed class TaskNamingAndScheduleTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 28, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void The_same_event_always_gets_the_same_valid_task_id()
    {
        var identity = new EventIdentity(EventIdentity.ServiceBusMessageId, "msg-1");
        var id = TaskNaming.TaskId("orders", identity);

        Assert.Equal(id, TaskNaming.TaskId("orders", identity));
        Assert.Equal(id, TaskNaming.TaskId("ORDERS", identity)); // route names are case-insensitive
        Assert.Matches("^[0-9a-f]{64}$", id);
        Assert.NotNull(new TaskName("p", "l", "q", id));
    }

    [Theory]
    [InlineData("orders", EventIdentity.ServiceBusMessageId, "msg-1")]
    [InlineData("Orders", EventIdentity.IdempotencyKey, "clé-ü-😀")]
    [InlineData("orders", EventIdentity.CloudEvent, "/src\nid")]
    public void The_task_id_is_the_sha256_of_route_kind_and_value_as_before(string route, string kind, string value)
    {
        var reference = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes($"{route.ToLowerInvariant()}\n{kind}\n{value}")));

        Assert.Equal(reference, TaskNaming.TaskId(route, new EventIdentity(kind, value)));
        Assert.Equal(
            Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes($"orders\n{kind}\n{new string('x', 2000)}"))),
            TaskNaming.TaskId("orders", new EventIdentity(kind, new string('x', 2000)))); // over the stack buffer
    }

    [Fact]
    public void Route_kind_and_value_all_change_the_id()
    {
        var ids = new[]
        {
            TaskNaming.TaskId("orders", new EventIdentity(EventIdentity.ServiceBusMessageId, "1")),
            TaskNaming.TaskId("billing", new EventIdentity(EventIdentity.ServiceBusMessageId, "1")),
            TaskNaming.TaskId("orders", new EventIdentity(EventIdentity.IdempotencyKey, "1")),
            TaskNaming.TaskId("orders", new EventIdentity(EventIdentity.ServiceBusMessageId, "2")),
            TaskNaming.TaskId("orders", EventIdentity.ForCloudEvent("1", "/a")),
            TaskNaming.TaskId("orders", EventIdentity.ForCloudEvent("1", "/b")),
        };
        Assert.Equal(ids.Length, ids.Distinct().Count());
    }

    [Fact]
    public void Sequential_identities_spread_evenly_over_the_id_space()
    {
        var buckets = new int[16];
        for (var i = 0; i < 4000; i++)
        {
            buckets[Convert.ToInt32(TaskNaming.TaskId("orders", new EventIdentity(EventIdentity.ServiceBusMessageId, $"order-{i:D6}"))[..1], 16)]++;
        }

        Assert.All(buckets, count => Assert.InRange(count, 150, 350)); // 250 expected in each
    }

    [Theory]
    [InlineData("2026-11-28T12:05:00Z", 300)]
    [InlineData("2026-11-28T13:05:00+01:00", 300)]
    [InlineData("2026-11-28T12:00:30.5Z", 30.5)]
    public void Absolute_times_are_used_as_given(string at, double secondsAhead)
    {
        var scheduled = ScheduleRules.Resolve(new ScheduleHint(at, "at", null, "delay"), new RouteOptions(), Now);
        Assert.Equal(Now.AddSeconds(secondsAhead), scheduled);
    }

    [Theory]
    [InlineData("90", 90)]
    [InlineData("1.5", 1.5)]
    [InlineData("00:02:00", 120)]
    [InlineData("PT5M", 300)]
    [InlineData("P1D", 86400)]
    public void Delays_in_every_accepted_form_add_to_now(string delay, double seconds)
    {
        var scheduled = ScheduleRules.Resolve(new ScheduleHint(null, "at", delay, "delay"), new RouteOptions(), Now);
        Assert.Equal(Now.AddSeconds(seconds), scheduled);
    }

    [Fact]
    public void Past_times_mean_now_and_no_hint_means_the_route_default_or_nothing()
    {
        Assert.Equal(Now, ScheduleRules.Resolve(new ScheduleHint("2020-01-01T00:00:00Z", "at", null, "delay"), new RouteOptions(), Now));
        Assert.Equal(Now.AddMinutes(2), ScheduleRules.Resolve(ScheduleHint.None, new RouteOptions { DefaultDelay = TimeSpan.FromMinutes(2) }, Now));
        Assert.Null(ScheduleRules.Resolve(ScheduleHint.None, new RouteOptions(), Now));
    }

    [Fact]
    public void Beyond_thirty_days_is_rejected_or_clamped_by_the_route_policy()
    {
        var hint = new ScheduleHint(null, "at", "P31D", "Header X-Bridge-Delay");
        var error = Assert.Throws<ForwardingException>(() => ScheduleRules.Resolve(hint, new RouteOptions(), Now));
        Assert.Equal(ForwardingFailureReason.InvalidSchedule, error.Reason);
        Assert.Contains("720h", error.Message, StringComparison.Ordinal);
        Assert.False(error.IsTransient);

        Assert.Equal(Now.AddDays(30), ScheduleRules.Resolve(hint, new RouteOptions { SchedulePolicy = SchedulePolicy.Clamp }, Now));
    }

    [Theory]
    [InlineData("tomorrow", null, "is not an RFC 3339 time")]
    [InlineData("2026-11-28T12:00:00", null, "with an offset")]
    [InlineData("2026-13-01T00:00:00Z", null, "is not an RFC 3339 time")]
    [InlineData(null, "soon", "is not a delay")]
    [InlineData(null, "-5", "is negative")]
    [InlineData(null, "NaN", "is not a delay")]
    [InlineData(null, "PTXM", "is not a delay")]
    public void Unreadable_schedule_values_are_invalid_schedules_naming_their_source(string? at, string? delay, string message)
    {
        var error = Assert.Throws<ForwardingException>(() => ScheduleRules.Resolve(new ScheduleHint(at, "Header X-Bridge-Schedule-Time", delay, "Header X-Bridge-Delay"), new RouteOptions(), Now));
        Assert.Equal(ForwardingFailureReason.InvalidSchedule, error.Reason);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
        Assert.Contains("Header X-Bridge-", error.Message, StringComparison.Ordinal);
    }
}
