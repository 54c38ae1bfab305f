namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>Dispatch rate limit: holds up to <c>burst</c> tokens, refilled at <c>rate</c> per second.</summary>
internal sealed class TokenBucket
{
    private double _tokens;
    private DateTimeOffset _updated;

    public TokenBucket(double rate, int burst, DateTimeOffset now)
    {
        Rate = rate;
        Burst = Math.Max(1, burst);
        _tokens = Burst;
        _updated = now;
    }

    public double Rate { get; private set; }

    public int Burst { get; private set; }

    /// <summary>Changes the limits at run time (UpdateQueue) without refilling the bucket.</summary>
    public void Reconfigure(double rate, int burst, DateTimeOffset now)
    {
        Refill(now);
        Rate = rate;
        Burst = Math.Max(1, burst);
        _tokens = Math.Min(_tokens, Burst);
    }

    public bool TryTake(DateTimeOffset now)
    {
        Refill(now);
        if (_tokens < 1)
        {
            return false;
        }

        _tokens -= 1;
        return true;
    }

    /// <summary>When the next token will be there.</summary>
    public DateTimeOffset NextTokenAt(DateTimeOffset now)
    {
        Refill(now);
        return _tokens >= 1 || Rate <= 0 ? now : now + TimeSpan.FromSeconds((1 - _tokens) / Rate);
    }

    private void Refill(DateTimeOffset now)
    {
        if (now > _updated)
        {
            _tokens = Math.Min(Burst, _tokens + ((now - _updated).TotalSeconds * Rate));
            _updated = now;
        }
    }
}
