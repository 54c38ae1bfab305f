using System.Threading.Channels;
using Azure.Messaging.ServiceBus;
using Bridge.CloudTasks.Tests.Infrastructure;
using Bridge.Server.Internal;

namespace Bridge.Server.Tests;

/// <summary>
/// The runner's lock renewal for a batch under way, on a fake clock advanced exactly when it waits: each unsettled
/// lock renewed before it expires, no renewal after settlement or stop, a lost lock reported once and left alone, and
/// renewal ending at its bound.
/// </summary>
public sealed class MessageLockRenewalTests
{
    private static readonly TimeSpan Lock = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan Bounded = TimeSpan.FromSeconds(30);

    private readonly ObservedTimeProvider _time = new();
    private readonly Channel<(string MessageId, DateTimeOffset At)> _renewals = Channel.CreateUnbounded<(string, DateTimeOffset)>();
    private readonly List<(string MessageId, ServiceBusFailureReason Reason)> _failures = [];

    /// <summary>Failures to answer renewals with, by message id; otherwise a renewal gives a fresh 30 s lock.</summary>
    private readonly Dictionary<string, ServiceBusFailureReason> _failWith = [];

    private sealed class Held(ServiceBusReceivedMessage message) : IRenewableLock
    {
        public ServiceBusReceivedMessage Message => message;

        public bool Settled { get; set; }
    }

    private Held Message(string id, TimeSpan lockLeft) =>
        new(ServiceBusModelFactory.ServiceBusReceivedMessage(messageId: id, lockTokenGuid: Guid.NewGuid(), lockedUntil: _time.GetUtcNow() + lockLeft));

    private MessageLockRenewal Renewal(TimeSpan? maxRenewal = null, Func<CancellationToken, Task>? during = null) => new(
        _time,
        maxRenewal ?? TimeSpan.FromMinutes(5),
        async (message, ct) =>
        {
            _renewals.Writer.TryWrite((message.MessageId, _time.GetUtcNow()));
            if (during is not null)
            {
                await during(ct);
            }

            return _failWith.TryGetValue(message.MessageId, out var reason)
                ? throw new ServiceBusException("renewal refused", reason)
                : _time.GetUtcNow() + Lock;
        },
        (message, ex) =>
        {
            lock (_failures)
            {
                _failures.Add((message.MessageId, ex.Reason));
            }
        });

    private async Task<List<(string MessageId, DateTimeOffset At)>> RenewalsAsync(int count)
    {
        var seen = new List<(string, DateTimeOffset)>();
        while (seen.Count < count)
        {
            seen.Add(await _renewals.Reader.ReadAsync().AsTask().WaitAsync(Bounded));
        }

        return seen;
    }

    [Fact]
    public async Task Each_unsettled_lock_is_renewed_when_half_of_the_earliest_is_left_until_it_is_settled()
    {
        var a = Message("a", Lock);
        var b = Message("b", TimeSpan.FromSeconds(50));
        var start = _time.GetUtcNow();
        using var stop = new CancellationTokenSource();
        var run = Renewal().RunAsync([a, b], stop.Token);

        Assert.Equal(TimeSpan.FromSeconds(15), await _time.NextTimerAsync()); // half of a's 30 s
        _time.Fake.Advance(TimeSpan.FromSeconds(15));
        var first = await RenewalsAsync(2);
        Assert.Equal(["a", "b"], first.Select(r => r.MessageId).Order(StringComparer.Ordinal));
        Assert.All(first, r => Assert.Equal(start + TimeSpan.FromSeconds(15), r.At)); // both still locked then

        // Both now locked until 45 s: the next round at half of what is left. Then a is settled: only b is renewed.
        Assert.Equal(TimeSpan.FromSeconds(15), await _time.NextTimerAsync());
        a.Settled = true;
        _time.Fake.Advance(TimeSpan.FromSeconds(15));
        Assert.Equal("b", (await RenewalsAsync(1))[0].MessageId);

        // Everything settled: the next round finds nothing to renew and ends on its own.
        Assert.Equal(TimeSpan.FromSeconds(15), await _time.NextTimerAsync());
        b.Settled = true;
        _time.Fake.Advance(TimeSpan.FromSeconds(15));
        await run.WaitAsync(Bounded);
        Assert.False(_renewals.Reader.TryRead(out _));
        Assert.Empty(_failures);
    }

