using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Threading.Channels;
using Azure.Messaging.ServiceBus;
using Bridge.Bench;
using Bridge.CloudTasks;
using Bridge.Core.Routing;
using Microsoft.Extensions.DependencyInjection;
using static Bridge.Bench.ServiceBusBench;

// (a) The runner's Service Bus intake (ServiceBusProcessor → forwarder → CreateTask on the embedded Cloud Tasks
//     emulator) against its HTTP intake (POST /api/events → forwarder → CreateTask), same runner, same route, same
//     concurrency, rounds alternating. The runner is built as `dotnet run` builds it, so its OpenTelemetry tracer and
//     meter listen as in production. The Cloud Tasks queue is paused, so only intake and CreateTask are measured.
// (b) The Service Bus emulator's own send → receive → complete with the .NET SDK against the same message count and
//     batch sizes through an in-process System.Threading.Channels channel.
// Usage: dotnet run -c Release --project bench/Bridge.ServiceBusIntake.Bench [events] [prefetch]
var count = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 2000;
const int Concurrency = 16;
var prefetch = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 0;
const int Rounds = 5;
const int Batch = SendBatch;
const string Intake = "bench-in";
const string Raw = "bench-raw";

await using var serviceBus = StartEmulator(Intake, Raw);

var app = BuildRunner(
    serviceBus,
    Intake,
    "--Bridge:Server:EmbeddedEmulator=true",
    $"--Bridge:Routes:demo:ServiceBusEntity={Intake}",
    $"--Bridge:ServiceBus:MaxConcurrentCalls={Concurrency}",
    $"--Bridge:ServiceBus:PrefetchCount={prefetch}");
await app.StartAsync();
var (port, _) = Ports(app);
var queue = app.Services.GetRequiredService<RouteTable>().All.Single(r => r.Name == "demo").Queue;
await app.Services.GetRequiredService<CloudTasksClient>().PauseQueueAsync(queue);

// The runner's forwarded events (the meter production exports), to see when the Service Bus side is done.
using var forwarded = new ForwardedCounter();

var body = Encoding.UTF8.GetBytes("{\"order\":12345,\"items\":[1,2,3],\"note\":\"benchmark payload\"}");
using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
await using var client = new ServiceBusClient(serviceBus.ConnectionString);
await using var intakeSender = client.CreateSender(Intake);
await using var rawSender = client.CreateSender(Raw);
await using var rawReceiver = client.CreateReceiver(Raw);

var httpRates = new List<double>();
var serviceBusRates = new List<double>();
var channelRates = new List<double>();
var emulatorRates = new List<double>();
for (var round = 0; round < Rounds; round++)
{
    var n = round == 0 ? 500 : count;
    var firstHttp = round % 2 == 0;
    for (var side = 0; side < 2; side++)
    {
        if ((side == 0) == firstHttp)
        {
            httpRates.Add(await HttpIntakeAsync(round, n));
        }
        else
        {
            serviceBusRates.Add(await ServiceBusIntakeAsync(round, n));
        }
    }

    for (var side = 0; side < 2; side++)
    {
        if ((side == 0) == firstHttp)
        {
            channelRates.Add(await ChannelAsync(n));
        }
        else
        {
            emulatorRates.Add(await EmulatorAsync(round, n));
        }
    }
}

await EnsureNothingDeadLetteredAsync(client, Intake);

// Round 0 warmed both paths (and let tiered JIT settle); it is not counted.
foreach (var rates in new[] { httpRates, serviceBusRates, channelRates, emulatorRates })
{
    rates.RemoveAt(0);
}

