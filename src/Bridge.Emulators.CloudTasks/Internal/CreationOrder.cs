namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>
/// A queue's tasks in creation order (by sequence), in chunks: adding is an append, a task is found by binary
/// search, and a page of ListTasks costs O(log n + page), not a sort of the whole queue.
/// </summary>
internal sealed class CreationOrder
{
    private const int ChunkSize = 256;
    private readonly List<List<StoredTask>> _chunks = [];

    /// <summary>The oldest task (the lowest sequence); null when there is none.</summary>
    public StoredTask? First => _chunks.Count == 0 ? null : _chunks[0][0];

    /// <summary>Adds a task with a sequence above every task's here (creation hands them out in order).</summary>
    public void Append(StoredTask task)
    {
        if (_chunks.Count == 0 || _chunks[^1].Count >= ChunkSize)
        {
            _chunks.Add([]);
        }

        _chunks[^1].Add(task);
    }

    /// <summary>Puts a task back at its place (a deletion undone); the chunk it lands in may grow past the usual size.</summary>
    public void Insert(StoredTask task)
    {
        var c = ChunkHolding(task.Sequence);
        if (c < 0)
        {
            if (_chunks.Count == 0)
            {
                _chunks.Add([task]);
            }
            else
            {
                _chunks[0].Insert(0, task);
            }

            return;
        }

        var chunk = _chunks[c];
        var i = IndexIn(chunk, task.Sequence);
        if (i < chunk.Count && chunk[i].Sequence == task.Sequence)
        {
            return; // already there
        }

        chunk.Insert(i, task);
    }

    public void Remove(StoredTask task)
    {
        var c = ChunkHolding(task.Sequence);
        if (c < 0)
        {
            return;
        }

        var chunk = _chunks[c];
        var i = IndexIn(chunk, task.Sequence);
        if (i < chunk.Count && chunk[i].Sequence == task.Sequence)
        {
            chunk.RemoveAt(i);
            if (chunk.Count == 0)
            {
                _chunks.RemoveAt(c);
            }
        }
    }

    /// <summary>Tasks created after <paramref name="sequence"/>, in creation order.</summary>
    public IEnumerable<StoredTask> After(long sequence)
    {
        var c = Math.Max(0, ChunkHolding(sequence));
        for (; c < _chunks.Count; c++)
        {
            var chunk = _chunks[c];
            for (var i = IndexIn(chunk, sequence + 1); i < chunk.Count; i++)
            {
                yield return chunk[i];
            }
        }
    }

    /// <summary>The last chunk whose first sequence is at most <paramref name="sequence"/>; -1 when there is none.</summary>
    private int ChunkHolding(long sequence)
    {
        int lo = 0, hi = _chunks.Count - 1, found = -1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            if (_chunks[mid][0].Sequence <= sequence)
            {
                found = mid;
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }

        return found;
    }

    /// <summary>The first index in the chunk whose sequence is at least <paramref name="sequence"/>.</summary>
    private static int IndexIn(List<StoredTask> chunk, long sequence)
    {
        int lo = 0, hi = chunk.Count;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (chunk[mid].Sequence < sequence)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        return lo;
    }
}
