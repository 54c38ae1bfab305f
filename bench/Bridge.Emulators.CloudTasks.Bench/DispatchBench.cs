using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Bridge.CloudTasks;
using Bridge.CloudTasks.V2Beta3;
using Bridge.Testing;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using TaskMessage = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.Emulators.CloudTasks.Bench;

/// <summary>
/// Dispatch throughput against plain <see cref="HttpClient"/> calls to the same target, made fair: the same target
/// server, the same number of requests in flight (the queues' max_concurrent_dispatches add up to the baseline's
/// concurrency), HTTP/1.1 over one pooled client each, the same body and the same headers (the X-CloudTasks-*
/// set, the User-Agent, and with OIDC a bearer JWT: the baseline's is RS256-signed once, as a client caching its
/// token sends it). The rate limits cannot bind: every round uses fresh queues whose bucket holds more tokens than
/// the round gives each queue. A round ends when the target has every request and the emulator is idle (the
/// outcomes recorded); the wait is on a count kept in the target's answer and the emulator's change signal, not on polling.
/// </summary>
internal static class DispatchBench
{
    private const int Queues = 20;
    private const int PerQueueInFlight = 2;
    private const int InFlight = Queues * PerQueueInFlight;
    /// <summary>
    /// Alternating round pairs by default: on 2 cores one side's rate swung up to 1.7x between rounds, so the ratio is
    /// the median of the pairs' own ratios over many short rounds, not of two medians of three.
    /// </summary>
    public const int DefaultRounds = 9;
    private static readonly ByteString Body = ByteString.CopyFromUtf8("{\"bench\":true}");
    private const string ServiceAccount = "bench-invoker@bench.iam.gserviceaccount.com";

    /// <summary>The emulator's delay before an attempt's start is written (internal, read through reflection): reported with the start writes.</summary>
    private static readonly TimeSpan StartWriteDelay =
        typeof(CloudTasksEmulator).Assembly.GetType("Bridge.Emulators.CloudTasks.Internal.EmulatorState")?
            .GetField("DefaultStartWriteDelay", System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.NonPublic)?.GetValue(null) as TimeSpan? ?? TimeSpan.Zero;

