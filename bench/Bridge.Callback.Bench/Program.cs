using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Bridge.Bench;
using Bridge.Core.Callback;
using Bridge.Core.Internal;
using Bridge.Core.Routing;
using Bridge.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

// Verified callbacks per second: the whole receiver (token checks, outcome event, sink hand-off) in-process, against
// the bare floor of one RS256 signature verification of the same token, both measured here, with the OpenTelemetry
// SDK listening as in production (the receiver's span and metrics are recorded and exported); then over HTTP.
// Usage: dotnet run -c Release --project bench/Bridge.Callback.Bench [count] [--no-telemetry] [--receiver-only SECONDS]
// --receiver-only runs the whole receiver alone in a loop for that long and exits: a profile (perf, dotnet-trace) of
// that process shows only what a callback costs.
var count = args.Length > 0 && args[0].StartsWith("--", StringComparison.Ordinal) ? 20_000 : args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 20_000;
var receiverOnly = Array.IndexOf(args, "--receiver-only") is var at and >= 0 ? TimeSpan.FromSeconds(double.Parse(args[at + 1], CultureInfo.InvariantCulture)) : (TimeSpan?)null;
using var telemetry = ProductionTelemetry.FromArgs(args);
const string Audience = "https://bridge.example.com/api/tasks/callback";
const string Caller = "invoker@p.iam.gserviceaccount.com";

await using var issuer = await TestTokenIssuer.StartAsync();
var options = Options.Create(new CallbackOptions
{
    Issuers = [new TrustedIssuer { Issuer = issuer.Issuer, DiscoveryUrl = issuer.DiscoveryUrl }],
    Audiences = [Audience],
    AllowedServiceAccounts = [Caller],
});
// The route whose tasks are signed as the caller and target this callback: a dispatch for its queue is authorized.
var bridge = new BridgeOptions();
bridge.Routes["orders"] = new RouteOptions { Queue = "projects/p/locations/l/queues/orders", TargetUrl = Audience, ServiceAccountEmail = Caller };
var receiver = new CallbackReceiver(new OidcTokenVerifier(options, TimeProvider.System), new NullSink(), options, TimeProvider.System, NullLogger<CallbackReceiver>.Instance, new RouteTable(bridge));
var token = issuer.Mint(TestTokenIssuer.Claims(issuer.Issuer, Audience, Caller));
var request = new CallbackRequest(
    new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
    {
        ["Authorization"] = "Bearer " + token,
        ["X-CloudTasks-QueueName"] = "orders",
        ["X-CloudTasks-TaskName"] = "0f1e2d3c4b5a",
        ["X-CloudTasks-TaskRetryCount"] = "0",
        ["X-CloudTasks-TaskExecutionCount"] = "0",
        ["X-CloudTasks-TaskETA"] = "1795000000.123456",
    },
    Encoding.UTF8.GetBytes("{\"order\":7}"),
    "application/json");

// The floor: verifying the token's RS256 signature and nothing else.
var parts = token.Split('.');
var signed = Encoding.ASCII.GetBytes(parts[0] + "." + parts[1]);
var signature = Convert.FromBase64String(parts[2].Replace('-', '+').Replace('_', '/').PadRight(parts[2].Length + ((4 - (parts[2].Length % 4)) % 4), '='));
using var publicKey = RSA.Create(issuer.Key(issuer.CurrentKid).ExportParameters(false));

Throughput Floor() => Throughput.Measure(count, () =>
{
    for (var i = 0; i < count; i++)
    {
        if (!publicKey.VerifyData(signed, signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1))
        {
            throw new InvalidOperationException("signature");
        }
    }
});

Task<Throughput> Receiver() => Throughput.MeasureAsync(count, async () =>
{
    for (var i = 0; i < count; i++)
    {
        if ((await receiver.HandleAsync(request)).Status != 200)
        {
            throw new InvalidOperationException("rejected");
        }
    }
});

var verifierOnly = new OidcTokenVerifier(options, TimeProvider.System);
var authorization = request.Headers["Authorization"]; // built once, as the receiver gets it from the headers
Task<Throughput> VerifierOnly() => Throughput.MeasureAsync(count, async () =>
{
    for (var i = 0; i < count; i++)
    {
        await verifierOnly.VerifyAsync(authorization);
    }
});

Throughput EventOnly() => Throughput.Measure(count, () =>
{
    for (var i = 0; i < count; i++)
    {
        _ = new TaskOutcome { Status = OutcomeStatus.Delivered, TaskName = "t", Queue = "q", ReportedBy = Caller, ReceivedAt = TimeProvider.System.GetUtcNow(), Payload = request.Body }.ToCloudEvent();
    }
});


