using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Bridge.CloudTasks;
using Bridge.Emulators.CloudTasks.Bench;
using Bridge.CloudTasks.V2Beta3;
using Bridge.Testing;
using Google.Protobuf;
using TaskMessage = Bridge.CloudTasks.V2Beta3.Task;

// Emulator benchmark. Every figure is printed with a ratio against a baseline measured in this same run, on this
// machine, so results compare across machines.
// Usage: dotnet run -c Release --project bench/Bridge.Emulators.CloudTasks.Bench [count] [--scale-only] [--long] [--batch] [--memory] [--durability-modes] [--batch-delete] [--commit-profile] [--many-queues] [--no-scale] [--dispatch]
// --scale-only runs only the scale section (issue 15); --long adds 1,000,000 stored tasks to it; --batch runs only
// BatchCreateTasks against CreateTask; --memory only memory per task and the purge stall;
// --commit-profile only creates per fsync of a durable emulator (under strace); --many-queues only the 5,000-queue
// comparison; --no-scale skips the scale section (client, durability, dispatch, lateness and memory sections only);
// --dispatch runs only dispatch throughput against plain HttpClient and schedule lateness, in memory and durable (--rounds R: 9);
// --dispatch-profile only dispatch rounds in memory (durable with --durable), to run under a profiler (see the README's dispatch section).
var count = args.FirstOrDefault(a => !a.StartsWith("--", StringComparison.Ordinal)) is { } given ? int.Parse(given, CultureInfo.InvariantCulture) : 3000;
var scaleOnly = args.Contains("--scale-only");
var longMode = args.Contains("--long");
var batchOnly = args.Contains("--batch");
var memoryOnly = args.Contains("--memory");
var commitProfile = args.Contains("--commit-profile");
var manyQueuesOnly = args.Contains("--many-queues");
var noScale = args.Contains("--no-scale");
var dispatchOnly = args.Contains("--dispatch");
const int Concurrency = 16;
var report = new List<string>();
void Report(string line)
{
    Console.WriteLine(line);
    report.Add(line);
}

if (args.Contains("--million")) { await MillionTasksBench.RunAsync(durableOnly: args.Contains("--durable-only"), inMemoryOnly: args.Contains("--in-memory-only"), Report); return; } // 1,000,000 tasks: RSS, data folder, purge stall

await using var target = await HttpTargetServer.StartAsync();
var body = ByteString.CopyFromUtf8("{\"bench\":true}");

// --dispatch-profile: only dispatch rounds, in memory or --durable, with allocations by type (and perf control through BENCH_PERF_CTL).
if (args.Contains("--dispatch-profile"))
{
    await DispatchBench.ProfileAsync(target, count, 10, args.Contains("--durable"), args.Contains("--plain"), Report);
    return;
}

// --dispatch: only dispatch against plain HttpClient, and schedule lateness, in memory and durable (--durable: durable only).
if (dispatchOnly)
{
    foreach (var durableDispatch in args.Contains("--durable") ? new[] { true } : [false, true])
    {
        await DispatchBench.RunAsync(target, count, durableDispatch, Report, args.SkipWhile(a => a != "--rounds").Skip(1).FirstOrDefault() is { } r ? int.Parse(r, CultureInfo.InvariantCulture) : DispatchBench.DefaultRounds);
        await DispatchBench.LatenessAsync(target, durableDispatch, Report);
    }

    Console.WriteLine();
    Console.WriteLine(JsonSerializer.Serialize(report));
    return;
}

// --memory: only memory per stored task and the purge stall (100,000 tasks in memory and durable; --long adds 1,000,000 in memory).
if (memoryOnly)
{
    await using var memoryOtlp = await HttpTargetServer.StartAsync();
    await ScaleBench.MemoryAndPurgeOnlyAsync(memoryOtlp.Address, longMode, Report);
    Console.WriteLine();
    Console.WriteLine(JsonSerializer.Serialize(report));
    return;
}

// --many-queues: only CreateTask with 5,000 other queues against one queue.
if (manyQueuesOnly)
{
    await using var queuesOtlp = await HttpTargetServer.StartAsync();
    await ScaleBench.ManyQueuesAsync(queuesOtlp.Address, Math.Max(count, 2000), Report);
    Console.WriteLine();
    Console.WriteLine(JsonSerializer.Serialize(report));
    return;
}

