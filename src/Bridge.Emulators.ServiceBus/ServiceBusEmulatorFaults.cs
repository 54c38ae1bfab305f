using System.Globalization;
using Bridge.Emulators.ServiceBus.Internal;

namespace Bridge.Emulators.ServiceBus;

/// <summary>A settlement a receiver asks for, as a fault names it.</summary>
public enum SettlementKind
{
    Complete,
    Abandon,
    DeadLetter,
    Defer,
}

/// <summary>
/// One fault holding settlements: on which entity, of which kinds, until when, how many more, how many it holds now,
/// and how many of those came over a receiver link that is still open (the others will be dropped when the fault
/// ends: a test that killed a receiver waits for this to reach 0 to know the broker saw its links close).
/// </summary>
public sealed record HeldSettlementsFault(
    string Id,
    string EntityPath,
    IReadOnlyList<SettlementKind> Kinds,
    DateTimeOffset? ExpiresAt,
    int? RemainingCount,
    int Held,
    int HeldOnOpenLinks);

/// <summary>
/// Fault injection for tests of what a client does between its steps: settlements (complete, abandon, dead-letter,
/// defer) that receivers send over their links for an entity are held, neither applied nor answered, as a
/// disposition delayed on the wire looks. A test can then act (kill the process, say) while a client has done one
/// step and waits for the next. When the fault ends (removed, or its duration over) the held settlements are
/// applied as if they arrived then: one whose lock expired meanwhile fails as lock lost, and one whose receiver link
/// closed meanwhile is dropped (its message comes back when its lock expires, as it would on Service Bus).
/// Settlements through <c>$management</c> (deferred messages) are not held.
/// </summary>
public sealed class ServiceBusEmulatorFaults : IDisposable
{
    /// <summary>Enough for any test; bounds memory if a script injects in a loop.</summary>
    public const int MaxActiveFaults = 100;

    /// <summary>Settlements one fault holds at most; later ones pass.</summary>
    public const int MaxHeldPerFault = 10_000;

    /// <summary>The longest a fault may last; "until removed" is expressed by no duration.</summary>
    public static readonly TimeSpan MaxDuration = TimeSpan.FromDays(1);

    readonly TimeProvider time;
    readonly object gate = new();
    readonly List<ActiveFault> faults = [];
    long nextId;

    internal ServiceBusEmulatorFaults(TimeProvider time) => this.time = time;

    /// <summary>
    /// Holds the settlements of <paramref name="kinds"/> (null or empty: every kind) on <paramref name="entityPath"/>
    /// (a queue, or <c>topic/Subscriptions/sub</c>) for <paramref name="duration"/>, or until removed; with
    /// <paramref name="count"/>, only that many (later ones pass). Returns the fault, whose id removes it.
    /// </summary>
    /// <exception cref="ArgumentException">An empty path, or limits out of range.</exception>
    public HeldSettlementsFault HoldSettlements(string entityPath, IEnumerable<SettlementKind>? kinds = null, TimeSpan? duration = null, int? count = null)
    {
        if (string.IsNullOrWhiteSpace(entityPath))
        {
            throw new ArgumentException("Name the entity whose settlements are held.", nameof(entityPath));
        }

        if (duration is { } d && (d <= TimeSpan.Zero || d > MaxDuration))
        {
            throw new ArgumentOutOfRangeException(nameof(duration), duration, $"A fault lasts more than zero and at most {MaxDuration}.");
        }

        if (count is < 1 or > MaxHeldPerFault)
        {
            throw new ArgumentOutOfRangeException(nameof(count), count, $"A fault holds from 1 to {MaxHeldPerFault} settlements.");
        }

        var chosen = (kinds ?? []).Distinct().ToArray();
        if (chosen.Any(k => !Enum.IsDefined(k)))
        {
            throw new ArgumentException("Unknown settlement kind.", nameof(kinds));
        }

        ActiveFault fault;
        lock (gate)
        {
            if (faults.Count >= MaxActiveFaults)
            {
                throw new ArgumentException($"{MaxActiveFaults} faults are active already; remove some first.");
            }

            var now = time.GetUtcNow();
            fault = new ActiveFault((++nextId).ToString(CultureInfo.InvariantCulture), entityPath.Trim(), chosen, duration is { } limit ? now + limit : null, count);
            faults.Add(fault);
            if (duration is { } after)
            {
                fault.Timer = time.CreateTimer(_ => Remove(fault.Id), null, after, Timeout.InfiniteTimeSpan);
            }

            return fault.Snapshot();
        }
    }

