using System.Diagnostics;
using Bridge.CloudTasks;
using Bridge.CloudTasks.V2Beta3;
using Google.Protobuf;
using TaskMessage = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.Emulators.CloudTasks.Bench;

/// <summary>
/// CreateTask with the C# client at a few calls in flight (16 by default), where a group commit holds few calls and
/// per-commit latency decides the rate: an in-memory emulator against durable ones (ProcessCrash), each a process of
/// its own, rounds alternating which side goes first. Per side: the median rate, the latency of each call (p50, p99
/// over all rounds) and the emulator's CPU per create. <c>BENCH_CREATE_BUILDS=name=path.dll,...</c> adds durable
/// emulators of other builds (say, earlier commits) side by side with this one: the client is the same for all.
/// </summary>
internal static class CreateLatencyBench
{
    private const int BodyBytes = 512;
    private static readonly LocationName Location = new("bench", "l");

    public static async System.Threading.Tasks.Task RunAsync(Uri otlp, int perRound, int inFlight, int rounds, Action<string> report)
    {
        var folders = new List<string>();
        var sides = new List<(string Name, EmulatorChild Child)>();
        try
        {
            sides.Add(("in memory", await EmulatorChild.StartAsync(otlp)));
            var builds = (Environment.GetEnvironmentVariable("BENCH_CREATE_BUILDS") ?? string.Empty)
                .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(b => b.Split('=', 2))
                .Select(b => (Name: b[0], Dll: (string?)b[1]))
                .Prepend((Name: "durable", Dll: null));
            foreach (var (name, dll) in builds)
            {
                var data = Path.Combine(Path.GetTempPath(), "bridge-bench-" + Guid.NewGuid().ToString("N"));
                folders.Add(data);
                sides.Add((name, await StartAsync(otlp, dll, "--data", data)));
            }

            var queues = new List<QueueName>();
            foreach (var side in sides)
            {
                var queue = Location.Queue("latency");
                await side.Child.Client.CreateQueueAsync(Location, new Queue { Name = queue.ToString() });
                await side.Child.Client.PauseQueueAsync(queue);
                queues.Add(queue);
                for (var i = 0; i < 4; i++)
                {
                    await CreateTasksAsync(side.Child.Client, queue, perRound, 16 << (i % 3), latencies: null); // warm-up past tiered compilation
                }
            }

            var rates = sides.Select(_ => new List<double>()).ToArray();
            var cpu = sides.Select(_ => new List<double>()).ToArray();
            var latencies = sides.Select(_ => new List<double>()).ToArray();
            for (var round = 0; round < rounds; round++)
            {
                for (var k = 0; k < sides.Count; k++)
                {
                    var i = (k + round) % sides.Count; // each side goes first in turn
                    var cpuBefore = sides[i].Child.CpuTime();
                    rates[i].Add(await CreateTasksAsync(sides[i].Child.Client, queues[i], perRound, inFlight, latencies[i]));
                    cpu[i].Add((sides[i].Child.CpuTime() - cpuBefore).TotalMicroseconds / perRound);
                }
            }

            var inMemory = Median(rates[0]);
            for (var i = 0; i < sides.Count; i++)
            {
                var sorted = latencies[i].Order().ToList();
                report($"CreateTask, C# client, {inFlight} in flight, {BodyBytes}-byte body, {rounds} alternating rounds of {perRound} (load {LoadAverage()}): {sides[i].Name} "
                    + $"{Median(rates[i]):F0}/s (rounds {string.Join(' ', rates[i].Select(r => r.ToString("F0", System.Globalization.CultureInfo.InvariantCulture)))}), ratio {Median(rates[i]) / inMemory:F2}; "
                    + $"latency p50 {Percentile(sorted, 0.5):F2} ms, p99 {Percentile(sorted, 0.99):F2} ms; {Median(cpu[i]):F0} µs CPU each");
            }
        }
        finally
        {
            foreach (var side in sides)
            {
                side.Child.Dispose();
            }

            foreach (var data in folders.Where(Directory.Exists))
            {
                Directory.Delete(data, recursive: true);
            }
        }
    }

    /// <summary>EmulatorChild reads the build to run from BENCH_EMULATOR_DLL when it starts: set for this one start only.</summary>
    private static async System.Threading.Tasks.Task<EmulatorChild> StartAsync(Uri otlp, string? dll, params string[] args)
    {
        var before = Environment.GetEnvironmentVariable("BENCH_EMULATOR_DLL");
        Environment.SetEnvironmentVariable("BENCH_EMULATOR_DLL", dll ?? before);
        try
        {
            return await EmulatorChild.StartAsync(otlp, args);
        }
        finally
        {
            Environment.SetEnvironmentVariable("BENCH_EMULATOR_DLL", before);
        }
    }

    private static async System.Threading.Tasks.Task<double> CreateTasksAsync(CloudTasksClient client, QueueName queue, int n, int inFlight, List<double>? latencies)
    {
        var task = new TaskMessage { HttpRequest = new HttpRequest { Url = "http://127.0.0.1:9/unused", Body = ByteString.CopyFrom(new byte[BodyBytes]) } };
        var each = new double[n];
        var clock = Stopwatch.StartNew();
        await Parallel.ForEachAsync(Enumerable.Range(0, n), new ParallelOptions { MaxDegreeOfParallelism = inFlight }, async (i, ct) =>
        {
            var start = Stopwatch.GetTimestamp();
            await client.CreateTaskAsync(queue, task, ct);
            each[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        });
        var rate = n / clock.Elapsed.TotalSeconds;
        latencies?.AddRange(each);
        return rate;
    }

    private static string LoadAverage() => File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "?";

    private static double Median(List<double> values) => Percentile([.. values.Order()], 0.5);

    private static double Percentile(IReadOnlyList<double> sorted, double p) => sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Count) - 1, 0, sorted.Count - 1)];
}
