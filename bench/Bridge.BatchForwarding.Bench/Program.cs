using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Azure.Messaging.ServiceBus;
using Bridge.CloudTasks;
using Queue = Bridge.CloudTasks.V2Beta3.Queue;
using Bridge.Core.Routing;
using Bridge.Emulators.ServiceBus;
using Bridge.Server;
using Microsoft.Extensions.DependencyInjection;

// Service Bus messages per second through the runner, two runners side by side in one process, on one Service Bus
// emulator and one Cloud Tasks emulator (the batched runner's embedded one):
//   batched: receive loops taking up to 100 messages, one BatchCreateTasks per queue chunk, each message settled;
//   single:  the same runner with Bridge:ServiceBus:MaxBatchSize=1, so one CreateTask per message, 16 receive loops.
// Both name tasks from MessageIds (same deduplication) and settle each message on its own result. The runners are built
// as `dotnet run` builds them, so their OpenTelemetry tracer and meter listen as in production. Messages are sent with
// the .NET SDK in batches of 100; a round ends when the runner has forwarded every message. Rounds alternate which side
// goes first; round 0 is a warm-up. CPU per event is this process's CPU time (runners, emulators and sender alike).
// Usage: dotnet run -c Release --project bench/Bridge.BatchForwarding.Bench [messages] [batch loops] [single loops]
var count = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 4000;
var batchLoops = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : ServiceBusIntakeService.DefaultConcurrentBatches;
var singleLoops = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 16;
const int Rounds = 5;
const int SendBatch = 100;
const string BatchIn = "batch-in";
const string SingleIn = "single-in";
const string Caller = "invoker@bench.iam.gserviceaccount.com";

var serviceBusOptions = new ServiceBusEmulatorOptions { Port = 0 };
serviceBusOptions.Queues.Add(new QueueDefinition { Name = BatchIn });
serviceBusOptions.Queues.Add(new QueueDefinition { Name = SingleIn });
await using var serviceBus = ServiceBusEmulator.Start(serviceBusOptions);

var grpcPort = FreePort();
var batched = BridgeServerApp.Build(
[
    $"--Bridge:Server:Port={FreePort()}",
    $"--Bridge:Server:EmulatorGrpcPort={grpcPort}",
    "--environment=Production",
    "--Logging:LogLevel:Default=Warning",
    "--Bridge:Server:EmbeddedEmulator=true",
    $"--BridgeServiceBus={serviceBus.ConnectionString}",
    $"--BridgeServiceBusQueue={BatchIn}",
    $"--Bridge:Routes:demo:ServiceBusEntity={BatchIn}",
    $"--Bridge:ServiceBus:MaxConcurrentCalls={batchLoops}",
]);
await batched.StartAsync();
var client = batched.Services.GetRequiredService<CloudTasksClient>();
var batchQueue = batched.Services.GetRequiredService<RouteTable>().All.Single(r => r.Name == "demo").Queue;
var singleQueue = batchQueue.Location.Queue("single");
await client.CreateQueueAsync(batchQueue.Location, new Queue { Name = singleQueue.ToString() });
await client.PauseQueueAsync(batchQueue); // only intake, forwarding and settlement are measured
await client.PauseQueueAsync(singleQueue);

var single = BridgeServerApp.Build(
[
    $"--Bridge:Server:Port={FreePort()}",
    $"--Bridge:Server:EmulatorGrpcPort={FreePort()}",
    "--environment=Production",
    "--Logging:LogLevel:Default=Warning",
    "--Bridge:Server:EmbeddedEmulator=false",
    $"--Bridge:CloudTasks:EmulatorHost=127.0.0.1:{grpcPort}",
    $"--BridgeServiceBus={serviceBus.ConnectionString}",
    $"--BridgeServiceBusQueue={SingleIn}",
    $"--Bridge:Routes:single:Queue={singleQueue}",
    "--Bridge:Routes:single:TargetUrl=https://worker.example.com/bench",
    $"--Bridge:Routes:single:ServiceAccountEmail={Caller}",
    $"--Bridge:Routes:single:ServiceBusEntity={SingleIn}",
    "--Bridge:Callback:PublicUrl=https://bridge.example.com/api/tasks/callback",
    $"--Bridge:Callback:AllowedServiceAccounts:0={Caller}",
    "--Bridge:ServiceBus:MaxBatchSize=1",
    $"--Bridge:ServiceBus:MaxConcurrentCalls={singleLoops}",
]);
await single.StartAsync();

// Counts each runner's forwarded events by route (the meter production exports), to see when a side is done.
long forwardedBatched = 0;
long forwardedSingle = 0;
using var meters = new MeterListener();
meters.InstrumentPublished = (instrument, listener) =>
{
    if (instrument.Meter.Name == "Bridge.Core" && instrument.Name == "bridge.events.forwarded")
    {
        listener.EnableMeasurementEvents(instrument);
    }
};
meters.SetMeasurementEventCallback<long>((_, value, tags, _) =>
{
    foreach (var tag in tags)
    {
        if (tag.Key == "bridge.route")
        {
            if ((string?)tag.Value == "demo")
            {
                Interlocked.Add(ref forwardedBatched, value);
            }
            else if ((string?)tag.Value == "single")
            {
                Interlocked.Add(ref forwardedSingle, value);
            }
        }
    }
});
meters.Start();

