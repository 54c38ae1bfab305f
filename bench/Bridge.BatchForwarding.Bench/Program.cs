using System.Diagnostics;
using System.Globalization;
using System.Text;
using Azure.Messaging.ServiceBus;
using Bridge.Bench;
using Bridge.CloudTasks;
using Bridge.Core.Routing;
using Bridge.Server;
using Microsoft.Extensions.DependencyInjection;
using static Bridge.Bench.ServiceBusBench;
using Queue = Bridge.CloudTasks.V2Beta3.Queue;

// Service Bus messages per second through the runner, two runners side by side in one process, on one Service Bus
// emulator and one Cloud Tasks emulator (the batched runner's embedded one):
//   batched: receive loops taking up to 100 messages, one BatchCreateTasks per queue chunk, each message settled;
//   single:  the same runner with Bridge:ServiceBus:MaxBatchSize=1, so one CreateTask per message, 16 receive loops.
// Both name tasks from MessageIds (same deduplication) and settle each message on its own result. The runners are built
// as `dotnet run` builds them, so their OpenTelemetry tracer and meter listen as in production. Messages are sent with
// the .NET SDK in batches of 100; a round ends when the runner has forwarded every message. Rounds alternate which side
// goes first; round 0 is a warm-up. CPU per event is this process's CPU time (runners, emulators and sender alike).
// Usage: dotnet run -c Release --project bench/Bridge.BatchForwarding.Bench [messages] [batch loops] [single loops]
// HTTP coalescing (HttpCoalescingBench): dotnet run -c Release --project bench/Bridge.BatchForwarding.Bench -- http [requests] [window ms]
if (args.Length > 0 && args[0] == "http")
{
    await HttpCoalescingBench.RunAsync(
        args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 3000,
        TimeSpan.FromMilliseconds(args.Length > 2 ? double.Parse(args[2], CultureInfo.InvariantCulture) : 2));
    return;
}

var count = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 4000;
var batchLoops = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : ServiceBusIntakeService.DefaultConcurrentBatches;
var singleLoops = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 16;
const int Rounds = 5;
const string BatchIn = "batch-in";
const string SingleIn = "single-in";
const string Caller = "invoker@bench.iam.gserviceaccount.com";

await using var serviceBus = StartEmulator(BatchIn, SingleIn);

var batched = BuildRunner(
    serviceBus,
    BatchIn,
    "--Bridge:Server:EmbeddedEmulator=true",
    $"--Bridge:Routes:demo:ServiceBusEntity={BatchIn}",
    $"--Bridge:ServiceBus:MaxConcurrentCalls={batchLoops}");
await batched.StartAsync();
var client = batched.Services.GetRequiredService<CloudTasksClient>();
var batchQueue = batched.Services.GetRequiredService<RouteTable>().All.Single(r => r.Name == "demo").Queue;
var singleQueue = batchQueue.Location.Queue("single");
await client.CreateQueueAsync(batchQueue.Location, new Queue { Name = singleQueue.ToString() });
await client.PauseQueueAsync(batchQueue); // only intake, forwarding and settlement are measured
await client.PauseQueueAsync(singleQueue);

var single = BuildRunner(
    serviceBus,
    SingleIn,
    "--Bridge:Server:EmbeddedEmulator=false",
    $"--Bridge:CloudTasks:EmulatorHost=127.0.0.1:{Ports(batched).EmulatorGrpc}",
    $"--Bridge:Routes:single:Queue={singleQueue}",
    "--Bridge:Routes:single:TargetUrl=https://worker.example.com/bench",
    $"--Bridge:Routes:single:ServiceAccountEmail={Caller}",
    $"--Bridge:Routes:single:ServiceBusEntity={SingleIn}",
    "--Bridge:Callback:PublicUrl=https://bridge.example.com/api/tasks/callback",
    $"--Bridge:Callback:AllowedServiceAccounts:0={Caller}",
    "--Bridge:ServiceBus:MaxBatchSize=1",
    $"--Bridge:ServiceBus:MaxConcurrentCalls={singleLoops}");
await single.StartAsync();

// Each runner's forwarded events by route (the meter production exports), to see when a side is done.
using var counter = new ForwardedCounter();

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
            var (rate, cpu) = await RunAsync(batchSender, () => counter.ForRoute("demo"), $"b{round}", n);
            batchRates.Add(rate);
            batchCpu.Add(cpu);
        }
        else
        {
            var (rate, cpu) = await RunAsync(singleSender, () => counter.ForRoute("single"), $"s{round}", n);
            singleRates.Add(rate);
            singleCpu.Add(cpu);
        }
    }
}

await EnsureNothingDeadLetteredAsync(sbClient, BatchIn, SingleIn);

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
    await SendAsync(sender, prefix, body, n);
    await WaitForAsync(forwarded, target, prefix);
    var elapsed = clock.Elapsed;
    return (n / elapsed.TotalSeconds, (Cpu() - cpu).TotalMilliseconds / n);
}

TimeSpan Cpu()
{
    process.Refresh();
    return process.TotalProcessorTime;
}

static string Rates(IEnumerable<double> rates) => string.Join(", ", rates.Select(r => r.ToString("F0", CultureInfo.InvariantCulture)));
