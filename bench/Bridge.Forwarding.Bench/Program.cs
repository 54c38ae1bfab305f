using System.Globalization;
using System.Text;
using Bridge.Bench;
using Bridge.CloudTasks;
using Bridge.CloudTasks.V2Beta3;
using Bridge.Core;
using Bridge.Core.Forwarding;
using Bridge.Core.Internal;
using Bridge.Testing;
using Google.Protobuf;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using HttpMethod = Bridge.CloudTasks.V2Beta3.HttpMethod;
using TaskMessage = Bridge.CloudTasks.V2Beta3.Task;

// How much the forwarding pipeline (intake mapping, route, name, schedule, headers, span, CreateTask) costs over a
// raw CreateTask of the same named task with the same client and concurrency, against the same emulator, in this run,
// with the OpenTelemetry SDK listening as in production (both sides: the client's spans are on the raw side too).
// Usage: dotnet run -c Release --project bench/Bridge.Forwarding.Bench [events] [--no-telemetry] [--only=raw|pipeline]
var count = args.Length > 0 && !args[0].StartsWith("--", StringComparison.Ordinal) ? int.Parse(args[0], CultureInfo.InvariantCulture) : 4000;
// For a profiler: run one side only (--only=raw or --only=pipeline); the other side then measures nothing.
var only = args.FirstOrDefault(a => a.StartsWith("--only=", StringComparison.Ordinal))?["--only=".Length..];
const int Concurrency = 16;
const int Rounds = 7;

using var telemetry = ProductionTelemetry.FromArgs(args);

await using var emulator = await EmulatorHost.StartAsync();
var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
{
    ["Bridge:CloudTasks:EmulatorHost"] = emulator.GrpcHostPort,
    ["Bridge:CloudTasks:EmulatorDetection"] = "None",
    ["Bridge:Routes:bench:Queue"] = "projects/bench/locations/l/queues/placeholder",
    ["Bridge:Routes:bench:TargetUrl"] = "https://worker.example.com/bench",
    ["Bridge:Routes:bench:ServiceAccountEmail"] = "invoker@bench.iam.gserviceaccount.com",
    ["Bridge:Routes:bench:ServiceBusEntity"] = "bench-in",
}).Build();

var body = Encoding.UTF8.GetBytes("{\"order\":12345,\"items\":[1,2,3],\"note\":\"benchmark payload\"}");
var instanceStamp = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(12));
var dueStamp = TimeProvider.System.GetUtcNow().ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
var raw = new List<Throughput>();
var pipeline = new List<Throughput>();
for (var round = 0; round < Rounds; round++)
{
    // Fresh paused queues each round, so both sides insert into equally empty queues.
    var rawQueue = await emulator.CreateQueueAsync();
    await emulator.Client.PauseQueueAsync(rawQueue);
    var routeQueue = await emulator.CreateQueueAsync();
    await emulator.Client.PauseQueueAsync(routeQueue);
    var settings = new ConfigurationBuilder().AddConfiguration(configuration).AddInMemoryCollection(new Dictionary<string, string?> { ["Bridge:Routes:bench:Queue"] = routeQueue.ToString() }).Build();
    await using var services = new ServiceCollection().AddLogging().AddBridgeCore(settings).BuildServiceProvider();
    var client = services.GetRequiredService<CloudTasksClient>();
    var forwarder = services.GetRequiredService<IEventForwarder>();
    var intake = services.GetRequiredService<ServiceBusIntake>();
    var retry = new CallSettings { Retry = RetrySettings.IdempotentDefault };

    // Warm both paths at the measured concurrency. The first round goes on until tiered compilation is quiet (two
    // warm-ups in a row compiling at most 2 methods, up to 40): a fixed count left both sides' rounds rising 2x from
    // the first measured round to the last, so the ratio depended on how far compilation had got.
    var warmups = 0;
    for (var quiet = 0; round == 0 ? quiet < 2 && warmups < 40 : warmups < 1; warmups++)
    {
        var compiledBefore = System.Runtime.JitInfo.GetCompiledMethodCount();
        var warm = round == 0 ? count : 100;
        await Parallel.ForEachAsync(Enumerable.Range(0, warm), new ParallelOptions { MaxDegreeOfParallelism = Concurrency }, async (i, ct) =>
        {
            await client.CreateTaskAsync(new CreateTaskRequest { Parent = rawQueue.ToString(), Task = RawTask(rawQueue, $"warm{warmups}-{i}") }, retry, ct);
            await forwarder.ForwardAsync(intake.Map(Message($"warm{warmups}-{i}"), "bench-in"), ct);
        });
        quiet = System.Runtime.JitInfo.GetCompiledMethodCount() - compiledBefore <= 2 ? quiet + 1 : 0;
    }

    if (round == 0)
    {
        Console.WriteLine($"(warm-up: {warmups} rounds of {count} events at {Concurrency} in flight before compilation was quiet{(warmups >= 40 ? "; NOT SETTLED after 40" : "")})");
    }

    // Alternate which side goes first, so neither always runs on the warmer (or busier) half of the round.
    if (round % 2 == 0)
    {
        raw.Add(await Raw());
        pipeline.Add(await Pipeline());
    }
    else
    {
        pipeline.Add(await Pipeline());
        raw.Add(await Raw());
    }

    Task<Throughput> Raw() => only == "pipeline" ? System.Threading.Tasks.Task.FromResult(new Throughput(1, 1)) : Throughput.MeasureAsync(count, () => Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = Concurrency }, async (i, ct) =>
        await client.CreateTaskAsync(new CreateTaskRequest { Parent = rawQueue.ToString(), Task = RawTask(rawQueue, $"r{round}-{i}") }, retry, ct)));

    Task<Throughput> Pipeline() => only == "raw" ? System.Threading.Tasks.Task.FromResult(new Throughput(1, 1)) : Throughput.MeasureAsync(count, () => Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = Concurrency }, async (i, ct) =>
        await forwarder.ForwardAsync(intake.Map(Message($"r{round}-{i}"), "bench-in"), ct)));
}

