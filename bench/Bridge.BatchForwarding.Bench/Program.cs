using System.Diagnostics;
using System.Globalization;
using System.Text;
using Bridge.CloudTasks;
using Bridge.Core;
using Bridge.Core.Forwarding;
using Bridge.Core.Internal;
using Bridge.Core.Telemetry;
using Bridge.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

// Service Bus messages per second: the batch forwarder (groups of GroupSize messages, as a batched receiver hands
// them over; one BatchCreateTasks per queue chunk) against one CreateTask per message (the single forwarder), on the
// same emulator, in the same run, rounds alternating which side goes first. Both sides name tasks from message ids
// (same deduplication) and produce one result per message (same settlement). OpenTelemetry listens to both.
// Usage: dotnet run -c Release --project bench/Bridge.BatchForwarding.Bench [messages]
var count = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 4000;
const int SingleConcurrency = 16;
const int GroupSize = 100;
const int GroupConcurrency = SingleConcurrency; // the same calls in flight on both sides
const int Rounds = 5;

var spans = 0L;
using var tracing = Sdk.CreateTracerProviderBuilder()
    .AddSource(BridgeDiagnostics.SourceName, CloudTasksTelemetry.SourceName)
    .AddProcessor(new CountingProcessor(() => Interlocked.Increment(ref spans)))
    .Build();
using var metrics = Sdk.CreateMeterProviderBuilder().AddMeter(BridgeDiagnostics.SourceName, CloudTasksTelemetry.SourceName).Build();

await using var emulator = await EmulatorHost.StartAsync();
var body = Encoding.UTF8.GetBytes("{\"order\":12345,\"items\":[1,2,3],\"note\":\"benchmark payload\"}");
var single = new List<double>();
var batched = new List<double>();
var singleCpu = new List<double>(); // events per CPU-second of this process: robust when other work shares the cores
var batchedCpu = new List<double>();
var process = Process.GetCurrentProcess();
for (var round = 0; round < Rounds; round++)
{
    // Fresh paused queues each round, so both sides insert into equally empty queues.
    var singleQueue = await emulator.CreateQueueAsync();
    await emulator.Client.PauseQueueAsync(singleQueue);
    var batchQueue = await emulator.CreateQueueAsync();
    await emulator.Client.PauseQueueAsync(batchQueue);
    await using var singleSide = Services(singleQueue);
    await using var batchSide = Services(batchQueue);
    var forwarder = singleSide.GetRequiredService<IEventForwarder>();
    var singleIntake = singleSide.GetRequiredService<ServiceBusIntake>();
    var batchForwarder = batchSide.GetRequiredService<IBatchEventForwarder>();
    var batchIntake = batchSide.GetRequiredService<ServiceBusIntake>();

    // Warm both paths (the first round long enough for tiered JIT to settle).
    var warm = round == 0 ? 1500 : 100;
    for (var i = 0; i < warm; i++)
    {
        await forwarder.ForwardAsync(singleIntake.Map(Message($"warm-{i}"), "bench-in"));
    }

    foreach (var group in Enumerable.Range(0, warm).Chunk(GroupSize))
    {
        await batchForwarder.ForwardBatchAsync(group.Select(i => batchIntake.Map(Message($"warm-{i}"), "bench-in")).ToList());
    }

    async Task<double> RunSingle()
    {
        var cpu = Cpu();
        var clock = Stopwatch.StartNew();
        await Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = SingleConcurrency }, async (i, ct) =>
            await forwarder.ForwardAsync(singleIntake.Map(Message($"r{round}-{i}"), "bench-in"), ct));
        singleCpu.Add(count / (Cpu() - cpu).TotalSeconds);
        return count / clock.Elapsed.TotalSeconds;
    }

    async Task<double> RunBatched()
    {
        var cpu = Cpu();
        var clock = Stopwatch.StartNew();
        var created = 0;
        await Parallel.ForEachAsync(Enumerable.Range(0, count).Chunk(GroupSize), new ParallelOptions { MaxDegreeOfParallelism = GroupConcurrency }, async (group, ct) =>
        {
            var results = await batchForwarder.ForwardBatchAsync(group.Select(i => batchIntake.Map(Message($"r{round}-{i}"), "bench-in")).ToList(), ct);
            Interlocked.Add(ref created, results.Count(r => r.Status == BatchForwardStatus.Created));
        });
        var rate = count / clock.Elapsed.TotalSeconds;
        batchedCpu.Add(count / (Cpu() - cpu).TotalSeconds);
        return created == count ? rate : throw new InvalidOperationException($"Round {round}: {created} of {count} batched messages were created.");
    }

    if (round % 2 == 0)
    {
        single.Add(await RunSingle());
        batched.Add(await RunBatched());
    }
    else
    {
        batched.Add(await RunBatched());
        single.Add(await RunSingle());
    }
}

metrics.ForceFlush();
var singleRate = single.Order().ElementAt(Rounds / 2);
var batchRate = batched.Order().ElementAt(Rounds / 2);
var ratio = single.Zip(batched, (s, b) => b / s).Order().ElementAt(Rounds / 2); // per round: both sides back to back
Console.WriteLine($"One CreateTask per message ({SingleConcurrency} concurrent): {singleRate:F0}/s (rounds: {Rates(single)})");
Console.WriteLine($"Batch forwarding (groups of {GroupSize}, {GroupConcurrency} concurrent): {batchRate:F0}/s (rounds: {Rates(batched)})");
var cpuRatio = singleCpu.Zip(batchedCpu, (s, b) => b / s).Order().ElementAt(Rounds / 2);
Console.WriteLine($"Ratio batch/single (median of {Rounds} per-round ratios): {ratio:F2}x (goal: at least 3x); {Interlocked.Read(ref spans)} spans recorded");
Console.WriteLine($"Per CPU-second of this process (client and emulator): single {Rates(singleCpu)}; batch {Rates(batchedCpu)}; ratio {cpuRatio:F2}x");
return;

ServiceProvider Services(QueueName queue) => new ServiceCollection().AddLogging().AddBridgeCore(new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
{
    ["Bridge:CloudTasks:EmulatorHost"] = emulator.GrpcHostPort,
    ["Bridge:CloudTasks:EmulatorDetection"] = "None",
    ["Bridge:Routes:bench:Queue"] = queue.ToString(),
    ["Bridge:Routes:bench:TargetUrl"] = "https://worker.example.com/bench",
    ["Bridge:Routes:bench:ServiceAccountEmail"] = "invoker@bench.iam.gserviceaccount.com",
    ["Bridge:Routes:bench:ServiceBusEntity"] = "bench-in",
}).Build()).BuildServiceProvider();

ServiceBusMessageData Message(string id) => new() { MessageId = id, Body = body, ContentType = "application/json", CorrelationId = id };

TimeSpan Cpu()
{
    process.Refresh();
    return process.TotalProcessorTime;
}

static string Rates(IEnumerable<double> rates) => string.Join(", ", rates.Select(r => r.ToString("F0", CultureInfo.InvariantCulture)));

/// <summary>Counts finished spans: the exporter's work without its I/O.</summary>
internal sealed class CountingProcessor(Action onEnd) : BaseProcessor<Activity>
{
    public override void OnEnd(Activity data) => onEnd();
}
