using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Bridge.CloudTasks;
using Bridge.CloudTasks.V2Beta3;
using Bridge.Testing;
using Google.Protobuf;
using TaskMessage = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.Emulators.CloudTasks.Bench;

/// <summary>
/// The emulator at scale (issue 15): every emulator a process of its own with telemetry on; each comparison runs
/// both sides in the same run, rounds alternating, and prints the ratio.
/// </summary>
internal static class ScaleBench
{
    private const int InFlight = 64;
    private const int BodyBytes = 512;
    private const int BatchSize = 100;
    private const int BatchesInFlight = 8;
    private static readonly LocationName Location = new("bench", "l");

    public static async System.Threading.Tasks.Task RunAsync(Uri otlp, int perRound, bool longMode, Action<string> report)
    {
        await DurableAgainstInMemoryAsync(otlp, perRound, report);
        await ManyQueuesAsync(otlp, perRound, report);
        await MemoryAndPurgeAsync(otlp, 100_000, durable: false, report);
        await MemoryAndPurgeAsync(otlp, 100_000, durable: true, report);
        if (longMode)
        {
            await MemoryAndPurgeAsync(otlp, 1_000_000, durable: false, report);
        }
    }

    /// <summary>
    /// BatchCreateTasks (100 tasks a call, 8 calls in flight) against CreateTask (64 in flight) on the same emulator,
    /// in memory and durable, rounds alternating: tasks per second each way and the ratio.
    /// </summary>
    public static async System.Threading.Tasks.Task BatchAgainstSingleAsync(Uri otlp, int perRound, Action<string> report)
    {
        foreach (var durable in new[] { false, true })
        {
            var data = Path.Combine(Path.GetTempPath(), "bridge-bench-" + Guid.NewGuid().ToString("N"));
            try
            {
                using var emulator = durable ? await EmulatorChild.StartAsync(otlp, "--data", data) : await EmulatorChild.StartAsync(otlp);
                var singleQueue = await PausedQueueAsync(emulator.Client, "single");
                var batchQueue = await PausedQueueAsync(emulator.Client, "batch");
                await CreateTasksAsync(emulator.Client, singleQueue, 500); // warm-up: channels, pools, JIT
                await BatchCreateTasksAsync(emulator.Client, batchQueue, 500);
                var rates = (Single: new List<double>(), Batch: new List<double>());
                for (var round = 0; round < 3; round++)
                {
                    if (round % 2 == 0)
                    {
                        rates.Single.Add(await CreateTasksAsync(emulator.Client, singleQueue, perRound));
                        rates.Batch.Add(await BatchCreateTasksAsync(emulator.Client, batchQueue, perRound));
                    }
                    else
                    {
                        rates.Batch.Add(await BatchCreateTasksAsync(emulator.Client, batchQueue, perRound));
                        rates.Single.Add(await CreateTasksAsync(emulator.Client, singleQueue, perRound));
                    }
                }

                report($"BatchCreateTasks, {(durable ? "durable" : "in memory")}, {BatchSize} tasks a call, {BatchesInFlight} calls in flight, {BodyBytes}-byte body, 3 alternating rounds of {perRound} tasks: {Median(rates.Batch):F0} tasks/s (rounds {string.Join(", ", rates.Batch.Select(r => r.ToString("F0", CultureInfo.InvariantCulture)))}); CreateTask, {InFlight} in flight: {Median(rates.Single):F0} tasks/s; ratio batch/single {Median(rates.Batch) / Median(rates.Single):F2}");
            }
            finally
            {
                if (Directory.Exists(data))
                {
                    Directory.Delete(data, recursive: true);
                }
            }
        }
    }

