namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>Read-only: where queues are, for tools that list every queue (the standalone dashboard).</summary>
internal sealed partial class EmulatorState
{
    /// <summary>Every location (<c>projects/P/locations/L</c>) that has at least one queue, sorted.</summary>
    public IReadOnlyList<string> QueueLocations()
    {
        lock (_gate)
        {
            return [.. _queues.Keys.Select(name => name[..name.LastIndexOf("/queues/", StringComparison.Ordinal)]).Distinct(StringComparer.Ordinal)];
        }
    }
}