    public static async System.Threading.Tasks.Task RunAsync(HttpTargetServer target, int perRound, bool durable, Action<string> report, int rounds = DefaultRounds)
    {
        // Every queue gets perRound / Queues tasks a round; its bucket (burst 500, refilled at 500/s) must hold them all.
        perRound = Math.Min(perRound, Queues * 500);
        var data = Path.Combine(Path.GetTempPath(), "bridge-bench-" + Guid.NewGuid().ToString("N"));
        try
        {
            await using var host = await EmulatorHost.StartAsync(o => o.Data = durable ? data : null);
            using var http = new HttpClient(new SocketsHttpHandler { UseCookies = false, AllowAutoRedirect = false, PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30) });
            var token = SignedToken(target.Url("/raw").ToString());

            // Warm-up: connection pools, the emulator's first queues, and tiered compilation (tier 0, the PGO-instrumented
            // tier, tier 1, on both sides alike) until it settles: JIT inside a measured round is not steady state, and on
            // a loaded machine the background compiler took many rounds to get there.
            await WarmUpAsync(async () =>
            {
                await DispatchRoundAsync(host, target, 1000, oidc: true);
                await DispatchRoundAsync(host, target, 1000, oidc: false);
                await PlainRoundAsync(http, target, 1000, token);
                await PlainRoundAsync(http, target, 1000, null);
            }, maxRounds: 40, report);

            var results = new Dictionary<string, List<Round>> { ["dispatch+oidc"] = [], ["plain+jwt"] = [], ["dispatch"] = [], ["plain"] = [] };
            for (var round = 0; round < rounds; round++)
            {
                // Alternate which side goes first.
                var order = round % 2 == 0 ? new[] { "dispatch+oidc", "plain+jwt", "dispatch", "plain" } : ["plain+jwt", "dispatch+oidc", "plain", "dispatch"];
                foreach (var side in order)
                {
                    results[side].Add(side switch
                    {
                        "dispatch+oidc" => await DispatchRoundAsync(host, target, perRound, oidc: true),
                        "dispatch" => await DispatchRoundAsync(host, target, perRound, oidc: false),
                        "plain+jwt" => await PlainRoundAsync(http, target, perRound, token),
                        _ => await PlainRoundAsync(http, target, perRound, null),
                    });
                }
            }

            var mode = durable ? "durable" : "in memory";
            var load = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "?";
            foreach (var (withToken, dispatch, plain) in new[] { (true, results["dispatch+oidc"], results["plain+jwt"]), (false, results["dispatch"], results["plain"]) })
            {
                var (dRate, pRate) = (Median(dispatch.Select(r => r.Rate)), Median(plain.Select(r => r.Rate)));
                var (dCpu, pCpu) = (Median(dispatch.Select(r => r.CpuMicrosPerRequest)), Median(plain.Select(r => r.CpuMicrosPerRequest)));
                var wallRatio = Median(dispatch.Zip(plain, (d, p) => d.Rate / p.Rate)); // each pair ran back to back
                var cpuRatio = Median(dispatch.Zip(plain, (d, p) => p.CpuMicrosPerRequest / d.CpuMicrosPerRequest));
                var (dAlloc, pAlloc) = (Median(dispatch.Select(r => r.BytesPerRequest)), Median(plain.Select(r => r.BytesPerRequest)));
                var (dJitted, pJitted) = (dispatch.Sum(r => r.MethodsCompiled), plain.Sum(r => r.MethodsCompiled));
                var writes = durable ? $"; store over the dispatch rounds: {dispatch.Sum(r => r.Commits)} commits ({dispatch.Sum(r => r.Commits) / (double)(dispatch.Count * perRound):F3} per request), {dispatch.Sum(r => r.StartWrites)} of {dispatch.Count * perRound} attempts' starts written (the attempt lasted {StartWriteDelay.TotalSeconds:F0} s), {dispatch.Sum(r => r.SupersededStarts)} of those skipped (the outcome came first), the writer thread's CPU {Median(dispatch.Select(r => r.WriterMicrosPerRequest)):F1} us per request" : string.Empty;
                report($"Dispatch, {mode}, {Queues} queues x {PerQueueInFlight} in flight{(withToken ? ", OIDC token" : string.Empty)}, {rounds} alternating rounds of {perRound}: "
                    + $"{dRate:F0}/s (rounds {Join(dispatch.Select(r => r.Rate))}); plain HttpClient, {InFlight} in flight{(withToken ? ", signed JWT" : string.Empty)}: {pRate:F0}/s (rounds {Join(plain.Select(r => r.Rate))}); "
                    + $"ratio dispatch/plain (median of the rounds' ratios) wall {wallRatio:F2}, CPU {cpuRatio:F2} ({dCpu:F0} vs {pCpu:F0} us CPU per request, whole process); "
                    + $"allocated {dAlloc:F0} vs {pAlloc:F0} B and {Median(dispatch.Select(r => r.WorkItemsPerRequest)):F2} vs {Median(plain.Select(r => r.WorkItemsPerRequest)):F2} thread-pool work items per request; JIT {Median(dispatch.Select(r => r.JitMicrosPerRequest)):F1} vs {Median(plain.Select(r => r.JitMicrosPerRequest)):F1} us per request; "
                    + $"methods compiled during the measured rounds {dJitted} vs {pJitted} ({(dJitted + pJitted <= SettledMethods ? "settled" : "NOT SETTLED: compilation inside the figures")}){writes}; load average {load}");
            }
        }
        finally
        {
            if (Directory.Exists(data))
            {
                Directory.Delete(data, recursive: true);
            }
        }
    }

    /// <summary>
    /// Only dispatch rounds (in memory, no token; durable with <paramref name="durable"/>), for a profiler: no baseline
    /// mixed in. Only the dispatch phase of each round (not the task creation before it) is profiled: with
    /// BENCH_PERF_CTL set to the control FIFO of <c>perf record --control fifo:PATH -D -1</c>, perf is enabled for
    /// exactly that phase; and the runtime's allocation samples (one per ~100 KB) are counted by type over it.
    /// </summary>
    public static async System.Threading.Tasks.Task ProfileAsync(HttpTargetServer target, int perRound, int rounds, bool durable, bool plain, Action<string> report)
    {
        var data = Path.Combine(Path.GetTempPath(), "bridge-bench-" + Guid.NewGuid().ToString("N"));
        try
        {
            await using var host = await EmulatorHost.StartAsync(o => o.Data = durable ? data : null);
            using var http = new HttpClient(new SocketsHttpHandler { UseCookies = false, AllowAutoRedirect = false, PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30) });
            await WarmUpAsync(() => plain ? PlainRoundAsync(http, target, 1000, null) : DispatchRoundAsync(host, target, 1000, oidc: false), maxRounds: 30, report);

            using var perf = Environment.GetEnvironmentVariable("BENCH_PERF_CTL") is { Length: > 0 } fifo ? new StreamWriter(fifo) { AutoFlush = true } : null;
            using var allocations = new AllocationSampler();
            var results = new List<Round>();
            for (var i = 0; i < rounds; i++)
            {
                void Phase(bool on)
                {
                    allocations.Enabled = on;
                    perf?.WriteLine(on ? "enable" : "disable");
                }

                var n = Math.Min(perRound, Queues * 500);
                results.Add(plain ? await PlainRoundAsync(http, target, n, null, Phase) : await DispatchRoundAsync(host, target, n, oidc: false, Phase));
            }

            var writes = durable && !plain ? $", store: {results.Sum(r => r.Commits)} commits, {results.Sum(r => r.StartWrites)} start writes ({results.Sum(r => r.SupersededStarts)} of them skipped), writer thread {Median(results.Select(r => r.WriterMicrosPerRequest)):F1} us CPU per request" : string.Empty;
            report($"{(plain ? "Plain HttpClient only" : "Dispatch only")} (profile), {(durable ? "durable" : "in memory")}, {rounds} rounds: {Median(results.Select(r => r.Rate)):F0}/s, {Median(results.Select(r => r.CpuMicrosPerRequest)):F0} us CPU and {Median(results.Select(r => r.BytesPerRequest)):F0} B allocated per request, JIT {Median(results.Select(r => r.JitMicrosPerRequest)):F1} us per request, {results.Sum(r => r.MethodsCompiled)} methods compiled, {Median(results.Select(r => r.WorkItemsPerRequest)):F2} thread-pool work items per request{writes}");
            var total = results.Count * Math.Min(perRound, Queues * 500);
            foreach (var (type, bytes) in allocations.ByType().Take(40))
            {
                report($"  {bytes / (double)total,8:F0} B/request  {type}");
            }

            var compiled = allocations.Compiled().ToList();
            report($"Methods compiled while measuring: {compiled.Sum(c => c.Count)}");
            foreach (var (method, times) in compiled.Take(30))
            {
                report($"  {times,5}  {method}");
            }
        }
        finally
        {
            if (Directory.Exists(data))
            {
                Directory.Delete(data, recursive: true);
            }
        }
    }

    /// <summary>
    /// At most this many methods compiled (tier-ups included) over all the measured rounds of both sides of one
    /// comparison, and it counts as settled: a few stragglers (a timer's callback, the GC's finalizer path) cost
    /// nothing per request; a figure above it carries compilation and is said to.
    /// </summary>
    private const int SettledMethods = 10;

    /// <summary>
    /// Runs warm-up rounds until tiered compilation settles: two rounds in a row that each compiled at most 2 methods
    /// (tier-ups included, background compilation too), at least 3 rounds and at most <paramref name="maxRounds"/>.
    /// A tier-up is queued only after its method's 30 calls and 100 ms without new tier-0 code, then compiled on one
    /// background thread, so under load a single quiet round could be only a pause of that thread.
    /// </summary>
    private static async System.Threading.Tasks.Task WarmUpAsync(Func<System.Threading.Tasks.Task> round, int maxRounds, Action<string> report)
    {
        var rounds = 0;
        var quiet = 0;
        long compiled;
        do
        {
            var before = System.Runtime.JitInfo.GetCompiledMethodCount();
            await round();
            compiled = System.Runtime.JitInfo.GetCompiledMethodCount() - before;
            quiet = compiled <= 2 ? quiet + 1 : 0;
            rounds++;
        }
        while (rounds < maxRounds && (rounds < 3 || quiet < 2));

        report($"(warm-up: {rounds} rounds; the last compiled {compiled} methods{(quiet < 2 ? "; NOT SETTLED within the rounds allowed" : string.Empty)})");
    }

    /// <summary>The runtime's AllocationTick events (about one per 100 KB allocated), summed by type while enabled.</summary>
    private sealed class AllocationSampler : System.Diagnostics.Tracing.EventListener
    {
        private readonly System.Collections.Concurrent.ConcurrentDictionary<string, long> _bytes = new();

        public bool Enabled { get; set; }

        public IEnumerable<(string Type, long Bytes)> ByType() => _bytes.OrderByDescending(p => p.Value).Select(p => (p.Key, p.Value));

        protected override void OnEventSourceCreated(System.Diagnostics.Tracing.EventSource source)
        {
            if (source.Name == "Microsoft-Windows-DotNETRuntime")
            {
                // GC keyword (AllocationTick); JIT and Loader keywords (MethodLoadVerbose: what is compiled while measuring).
                EnableEvents(source, System.Diagnostics.Tracing.EventLevel.Verbose, (System.Diagnostics.Tracing.EventKeywords)(0x1 | 0x10 | 0x8));
            }
        }

        private readonly System.Collections.Concurrent.ConcurrentDictionary<string, int> _compiled = new();

        public IEnumerable<(string Method, int Count)> Compiled() => _compiled.OrderByDescending(p => p.Value).Select(p => (p.Key, p.Value));

        protected override void OnEventWritten(System.Diagnostics.Tracing.EventWrittenEventArgs e)
        {
            if (!Enabled || e.EventName is null || e.Payload is null)
            {
                return;
            }

            if (e.EventName.StartsWith("MethodLoadVerbose", StringComparison.Ordinal))
            {
                string Field(string name) => e.PayloadNames!.IndexOf(name) is var i and >= 0 ? Convert.ToString(e.Payload[i], CultureInfo.InvariantCulture) ?? "?" : "?";
                var method = $"{Field("MethodNamespace")}::{Field("MethodName")} [{Field("OptimizationTier")}]";
                _compiled.AddOrUpdate(method, 1, (_, c) => c + 1);
                return;
            }

            if (!e.EventName.StartsWith("GCAllocationTick", StringComparison.Ordinal))
            {
                return;
            }

            var type = e.PayloadNames!.IndexOf("TypeName") is var t and >= 0 ? e.Payload[t] as string ?? "?" : "?";
            var amount = e.PayloadNames!.IndexOf("AllocationAmount64") is var a and >= 0 ? Convert.ToInt64(e.Payload[a], CultureInfo.InvariantCulture) : 100_000;
            _bytes.AddOrUpdate(type, amount, (_, sum) => sum + amount);
        }
    }

    /// <summary>
    /// Schedule lateness: how long after its schedule time each task reaches the target (500 tasks due 4 ms apart),
    /// against the lateness of a plain timer (Task.Delay) for the same schedule.
    /// </summary>
    public static async System.Threading.Tasks.Task LatenessAsync(HttpTargetServer target, bool durable, Action<string> report)
    {
        var data = Path.Combine(Path.GetTempPath(), "bridge-bench-" + Guid.NewGuid().ToString("N"));
        try
        {
            await using var host = await EmulatorHost.StartAsync(o => o.Data = durable ? data : null);
            var queue = await host.CreateQueueAsync();
            const int n = 500;
            var start = TimeProvider.System.GetUtcNow().AddSeconds(2);
            var before = target.Requests.Count;
            await Parallel.ForEachAsync(Enumerable.Range(0, n), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, ct) =>
                await host.Client.CreateTaskAsync(queue, new TaskMessage
                {
                    ScheduleTime = Timestamp.FromDateTimeOffset(start.AddMilliseconds(i * 4)),
                    HttpRequest = new HttpRequest { Url = target.Url("/late").ToString() },
                }, ct));
            var received = (await target.WaitForRequestsAsync(before + n, TimeSpan.FromMinutes(1))).Skip(before).Where(r => r.PathAndQuery == "/late").ToList();
            var lateness = received.Select(r =>
            {
                var eta = DateTimeOffset.UnixEpoch.AddTicks((long)(decimal.Parse(r.Header("X-CloudTasks-TaskETA")!, CultureInfo.InvariantCulture) * TimeSpan.TicksPerSecond));
                return (r.ReceivedAt - eta).TotalMilliseconds;
            }).Order().ToList();

            var timerStart = TimeProvider.System.GetUtcNow().AddMilliseconds(500);
            var timerLateness = (await System.Threading.Tasks.Task.WhenAll(Enumerable.Range(0, n).Select(async i =>
            {
                var due = timerStart.AddMilliseconds(i * 4);
                await System.Threading.Tasks.Task.Delay(due - TimeProvider.System.GetUtcNow());
                return (TimeProvider.System.GetUtcNow() - due).TotalMilliseconds;
            }))).Order().ToList();
            var load = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "?";
            report($"Schedule lateness, {(durable ? "durable" : "in memory")} ({n} tasks over 2 s): p50 {Percentile(lateness, 0.5):F1} ms, p99 {Percentile(lateness, 0.99):F1} ms; plain timer p50 {Percentile(timerLateness, 0.5):F1} ms, p99 {Percentile(timerLateness, 0.99):F1} ms; ratio p99 emulator/timer {Percentile(lateness, 0.99) / Math.Max(0.1, Percentile(timerLateness, 0.99)):F1}; load average {load}");
        }
        finally
        {
            if (Directory.Exists(data))
            {
                Directory.Delete(data, recursive: true);
            }
        }
    }

    /// <summary>One round of dispatch: tasks created in paused fresh queues, then the queues resumed and timed until done.</summary>
    private static async Task<Round> DispatchRoundAsync(EmulatorHost host, HttpTargetServer target, int n, bool oidc, Action<bool>? phase = null)
    {
        var queues = new List<QueueName>();
        for (var q = 0; q < Queues; q++)
        {
            queues.Add(await host.CreateQueueAsync(x =>
            {
                x.RateLimits = new RateLimits { MaxDispatchesPerSecond = 500, MaxBurstSize = 500, MaxConcurrentDispatches = PerQueueInFlight };
            }));
            await host.Client.PauseQueueAsync(queues[^1]);
        }

        var url = target.Url("/dispatch").ToString();
        await Parallel.ForEachAsync(Enumerable.Range(0, n), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, ct) =>
        {
            var request = new HttpRequest { Url = url, Body = Body };
            if (oidc)
            {
                request.OidcToken = new OidcToken { ServiceAccountEmail = ServiceAccount, Audience = url };
            }

            await host.Client.CreateTaskAsync(queues[i % queues.Count], new TaskMessage { HttpRequest = request }, ct);
        });

        // The end of the round is counted in the target's answer, not awaited per arrival: waiting on the target's
        // arrival signal woke this method once per request (a thread-pool hop and ~330 B each), a cost only this side paid.
        var arrived = 0;
        var all = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        target.Respond = (_, _) =>
        {
            if (Interlocked.Increment(ref arrived) == n)
            {
                all.TrySetResult();
            }

            return TargetResponse.Ok;
        };
        var store = StoreCounters.Of(host);
        phase?.Invoke(true);
        var measure = Measure.Start();
        await System.Threading.Tasks.Task.WhenAll(queues.Select(q => host.Client.ResumeQueueAsync(q)));
        await all.Task.WaitAsync(TimeSpan.FromMinutes(5));
        await host.Emulator.WaitForIdleAsync(timeout: TimeSpan.FromMinutes(1)); // the outcomes recorded too
        var round = measure.Stop(n) with { Commits = store.Commits, StartWrites = store.StartWrites, SupersededStarts = store.Superseded, WriterMicrosPerRequest = store.WriterMicros / n };
        phase?.Invoke(false);
        target.Respond = (_, _) => TargetResponse.Ok;
        foreach (var q in queues)
        {
            await host.Client.DeleteQueueAsync(q);
        }

        return round;
    }

    /// <summary>One round of plain HttpClient POSTs with the headers a dispatch carries.</summary>
    private static async Task<Round> PlainRoundAsync(HttpClient http, HttpTargetServer target, int n, string? token, Action<bool>? phase = null)
    {
        var url = target.Url("/raw");
        var body = Body.ToByteArray();
        var eta = Dispatch.FormatEta(TimeProvider.System.GetUtcNow());
        phase?.Invoke(true);
        var measure = Measure.Start();
        await Parallel.ForEachAsync(Enumerable.Range(0, n), new ParallelOptions { MaxDegreeOfParallelism = InFlight }, async (i, ct) =>
        {
            using var request = new HttpRequestMessage(System.Net.Http.HttpMethod.Post, url) { Content = new ByteArrayContent(body) };
            if (token is not null)
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            }

            request.Headers.TryAddWithoutValidation("User-Agent", "Google-Cloud-Tasks");
            request.Headers.TryAddWithoutValidation("X-CloudTasks-QueueName", "q-0123456789ab");
            request.Headers.TryAddWithoutValidation("X-CloudTasks-TaskName", "12345678901234567890" + i.ToString(CultureInfo.InvariantCulture));
            request.Headers.TryAddWithoutValidation("X-CloudTasks-TaskRetryCount", "0");
            request.Headers.TryAddWithoutValidation("X-CloudTasks-TaskExecutionCount", "0");
            request.Headers.TryAddWithoutValidation("X-CloudTasks-TaskETA", eta);
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        });
        var round = measure.Stop(n);
        phase?.Invoke(false);
        return round;
    }

    /// <summary>An RS256 JWT with the claims of an emulator token, signed once (2048-bit key).</summary>
    private static string SignedToken(string audience)
    {
        using var rsa = RSA.Create(2048);
        static string B64(byte[] b) => Convert.ToBase64String(b).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var now = TimeProvider.System.GetUtcNow().ToUnixTimeSeconds();
        var header = B64(JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, string> { ["alg"] = "RS256", ["kid"] = new string('a', 40), ["typ"] = "JWT" }));
        var payload = B64(JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["aud"] = audience, ["azp"] = "100000000000000000000", ["email"] = ServiceAccount, ["email_verified"] = true,
            ["exp"] = now + 3600, ["iat"] = now, ["iss"] = "http://localhost:12345", ["sub"] = "100000000000000000000",
        }));
        var signature = rsa.SignData(Encoding.ASCII.GetBytes(header + "." + payload), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        return header + "." + payload + "." + B64(signature);
    }

    private static string Join(IEnumerable<double> values) => string.Join(", ", values.Select(v => v.ToString("F0", CultureInfo.InvariantCulture)));

    private static double Percentile(IReadOnlyList<double> sorted, double p) => sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Count) - 1, 0, sorted.Count - 1)];

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted[(sorted.Count - 1) / 2];
    }

    private sealed record Round(double Rate, double CpuMicrosPerRequest, double BytesPerRequest, double JitMicrosPerRequest, long MethodsCompiled)
    {
        /// <summary>Durable: transactions the store committed over the round, attempts' starts written (the attempt lasted), and those skipped.</summary>
        public long Commits { get; init; }

        public long StartWrites { get; init; }

        public long SupersededStarts { get; init; }

        /// <summary>Thread-pool work items completed per request (each a hand-over between threads), whole process.</summary>
        public double WorkItemsPerRequest { get; init; }

        /// <summary>Durable: the store's writer thread's CPU per request (part of the whole process's).</summary>
        public double WriterMicrosPerRequest { get; init; }
    }

    /// <summary>
    /// The durable store's counters (commits, start writes skipped because the outcome's write came first), read through
    /// reflection: they are internal to the emulator, and the bench is no friend assembly. Zero for the in-memory store.
    /// </summary>
    private sealed class StoreCounters
    {
        private readonly object? _store;
        private readonly long _commits;
        private readonly long _superseded;
        private readonly long _startWrites;

        private readonly long _writerNanos;

        private StoreCounters(object? store)
        {
            _store = store;
            (_commits, _superseded, _startWrites, _writerNanos) = (Read("Commits"), Read("SupersededWrites"), Read("SupersedableWrites"), WriterNanos());
        }

        /// <summary>The store's writer thread's CPU time over the round, in microseconds (0 without one).</summary>
        public double WriterMicros => (WriterNanos() - _writerNanos) / 1000.0;

        /// <summary>CPU time of the writer thread (named cloudtasks-emulator-store; Linux shows 15 characters), from schedstat.</summary>
        private static long WriterNanos()
        {
            long total = 0;
            if (!Directory.Exists("/proc/self/task"))
            {
                return 0;
            }

            foreach (var task in Directory.EnumerateDirectories("/proc/self/task"))
            {
                try
                {
                    if (File.ReadAllText(Path.Combine(task, "comm")).Trim() == "cloudtasks-emul")
                    {
                        total += long.Parse(File.ReadAllText(Path.Combine(task, "schedstat")).Split(' ')[0], CultureInfo.InvariantCulture);
                    }
                }
                catch (IOException)
                {
                    // the thread ended meanwhile
                }
            }

            return total;
        }

        public static StoreCounters Of(EmulatorHost host)
        {
            var type = typeof(CloudTasksEmulator).Assembly.GetType("Bridge.Emulators.CloudTasks.Internal.IEmulatorStore", throwOnError: true)!;
            return new StoreCounters(host.Services.GetService(type));
        }

        public long Commits => Read("Commits") - _commits;

        public long Superseded => Read("SupersededWrites") - _superseded;

        /// <summary>Attempts' starts written (an attempt that lasted; older builds wrote every start).</summary>
        public long StartWrites => Read("SupersedableWrites") - _startWrites;

        private long Read(string name) =>
            _store?.GetType().GetProperty(name, System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic)?.GetValue(_store) is long value ? value : 0;
    }

    /// <summary>Wall time, the whole process's CPU time and its allocations over one round.</summary>
    private sealed class Measure
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private readonly TimeSpan _cpu = Process.GetCurrentProcess().TotalProcessorTime;
        private readonly long _allocated = GC.GetTotalAllocatedBytes(precise: false);
        private readonly TimeSpan _jit = System.Runtime.JitInfo.GetCompilationTime();
        private readonly long _compiled = System.Runtime.JitInfo.GetCompiledMethodCount();
        private readonly long _workItems = ThreadPool.CompletedWorkItemCount;

        public static Measure Start() => new();

        public Round Stop(int n)
        {
            var wall = _clock.Elapsed;
            var cpu = Process.GetCurrentProcess().TotalProcessorTime - _cpu;
            var allocated = GC.GetTotalAllocatedBytes(precise: false) - _allocated;
            var jit = System.Runtime.JitInfo.GetCompilationTime() - _jit;
            var compiled = System.Runtime.JitInfo.GetCompiledMethodCount() - _compiled;
            return new Round(n / wall.TotalSeconds, cpu.TotalMicroseconds / n, allocated / (double)n, jit.TotalMicroseconds / n, compiled) { WorkItemsPerRequest = (ThreadPool.CompletedWorkItemCount - _workItems) / (double)n };
        }
    }

    /// <summary>X-CloudTasks-TaskETA as the emulator writes it.</summary>
    private static class Dispatch
    {
        public static string FormatEta(DateTimeOffset eta)
        {
            var micros = (eta - DateTimeOffset.UnixEpoch).Ticks / 10;
            return string.Create(CultureInfo.InvariantCulture, $"{micros / 1_000_000}.{micros % 1_000_000:D6}");
        }
    }
}
