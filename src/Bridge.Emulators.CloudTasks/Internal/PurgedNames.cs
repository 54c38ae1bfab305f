namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>
/// The names of the tasks one purge took out, reserved together until <see cref="Until"/> (the queue's
/// tombstone_ttl): one entry per purge instead of one tombstone per task, so a purge of a million tasks costs the
/// engine's lock a constant time. It starts as the purged task set itself and is compacted, outside the lock, to the
/// names' 16-byte keys (<see cref="TaskNameKey"/>), so the purged tasks, names included, can be collected.
/// </summary>
internal sealed class PurgedNames
{
    private volatile Dictionary<string, StoredTask>? _purged;
    private volatile HashSet<UInt128>? _compact;

    public PurgedNames(Dictionary<string, StoredTask> purged, DateTimeOffset until)
    {
        _purged = purged;
        Until = until;
    }

    public DateTimeOffset Until { get; }

    public bool Contains(string taskName) =>
        _compact is { } compact ? compact.Contains(TaskNameKey.Of(taskName)) : _purged?.ContainsKey(taskName) ?? _compact!.Contains(TaskNameKey.Of(taskName));

    /// <summary>Replaces the purged tasks by their names' keys. Runs outside the lock: the purged set no longer changes.</summary>
    public void Compact()
    {
        if (_purged is { } purged)
        {
            var keys = new HashSet<UInt128>(purged.Count);
            foreach (var name in purged.Keys)
            {
                keys.Add(TaskNameKey.Of(name));
            }

            _compact = keys;
            _purged = null;
        }
    }
}