    /// <summary>The faults in force.</summary>
    public IReadOnlyList<HeldSettlementsFault> Active
    {
        get
        {
            lock (gate)
            {
                return [.. faults.Select(f => f.Snapshot())];
            }
        }
    }

    /// <summary>The fault <paramref name="id"/> as it is now (how many settlements it holds); null when it is over.</summary>
    public HeldSettlementsFault? Find(string id)
    {
        lock (gate)
        {
            return faults.FirstOrDefault(f => f.Id == id)?.Snapshot();
        }
    }

    /// <summary>Ends one fault and applies what it held; false when it is unknown or already over.</summary>
    public bool Remove(string id)
    {
        ActiveFault? removed;
        lock (gate)
        {
            removed = faults.FirstOrDefault(f => f.Id == id);
            if (removed is null)
            {
                return false;
            }

            faults.Remove(removed);
        }

        removed.Release();
        return true;
    }

    /// <summary>Ends every fault and applies what they held.</summary>
    public void Clear()
    {
        ActiveFault[] removed;
        lock (gate)
        {
            removed = [.. faults];
            faults.Clear();
        }

        foreach (var fault in removed)
        {
            fault.Release();
        }
    }

    public void Dispose()
    {
        // The endpoint is going away: what was held is dropped with its connections.
        lock (gate)
        {
            foreach (var fault in faults)
            {
                fault.Timer?.Dispose();
            }

            faults.Clear();
        }
    }

    /// <summary>
    /// Holds a settlement of <paramref name="settlement"/> on <paramref name="entityPath"/> when a fault says so, to
    /// <paramref name="apply"/> when the fault ends; false: apply it now.
    /// </summary>
    internal bool TryHold(string entityPath, Settlement settlement, Action apply, Func<bool> linkOpen)
    {
        SettlementKind kind;
        switch (settlement)
        {
            case Settlement.Complete:
                kind = SettlementKind.Complete;
                break;
            case Settlement.Abandon:
                kind = SettlementKind.Abandon;
                break;
            case Settlement.DeadLetter:
                kind = SettlementKind.DeadLetter;
                break;
            case Settlement.Defer:
                kind = SettlementKind.Defer;
                break;
            default:
                return false; // a release gives back what the receiver never looked at: nothing to hold
        }

        lock (gate)
        {
            foreach (var fault in faults)
            {
                if (fault.TryHold(entityPath, kind, apply, linkOpen))
                {
                    return true;
                }
            }

            return false;
        }
    }

    sealed class ActiveFault(string id, string entityPath, SettlementKind[] kinds, DateTimeOffset? expiresAt, int? count)
    {
        readonly List<(Action Apply, Func<bool> LinkOpen)> held = [];
        int? remaining = count;

        public string Id => id;

        public ITimer? Timer { get; set; }

        // Guarded by the faults' lock.
        public bool TryHold(string path, SettlementKind kind, Action apply, Func<bool> linkOpen)
        {
            if (remaining <= 0 || held.Count >= MaxHeldPerFault
                || !string.Equals(path, entityPath, StringComparison.OrdinalIgnoreCase)
                || (kinds.Length > 0 && !kinds.Contains(kind)))
            {
                return false;
            }

            remaining--;
            held.Add((apply, linkOpen));
            return true;
        }

        public HeldSettlementsFault Snapshot() => new(id, entityPath, kinds, expiresAt, remaining, held.Count, held.Count(h => h.LinkOpen()));

        /// <summary>Applies what was held, off the caller's thread (each takes the broker's lock).</summary>
        public void Release()
        {
            Timer?.Dispose();
            foreach (var (apply, _) in held)
            {
                ThreadPool.UnsafeQueueUserWorkItem(static a => a(), apply, preferLocal: false);
            }

            held.Clear();
        }
    }
}