var body = Encoding.UTF8.GetBytes("{\"order\":12345,\"items\":[1,2,3],\"note\":\"benchmark payload\"}");
await using var sbClient = new ServiceBusClient(serviceBus.ConnectionString);
await using var batchSender = sbClient.CreateSender(BatchIn);
await using var singleSender = sbClient.CreateSender(SingleIn);
var process = Process.GetCurrentProcess();

var batchRates = new List<double>();
var singleRates = new List<double>();
var batchCpu = new List<double>(); // CPU milliseconds per event
var singleCpu = new List<double>();
for (var round = 0; round < Rounds; round++)
{
    var n = round == 0 ? 1000 : count;
    var batchFirst = round % 2 == 1;
    for (var side = 0; side < 2; side++)
    {
        if ((side == 0) == batchFirst)
        {
            var (rate, cpu) = await RunAsync(batchSender, () => Interlocked.Read(ref forwardedBatched), $"b{round}", n);
            batchRates.Add(rate);
            batchCpu.Add(cpu);
        }
        else
        {
            var (rate, cpu) = await RunAsync(singleSender, () => Interlocked.Read(ref forwardedSingle), $"s{round}", n);
            singleRates.Add(rate);
            singleCpu.Add(cpu);
        }
    }
}

foreach (var (entity, runner) in new[] { (BatchIn, batched), (SingleIn, single) })
{
    await using var deadLetters = sbClient.CreateReceiver(entity, new ServiceBusReceiverOptions { SubQueue = SubQueue.DeadLetter });
    if ((await deadLetters.PeekMessagesAsync(1, 0)).Count > 0)
    {
        throw new InvalidOperationException($"The runner dead-lettered benchmark messages from {entity}; the figures are not comparable.");
    }
}

foreach (var list in new[] { batchRates, singleRates, batchCpu, singleCpu })
{
    list.RemoveAt(0); // the warm-up round
}

var counted = Rounds - 1;
Console.WriteLine($"Machine: {Environment.ProcessorCount} cores, load average {LoadAverage()}; {count} messages per round and side, {counted} counted rounds (after one warm-up), order alternating.");
Console.WriteLine($"Batched runner (up to 100 per receive, {batchLoops} loops, BatchCreateTasks): median {Median(batchRates):F0}/s (rounds: {Rates(batchRates)}); CPU {Median(batchCpu):F3} ms/event");
Console.WriteLine($"Single runner (MaxBatchSize=1, {singleLoops} loops, CreateTask): median {Median(singleRates):F0}/s (rounds: {Rates(singleRates)}); CPU {Median(singleCpu):F3} ms/event");
Console.WriteLine($"Ratio batched/single (median of per-round ratios): {Median(batchRates.Zip(singleRates, (b, s) => b / s).ToList()):F2}x (goal: at least 3x)");
Console.WriteLine($"CPU per event single/batched (median of per-round ratios): {Median(singleCpu.Zip(batchCpu, (s, b) => s / b).ToList()):F2}x");
await single.StopAsync();
await batched.StopAsync();
await single.DisposeAsync();
await batched.DisposeAsync();
return;

// From the first send until the runner has forwarded every message (its task exists; settlement follows).
async Task<(double Rate, double CpuMsPerEvent)> RunAsync(ServiceBusSender sender, Func<long> forwarded, string prefix, int n)
{
    var target = forwarded() + n;
    var cpu = Cpu();
    var clock = Stopwatch.StartNew();
    for (var i = 0; i < n; i += SendBatch)
    {
        await sender.SendMessagesAsync(Enumerable.Range(i, Math.Min(SendBatch, n - i))
            .Select(j => new ServiceBusMessage(body) { MessageId = $"{prefix}-{j}", ContentType = "application/json" }));
    }

    var deadline = Stopwatch.StartNew();
    while (forwarded() < target)
    {
        if (deadline.Elapsed > TimeSpan.FromMinutes(5))
        {
            throw new TimeoutException($"{prefix}: {forwarded() - (target - n)} of {n} forwarded after five minutes.");
        }

        await Task.Delay(1);
    }

    var elapsed = clock.Elapsed;
    return (n / elapsed.TotalSeconds, (Cpu() - cpu).TotalMilliseconds / n);
}

TimeSpan Cpu()
{
    process.Refresh();
    return process.TotalProcessorTime;
}

static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);

static string Rates(IEnumerable<double> rates) => string.Join(", ", rates.Select(r => r.ToString("F0", CultureInfo.InvariantCulture)));

static int FreePort()
{
    using var listener = new TcpListener(IPAddress.Loopback, 0);
    listener.Start();
    return ((IPEndPoint)listener.LocalEndpoint).Port;
}

static string LoadAverage() =>
    File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "unknown";