var counted = Rounds - 1;
Console.WriteLine($"Machine: {Environment.ProcessorCount} cores, load average {LoadAverage()}; {count} events per round, {counted} counted rounds (after one warm-up), order alternating.");
Report($"(a) HTTP intake (POST /api/events, {Concurrency} concurrent) → forwarder → CreateTask", httpRates);
Report($"(a) Service Bus intake (batched receive loops, MaxConcurrentCalls {Concurrency}, prefetch {prefetch}) → forwarder → CreateTask", serviceBusRates);
Console.WriteLine($"(a) Ratio Service Bus/HTTP (median of per-round ratios): {Ratio(serviceBusRates, httpRates):F3} (goal: at least 0.8)");
Report($"(b) Channel baseline (send in batches of {Batch}, read in batches of {Batch}, complete each)", channelRates);
Report($"(b) Service Bus emulator with the .NET SDK (send batches of {Batch}, receive up to {Batch}, complete each)", emulatorRates);
Console.WriteLine($"(b) Ratio emulator/channel (median of per-round ratios): {Ratio(emulatorRates, channelRates):F5}");
await app.StopAsync();
await app.DisposeAsync();
return;

async Task<double> HttpIntakeAsync(int round, int n)
{
    var clock = Stopwatch.StartNew();
    await Parallel.ForEachAsync(Enumerable.Range(0, n), new ParallelOptions { MaxDegreeOfParallelism = Concurrency }, async (i, ct) =>
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/events/demo") { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new("application/json");
        request.Headers.Add("Idempotency-Key", $"h{round}-{i}");
        using var response = await http.SendAsync(request, ct);
        if (response.StatusCode != HttpStatusCode.Accepted)
        {
            throw new InvalidOperationException($"HTTP intake answered {(int)response.StatusCode}.");
        }
    });
    return n / clock.Elapsed.TotalSeconds;
}

// From the first send until the runner has forwarded every message (its CreateTask returned; the completion follows).
async Task<double> ServiceBusIntakeAsync(int round, int n)
{
    var target = forwarded.Total + n;
    var clock = Stopwatch.StartNew();
    await SendAsync(intakeSender, $"s{round}", body, n);
    await WaitForAsync(() => forwarded.Total, target, $"s{round}");

    return n / clock.Elapsed.TotalSeconds;
}

async Task<double> EmulatorAsync(int round, int n)
{
    var clock = Stopwatch.StartNew();
    var sending = SendAsync(rawSender, $"e{round}", body, n);
    var done = 0;
    while (done < n)
    {
        if (clock.Elapsed > TimeSpan.FromMinutes(5))
        {
            throw new TimeoutException($"e{round}: received {done} of {n} messages after five minutes.");
        }

        var received = await rawReceiver.ReceiveMessagesAsync(Batch, TimeSpan.FromSeconds(5));
        await Task.WhenAll(received.Select(m => rawReceiver.CompleteMessageAsync(m)));
        done += received.Count;
    }

    await sending;
    return n / clock.Elapsed.TotalSeconds;
}

async Task<double> ChannelAsync(int n)
{
    var channel = Channel.CreateUnbounded<ServiceBusMessage>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    var inFlight = new Dictionary<Guid, ServiceBusMessage>();
    var clock = Stopwatch.StartNew();
    var sending = Task.Run(async () =>
    {
        for (var i = 0; i < n; i++)
        {
            // The same message objects the SDK side builds, handed over in batches of the same size.
            await channel.Writer.WriteAsync(new ServiceBusMessage(body) { MessageId = $"c-{i}", ContentType = "application/json" });
        }

        channel.Writer.Complete();
    });
    var done = 0;
    var batch = new List<ServiceBusMessage>(Batch);
    while (await channel.Reader.WaitToReadAsync())
    {
        while (batch.Count < Batch && channel.Reader.TryRead(out var message))
        {
            batch.Add(message);
        }

        foreach (var message in batch)
        {
            var lockToken = Guid.NewGuid(); // lock, then complete: remove it again
            inFlight[lockToken] = message;
            inFlight.Remove(lockToken);
        }

        done += batch.Count;
        batch.Clear();
    }

    await sending;
    return done == n ? n / clock.Elapsed.TotalSeconds : throw new InvalidOperationException("The channel lost messages.");
}

static void Report(string what, List<double> rates) =>
    Console.WriteLine($"{what}: {Median(rates):F0}/s (rounds: {string.Join(", ", rates.Select(r => r.ToString("F0", CultureInfo.InvariantCulture)))})");

static double Ratio(List<double> side, List<double> baseline) => Median(side.Zip(baseline, (s, b) => s / b).ToList());