    /// <summary>
    /// BatchDeleteTasks (100 names a call, 8 calls in flight; one commit a call) against DeleteTask (64 in flight), in
    /// memory and durable, 3 rounds alternating which goes first; the tasks are made beforehand with BatchCreateTasks.
    /// </summary>
    public static async System.Threading.Tasks.Task BatchDeleteAgainstSingleAsync(Uri otlp, int perRound, Action<string> report)
    {
        foreach (var durable in new[] { false, true })
        {
            var data = Path.Combine(Path.GetTempPath(), "bridge-bench-" + Guid.NewGuid().ToString("N"));
            try
            {
                using var emulator = durable ? await EmulatorChild.StartAsync(otlp, "--data", data) : await EmulatorChild.StartAsync(otlp);
                var queue = await PausedQueueAsync(emulator.Client, "deletes");
                var rates = (Single: new List<double>(), Batch: new List<double>());
                for (var round = 0; round < 3; round++)
                {
                    var single = await NamedTasksAsync(emulator.Client, queue, $"s{round}", perRound);
                    var batch = await NamedTasksAsync(emulator.Client, queue, $"b{round}", perRound);
                    if (round % 2 == 0)
                    {
                        rates.Single.Add(await DeleteTasksAsync(emulator.Client, single));
                        rates.Batch.Add(await BatchDeleteTasksAsync(emulator.Client, queue, batch));
                    }
                    else
                    {
                        rates.Batch.Add(await BatchDeleteTasksAsync(emulator.Client, queue, batch));
                        rates.Single.Add(await DeleteTasksAsync(emulator.Client, single));
                    }
                }

                report($"BatchDeleteTasks, {(durable ? "durable" : "in memory")}, {BatchSize} names a call, {BatchesInFlight} calls in flight, 3 alternating rounds of {perRound} tasks (load {LoadAverage()}): {Median(rates.Batch):F0} tasks/s; DeleteTask, {InFlight} in flight: {Median(rates.Single):F0} tasks/s; ratio batch/single {Median(rates.Batch) / Median(rates.Single):F2}");
            }
            finally
            {
                if (Directory.Exists(data))
                {
                    Directory.Delete(data, recursive: true);
                }
            }
        }
    }

    private static async System.Threading.Tasks.Task<List<TaskName>> NamedTasksAsync(CloudTasksClient client, QueueName queue, string prefix, int n)
    {
        var names = Enumerable.Range(0, n).Select(i => queue.Task($"{prefix}-{i}")).ToList();
        await Parallel.ForEachAsync(names.Chunk(BatchSize), new ParallelOptions { MaxDegreeOfParallelism = BatchesInFlight }, async (chunk, ct) =>
            await client.BatchCreateTasksAsync(queue, chunk.Select(name => new TaskMessage { Name = name.ToString(), HttpRequest = new HttpRequest { Url = "http://127.0.0.1:9/unused", Body = ByteString.CopyFrom(new byte[BodyBytes]) } }), cancellationToken: ct));
        return names;
    }

    private static async System.Threading.Tasks.Task<double> DeleteTasksAsync(CloudTasksClient client, List<TaskName> names)
    {
        var clock = Stopwatch.StartNew();
        await Parallel.ForEachAsync(names, new ParallelOptions { MaxDegreeOfParallelism = InFlight }, async (name, ct) => await client.DeleteTaskAsync(name, ct));
        return names.Count / clock.Elapsed.TotalSeconds;
    }

    private static async System.Threading.Tasks.Task<double> BatchDeleteTasksAsync(CloudTasksClient client, QueueName queue, List<TaskName> names)
    {
        var clock = Stopwatch.StartNew();
        await Parallel.ForEachAsync(names.Chunk(BatchSize), new ParallelOptions { MaxDegreeOfParallelism = BatchesInFlight }, async (chunk, ct) =>
        {
            var operation = await client.BatchDeleteTasksAsync(queue, chunk, cancellationToken: ct);
            if (operation.Metadata?.FailedRequests.Count > 0)
            {
                throw new InvalidOperationException($"A batch delete of {chunk.Length} failed {operation.Metadata.FailedRequests.Count}.");
            }
        });
        return names.Count / clock.Elapsed.TotalSeconds;
    }

    public static async System.Threading.Tasks.Task MemoryAndPurgeOnlyAsync(Uri otlp, bool longMode, Action<string> report)
    {
        await MemoryAndPurgeAsync(otlp, 100_000, durable: false, report);
        await MemoryAndPurgeAsync(otlp, 100_000, durable: true, report);
        await TombstonesAsync(otlp, 100_000, report);
        if (longMode)
        {
            await MemoryAndPurgeAsync(otlp, 1_000_000, durable: false, report);
        }
    }

    /// <summary>RSS per tombstone (tasks created and deleted), in memory and durable, each on a fresh emulator.</summary>
    private static async System.Threading.Tasks.Task TombstonesAsync(Uri otlp, int count, Action<string> report)
    {
        foreach (var durable in new[] { false, true })
        {
            var data = Path.Combine(Path.GetTempPath(), "bridge-bench-" + Guid.NewGuid().ToString("N"));
            try
            {
                using var emulator = durable ? await EmulatorChild.StartAsync(otlp, "--data", data) : await EmulatorChild.StartAsync(otlp);
                await StoredTasksMeasures.TombstoneMemoryAsync(emulator, count, durable ? "durable" : "in memory", report);
            }
            finally
            {
                if (Directory.Exists(data))
                {
                    Directory.Delete(data, recursive: true);
                }
            }
        }
    }

