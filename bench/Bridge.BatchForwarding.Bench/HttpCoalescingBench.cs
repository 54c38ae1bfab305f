using System.Diagnostics;
using System.Globalization;
using System.Net;
using Bridge.CloudTasks;
using Bridge.Core.Routing;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using static Bridge.Bench.ServiceBusBench;
using Queue = Bridge.CloudTasks.V2Beta3.Queue;

namespace Bridge.Bench;

/// <summary>
/// HTTP intake with coalescing off and on (<c>Bridge:HttpCoalescingWindow</c>), two runners side by side on one Cloud
/// Tasks emulator (the first runner's embedded one), queues paused: requests per second and each request's latency
/// (p50, p99) with 1, 16 and 64 clients, each sending its next request when the last was answered. Rounds alternate
/// which side goes first; round 0 is a warm-up.
/// </summary>
internal static class HttpCoalescingBench
{
    private const string Caller = "invoker@bench.iam.gserviceaccount.com";

    public static async Task RunAsync(int requests, TimeSpan window)
    {
        const int Rounds = 5;
        var off = BridgeServerApp("--Bridge:Server:EmbeddedEmulator=true");
        await off.StartAsync();
        var (offPort, grpcPort) = Ports(off);
        var client = off.Services.GetRequiredService<CloudTasksClient>();
        var offQueue = off.Services.GetRequiredService<RouteTable>().All.Single(r => r.Name == "demo").Queue;
        var onQueue = offQueue.Location.Queue("coalesced");
        await client.CreateQueueAsync(offQueue.Location, new Queue { Name = onQueue.ToString() });
        await client.PauseQueueAsync(offQueue);
        await client.PauseQueueAsync(onQueue);

        var on = BridgeServerApp(
            "--Bridge:Server:EmbeddedEmulator=false",
            $"--Bridge:CloudTasks:EmulatorHost=127.0.0.1:{grpcPort}",
            $"--Bridge:Routes:demo:Queue={onQueue}",
            "--Bridge:Routes:demo:TargetUrl=https://worker.example.com/bench",
            $"--Bridge:Routes:demo:ServiceAccountEmail={Caller}",
            "--Bridge:Callback:PublicUrl=https://bridge.example.com/api/tasks/callback",
            $"--Bridge:Callback:AllowedServiceAccounts:0={Caller}",
            $"--Bridge:HttpCoalescingWindow={window.ToString("c", CultureInfo.InvariantCulture)}");
        await on.StartAsync();
        var (onPort, _) = Ports(on);

        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 256 });
        var body = "{\"order\":12345,\"items\":[1,2,3],\"note\":\"benchmark payload\"}"u8.ToArray();
        Console.WriteLine($"Machine: {Environment.ProcessorCount} cores, load average {LoadAverage()}; {requests} requests per round and side, {Rounds - 1} counted rounds (after one warm-up), order alternating; window {window.TotalMilliseconds} ms.");
        foreach (var clients in new[] { 1, 16, 64 })
        {
            var n = clients == 1 ? Math.Min(requests, 500) : requests;
            var offRuns = new List<Run>();
            var onRuns = new List<Run>();
            for (var round = 0; round < Rounds; round++)
            {
                for (var side = 0; side < 2; side++)
                {
                    if ((side == 0) == (round % 2 == 0))
                    {
                        offRuns.Add(await SendAsync(http, offPort, body, $"off-{clients}-{round}", round == 0 ? n / 4 : n, clients));
                    }
                    else
                    {
                        onRuns.Add(await SendAsync(http, onPort, body, $"on-{clients}-{round}", round == 0 ? n / 4 : n, clients));
                    }
                }
            }

            offRuns.RemoveAt(0);
            onRuns.RemoveAt(0);
            Console.WriteLine($"{clients,2} clients, off: {Median(offRuns.Select(r => r.Rate)):F0}/s, p50 {Median(offRuns.Select(r => r.P50)):F2} ms, p99 {Median(offRuns.Select(r => r.P99)):F2} ms");
            Console.WriteLine($"{clients,2} clients, on:  {Median(onRuns.Select(r => r.Rate)):F0}/s, p50 {Median(onRuns.Select(r => r.P50)):F2} ms, p99 {Median(onRuns.Select(r => r.P99)):F2} ms; ratio on/off {Median(onRuns.Zip(offRuns, (a, b) => a.Rate / b.Rate)):F2}x (median of per-round ratios)");
        }

        await on.StopAsync();
        await off.StopAsync();
        await on.DisposeAsync();
        await off.DisposeAsync();
    }

    /// <summary>A runner on ports bound as 0 (read back with <see cref="ServiceBusBench.Ports"/>).</summary>
    private static WebApplication BridgeServerApp(params string[] settings) => Bridge.Server.BridgeServerApp.Build(
    [
        "--Bridge:Server:Port=0",
        "--Bridge:Server:EmulatorGrpcPort=0",
        "--environment=Production",
        "--Logging:LogLevel:Default=Warning",
        "--Bridge:Server:EmbeddedServiceBus=false",
        .. settings,
    ]);

    private static async Task<Run> SendAsync(HttpClient http, int port, byte[] body, string prefix, int n, int clients)
    {
        var latencies = new double[n];
        var next = -1;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, clients).Select(async _ =>
        {
            for (var i = Interlocked.Increment(ref next); i < n; i = Interlocked.Increment(ref next))
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, $"http://127.0.0.1:{port}/api/events/demo") { Content = new ByteArrayContent(body) };
                request.Content.Headers.ContentType = new("application/json");
                request.Headers.Add("Idempotency-Key", $"{prefix}-{i}");
                var started = Stopwatch.GetTimestamp();
                using var response = await http.SendAsync(request);
                latencies[i] = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                if (response.StatusCode != HttpStatusCode.Accepted)
                {
                    throw new InvalidOperationException($"HTTP intake answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
                }
            }
        }));
        var rate = n / clock.Elapsed.TotalSeconds;
        Array.Sort(latencies);
        return new Run(rate, latencies[n / 2], latencies[Math.Min(n - 1, (int)(n * 0.99))]);
    }

    private readonly record struct Run(double Rate, double P50, double P99);
}
