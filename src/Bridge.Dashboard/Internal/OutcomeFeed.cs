using System.Diagnostics;
using System.Threading.Channels;
using Bridge.Core.Callback;

namespace Bridge.Dashboard.Internal;

/// <summary>An outcome as the dashboard shows it: no payload, ever.</summary>
internal sealed record OutcomeView(
    string Id,
    string Status,
    string TaskName,
    string? Queue,
    string? Route,
    string? CorrelationId,
    int? RetryCount,
    int? PreviousResponse,
    string? Detail,
    DateTimeOffset ReceivedAt,
    string? TraceId);

/// <summary>
/// An outcome sink the dashboard adds beside the configured ones: keeps the latest outcomes (without payloads) and
/// hands each new one to the live views that are listening.
/// </summary>
internal sealed class OutcomeFeed(int capacity) : IOutcomeSink
{
    public const string SinkName = "Dashboard";

    private readonly Lock _gate = new();
    private readonly LinkedList<OutcomeView> _recent = new();
    private readonly HashSet<string> _ids = new(StringComparer.Ordinal);
    private readonly List<Channel<OutcomeView>> _listeners = [];

    public Task PublishAsync(TaskOutcome outcome, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(outcome);

        // The callback's span is current here: it belongs to the forwarded event's trace.
        var traceId = Activity.Current is { } activity ? activity.TraceId.ToHexString() : null;
        var view = new OutcomeView(outcome.Id, outcome.Status.ToString().ToLowerInvariant(), outcome.TaskName, outcome.Queue, outcome.Route,
            outcome.CorrelationId, outcome.RetryCount, outcome.PreviousResponse, outcome.Detail, outcome.ReceivedAt, traceId);
        Add(view);
        return Task.CompletedTask;
    }

    internal void Add(OutcomeView view)
    {
        Channel<OutcomeView>[] listeners;
        lock (_gate)
        {
            if (!_ids.Add(view.Id))
            {
                return; // a redelivered callback: the same outcome again
            }

            _recent.AddFirst(view);
            while (_recent.Count > capacity)
            {
                _ids.Remove(_recent.Last!.Value.Id);
                _recent.RemoveLast();
            }

            listeners = [.. _listeners];
        }

        foreach (var listener in listeners)
        {
            listener.Writer.TryWrite(view);
        }
    }

    /// <summary>Newest first.</summary>
    public IReadOnlyList<OutcomeView> Recent()
    {
        lock (_gate)
        {
            return [.. _recent];
        }
    }

    /// <summary>Outcomes from now on, until <paramref name="cancellationToken"/> ends; a slow reader loses the oldest.</summary>
    public async IAsyncEnumerable<OutcomeView> ListenAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var channel = Channel.CreateBounded<OutcomeView>(new BoundedChannelOptions(256) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });
        lock (_gate)
        {
            _listeners.Add(channel);
        }

        try
        {
            while (await channel.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                while (channel.Reader.TryRead(out var view))
                {
                    yield return view;
                }
            }
        }
        finally
        {
            lock (_gate)
            {
                _listeners.Remove(channel);
            }
        }
    }
}
