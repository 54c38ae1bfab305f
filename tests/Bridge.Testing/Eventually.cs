namespace Bridge.Testing;

/// <summary>Bounded waits on a condition, for state the test can't be told about directly.</summary>
public static class Eventually
{
    /// <summary>Checks <paramref name="condition"/> until it holds, or throws <see cref="TimeoutException"/> after <paramref name="timeout"/> (default 30 s).</summary>
    public static async Task HoldsAsync(Func<Task<bool>> condition, TimeSpan? timeout = null, Func<string>? describe = null)
    {
        ArgumentNullException.ThrowIfNull(condition);
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
        var delay = TimeSpan.FromMilliseconds(10);
        while (!await condition())
        {
            if (cts.IsCancellationRequested)
            {
                throw new TimeoutException(describe?.Invoke() ?? "The condition did not hold in time.");
            }

            try
            {
                // The poll interval, not a stand-in for the event: the condition decides.
                await Task.Delay(delay, cts.Token);
            }
            catch (OperationCanceledException)
            {
            }

            delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 200));
        }
    }
}