    [Fact]
    public async Task Stopping_ends_renewal_at_once_and_renews_nothing_more()
    {
        using var stop = new CancellationTokenSource();
        var run = Renewal().RunAsync([Message("a", Lock)], stop.Token);
        await _time.NextTimerAsync();

        await stop.CancelAsync(); // the batch is settled
        await run.WaitAsync(Bounded);

        _time.Fake.Advance(TimeSpan.FromMinutes(1));
        Assert.False(_renewals.Reader.TryRead(out _));
    }

    [Fact]
    public async Task A_lost_lock_is_reported_once_and_not_renewed_again_while_the_others_are()
    {
        _failWith["a"] = ServiceBusFailureReason.MessageLockLost;
        using var stop = new CancellationTokenSource();
        var run = Renewal().RunAsync([Message("a", Lock), Message("b", Lock)], stop.Token);

        await _time.NextTimerAsync();
        _time.Fake.Advance(TimeSpan.FromSeconds(15));
        await RenewalsAsync(2);
        await _time.NextTimerAsync();
        _time.Fake.Advance(TimeSpan.FromSeconds(15));
        Assert.Equal("b", (await RenewalsAsync(1))[0].MessageId);
        await _time.NextTimerAsync();

        Assert.Equal([("a", ServiceBusFailureReason.MessageLockLost)], _failures);
        await stop.CancelAsync();
        await run.WaitAsync(Bounded);
    }

    [Fact]
    public async Task A_transient_renewal_failure_is_reported_and_tried_again_before_the_lock_expires()
    {
        _failWith["a"] = ServiceBusFailureReason.ServiceTimeout;
        var start = _time.GetUtcNow();
        using var stop = new CancellationTokenSource();
        var run = Renewal().RunAsync([Message("a", Lock)], stop.Token);

        Assert.Equal(TimeSpan.FromSeconds(15), await _time.NextTimerAsync());
        _time.Fake.Advance(TimeSpan.FromSeconds(15));
        await RenewalsAsync(1);

        // Still locked until 30 s: tried again at half of the 15 s left.
        Assert.Equal(TimeSpan.FromSeconds(7.5), await _time.NextTimerAsync());
        _failWith.Remove("a");
        _time.Fake.Advance(TimeSpan.FromSeconds(7.5));
        Assert.Equal(start + TimeSpan.FromSeconds(22.5), (await RenewalsAsync(1))[0].At);

        Assert.Equal([("a", ServiceBusFailureReason.ServiceTimeout)], _failures);
        await stop.CancelAsync();
        await run.WaitAsync(Bounded);
    }

    [Fact]
    public async Task Renewal_ends_at_its_bound_even_with_messages_unsettled()
    {
        using var stop = new CancellationTokenSource();
        var run = Renewal(maxRenewal: TimeSpan.FromSeconds(40)).RunAsync([Message("a", Lock)], stop.Token);

        var seen = await _time.AdvanceThroughTimersAsync(run);

        Assert.Equal([TimeSpan.FromSeconds(15), TimeSpan.FromSeconds(15), TimeSpan.FromSeconds(15)], seen);
        Assert.Equal(2, (await RenewalsAsync(2)).Count); // at 15 s and 30 s; at 45 s the bound has passed
        Assert.False(_renewals.Reader.TryRead(out _));
    }

    [Fact]
    public async Task A_renewal_failing_as_the_batch_settles_is_neither_reported_nor_thrown()
    {
        // The broker answers the renewal under way only after the batch settled: the failure is no news.
        var answered = new TaskCompletionSource();
        _failWith["a"] = ServiceBusFailureReason.MessageLockLost;
        using var stop = new CancellationTokenSource();
        var run = Renewal(during: async ct =>
        {
            answered.TrySetResult();
            await Task.Delay(Timeout.InfiniteTimeSpan, ct).ContinueWith(_ => { }, TaskScheduler.Default);
        }).RunAsync([Message("a", Lock)], stop.Token);

        await _time.NextTimerAsync();
        _time.Fake.Advance(TimeSpan.FromSeconds(15));
        await answered.Task.WaitAsync(Bounded);
        await stop.CancelAsync();

        await run.WaitAsync(Bounded); // no exception out of the renewal, so none out of the batch's receive loop
        Assert.Empty(_failures);
    }
}