if (receiverOnly is { } duration)
{
    var until = Stopwatch.StartNew();
    var calls = 0L;
    while (until.Elapsed < duration)
    {
        var (paused, collections) = (GC.GetTotalPauseDuration(), GC.CollectionCount(0));
        var round = await Receiver();
        calls += count;
        Console.WriteLine($"receiver alone: {1_000_000 / round.PerCpuSecond:F1} CPU µs and {round.BytesPerOperation:F0} B per call; GC paused {(GC.GetTotalPauseDuration() - paused).TotalMicroseconds / count:F2} µs per call ({GC.CollectionCount(0) - collections} gen0 collections)");
    }

    Console.WriteLine($"{calls} callbacks in {until.Elapsed.TotalSeconds:F0} s");
    return;
}

// Warm-up, then alternate rounds and take medians.
Floor();
await Receiver();
var floors = new List<Throughput>();
var receivers = new List<Throughput>();
const int Rounds = 9;
for (var round = 0; round < Rounds; round++)
{
    // Alternate which side goes first, so neither always runs on the warmer (or busier) half of the round.
    if (round % 2 == 0)
    {
        floors.Add(Floor());
        receivers.Add(await Receiver());
    }
    else
    {
        receivers.Add(await Receiver());
        floors.Add(Floor());
    }
}

var (wallRatio, cpuRatio) = Throughput.MedianRatios(floors, receivers);
Console.WriteLine($"RS256 verification alone (one thread): {Throughput.MedianWall(floors):F0}/s (rounds: {Throughput.Rounds(floors)})");
Console.WriteLine($"Verified callbacks in-process (one thread): {Throughput.MedianWall(receivers):F0}/s (rounds: {Throughput.Rounds(receivers)})");
Console.WriteLine($"Ratio callbacks/floor, median of {Rounds} per-round ratios, order alternating: {wallRatio:F2} by the wall clock, {cpuRatio:F2} by process CPU time (goal: at least 0.80)");

// Where a callback's time goes (CPU µs per call, after the rounds warmed everything): the floor, the verifier alone
// (the floor plus token parsing and checks), the whole receiver (plus outcome, span and metrics).
await VerifierOnly();
EventOnly();
static string Micros(Throughput t) => (1_000_000 / t.PerCpuSecond).ToString("F1", CultureInfo.InvariantCulture);
static string Bytes(Throughput t) => t.BytesPerOperation.ToString("F0", CultureInfo.InvariantCulture);
var (floorCpu, verifierCpu, receiverCpu, eventCpu) = (Floor(), await VerifierOnly(), await Receiver(), EventOnly());
Console.WriteLine($"(diagnostic) CPU µs per call: RS256 alone {Micros(floorCpu)}, verifier alone {Micros(verifierCpu)}, receiver {Micros(receiverCpu)}, outcome CloudEvent alone {Micros(eventCpu)}");
Console.WriteLine($"(diagnostic) bytes allocated per call: RS256 alone {Bytes(floorCpu)}, verifier alone {Bytes(verifierCpu)}, receiver {Bytes(receiverCpu)}, outcome CloudEvent alone {Bytes(eventCpu)}");
Console.WriteLine(telemetry.Summary());

// Over HTTP on this machine: Kestrel on loopback, 16 concurrent clients.
var builder = WebApplication.CreateSlimBuilder(["--hostBuilder:reloadConfigOnChange=false"]); // settings read once: no inotify watch of the working directory and all below it
builder.Logging.ClearProviders();
builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
var app = builder.Build();
app.MapPost("/api/tasks/callback", async (HttpContext context) =>
{
    using var body = new MemoryStream();
    await context.Request.Body.CopyToAsync(body);
    var headers = context.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase);
    var response = await receiver.HandleAsync(new CallbackRequest(headers, body.ToArray(), context.Request.ContentType), context.RequestAborted);
    context.Response.StatusCode = response.Status;
});
await app.StartAsync();
var url = app.Urls.Single() + "/api/tasks/callback";
using var http = new HttpClient();
async Task<double> OverHttp(int n)
{
    var clock = Stopwatch.StartNew();
    await Parallel.ForEachAsync(Enumerable.Range(0, n), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (_, ct) =>
    {
        using var message = new HttpRequestMessage(HttpMethod.Post, url) { Content = new ByteArrayContent(request.Body.ToArray()) };
        foreach (var (name, value) in request.Headers)
        {
            message.Headers.TryAddWithoutValidation(name, value);
        }

        using var response = await http.SendAsync(message, ct);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"HTTP {(int)response.StatusCode}");
        }
    });
    return n / clock.Elapsed.TotalSeconds;
}

await OverHttp(2000);
Console.WriteLine($"Verified callbacks over HTTP (loopback, 16 concurrent): {await OverHttp(count / 2):F0}/s");
await app.StopAsync();

internal sealed class NullSink : IOutcomeSink
{
    public Task PublishAsync(TaskOutcome outcome, CancellationToken cancellationToken) => Task.CompletedTask;
}
