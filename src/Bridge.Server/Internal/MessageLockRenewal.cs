using Azure.Messaging.ServiceBus;

namespace Bridge.Server.Internal;

/// <summary>A peek-locked message of a batch, and whether it is settled (then its lock is gone and needs no renewal).</summary>
internal interface IRenewableLock
{
    ServiceBusReceivedMessage Message { get; }

    bool Settled { get; }
}

/// <summary>
/// Keeps a batch's peek-locks alive while it is forwarded: renews the unsettled messages' locks when half of the
/// earliest one is left, until stopped, until no lock is held (all settled, or lost), or for
/// <paramref name="maxRenewal"/> at most, like the processor's MaxAutoLockRenewalDuration. A lock the broker reports
/// lost is reported once and not renewed again; any other renewal failure is reported and tried again next round.
/// </summary>
/// <param name="time">The clock the waits run on.</param>
/// <param name="maxRenewal">How long after the start locks are renewed at most.</param>
/// <param name="renew">Renews one message's lock and returns its new expiry.</param>
/// <param name="renewFailed">Told of a renewal that failed while the batch was still under way.</param>
internal sealed class MessageLockRenewal(
    TimeProvider time,
    TimeSpan maxRenewal,
    Func<ServiceBusReceivedMessage, CancellationToken, Task<DateTimeOffset>> renew,
    Action<ServiceBusReceivedMessage, ServiceBusException> renewFailed)
{
    /// <summary>Runs until <paramref name="stop"/> (the batch is settled) or nothing is left to renew; never throws.</summary>
    public async Task RunAsync(IReadOnlyList<IRenewableLock> locks, CancellationToken stop)
    {
        ArgumentNullException.ThrowIfNull(locks);
        var lockedUntil = locks.Select(l => l.Message.LockedUntil).ToArray();
        var until = time.GetUtcNow() + maxRenewal;
        try
        {
            while (true)
            {
                var now = time.GetUtcNow();
                var held = Enumerable.Range(0, locks.Count).Where(i => !locks[i].Settled && lockedUntil[i] > now).ToList();
                if (held.Count == 0 || now >= until)
                {
                    return; // nothing locked by us any more (or locks this receiver never had), or renewed long enough
                }

                await Task.Delay((held.Min(i => lockedUntil[i]) - now) / 2, time, stop).ConfigureAwait(false);
                if (time.GetUtcNow() >= until)
                {
                    return;
                }

                var renewed = await Task.WhenAll(held.Where(i => !locks[i].Settled).Select(i => RenewOneAsync(i, locks[i].Message, lockedUntil[i], stop))).ConfigureAwait(false);
                foreach (var (index, expiry) in renewed)
                {
                    lockedUntil[index] = expiry;
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // the batch is settled
        }
    }

    private async Task<(int Index, DateTimeOffset LockedUntil)> RenewOneAsync(int index, ServiceBusReceivedMessage message, DateTimeOffset current, CancellationToken stop)
    {
        try
        {
            return (index, await renew(message, stop).ConfigureAwait(false));
        }
        catch (ServiceBusException ex)
        {
            // A failure once the batch is settled is no news: the message needs its lock no longer.
            if (!stop.IsCancellationRequested)
            {
                renewFailed(message, ex);
            }

            return (index, ex.Reason == ServiceBusFailureReason.MessageLockLost ? DateTimeOffset.MinValue : current);
        }
    }
}
