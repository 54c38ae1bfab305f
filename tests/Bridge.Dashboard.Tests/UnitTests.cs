using System.Diagnostics;
using System.Net;
using Bridge.Dashboard.Internal;
using Microsoft.AspNetCore.Http;

namespace Bridge.Dashboard.Tests;

public sealed class UnitTests
{
    [Theory]
    [InlineData("10.1.2.3", "localhost", true)]
    [InlineData("192.168.0.5", "127.0.0.1", true)]
    [InlineData("127.0.0.1", "localhost", false)]
    [InlineData("::1", "[::1]", false)]
    [InlineData("::ffff:127.0.0.1", "127.0.0.1", false)]
    [InlineData("127.0.0.1", "bridge.example.com", true)]
    public void Only_loopback_callers_naming_a_loopback_host_are_served(string remote, string host, bool refused)
    {
        var context = new DefaultHttpContext();
        context.Connection.RemoteIpAddress = IPAddress.Parse(remote);
        context.Request.Host = new HostString(host);

        Assert.Equal(refused, new AccessGuard(new DashboardOptions()).Refusal(context) is not null);
    }

    [Fact]
    public void The_host_can_open_the_dashboard_to_callers_it_authenticated()
    {
        var context = new DefaultHttpContext();
        context.Connection.RemoteIpAddress = IPAddress.Parse("10.1.2.3");
        context.Request.Host = new HostString("bridge.example.com");
        context.Request.Headers.Authorization = "Bearer accepted";

        var guard = new AccessGuard(new DashboardOptions { AllowRemoteRequest = c => c.Request.Headers.Authorization == "Bearer accepted" });

        Assert.Null(guard.Refusal(context));
        context.Request.Headers.Authorization = "Bearer other";
        Assert.NotNull(guard.Refusal(context));
    }

    [Fact]
    public void Interpolated_text_is_encoded_and_markup_is_not()
    {
        var text = "<img src=x onerror=alert(1)>";
        var inner = Html.Of($"<b>{text}</b>");

        var outer = Html.Of($"<p title=\"{"\" onclick=\"x"}\">{inner}</p>");

        Assert.Equal("<p title=\"&quot; onclick=&quot;x\"><b>&lt;img src=x onerror=alert(1)&gt;</b></p>", outer.Value);
    }

    [Theory]
    [InlineData("/queue?name=q", "/queue?name=q&notice=paused")]
    [InlineData("/", "/?notice=paused")]
    [InlineData("//attacker.example/", "/?notice=paused")]
    [InlineData("https://attacker.example/", "/?notice=paused")]
    [InlineData("/\\attacker.example", "/?notice=paused")]
    public void Going_back_stays_on_the_dashboard(string back, string expected) => Assert.Equal(expected, QueuePages.WithNotice(back, "paused"));

    [Fact]
    public void The_span_store_keeps_the_latest_traces_within_its_bounds_and_leaves_out_ignored_ones()
    {
        using var source = new ActivitySource("Bridge.Dashboard.Tests.Spans", "1.0");
        using var listener = new ActivityListener { ShouldListenTo = s => s == source, Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded };
        ActivitySource.AddActivityListener(listener);
        var store = new SpanStore(maxTraces: 3, maxSpansPerTrace: 2);
        var ids = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            using var root = source.StartActivity("root " + i, ActivityKind.Server, new ActivityContext(ActivityTraceId.CreateRandom(), default, ActivityTraceFlags.Recorded))!;
            ids.Add(root.TraceId.ToHexString());
            for (var j = 0; j < 3; j++)
            {
                using var child = source.StartActivity("child " + j)!;
                child.SetTag("bridge.route", "demo");
                child.SetTag("http.request.body", "never kept");
                child.Stop();
                store.OnEnd(child);
            }

            root.Stop();
            store.OnEnd(root);
        }

        Assert.Equal(ids[^3..].AsEnumerable().Reverse(), store.Recent(10).Select(t => t.TraceId));
        Assert.Null(store.Find(ids[0]));
        var kept = store.Find(ids[^1])!;
        Assert.Equal(2, kept.Spans.Count);
        Assert.All(kept.Spans, s => Assert.Equal([new KeyValuePair<string, string>("bridge.route", "demo")], s.Tags));

        store.Ignore(ActivityTraceId.CreateFromString(ids[^1]));
        Assert.Null(store.Find(ids[^1]));
        Assert.Null(store.Find("not a trace id"));
    }

    [Fact]
    public void The_outcome_feed_keeps_each_outcome_once_within_its_bound()
    {
        var feed = new OutcomeFeed(capacity: 2);
        OutcomeView View(string id) => new(id, "delivered", "projects/p/locations/l/queues/q/tasks/" + id, null, "demo", null, 0, null, null, DateTimeOffset.UnixEpoch, null);

        feed.Add(View("a"));
        feed.Add(View("a"));
        feed.Add(View("b"));
        feed.Add(View("c"));

        Assert.Equal(["c", "b"], feed.Recent().Select(o => o.Id));
    }
}