    /// <summary>
    /// Where a durable CreateTask waits: the C# client's load (64 in flight) on a durable emulator run under strace,
    /// counting its fsync/fdatasync calls during the round: calls per fsync is how many creates share a commit.
    /// </summary>
    public static async System.Threading.Tasks.Task DurableCommitProfileAsync(Uri otlp, int perRound, Action<string> report)
    {
        var data = Path.Combine(Path.GetTempPath(), "bridge-bench-" + Guid.NewGuid().ToString("N"));
        var log = Path.Combine(Path.GetTempPath(), "bridge-bench-fsync-" + Guid.NewGuid().ToString("N") + ".log");
        try
        {
            using var memory = await EmulatorChild.StartAsync(otlp);
            using var durable = await EmulatorChild.StartTracedAsync(otlp, log, "--data", data);
            var memoryQueue = await PausedQueueAsync(memory.Client, "memory");
            var durableQueue = await PausedQueueAsync(durable.Client, "durable");
            await CreateTasksAsync(memory.Client, memoryQueue, 500);
            await CreateTasksAsync(durable.Client, durableQueue, 500);
            var rates = (Memory: new List<double>(), Durable: new List<double>());
            var perFsync = new List<double>();
            for (var round = 0; round < 3; round++)
            {
                rates.Memory.Add(await CreateTasksAsync(memory.Client, memoryQueue, perRound));
                var before = FsyncCount(log);
                rates.Durable.Add(await CreateTasksAsync(durable.Client, durableQueue, perRound));
                perFsync.Add(perRound / (double)Math.Max(1, FsyncCount(log) - before));
            }

            report($"Durable CreateTask under strace (C# client, {InFlight} in flight, 3 alternating rounds of {perRound}): in memory {Median(rates.Memory):F0}/s, durable {Median(rates.Durable):F0}/s, ratio {Median(rates.Durable) / Median(rates.Memory):F2}; creates per fsync {Median(perFsync):F1} (rounds {string.Join(", ", perFsync.Select(r => r.ToString("F1", CultureInfo.InvariantCulture)))}); a commit is one fdatasync of the WAL (synchronous=FULL), so this is creates per commit");
        }
        finally
        {
            if (Directory.Exists(data))
            {
                Directory.Delete(data, recursive: true);
            }

            File.Delete(log);
        }
    }

    private static int FsyncCount(string log)
    {
        using var stream = new FileStream(log, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream);
        var count = 0;
        while (reader.ReadLine() is { } line)
        {
            if (line.Contains("fsync(", StringComparison.Ordinal) || line.Contains("fdatasync(", StringComparison.Ordinal))
            {
                count++;
            }
        }

        return count;
    }

    /// <summary>Durable (SQLite, synchronous=FULL) against in-memory CreateTask, same client load, rounds alternating.</summary>
    private static async System.Threading.Tasks.Task DurableAgainstInMemoryAsync(Uri otlp, int perRound, Action<string> report)
    {
        var data = Path.Combine(Path.GetTempPath(), "bridge-bench-" + Guid.NewGuid().ToString("N"));
        try
        {
            using var memory = await EmulatorChild.StartAsync(otlp);
            using var durable = await EmulatorChild.StartAsync(otlp, "--data", data);
            var memoryQueue = await PausedQueueAsync(memory.Client, "memory");
            var durableQueue = await PausedQueueAsync(durable.Client, "durable");
            var node = (Memory: new List<double>(), Durable: new List<double>());
            var csharp = (Memory: new List<double>(), Durable: new List<double>());
            for (var round = 0; round < 3; round++)
            {
                node.Memory.Add(await NodeCreateTasksAsync(memory.GrpcHostPort, memoryQueue, perRound));
                node.Durable.Add(await NodeCreateTasksAsync(durable.GrpcHostPort, durableQueue, perRound));
                csharp.Memory.Add(await CreateTasksAsync(memory.Client, memoryQueue, perRound));
                csharp.Durable.Add(await CreateTasksAsync(durable.Client, durableQueue, perRound));
            }

            report($"CreateTask, official Node.js client, {InFlight} in flight, {BodyBytes}-byte body, 3 alternating rounds of {perRound}: in memory {Median(node.Memory):F0}/s, durable {Median(node.Durable):F0}/s; ratio durable/in-memory {Median(node.Durable) / Median(node.Memory):F2}");
            report($"CreateTask, C# client, same load: in memory {Median(csharp.Memory):F0}/s, durable {Median(csharp.Durable):F0}/s; ratio durable/in-memory {Median(csharp.Durable) / Median(csharp.Memory):F2}");
        }
        finally
        {
            if (Directory.Exists(data))
            {
                Directory.Delete(data, recursive: true);
            }
        }
    }

