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

    public static async System.Threading.Tasks.Task RunAsync(bool durableOnly, bool inMemoryOnly, Action<string> report)
    {
        await using var otlp = await HttpTargetServer.StartAsync();
        foreach (var durable in durableOnly ? [true] : inMemoryOnly ? [false] : new[] { true, false })
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
            var empty = await StoredTasksMeasures.SettledRssAsync(emulator);

            var fill = Stopwatch.StartNew();
            await FillAsync(emulator.Client, big, Tasks);
            var fillRate = Tasks / fill.Elapsed.TotalSeconds;
            var full = await StoredTasksMeasures.SettledRssAsync(emulator);
            var onDisk = durable ? FolderBytes(data) : 0;
            report($"Memory, {kind}, {Tasks:N0} tasks with a {BodyBytes}-byte body (load {StoredTasksMeasures.LoadAverage()}): RSS {empty / 1048576.0:F0} MB empty, {full / 1048576.0:F0} MB full "
                + $"({(full <= 2L * 1024 * 1024 * 1024 ? "within" : "over")} 2 GB); {(full - empty) / (double)Tasks:F0} bytes per stored task; filled at {fillRate:F0}/s"
                + (durable ? $"; data folder {onDisk / 1048576.0:F0} MB" : string.Empty));

            await StoredTasksMeasures.PurgeStallAsync(emulator.Client, big, other, Tasks, kind, durable ? data : null, report);
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

    private static System.Threading.Tasks.Task<QueueName> PausedQueueAsync(CloudTasksClient client, string id) => StoredTasksMeasures.PausedQueueAsync(client, Location, id);

    private static long FolderBytes(string folder) =>
        Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
}
