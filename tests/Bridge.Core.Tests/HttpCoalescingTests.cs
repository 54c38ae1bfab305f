using System.Text;
using Bridge.Core.Forwarding;
using Bridge.Core.Internal;
using Bridge.Core.Routing;
using Bridge.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Bridge.Core.Tests;

/// <summary>
/// HTTP intake's coalescing against the emulator: concurrent requests for one queue go in one BatchCreateTasks call
/// when the window ends (on a fake clock) or at 100 events, and each request gets the result at its own index:
/// created, deduplicated, or its own permanent error, which no other request shares.
/// </summary>
public sealed class HttpCoalescingTests : IAsyncLifetime
{
    private static readonly TimeSpan Window = TimeSpan.FromMilliseconds(5);
    private static readonly TimeSpan Bounded = TimeSpan.FromSeconds(60);

    private readonly FakeTimeProvider _time = new(TimeProvider.System.GetUtcNow());
    private PipelineHarness _h = null!;
    private HttpEventCoalescer _coalescer = null!;

    // The body limit at the task limit, so a body that passes Bridge's check can still be refused by Cloud Tasks.
    public async Task InitializeAsync()
    {
        _h = await CoreHarness.StartAsync(configure: s => s["Bridge:MaxBodyBytes"] = "1048569");
        _coalescer = new HttpEventCoalescer(
            _h.Services.GetRequiredService<IBatchEventForwarder>(),
            _h.Forwarder,
            _h.Services.GetRequiredService<RouteTable>(),
            Options.Create(new BridgeOptions { HttpCoalescingWindow = Window }),
            _time);
    }

    public async Task DisposeAsync() => await _h.DisposeAsync();