    /// <summary>CreateTask with 5,000 other (running, empty) queues present, against an emulator with one queue.</summary>
    public static async System.Threading.Tasks.Task ManyQueuesAsync(Uri otlp, int perRound, Action<string> report)
    {
        using var one = await EmulatorChild.StartAsync(otlp);
        using var many = await EmulatorChild.StartAsync(otlp);
        var oneQueue = await PausedQueueAsync(one.Client, "target");
        await Parallel.ForEachAsync(Enumerable.Range(0, 5000), new ParallelOptions { MaxDegreeOfParallelism = InFlight }, async (i, ct) =>
            await many.Client.CreateQueueAsync(Location, new Queue { Name = Location.Queue($"other-{i}").ToString() }, ct));
        var manyQueue = await PausedQueueAsync(many.Client, "target");
        var rates = (One: new List<double>(), Many: new List<double>());
        for (var round = 0; round < 3; round++)
        {
            rates.One.Add(await CreateTasksAsync(one.Client, oneQueue, perRound));
            rates.Many.Add(await CreateTasksAsync(many.Client, manyQueue, perRound));
        }

        report($"CreateTask, C# client, {InFlight} in flight, with 5,000 other queues: {Median(rates.Many):F0}/s; one queue: {Median(rates.One):F0}/s; ratio {Median(rates.Many) / Median(rates.One):F2}");
    }

    /// <summary>
    /// RSS per stored task (above the process with its queue and a warm-up, before the tasks), then how long a
    /// purge of all of them holds up GetQueue calls on another queue, against GetQueue latency with no purge.
    /// </summary>
    private static async System.Threading.Tasks.Task MemoryAndPurgeAsync(Uri otlp, int tasks, bool durable, Action<string> report)
    {
        var data = Path.Combine(Path.GetTempPath(), "bridge-bench-" + Guid.NewGuid().ToString("N"));
        try
        {
            using var emulator = durable ? await EmulatorChild.StartAsync(otlp, "--data", data) : await EmulatorChild.StartAsync(otlp);
            var queue = await PausedQueueAsync(emulator.Client, "big");
            var other = await PausedQueueAsync(emulator.Client, "other");
            await CreateTasksAsync(emulator.Client, other, 2000); // warm-up: channels, pools, JIT
            await emulator.Client.PurgeQueueAsync(other);
            var empty = await StoredTasksMeasures.SettledRssAsync(emulator);
            var clock = Stopwatch.StartNew();
            await CreateTasksAsync(emulator.Client, queue, tasks);
            var fillRate = tasks / clock.Elapsed.TotalSeconds;
            var full = await StoredTasksMeasures.SettledRssAsync(emulator);
            var perTask = (full - empty) / (double)tasks;
            var kind = durable ? "durable" : "in memory";
            report($"Memory, {kind}: {tasks:N0} tasks with a {BodyBytes}-byte body: RSS {empty / 1048576.0:F0} MB empty, {full / 1048576.0:F0} MB full; {perTask:F0} bytes per stored task (filled at {fillRate:F0}/s)");

            await StoredTasksMeasures.PurgeStallAsync(emulator.Client, queue, other, tasks, kind, durable ? data : null, report);
        }
        finally
        {
            if (Directory.Exists(data))
            {
                Directory.Delete(data, recursive: true);
            }
        }
    }

    private static System.Threading.Tasks.Task<QueueName> PausedQueueAsync(CloudTasksClient client, string id) => StoredTasksMeasures.PausedQueueAsync(client, Location, id);