// --batch-delete: BatchDeleteTasks (one commit a call) against DeleteTask, in memory and durable.
if (args.Contains("--batch-delete"))
{
    await using var deleteOtlp = await HttpTargetServer.StartAsync();
    await ScaleBench.BatchDeleteAgainstSingleAsync(deleteOtlp.Address, Math.Max(count, 2000), Report);
    Console.WriteLine();
    Console.WriteLine(JsonSerializer.Serialize(report));
    return;
}

// --durability-modes: durable (ProcessCrash and PowerLoss) against in-memory CreateTask, C# and Node.js clients, 16 and 64 in flight.
if (args.Contains("--durability-modes"))
{
    await using var modesOtlp = await HttpTargetServer.StartAsync();
    await ScaleBench.DurabilityModesAsync(modesOtlp.Address, Math.Max(count, 2000), Report);
    Console.WriteLine();
    Console.WriteLine(JsonSerializer.Serialize(report));
    return;
}

// --create-latency [--in-flight N] [--rounds R]: C# CreateTask at N in flight (16), in memory against durable, rate, latency p50/p99, CPU per create (BENCH_CREATE_BUILDS adds other builds).
if (args.Contains("--create-latency"))
{
    await using var latencyOtlp = await HttpTargetServer.StartAsync();
    string? Value(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();
    await CreateLatencyBench.RunAsync(
        latencyOtlp.Address,
        Math.Max(count, 2000),
        inFlight: Value("--in-flight") is { } n ? int.Parse(n, CultureInfo.InvariantCulture) : 16,
        rounds: Value("--rounds") is { } r ? int.Parse(r, CultureInfo.InvariantCulture) : 5,
        Report);
    return;
}

// --create-profile [--in-memory] [--in-flight N] [--seconds S]: CreateTask rounds against one emulator, to profile it.
if (args.Contains("--create-profile"))
{
    await using var createOtlp = await HttpTargetServer.StartAsync();
    string? Option(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();
    await ScaleBench.CreateProfileAsync(
        createOtlp.Address,
        Math.Max(count, 2000),
        durable: !args.Contains("--in-memory"),
        inFlight: Option("--in-flight") is { } n ? int.Parse(n, CultureInfo.InvariantCulture) : 64,
        seconds: Option("--seconds") is { } s ? int.Parse(s, CultureInfo.InvariantCulture) : 30,
        Report);
    return;
}

// --commit-profile: durable CreateTask with the emulator under strace, counting creates per fsync (needs strace).
if (commitProfile)
{
    await using var profileOtlp = await HttpTargetServer.StartAsync();
    await ScaleBench.DurableCommitProfileAsync(profileOtlp.Address, Math.Max(count, 2000), Report);
    Console.WriteLine();
    Console.WriteLine(JsonSerializer.Serialize(report));
    return;
}

// --batch: only BatchCreateTasks against CreateTask (issue 16's whole-batch insert), then stop.
if (batchOnly)
{
    await using var batchOtlp = await HttpTargetServer.StartAsync();
    await ScaleBench.BatchAgainstSingleAsync(batchOtlp.Address, Math.Max(count, 2000), Report);
    Console.WriteLine();
    Console.WriteLine(JsonSerializer.Serialize(report));
    return;
}

// 0. The emulator at scale, each emulator its own process with telemetry on (OTLP to a sink of the bench's).
if (!noScale)
{
    await using var otlp = await HttpTargetServer.StartAsync();
    await ScaleBench.RunAsync(otlp.Address, Math.Max(count, 2000), longMode, Report);
}

if (scaleOnly)
{
    Console.WriteLine();
    Console.WriteLine(JsonSerializer.Serialize(report));
    return;
}

// 1. CreateTask throughput: the project's C# client, and the official Node.js client as the baseline.
double csharpRate, nodeRate, durableRate;
await using (var host = await EmulatorHost.StartAsync())
{
    var queue = await host.CreateQueueAsync();
    await host.Client.PauseQueueAsync(queue);
    csharpRate = await CreateTasksAsync(host.Client, queue, count);

    var nodeQueue = await host.CreateQueueAsync();
    await host.Client.PauseQueueAsync(nodeQueue);
    nodeRate = await NodeCreateTasksAsync(host.GrpcHostPort, nodeQueue, count);
}

Report($"CreateTask, in memory, {Concurrency} concurrent: C# client {csharpRate:F0}/s, official Node.js client {nodeRate:F0}/s, ratio C#/Node {csharpRate / nodeRate:F2}");

// 2. The cost of durability: the same with --data (SQLite, synchronous=FULL), against in memory.
var data = Path.Combine(Path.GetTempPath(), "bridge-bench-" + Guid.NewGuid().ToString("N"));
try
{
    await using var durable = await EmulatorHost.StartAsync(o => o.Data = data);
    var queue = await durable.CreateQueueAsync();
    await durable.Client.PauseQueueAsync(queue);
    durableRate = await CreateTasksAsync(durable.Client, queue, Math.Min(count, 2000));
}
finally
{
    Directory.Delete(data, recursive: true);
}

Report($"CreateTask, durable (SQLite): {durableRate:F0}/s, ratio durable/in-memory {durableRate / csharpRate:F2}");

// 3. Dispatch throughput across 20 queues against plain HttpClient calls (DispatchBench says what makes it fair),
// and 4. schedule lateness against a plain timer; in memory and durable.
foreach (var durableDispatch in new[] { false, true })
{
    await DispatchBench.RunAsync(target, count, durableDispatch, Report);
    await DispatchBench.LatenessAsync(target, durableDispatch, Report);
}

// 5. Memory per stored task (1 KiB body), against the task's own serialized size.
await using (var host = await EmulatorHost.StartAsync())
{
    var queue = await host.CreateQueueAsync();
    await host.Client.PauseQueueAsync(queue);
    const int n = 10_000;
    var task = new TaskMessage { HttpRequest = new HttpRequest { Url = target.Url("/memory").ToString(), Body = ByteString.CopyFrom(new byte[1024]), Headers = { ["Content-Type"] = "application/json" } } };
    var managedBefore = GC.GetTotalMemory(forceFullCollection: true);
    await Parallel.ForEachAsync(Enumerable.Range(0, n), new ParallelOptions { MaxDegreeOfParallelism = Concurrency }, async (_, ct) => await host.Client.CreateTaskAsync(queue, task, ct));
    var managedAfter = GC.GetTotalMemory(forceFullCollection: true);
    var perTask = (managedAfter - managedBefore) / (double)n;
    var payload = task.CalculateSize() + 100; // plus the generated name
    Report($"Memory: {perTask:F0} bytes per stored task ({n} tasks, 1 KiB body); serialized task {payload} bytes; ratio {perTask / payload:F2}");
}

Console.WriteLine();
Console.WriteLine(JsonSerializer.Serialize(report));
return;

static async Task<double> CreateTasksAsync(CloudTasksClient client, QueueName queue, int n)
{
    var task = new TaskMessage { HttpRequest = new HttpRequest { Url = "http://127.0.0.1:9/unused", Body = ByteString.CopyFromUtf8("{\"bench\":true}") } };
    for (var i = 0; i < 50; i++)
    {
        await client.CreateTaskAsync(queue, task);
    }

    var clock = Stopwatch.StartNew();
    await Parallel.ForEachAsync(Enumerable.Range(0, n), new ParallelOptions { MaxDegreeOfParallelism = Concurrency }, async (_, ct) => await client.CreateTaskAsync(queue, task, ct));
    return n / clock.Elapsed.TotalSeconds;
}

static async Task<double> NodeCreateTasksAsync(string emulatorHost, QueueName queue, int n)
{
    var script = Path.Combine(RepositoryPaths.Root, "bench", "node", "create-tasks.mjs");
    var start = new ProcessStartInfo("node") { ArgumentList = { script }, RedirectStandardOutput = true, RedirectStandardError = true };
    start.Environment["EMULATOR_HOST"] = emulatorHost;
    start.Environment["QUEUE"] = queue.ToString();
    start.Environment["COUNT"] = n.ToString(CultureInfo.InvariantCulture);
    start.Environment["CONCURRENCY"] = Concurrency.ToString(CultureInfo.InvariantCulture);
    start.Environment["METADATA_SERVER_DETECTION"] = "none";
    using var node = Process.Start(start)!;
    var output = await node.StandardOutput.ReadToEndAsync();
    var errors = await node.StandardError.ReadToEndAsync();
    await node.WaitForExitAsync();
    if (node.ExitCode != 0)
    {
        throw new InvalidOperationException($"The Node.js benchmark failed ({node.ExitCode}): {errors}");
    }

    using var result = JsonDocument.Parse(output.Trim().Split('\n')[^1]);
    return result.RootElement.GetProperty("count").GetInt32() / result.RootElement.GetProperty("seconds").GetDouble();
}