var (wallRatio, cpuRatio) = Throughput.MedianRatios(raw, pipeline);
Console.WriteLine($"Raw CreateTask (named task, same client, {Concurrency} concurrent): {Throughput.MedianWall(raw):F0}/s (rounds: {Throughput.Rounds(raw)})");
Console.WriteLine($"Forwarding pipeline (Service Bus intake → forwarder → CreateTask): {Throughput.MedianWall(pipeline):F0}/s (rounds: {Throughput.Rounds(pipeline)})");
Console.WriteLine($"Ratio pipeline/raw, median of {Rounds} per-round ratios, order alternating: {wallRatio:F3} by the wall clock, {cpuRatio:F3} by process CPU time (goal: at least 0.90)");
Console.WriteLine($"Allocated per event (whole process, emulator included), median: raw {Throughput.MedianBytes(raw):F0} B, pipeline {Throughput.MedianBytes(pipeline):F0} B");
Console.WriteLine(telemetry.Summary());
return;

TaskMessage RawTask(QueueName queue, string id) => new()
{
    Name = queue.Task(TaskNaming.TaskId("bench", new EventIdentity(EventIdentity.ServiceBusMessageId, id))).ToString(),
    HttpRequest = new HttpRequest
    {
        Url = "https://worker.example.com/bench",
        HttpMethod = HttpMethod.Post,
        Body = ByteString.CopyFrom(body),
        // The same headers the pipeline sets, so both sides send the same task and only the pipeline's work differs.
        Headers =
        {
            ["Content-Type"] = "application/json",
            ["X-Bridge-Route"] = "bench",
            ["X-Bridge-Correlation-Id"] = id,
            ["X-Bridge-Event-Identity"] = EventIdentity.ServiceBusMessageId,
            // The pipeline stamps each task with a random instance and its due time; same sizes here, computed once.
            ["X-Bridge-Task-Instance"] = instanceStamp,
            ["X-Bridge-Task-Due"] = dueStamp,
            ["traceparent"] = $"00-{System.Diagnostics.ActivityTraceId.CreateRandom()}-{System.Diagnostics.ActivitySpanId.CreateRandom()}-00",
        },
        OidcToken = new OidcToken { ServiceAccountEmail = "invoker@bench.iam.gserviceaccount.com", Audience = "https://worker.example.com/bench" },
    },
};

ServiceBusMessageData Message(string id) => new() { MessageId = id, Body = body, ContentType = "application/json", CorrelationId = id };