    /// <summary>
    /// Durable against in-memory CreateTask in both durability modes (ProcessCrash: synchronous=NORMAL; PowerLoss:
    /// synchronous=FULL), with the C# client and the official Node.js client, 16 and 64 calls in flight, 512-byte
    /// bodies; three emulator processes side by side, rounds alternating which goes first.
    /// </summary>
    public static async System.Threading.Tasks.Task DurabilityModesAsync(Uri otlp, int perRound, Action<string> report)
    {
        var crashData = Path.Combine(Path.GetTempPath(), "bridge-bench-" + Guid.NewGuid().ToString("N"));
        var powerData = Path.Combine(Path.GetTempPath(), "bridge-bench-" + Guid.NewGuid().ToString("N"));
        try
        {
            using var memory = await EmulatorChild.StartAsync(otlp);
            using var crash = await EmulatorChild.StartAsync(otlp, "--data", crashData, "--durability", nameof(EmulatorDurability.ProcessCrash));
            using var power = await EmulatorChild.StartAsync(otlp, "--data", powerData, "--durability", nameof(EmulatorDurability.PowerLoss));
            var sides = new[] { (Name: "in memory", Child: memory), (Name: "ProcessCrash", Child: crash), (Name: "PowerLoss", Child: power) };
            var queues = new List<QueueName>();
            foreach (var side in sides)
            {
                queues.Add(await PausedQueueAsync(side.Child.Client, "modes"));
                for (var i = 0; i < 4; i++)
                {
                    // Warm-up: channels, pools, and tiered compilation (about 10,000 methods, tier 1 after a while):
                    // a short warm-up left the JIT running through the first rounds, more so on the durable sides.
                    await CreateTasksAsync(side.Child.Client, queues[^1], perRound, 16 << (i % 3));
                }
            }

            foreach (var client in new[] { "C#", "Node.js" })
            {
                foreach (var inFlight in new[] { 16, 64 })
                {
                    var rates = sides.Select(_ => new List<double>()).ToArray();
                    var cpu = sides.Select(_ => new List<double>()).ToArray(); // the emulator's CPU µs per create
                    for (var round = 0; round < 3; round++)
                    {
                        for (var k = 0; k < sides.Length; k++)
                        {
                            var i = (k + round) % sides.Length; // each side goes first once
                            var cpuBefore = sides[i].Child.CpuTime();
                            rates[i].Add(client == "C#"
                                ? await CreateTasksAsync(sides[i].Child.Client, queues[i], perRound, inFlight)
                                : await NodeCreateTasksAsync(sides[i].Child.GrpcHostPort, queues[i], perRound, inFlight));
                            cpu[i].Add((sides[i].Child.CpuTime() - cpuBefore).TotalMicroseconds / perRound);
                        }
                    }

                    var inMemory = Median(rates[0]);
                    report($"CreateTask, {client} client, {inFlight} in flight, {BodyBytes}-byte body, 3 alternating rounds of {perRound} (load {LoadAverage()}): in memory {inMemory:F0}/s ({Median(cpu[0]):F0} µs CPU each); "
                        + string.Join("; ", Enumerable.Range(1, sides.Length - 1).Select(i => $"durable {sides[i].Name} {Median(rates[i]):F0}/s ({Median(cpu[i]):F0} µs CPU each), ratio {Median(rates[i]) / inMemory:F2}, CPU ratio {Median(cpu[0]) / Median(cpu[i]):F2}")));
                }
            }
        }
        finally
        {
            foreach (var data in new[] { crashData, powerData })
            {
                if (Directory.Exists(data))
                {
                    Directory.Delete(data, recursive: true);
                }
            }
        }
    }

