using System.Diagnostics;
using Bridge.CloudTasks;
using Bridge.CloudTasks.V2Beta3;
using Bridge.Testing;
using Google.Protobuf;
using TaskMessage = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.Emulators.CloudTasks.Bench;

/// <summary>
/// Issue 15's "1 million tasks fit in 2 GB", durable as well as in memory (<c>--million</c>): RSS of an emulator
/// process holding 1,000,000 tasks with a 512-byte body above the same process before them, the size of its data
/// folder, then a purge of all of them and what it does to concurrent GetQueue calls on another queue. The tasks go in
/// with BatchCreateTasks (100 a call, 8 calls in flight) so the fill takes minutes, not tens of minutes; what a task
/// costs once stored does not depend on how it arrived.
/// </summary>
internal static class MillionTasksBench
{
    private const int Tasks = 1_000_000;
    private const int BodyBytes = 512;
    private const int BatchSize = 100;
    private const int BatchesInFlight = 8;
    private static readonly LocationName Location = new("bench", "l");

    public static async System.Threading.Tasks.Task RunAsync(bool durableOnly, Action<string> report)
    {
        await using var otlp = await HttpTargetServer.StartAsync();
        foreach (var durable in durableOnly ? [true] : new[] { true, false })
        {
            await MeasureAsync(otlp.Address, durable, report);
        }
    }

    private static async System.Threading.Tasks.Task MeasureAsync(Uri otlp, bool durable, Action<string> report)
    {
        var kind = durable ? "durable" : "in memory";
        var data = Path.Combine(Path.GetTempPath(), "bridge-bench-million-" + Guid.NewGuid().ToString("N"));
        try
        {
            using var emulator = durable ? await EmulatorChild.StartAsync(otlp, "--data", data) : await EmulatorChild.StartAsync(otlp);
            var big = await PausedQueueAsync(emulator.Client, "big");
            var other = await PausedQueueAsync(emulator.Client, "other");
            await FillAsync(emulator.Client, other, 2000); // warm-up: channels, pools, JIT
            await emulator.Client.PurgeQueueAsync(other);
            var empty = await SettledRssAsync(emulator);

            var fill = Stopwatch.StartNew();
            await FillAsync(emulator.Client, big, Tasks);
            var fillRate = Tasks / fill.Elapsed.TotalSeconds;
            var full = await SettledRssAsync(emulator);
            var onDisk = durable ? FolderBytes(data) : 0;
            report($"Memory, {kind}, {Tasks:N0} tasks with a {BodyBytes}-byte body (load {LoadAverage()}): RSS {empty / 1048576.0:F0} MB empty, {full / 1048576.0:F0} MB full "
                + $"({(full <= 2L * 1024 * 1024 * 1024 ? "within" : "over")} 2 GB); {(full - empty) / (double)Tasks:F0} bytes per stored task; filled at {fillRate:F0}/s"
                + (durable ? $"; data folder {onDisk / 1048576.0:F0} MB" : string.Empty));

            var quiet = await GetQueueLatenciesAsync(emulator.Client, other, TimeSpan.FromSeconds(2), null);
            var purge = emulator.Client.PurgeQueueAsync(new PurgeQueueRequest { Name = big.ToString() }, CallSettings.FromTimeout(TimeSpan.FromMinutes(10)));
            var purgeClock = Stopwatch.StartNew();
            var during = await GetQueueLatenciesAsync(emulator.Client, other, TimeSpan.FromMinutes(10), purge);
            await purge;
            report($"Purge of {Tasks:N0} tasks, {kind} (load {LoadAverage()}): answered after {purgeClock.Elapsed.TotalSeconds:F2} s; concurrent GetQueue max {Percentile(during, 1):F1} ms, "
                + $"p99 {Percentile(during, 0.99):F1} ms, p50 {Percentile(during, 0.5):F1} ms over {during.Count} calls, against max {Percentile(quiet, 1):F1} ms (p50 {Percentile(quiet, 0.5):F1} ms) with no purge; "
                + $"calls over 50 ms: {during.Count(l => l > 50)}");
        }
        finally
        {
            if (Directory.Exists(data))
            {
                Directory.Delete(data, recursive: true);
            }
        }
    }

    private static async System.Threading.Tasks.Task FillAsync(CloudTasksClient client, QueueName queue, int n)
    {
        var task = new TaskMessage { HttpRequest = new HttpRequest { Url = "http://127.0.0.1:9/unused", Body = ByteString.CopyFrom(new byte[BodyBytes]) } };
        var batches = (n + BatchSize - 1) / BatchSize;
        await Parallel.ForEachAsync(Enumerable.Range(0, batches), new ParallelOptions { MaxDegreeOfParallelism = BatchesInFlight }, async (b, ct) =>
        {
            var size = Math.Min(BatchSize, n - (b * BatchSize));
            var operation = await client.BatchCreateTasksAsync(queue, Enumerable.Repeat(task, size), cancellationToken: ct);
            if (operation.Response?.Tasks.Count != size)
            {
                throw new InvalidOperationException($"A batch of {size} created {operation.Response?.Tasks.Count ?? 0}.");
            }
        });
    }

    private static async System.Threading.Tasks.Task<QueueName> PausedQueueAsync(CloudTasksClient client, string id)
    {
        var queue = Location.Queue(id);
        await client.CreateQueueAsync(Location, new Queue { Name = queue.ToString() });
        await client.PauseQueueAsync(queue); // creation ignores a state; pausing keeps the tasks from being dispatched
        return queue;
    }

    /// <summary>GetQueue latencies in ms, one call after another, until <paramref name="until"/> completes (or for <paramref name="max"/>); sorted.</summary>
    private static async System.Threading.Tasks.Task<List<double>> GetQueueLatenciesAsync(CloudTasksClient client, QueueName queue, TimeSpan max, System.Threading.Tasks.Task? until)
    {
        var latencies = new List<double>();
        var total = Stopwatch.StartNew();
        while (total.Elapsed < max && until?.IsCompleted != true)
        {
            var call = Stopwatch.StartNew();
            await client.GetQueueAsync(queue);
            latencies.Add(call.Elapsed.TotalMilliseconds);
        }

        latencies.Sort();
        return latencies;
    }

    /// <summary>RSS once it stops falling (the runtime gives memory back lazily), at most 5 s of half-second looks.</summary>
    private static async System.Threading.Tasks.Task<long> SettledRssAsync(EmulatorChild emulator)
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

    private static long FolderBytes(string folder) =>
        Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);

    private static double Percentile(List<double> sorted, double p) => sorted.Count == 0 ? 0 : sorted[Math.Min(sorted.Count - 1, (int)(p * sorted.Count))];

    private static string LoadAverage() => File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "?";
}
