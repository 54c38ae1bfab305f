using System.Diagnostics;
using Bridge.CloudTasks;
using Bridge.CloudTasks.V2Beta3;
using Google.Protobuf;
using Microsoft.Data.Sqlite;
using TaskMessage = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.Emulators.CloudTasks.Bench;

/// <summary>
/// Measures shared by the scale section's memory runs (100,000 tasks, <c>--memory</c>) and the million run
/// (<c>--million</c>): what a purge does to concurrent calls, what a tombstone costs, RSS once it settles.
/// </summary>
internal static class StoredTasksMeasures
{
    private const int BodyBytes = 512;
    private const int BatchSize = 100;
    private const int BatchesInFlight = 8;
    private const int CreatesInFlight = 16;
    private static readonly TimeSpan QuietWindow = TimeSpan.FromSeconds(3);

    /// <summary>
    /// Purges <paramref name="purged"/> (holding <paramref name="tasks"/> tasks) while GetQueue calls (one after
    /// another) and CreateTask calls (<see cref="CreatesInFlight"/> loops) run against <paramref name="other"/>, from
    /// the purge call until it has answered and, durable, until its slices have moved every row (the data folder's
    /// purge record is gone); the same calls for a few seconds with no purge are the baseline. Reports latencies
    /// (p50, p99, max, calls over 50 ms) both ways.
    /// </summary>
    public static async System.Threading.Tasks.Task PurgeStallAsync(CloudTasksClient client, QueueName purged, QueueName other, int tasks, string kind, string? dataFolder, Action<string> report)
    {
        var quiet = await ConcurrentCallsAsync(client, other, until: null);
        var clock = Stopwatch.StartNew();
        var answered = TimeSpan.Zero;
        var sliced = TimeSpan.Zero;
        var purge = System.Threading.Tasks.Task.Run(async () =>
        {
            await client.PurgeQueueAsync(new PurgeQueueRequest { Name = purged.ToString() }, CallSettings.FromTimeout(TimeSpan.FromMinutes(10)));
            answered = clock.Elapsed;
            if (dataFolder is not null)
            {
                await PurgeRecordsGoneAsync(dataFolder, TimeSpan.FromMinutes(10));
            }

            sliced = clock.Elapsed;
        });
        var during = await ConcurrentCallsAsync(client, other, purge);
        await purge;
        report($"Purge of {tasks:N0} tasks, {kind} (load {LoadAverage()}): answered after {answered.TotalSeconds:F2} s"
            + (dataFolder is null ? string.Empty : $", rows moved after {sliced.TotalSeconds:F2} s")
            + $"; concurrent GetQueue {Describe(during.GetQueue)} against {Describe(quiet.GetQueue)} with no purge, delay added {Math.Max(0, Percentile(during.GetQueue, 1) - Percentile(quiet.GetQueue, 0.5)):F1} ms"
            + $"; concurrent CreateTask ({CreatesInFlight} in flight) {Describe(during.Create)} against {Describe(quiet.Create)} with no purge");
    }

    /// <summary>
    /// RSS per tombstone: <paramref name="count"/> tasks created and deleted (BatchCreateTasks then BatchDeleteTasks,
    /// 1,000 at a time, so the deleted tasks' garbage never piles up) on a fresh emulator, RSS after them above RSS
    /// before them (after a warm-up of the same calls).
    /// </summary>
    public static async System.Threading.Tasks.Task TombstoneMemoryAsync(EmulatorChild emulator, int count, string kind, Action<string> report)
    {
        var queue = await PausedQueueAsync(emulator.Client, new LocationName("bench", "l"), "tombstones");
        await CreateAndDeleteAsync(emulator.Client, queue, 5000); // warm-up: channels, pools, JIT, first dictionary growth
        var empty = await SettledRssAsync(emulator);
        var clock = Stopwatch.StartNew();
        await CreateAndDeleteAsync(emulator.Client, queue, count);
        var rate = count / clock.Elapsed.TotalSeconds;
        var after = await SettledRssAsync(emulator);
        report($"Tombstones, {kind}, {count:N0} tasks created and deleted (load {LoadAverage()}): RSS {empty / 1048576.0:F0} MB before, {after / 1048576.0:F0} MB after; {(after - empty) / (double)count:F0} bytes per tombstone ({rate:F0} tasks/s)");
    }

