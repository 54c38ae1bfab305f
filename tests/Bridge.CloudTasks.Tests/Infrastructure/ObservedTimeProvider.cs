using System.Threading.Channels;
using Microsoft.Extensions.Time.Testing;

namespace Bridge.CloudTasks.Tests.Infrastructure;

/// <summary>
/// A <see cref="FakeTimeProvider"/> (starting at the real now, so gRPC deadlines computed from it lie ahead) that
/// reports each timer as it is created, so a test advances time exactly when the code under test waits, instead of
/// guessing with sleeps.
/// </summary>
public sealed class ObservedTimeProvider : TimeProvider
{
    private static readonly TimeSpan BoundedWait = TimeSpan.FromSeconds(30);

    // Far more timers than any call here waits through: past it, the work retries forever on fake time (a test that
    // would otherwise spin until the hang timeout).
    private const int MaxTimers = 10_000;
    private readonly Channel<TimeSpan> _timers = Channel.CreateUnbounded<TimeSpan>();

    public FakeTimeProvider Fake { get; } = new(TimeProvider.System.GetUtcNow());

    public override DateTimeOffset GetUtcNow() => Fake.GetUtcNow();

    public override long GetTimestamp() => Fake.GetTimestamp();

    public override long TimestampFrequency => Fake.TimestampFrequency;

    public override TimeZoneInfo LocalTimeZone => Fake.LocalTimeZone;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = Fake.CreateTimer(callback, state, dueTime, period);
        _timers.Writer.TryWrite(dueTime);
        return timer;
    }

    /// <summary>The due time of the next timer created (waiting for it, bounded).</summary>
    public async Task<TimeSpan> NextTimerAsync() => await _timers.Reader.ReadAsync().AsTask().WaitAsync(BoundedWait);

    /// <summary>
    /// Advances past each timer as it is created until <paramref name="work"/> ends; returns the due times seen.
    /// </summary>
    public async Task<List<TimeSpan>> AdvanceThroughTimersAsync(Task work)
    {
        var seen = new List<TimeSpan>();
        while (true)
        {
            if (_timers.Reader.TryRead(out var due))
            {
                if (seen.Count == MaxTimers)
                {
                    throw new TimeoutException($"The work was still running after {MaxTimers} timers (fake time advanced by {TimeSpan.FromTicks(seen.Sum(d => d.Ticks))}): it never ends.");
                }

                seen.Add(due);
                Fake.Advance(due);
                continue;
            }

            var next = _timers.Reader.WaitToReadAsync().AsTask();
            if (await Task.WhenAny(next, work).WaitAsync(BoundedWait) == work)
            {
                return seen;
            }
        }
    }
}
