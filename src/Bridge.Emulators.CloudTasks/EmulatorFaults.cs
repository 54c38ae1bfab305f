using Bridge.Emulators.CloudTasks.Internal;
using Grpc.Core;

namespace Bridge.Emulators.CloudTasks;

/// <summary>One injected failure: which RPCs answer which status, until when and how many more times.</summary>
public sealed record InjectedFault(
    string Id,
    IReadOnlyList<string> Methods,
    StatusCode Status,
    string Message,
    DateTimeOffset? ExpiresAt,
    int? RemainingCount);

/// <summary>
/// Fault injection for tests of clients' failure handling: chosen RPCs answer a chosen gRPC status (over REST, the
/// mapped HTTP status in Google's error envelope) for a while or a number of calls, and the whole API can be made
/// unreachable for a while (gRPC streams refused, REST connections dropped, as a network outage looks). Admin and
/// health endpoints stay reachable, so a test can always clear what it set. Also served at <c>/admin/faults</c>.
/// </summary>
public sealed class EmulatorFaults
{
    /// <summary>Enough for any test; bounds memory if a script injects in a loop.</summary>
    public const int MaxActiveFaults = 100;

    /// <summary>The longest a fault or an outage may last; "until cleared" is expressed by neither duration nor count.</summary>
    public static readonly TimeSpan MaxDuration = TimeSpan.FromDays(1);

    private readonly TimeProvider _time;
    private readonly object _gate = new();
    private readonly List<ActiveFault> _faults = [];
    private DateTimeOffset? _unreachableUntil;
    private long _nextId;

    internal EmulatorFaults(TimeProvider time) => _time = time;

    /// <summary>
    /// Makes <paramref name="methods"/> (short names such as <c>CreateTask</c>, which match both API versions, or
    /// full names such as <c>google.cloud.tasks.v2.CloudTasks/CreateTask</c>; empty: every RPC) fail with
    /// <paramref name="status"/> for <paramref name="duration"/> or <paramref name="count"/> calls, whichever ends
    /// first; with neither, until removed. Returns the fault, whose id removes it.
    /// </summary>
    /// <exception cref="ArgumentException">An unknown method, status OK, or limits out of range.</exception>
    public InjectedFault Fail(StatusCode status, IEnumerable<string>? methods = null, TimeSpan? duration = null, int? count = null, string? message = null)
    {
        var names = (methods ?? []).Select(m => m.Trim()).Where(m => m.Length > 0).Distinct(StringComparer.Ordinal).ToArray();
        if (FaultRules.Validate(status, names, duration, count) is { } problem)
        {
            throw new ArgumentException(problem);
        }

        lock (_gate)
        {
            var now = _time.GetUtcNow();
            _faults.RemoveAll(f => f.IsOver(now));
            if (_faults.Count >= MaxActiveFaults)
            {
                throw new ArgumentException($"{MaxActiveFaults} faults are active already; remove some first.");
            }

            var fault = new ActiveFault(
                (++_nextId).ToString(System.Globalization.CultureInfo.InvariantCulture),
                names,
                status,
                string.IsNullOrEmpty(message) ? $"Injected fault: {GoogleErrorEnvelope.StatusName(status)}" : message,
                duration is { } d ? now + d : null,
                count);
            _faults.Add(fault);
            return fault.Snapshot();
        }
    }

    /// <summary>Makes the whole API unreachable for <paramref name="duration"/> (at most <see cref="MaxDuration"/>).</summary>
    public void MakeUnreachable(TimeSpan duration)
    {
        if (duration <= TimeSpan.Zero || duration > MaxDuration)
        {
            throw new ArgumentOutOfRangeException(nameof(duration), duration, $"An outage lasts more than zero and at most {MaxDuration}.");
        }

        lock (_gate)
        {
            _unreachableUntil = _time.GetUtcNow() + duration;
        }
    }

    /// <summary>When the outage ends, or null when the API is reachable.</summary>
    public DateTimeOffset? UnreachableUntil
    {
        get
        {
            lock (_gate)
            {
                return _unreachableUntil is { } until && until > _time.GetUtcNow() ? until : null;
            }
        }
    }

    /// <summary>The faults still in force.</summary>
    public IReadOnlyList<InjectedFault> Active
    {
        get
        {
            lock (_gate)
            {
                var now = _time.GetUtcNow();
                _faults.RemoveAll(f => f.IsOver(now));
                return [.. _faults.Select(f => f.Snapshot())];
            }
        }
    }

    /// <summary>Removes one fault; false when it is unknown or already over.</summary>
    public bool Remove(string id)
    {
        lock (_gate)
        {
            return _faults.RemoveAll(f => f.Id == id) > 0;
        }
    }

    /// <summary>Removes every fault and ends an outage.</summary>
    public void Clear()
    {
        lock (_gate)
        {
            _faults.Clear();
            _unreachableUntil = null;
        }
    }

    internal bool IsUnreachable => UnreachableUntil is not null;

    /// <summary>
    /// The failure a call of <paramref name="fullMethod"/> (<c>/package.Service/Method</c>) meets, counting it
    /// against the fault's count; null when none applies.
    /// </summary>
    internal RpcException? TakeFailure(string fullMethod)
    {
        lock (_gate)
        {
            if (_faults.Count == 0)
            {
                return null;
            }

            var now = _time.GetUtcNow();
            _faults.RemoveAll(f => f.IsOver(now));
            foreach (var fault in _faults)
            {
                if (fault.Matches(fullMethod))
                {
                    fault.Take();
                    return new RpcException(new Status(fault.Status, fault.Message));
                }
            }

            return null;
        }
    }

    private sealed class ActiveFault(string id, string[] methods, StatusCode status, string message, DateTimeOffset? expiresAt, int? count)
    {
        private int? _remaining = count;

        public string Id => id;

        public StatusCode Status => status;

        public string Message => message;

        public bool IsOver(DateTimeOffset now) => _remaining <= 0 || expiresAt <= now;

        public bool Matches(string fullMethod) => methods.Length == 0 || methods.Any(m => FaultRules.MethodMatches(m, fullMethod));

        public void Take() => _remaining--;

        public InjectedFault Snapshot() => new(id, methods, status, message, expiresAt, _remaining);
    }
}
