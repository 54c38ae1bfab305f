using System.Diagnostics;
using Bridge.Core.Forwarding;
using Bridge.Core.Routing;
using Microsoft.Extensions.Options;

namespace Bridge.Core.Internal;

/// <summary>
/// HTTP intake's forwarder when <see cref="BridgeOptions.HttpCoalescingWindow"/> is set: concurrent requests for one
/// queue are gathered for at most the window (or until <see cref="MaxEvents"/> events or <see cref="MaxBytes"/> of
/// bodies) and forwarded together by <see cref="IBatchEventForwarder"/>; each request gets the result at its own index,
/// so one event's permanent failure is that request's answer alone. A request that stops waiting (client gone) does
/// not take its event out of the batch: it may still be created, as a CreateTask already sent would be.
/// </summary>
internal sealed class HttpEventCoalescer : IEventForwarder
{
    /// <summary>Events per gathered batch at most: one BatchCreateTasks call.</summary>
    public const int MaxEvents = 100;

    /// <summary>Event bodies per gathered batch at most, under the batch forwarder's own per-call budget.</summary>
    public const int MaxBytes = BatchEventForwarder.MaxBatchBytes / 2;

    private readonly IBatchEventForwarder _batch;
    private readonly IEventForwarder _single;
    private readonly RouteTable _routes;
    private readonly TimeProvider _time;
    private readonly TimeSpan _window;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Gathering> _open = new(StringComparer.Ordinal);

    public HttpEventCoalescer(IBatchEventForwarder batch, IEventForwarder single, RouteTable routes, IOptions<BridgeOptions> options, TimeProvider time)
    {
        _batch = batch;
        _single = single;
        _routes = routes;
        _time = time;
        _window = options.Value.HttpCoalescingWindow;
    }

    public async Task<ForwardResult> ForwardAsync(InboundEvent inbound, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(inbound);
        if (_window <= TimeSpan.Zero || !_routes.TryFind(inbound.Route, out var route))
        {
            return await _single.ForwardAsync(inbound, cancellationToken).ConfigureAwait(false); // e.g. its unknown-route error
        }

        // The batch's span is not this request's: the task carries the request's trace as a single forward's would.
        if (inbound.TraceParent is null && Activity.Current is { } current)
        {
            inbound = inbound with { TraceParent = current.Id };
        }

        var key = route.Queue.ToString();
        var waiter = new TaskCompletionSource<BatchForwardResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        var ready = new List<Gathering>(2);
        Gathering? started = null;
        lock (_gate)
        {
            if (_open.TryGetValue(key, out var gathering) && gathering.Bytes + inbound.Body.Length > MaxBytes)
            {
                ready.Add(Close(gathering)); // this event would pass the byte budget: the others go now, it starts anew
                gathering = null;
            }

            if (gathering is null)
            {
                gathering = started = new Gathering(key);
                _open[key] = gathering;
            }

            gathering.Add(inbound, waiter);
            if (gathering.Events.Count >= MaxEvents)
            {
                ready.Add(Close(gathering));
            }
        }

        foreach (var gathering in ready)
        {
            _ = SendAsync(gathering);
        }

        if (started is not null)
        {
            _ = SendAfterWindowAsync(started); // does nothing if the gathering filled up first
        }

        var result = await waiter.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        return result.Forwarded ?? throw result.Failure!;
    }

    private Gathering Close(Gathering gathering)
    {
        gathering.Closed = true;
        if (_open.TryGetValue(gathering.Key, out var current) && ReferenceEquals(current, gathering))
        {
            _open.Remove(gathering.Key);
        }

        return gathering;
    }

    private async Task SendAfterWindowAsync(Gathering gathering)
    {
        await Task.Delay(_window, _time).ConfigureAwait(false);
        lock (_gate)
        {
            if (gathering.Closed)
            {
                return; // filled up and sent already
            }

            Close(gathering);
        }

        await SendAsync(gathering).ConfigureAwait(false);
    }

    /// <summary>Forwards a closed gathering and answers each waiter from its own index; never throws.</summary>
    private async Task SendAsync(Gathering gathering)
    {
        try
        {
            // Not the requests' tokens: one client going away must not cancel the others' events.
            var results = await _batch.ForwardBatchAsync(gathering.Events, CancellationToken.None).ConfigureAwait(false);
            for (var i = 0; i < gathering.Waiters.Count; i++)
            {
                gathering.Waiters[i].TrySetResult(results[i]);
            }
        }
#pragma warning disable CA1031 // whatever went wrong, every request waiting gets an answer
        catch (Exception ex)
#pragma warning restore CA1031
        {
            foreach (var waiter in gathering.Waiters)
            {
                waiter.TrySetResult(BatchForwardResult.Failed(new ForwardingException(ForwardingFailureReason.CloudTasksUnavailable, $"The batch this event went in failed: {ex.Message}", ex)));
            }
        }
    }

    private sealed class Gathering(string key)
    {
        public string Key => key;

        public List<InboundEvent> Events { get; } = new(MaxEvents);

        public List<TaskCompletionSource<BatchForwardResult>> Waiters { get; } = new(MaxEvents);

        public int Bytes { get; private set; }

        /// <summary>No longer taking events; sent (or about to be) by whoever closed it. Changed under the gate.</summary>
        public bool Closed { get; set; }

        public void Add(InboundEvent inbound, TaskCompletionSource<BatchForwardResult> waiter)
        {
            Events.Add(inbound);
            Waiters.Add(waiter);
            Bytes += inbound.Body.Length;
        }
    }
}