    /// <summary>
    /// Durable CreateTask alone, to run a profiler against the emulator: a warm-up (so tiered compilation is done),
    /// then rounds of the C# client at <paramref name="inFlight"/> for <paramref name="seconds"/>, each printing the
    /// emulator's CPU µs per create. Prints the emulator's pid first (perf record -g -p PID; DOTNET_PerfMapEnabled=1
    /// and DOTNET_EnableWriteXorExecute=0 in the bench's environment make JIT frames readable).
    /// </summary>
    public static async System.Threading.Tasks.Task CreateProfileAsync(Uri otlp, int perRound, bool durable, int inFlight, int seconds, Action<string> report)
    {
        var data = Path.Combine(Path.GetTempPath(), "bridge-bench-" + Guid.NewGuid().ToString("N"));
        try
        {
            using var emulator = durable ? await EmulatorChild.StartAsync(otlp, "--data", data) : await EmulatorChild.StartAsync(otlp);
            var queue = await PausedQueueAsync(emulator.Client, "profile");
            for (var i = 0; i < 5; i++)
            {
                await CreateTasksAsync(emulator.Client, queue, perRound, inFlight); // warm-up: tier-1 code before the profile
            }

            report($"profile start: emulator pid {emulator.ProcessId}, {(durable ? "durable" : "in memory")}, {inFlight} in flight");
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed.TotalSeconds < seconds)
            {
                var cpuBefore = emulator.CpuTime();
                var rate = await CreateTasksAsync(emulator.Client, queue, perRound, inFlight);
                report($"round: {rate:F0}/s, {(emulator.CpuTime() - cpuBefore).TotalMicroseconds / perRound:F0} µs CPU each (load {LoadAverage()})");
            }
        }
        finally
        {
            if (Directory.Exists(data))
            {
                Directory.Delete(data, recursive: true);
            }
        }
    }

    private static string LoadAverage() => StoredTasksMeasures.LoadAverage();

    private static async System.Threading.Tasks.Task<double> CreateTasksAsync(CloudTasksClient client, QueueName queue, int n, int inFlight = InFlight)
    {
        var task = new TaskMessage { HttpRequest = new HttpRequest { Url = "http://127.0.0.1:9/unused", Body = ByteString.CopyFrom(new byte[BodyBytes]) } };
        var clock = Stopwatch.StartNew();
        await Parallel.ForEachAsync(Enumerable.Range(0, n), new ParallelOptions { MaxDegreeOfParallelism = inFlight }, async (_, ct) => await client.CreateTaskAsync(queue, task, ct));
        return n / clock.Elapsed.TotalSeconds;
    }

    private static async System.Threading.Tasks.Task<double> BatchCreateTasksAsync(CloudTasksClient client, QueueName queue, int n)
    {
        var task = new TaskMessage { HttpRequest = new HttpRequest { Url = "http://127.0.0.1:9/unused", Body = ByteString.CopyFrom(new byte[BodyBytes]) } };
        var batches = (n + BatchSize - 1) / BatchSize;
        var clock = Stopwatch.StartNew();
        await Parallel.ForEachAsync(Enumerable.Range(0, batches), new ParallelOptions { MaxDegreeOfParallelism = BatchesInFlight }, async (b, ct) =>
        {
            var size = Math.Min(BatchSize, n - (b * BatchSize));
            var operation = await client.BatchCreateTasksAsync(queue, Enumerable.Repeat(task, size), cancellationToken: ct);
            if (operation.Response?.Tasks.Count != size)
            {
                throw new InvalidOperationException($"A batch of {size} created {operation.Response?.Tasks.Count ?? 0}.");
            }
        });
        return n / clock.Elapsed.TotalSeconds;
    }

    private static async System.Threading.Tasks.Task<double> NodeCreateTasksAsync(string emulatorHost, QueueName queue, int n, int inFlight = InFlight)
    {
        var script = Path.Combine(RepositoryPaths.Root, "bench", "node", "create-tasks.mjs");
        var start = new ProcessStartInfo("node") { ArgumentList = { script }, RedirectStandardOutput = true, RedirectStandardError = true };
        start.Environment["EMULATOR_HOST"] = emulatorHost;
        start.Environment["QUEUE"] = queue.ToString();
        start.Environment["COUNT"] = n.ToString(CultureInfo.InvariantCulture);
        start.Environment["CONCURRENCY"] = inFlight.ToString(CultureInfo.InvariantCulture);
        start.Environment["BODY_BYTES"] = BodyBytes.ToString(CultureInfo.InvariantCulture);
        start.Environment["METADATA_SERVER_DETECTION"] = "none";
        using var node = Process.Start(start)!;
        var output = node.StandardOutput.ReadToEndAsync();
        var errors = node.StandardError.ReadToEndAsync();
        await node.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(10));
        if (node.ExitCode != 0)
        {
            throw new InvalidOperationException($"The Node.js benchmark failed ({node.ExitCode}): {await errors}");
        }

        using var result = JsonDocument.Parse((await output).Trim().Split('\n')[^1]);
        return result.RootElement.GetProperty("count").GetInt32() / result.RootElement.GetProperty("seconds").GetDouble();
    }

    private static double Median(List<double> values) => Percentile([.. values.Order()], 0.5);

    private static double Percentile(IReadOnlyList<double> sorted, double p) => sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Count) - 1, 0, sorted.Count - 1)];
}
