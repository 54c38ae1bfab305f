namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>
/// The names of deleted and executed tasks, each reserved until its tombstone_ttl ends: a 16-byte key and an end
/// time per name (about 60 bytes with the expiry index, against about 200 with the name string), and an index by
/// end time so the sweep visits only expired ones. Not thread-safe: used under the state's lock.
/// </summary>
internal sealed class TaskTombstones
{
    private readonly Dictionary<UInt128, long> _until = []; // key -> reservation end (UTC ticks)
    private readonly PriorityQueue<UInt128, long> _expiry = new();

    public int Count => _until.Count;

    /// <summary>Reserves the name until <paramref name="until"/>, or later if it already was (a shared key never shortens a reservation).</summary>
    public void Add(string taskName, DateTimeOffset until) => Add(TaskNameKey.Of(taskName), until);

    /// <summary>As above, by the name's key (<see cref="TaskNameKey.Of"/>), which a caller can work out before taking the state's lock.</summary>
    public void Add(UInt128 key, DateTimeOffset until)
    {
        var ticks = until.UtcTicks;
        if (_until.TryGetValue(key, out var current) && current >= ticks)
        {
            return;
        }

        _until[key] = ticks;
        _expiry.Enqueue(key, ticks);
    }

    public bool TryGetUntil(string taskName, out DateTimeOffset until)
    {
        if (_until.TryGetValue(TaskNameKey.Of(taskName), out var ticks))
        {
            until = new DateTimeOffset(ticks, TimeSpan.Zero);
            return true;
        }

        until = default;
        return false;
    }

    /// <summary>Undo of <see cref="Add(string, DateTimeOffset)"/>: drops the reservation if it still ends at <paramref name="until"/> (nothing reserved it again since).</summary>
    public void Remove(string taskName, DateTimeOffset until)
    {
        var key = TaskNameKey.Of(taskName);
        if (_until.TryGetValue(key, out var ticks) && ticks == until.UtcTicks)
        {
            _until.Remove(key);
        }
    }

    /// <summary>Drops at most <paramref name="slice"/> expired reservations, earliest first; true when expired ones remain.</summary>
    public bool DropExpired(DateTimeOffset now, int slice)
    {
        var nowTicks = now.UtcTicks;
        for (var i = 0; i < slice && _expiry.TryPeek(out var key, out var ticks) && ticks <= nowTicks; i++)
        {
            _expiry.Dequeue();
            if (_until.TryGetValue(key, out var current) && current <= nowTicks)
            {
                _until.Remove(key); // unless reserved again later, with its own entry in the index
            }
        }

        return _expiry.TryPeek(out _, out var next) && next <= nowTicks;
    }

    public void Clear()
    {
        _until.Clear();
        _expiry.Clear();
    }
}