    private InboundEvent Request(string key, int bodyBytes = 16, string route = "orders") =>
        _h.Http.Map(route, new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase) { ["Idempotency-Key"] = key }, Encoding.UTF8.GetBytes(key.PadRight(bodyBytes, '.')), "text/plain");

    private async Task<int> OperationsAsync()
    {
        var count = 0;
        await foreach (var _ in _h.Emulator.Client.ListOperations(_h.Orders.Location))
        {
            count++;
        }

        return count;
    }

    /// <summary>Each request's outcome: its result, or the error it was answered with.</summary>
    private static async Task<(ForwardResult? Result, ForwardingException? Error)> OutcomeAsync(Task<ForwardResult> request)
    {
        try
        {
            return (await request.WaitAsync(Bounded), null);
        }
        catch (ForwardingException ex)
        {
            return (null, ex);
        }
    }

    [Fact]
    public async Task Mixed_results_in_one_coalesced_batch_map_back_to_their_own_requests()
    {
        var earlier = await _h.Forwarder.ForwardAsync(Request("k-1")); // exists already: k-1 again is deduplicated
        var keys = new[] { "k-0", "k-1", "too-big", "k-3", "delayed-0" };
        var requests = new[]
        {
            _coalescer.ForwardAsync(Request("k-0")),
            _coalescer.ForwardAsync(Request("k-1")),
            _coalescer.ForwardAsync(Request("too-big", bodyBytes: 1_048_569)), // over Cloud Tasks' task limit with its headers
            _coalescer.ForwardAsync(Request("k-3")),
            _coalescer.ForwardAsync(Request("delayed-0", route: "delayed")), // another queue: its own gathering
        };
        Assert.All(requests, r => Assert.False(r.IsCompleted)); // waiting for company

        _time.Advance(Window);
        var outcomes = await Task.WhenAll(requests.Select(OutcomeAsync));

        Assert.Equal(ForwardOutcome.Created, outcomes[0].Result!.Outcome);
        Assert.Equal(ForwardOutcome.Deduplicated, outcomes[1].Result!.Outcome);
        Assert.Equal(earlier.TaskName, outcomes[1].Result!.TaskName);
        Assert.Equal(ForwardingFailureReason.RejectedByCloudTasks, outcomes[2].Error!.Reason);
        Assert.False(outcomes[2].Error!.IsTransient);
        Assert.Equal(ForwardOutcome.Created, outcomes[3].Result!.Outcome);
        Assert.Equal("delayed", outcomes[4].Result!.Route);

        // Each created task is its own request's: its body, under its own name.
        var tasks = await _h.TasksAsync(_h.Orders);
        Assert.Equal(3, tasks.Count); // k-1 (earlier), k-0, k-3
        foreach (var i in new[] { 0, 3 })
        {
            var task = tasks.Single(t => t.Name == outcomes[i].Result!.TaskName);
            Assert.Equal(keys[i].PadRight(16, '.'), task.HttpRequest.Body.ToStringUtf8());
        }

        Assert.Single(await _h.TasksAsync(_h.Delayed));
        Assert.Equal(2, await OperationsAsync()); // one BatchCreateTasks per queue, for all five requests
    }

    [Fact]
    public async Task A_hundred_requests_go_at_once_without_waiting_for_the_window_and_the_rest_wait_for_it()
    {
        var requests = Enumerable.Range(0, 130).Select(i => _coalescer.ForwardAsync(Request($"n-{i}"))).ToList();

        // The first hundred filled a batch: answered with the clock standing still.
        var first = await Task.WhenAll(requests.Take(100)).WaitAsync(Bounded);
        Assert.All(first, r => Assert.Equal(ForwardOutcome.Created, r.Outcome));
        Assert.All(requests.Skip(100), r => Assert.False(r.IsCompleted));

        _time.Advance(Window);
        var rest = await Task.WhenAll(requests.Skip(100)).WaitAsync(Bounded);
        Assert.All(rest, r => Assert.Equal(ForwardOutcome.Created, r.Outcome));
        Assert.Equal(130, (await _h.TasksAsync(_h.Orders)).Select(t => t.Name).Distinct().Count());
        Assert.Equal(2, await OperationsAsync());
    }

    [Fact]
    public async Task A_permanent_error_for_one_request_leaves_the_others_created()
    {
        var requests = new[]
        {
            _coalescer.ForwardAsync(Request("big-a", bodyBytes: 1_048_569)),
            _coalescer.ForwardAsync(Request("fine-b")),
            _coalescer.ForwardAsync(Request("fine-c")),
        };
        _time.Advance(Window);
        var outcomes = await Task.WhenAll(requests.Select(OutcomeAsync));

        Assert.Equal(ForwardingFailureReason.RejectedByCloudTasks, outcomes[0].Error!.Reason);
        Assert.All(outcomes.Skip(1), o => Assert.Equal(ForwardOutcome.Created, o.Result!.Outcome));
        Assert.Equal(2, (await _h.TasksAsync(_h.Orders)).Count);
    }

    [Fact]
    public async Task A_request_that_stops_waiting_leaves_the_others_and_its_own_event_in_the_batch()
    {
        using var gone = new CancellationTokenSource();
        var leaving = _coalescer.ForwardAsync(Request("leaving"), gone.Token);
        var staying = _coalescer.ForwardAsync(Request("staying"));
        await gone.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => leaving.WaitAsync(Bounded));

        _time.Advance(Window);
        Assert.Equal(ForwardOutcome.Created, (await staying.WaitAsync(Bounded)).Outcome);
        Assert.Equal(2, (await _h.TasksAsync(_h.Orders)).Count); // sent already as far as the client knows: not lost either
    }

    [Fact]
    public async Task An_unknown_route_is_answered_at_once_with_its_own_error()
    {
        var unknown = new InboundEvent { Route = "nowhere", Source = "http", Body = "x"u8.ToArray() };

        var error = await Assert.ThrowsAsync<ForwardingException>(() => _coalescer.ForwardAsync(unknown).WaitAsync(Bounded));

        Assert.Equal(ForwardingFailureReason.UnknownRoute, error.Reason);
    }

    [Fact]
    public void The_window_is_validated_from_zero_to_five_milliseconds()
    {
        var validator = new BridgeOptionsValidator();
        var options = _h.Services.GetRequiredService<IOptions<BridgeOptions>>().Value.Clone();
        options.HttpCoalescingWindow = TimeSpan.FromMilliseconds(6);
        var result = validator.Validate(null, options);
        Assert.True(result.Failed);
        Assert.Contains("Bridge:HttpCoalescingWindow 00:00:00.0060000 must be from 00:00:00 (off) to 00:00:00.0050000", result.FailureMessage, StringComparison.Ordinal);

        options.HttpCoalescingWindow = Window;
        Assert.True(validator.Validate(null, options).Succeeded);
    }
}
