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
    private const string WriterThread = "cloudtasks-emul"; // SqliteStore's writer, "cloudtasks-emulator-store" as the kernel keeps it
    private static readonly LocationName Location = new("bench", "l");

    public static async System.Threading.Tasks.Task RunAsync(Uri otlp, int perRound, int inFlight, int rounds, Action<string> report)
    {
        var jitLogs = Path.Combine(Path.GetTempPath(), "bridge-bench-jit-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(jitLogs);
        var folders = new List<string> { jitLogs };
        var sides = new List<(string Name, EmulatorChild Child)>();
        try
        {
            sides.Add(("in memory", await StartAsync(otlp, null, Path.Combine(jitLogs, "0"))));
            var builds = (Environment.GetEnvironmentVariable("BENCH_CREATE_BUILDS") ?? string.Empty)
                .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(b => b.Split('=', 2))
                .Select(b => (Name: b[0], Dll: (string?)b[1]))
                .Prepend((Name: "durable", Dll: null));
            foreach (var (name, dll) in builds)
            {
                var data = Path.Combine(Path.GetTempPath(), "bridge-bench-" + Guid.NewGuid().ToString("N"));
                folders.Add(data);
                sides.Add((name, await StartAsync(otlp, dll, Path.Combine(jitLogs, sides.Count.ToString(System.Globalization.CultureInfo.InvariantCulture)), "--data", data)));
            }

            var queues = new List<QueueName>();
            foreach (var side in sides)
            {
                var queue = Location.Queue("latency");
                await side.Child.Client.CreateQueueAsync(Location, new Queue { Name = queue.ToString() });
                await side.Child.Client.PauseQueueAsync(queue);
                queues.Add(queue);
            }

            await WarmUpAsync(sides.Select(s => s.Child).ToList(), queues, perRound, inFlight, jitLogs, report);

            var rates = sides.Select(_ => new List<double>()).ToArray();
            var cpu = sides.Select(_ => new List<double>()).ToArray();
            var latencies = sides.Select(_ => new List<double>()).ToArray();
            var writerBefore = sides.Select(s => s.Child.ThreadCpuTime(WriterThread)).ToArray();
            var writerSwitchesBefore = sides.Select(s => s.Child.VoluntaryContextSwitches(WriterThread)).ToArray();
            var switchesBefore = sides.Select(s => s.Child.VoluntaryContextSwitches(threadName: null)).ToArray();
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

            foreach (var (side, i) in sides.Select((s, i) => (s, i)))
            {
                var writer = (side.Child.ThreadCpuTime(WriterThread) - writerBefore[i]).TotalMicroseconds / (perRound * rounds);
                var writerWakeUps = (side.Child.VoluntaryContextSwitches(WriterThread) - writerSwitchesBefore[i]) / (double)(perRound * rounds);
                var wakeUps = (side.Child.VoluntaryContextSwitches(threadName: null) - switchesBefore[i]) / (double)(perRound * rounds);
                report($"  {side.Name}: CPU per create by round {string.Join(' ', cpu[i].Select(c => c.ToString("F0", System.Globalization.CultureInfo.InvariantCulture)))} µs; the store's writer thread {writer:F1} µs "
                    + $"and {writerWakeUps:F2} wake-ups (voluntary context switches) per create over all rounds; all threads {wakeUps:F2} wake-ups per create");
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

    /// <summary>
    /// Warm-up rounds at the measured load, sides alternating, until compilation settles as in the dispatch bench:
    /// two rounds in a row in which every emulator (counted from the lines of its JIT log: DOTNET_JitStdOutFile) and
    /// this process (the clients) each compiled at most 2 methods, at least 3 rounds and at most 40. The old fixed
    /// warm-up (4 rounds at 16, 32, 64, 16 in flight) left tier-ups inside the measured rounds, which rose up to 2x
    /// from the first to the last; a tier-up is compiled in the background after 30 calls and 100 ms without new
    /// tier-0 code, so a warm-up by rounds alone cannot know when it is over.
    /// </summary>
    private static async System.Threading.Tasks.Task WarmUpAsync(List<EmulatorChild> sides, List<QueueName> queues, int perRound, int inFlight, string jitLogs, Action<string> report)
    {
        var rounds = 0;
        var quiet = 0;
        var last = string.Empty;
        do
        {
            var clientBefore = System.Runtime.JitInfo.GetCompiledMethodCount();
            var before = Enumerable.Range(0, sides.Count).Select(i => CompiledMethods(jitLogs, i)).ToArray();
            var figures = new string[sides.Count];
            for (var k = 0; k < sides.Count; k++)
            {
                var i = (k + rounds) % sides.Count;
                var cpuBefore = sides[i].CpuTime();
                var rate = await CreateTasksAsync(sides[i].Client, queues[i], perRound, inFlight, latencies: null);
                figures[i] = $"{rate:F0}/s {(sides[i].CpuTime() - cpuBefore).TotalMicroseconds / perRound:F0} µs";
            }

            var compiled = Enumerable.Range(0, sides.Count).Select(i => CompiledMethods(jitLogs, i) - before[i]).Append(System.Runtime.JitInfo.GetCompiledMethodCount() - clientBefore).ToArray();
            quiet = compiled.All(c => c <= 2) ? quiet + 1 : 0;
            rounds++;
            last = $"{string.Join(", ", figures)}; methods compiled {string.Join(' ', compiled)} (emulators, then client)";
        }
        while (rounds < 40 && (rounds < 3 || quiet < 2));

        report($"(warm-up: {rounds} rounds at {inFlight} in flight; the last: {last}{(quiet < 2 ? "; NOT SETTLED within 40 rounds" : string.Empty)})");
    }

    /// <summary>Methods the side's emulator has compiled so far: one line each in its JIT log.</summary>
    private static long CompiledMethods(string jitLogs, int side)
    {
        var total = 0L;
        foreach (var file in Directory.GetFiles(jitLogs, $"{side}.*.txt"))
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream);
            while (reader.ReadLine() is not null)
            {
                total++;
            }
        }

        return total;
    }

    /// <summary>
    /// EmulatorChild reads the build to run from BENCH_EMULATOR_DLL and where to log what its JIT compiles from
    /// BENCH_CHILD_JIT_LOG when it starts: set for this one start only.
    /// </summary>
    private static async System.Threading.Tasks.Task<EmulatorChild> StartAsync(Uri otlp, string? dll, string jitLog, params string[] args)
    {
        var before = Environment.GetEnvironmentVariable("BENCH_EMULATOR_DLL");
        var jitBefore = Environment.GetEnvironmentVariable("BENCH_CHILD_JIT_LOG");
        Environment.SetEnvironmentVariable("BENCH_EMULATOR_DLL", dll ?? before);
        Environment.SetEnvironmentVariable("BENCH_CHILD_JIT_LOG", jitLog);
        try
        {
            return await EmulatorChild.StartAsync(otlp, args);
        }
        finally
        {
            Environment.SetEnvironmentVariable("BENCH_EMULATOR_DLL", before);
            Environment.SetEnvironmentVariable("BENCH_CHILD_JIT_LOG", jitBefore);
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