    private static async System.Threading.Tasks.Task CreateAndDeleteAsync(CloudTasksClient client, QueueName queue, int count)
    {
        var task = new TaskMessage { HttpRequest = new HttpRequest { Url = "http://127.0.0.1:9/unused", Body = ByteString.CopyFrom(new byte[BodyBytes]) } };
        const int Round = 1000;
        for (var done = 0; done < count; done += Round)
        {
            var names = new List<string>(Round);
            await Parallel.ForEachAsync(Enumerable.Range(0, Round / BatchSize), new ParallelOptions { MaxDegreeOfParallelism = BatchesInFlight }, async (_, ct) =>
            {
                var operation = await client.BatchCreateTasksAsync(queue, Enumerable.Repeat(task, BatchSize), cancellationToken: ct);
                lock (names)
                {
                    names.AddRange(operation.Response!.Tasks.Select(t => t.Name));
                }
            });
            await Parallel.ForEachAsync(names.Chunk(BatchSize), new ParallelOptions { MaxDegreeOfParallelism = BatchesInFlight }, async (chunk, ct) =>
            {
                var operation = await client.BatchDeleteTasksAsync(queue, chunk.Select(TaskName.Parse), cancellationToken: ct);
                if (operation.Metadata?.FailedRequests.Count > 0)
                {
                    throw new InvalidOperationException($"A batch delete of {chunk.Length} failed {operation.Metadata.FailedRequests.Count}.");
                }
            });
        }
    }

    /// <summary>Waits until the emulator's data folder holds no purge record (read-only, beside the running emulator; WAL lets both read).</summary>
    private static async System.Threading.Tasks.Task PurgeRecordsGoneAsync(string dataFolder, TimeSpan max)
    {
        var connection = new SqliteConnectionStringBuilder { DataSource = Path.Combine(dataFolder, "cloudtasks-emulator.db"), Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString();
        using var timeout = new CancellationTokenSource(max);
        using var poll = new PeriodicTimer(TimeSpan.FromMilliseconds(100));
        while (await poll.WaitForNextTickAsync(timeout.Token))
        {
            using var db = new SqliteConnection(connection);
            db.Open();
            using var count = db.CreateCommand();
            count.CommandText = "SELECT COUNT(*) FROM purges";
            if ((long)count.ExecuteScalar()! == 0)
            {
                return;
            }
        }
    }

    private static async System.Threading.Tasks.Task<(List<double> GetQueue, List<double> Create)> ConcurrentCallsAsync(CloudTasksClient client, QueueName queue, System.Threading.Tasks.Task? until)
    {
        var task = new TaskMessage { HttpRequest = new HttpRequest { Url = "http://127.0.0.1:9/unused", Body = ByteString.CopyFrom(new byte[BodyBytes]) } };
        var window = Stopwatch.StartNew();
        bool Running() => until is null ? window.Elapsed < QuietWindow : !until.IsCompleted;
        async System.Threading.Tasks.Task<List<double>> LoopAsync(Func<System.Threading.Tasks.Task> call)
        {
            var latencies = new List<double>();
            while (Running())
            {
                var one = Stopwatch.StartNew();
                await call();
                latencies.Add(one.Elapsed.TotalMilliseconds);
            }

            return latencies;
        }

        var gets = LoopAsync(async () => await client.GetQueueAsync(queue));
        var creates = Enumerable.Range(0, CreatesInFlight).Select(_ => LoopAsync(async () => await client.CreateTaskAsync(queue, task))).ToList();
        var getLatencies = await gets;
        var createLatencies = (await System.Threading.Tasks.Task.WhenAll(creates)).SelectMany(l => l).ToList();
        getLatencies.Sort();
        createLatencies.Sort();
        return (getLatencies, createLatencies);
    }

    private static string Describe(List<double> sorted) =>
        $"p50 {Percentile(sorted, 0.5):F1} ms, p99 {Percentile(sorted, 0.99):F1} ms, max {Percentile(sorted, 1):F1} ms over {sorted.Count} calls ({sorted.Count(l => l > 50)} over 50 ms)";

    public static async System.Threading.Tasks.Task<QueueName> PausedQueueAsync(CloudTasksClient client, LocationName location, string id)
    {
        var queue = location.Queue(id);
        await client.CreateQueueAsync(location, new Queue { Name = queue.ToString() });
        await client.PauseQueueAsync(queue); // creation ignores a state; pausing keeps the tasks from being dispatched
        return queue;
    }

    /// <summary>RSS once it stops falling (the runtime gives memory back lazily), at most 5 s of half-second looks.</summary>
    public static async System.Threading.Tasks.Task<long> SettledRssAsync(EmulatorChild emulator)
    {
        var last = emulator.ResidentBytes();
        for (var i = 0; i < 10; i++)
        {
            await System.Threading.Tasks.Task.Delay(500);
            var now = emulator.ResidentBytes();
            if (now >= last)
            {
                return now;
            }

            last = now;
        }

        return last;
    }

    public static string LoadAverage() => File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "?";

    private static double Percentile(List<double> sorted, double p) => sorted.Count == 0 ? 0 : sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Count) - 1, 0, sorted.Count - 1)];
}
