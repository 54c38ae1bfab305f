using System.Globalization;
using System.Text.RegularExpressions;
using Bridge.CloudTasks;
using Bridge.Testing;

namespace Bridge.Emulators.CloudTasks.Bench;

/// <summary>
/// The emulator's executable as a process of its own (so its RSS is its own), on ports 0 read back from what it
/// prints, with telemetry on (OTLP over HTTP to <c>otlpEndpoint</c>).
/// </summary>
internal sealed partial class EmulatorChild : IDisposable
{
    private readonly ChildProcess _child;

    private EmulatorChild(ChildProcess child)
    {
        _child = child;
        GrpcHostPort = child.Values[0];
        Client = new CloudTasksClientBuilder { EmulatorHost = GrpcHostPort, EmulatorDetection = EmulatorDetection.None }.Build();
    }

    public string GrpcHostPort { get; }

    /// <summary>The emulator's process id (to attach a profiler).</summary>
    public int ProcessId => _child.Id;

    public CloudTasksClient Client { get; }

    public static Task<EmulatorChild> StartAsync(Uri otlpEndpoint, params string[] args) => StartAsync(otlpEndpoint, args, syscallLog: null);

    /// <summary>The emulator under strace, which logs its fsync calls to <paramref name="syscallLog"/>.</summary>
    public static Task<EmulatorChild> StartTracedAsync(Uri otlpEndpoint, string syscallLog, params string[] args) => StartAsync(otlpEndpoint, args, syscallLog);

    private static async Task<EmulatorChild> StartAsync(Uri otlpEndpoint, string[] args, string? syscallLog)
    {
        // BENCH_EMULATOR_DLL: another build of the emulator (say, of an earlier commit) to measure against.
        var start = ChildProcess.DotnetStartInfo(
            Environment.GetEnvironmentVariable("BENCH_EMULATOR_DLL") ?? "Bridge.Emulators.CloudTasks.dll",
            ["--port", "0", "--http-port", "0", .. args]);
        if (syscallLog is not null)
        {
            // Every fsync/fdatasync of the emulator's threads, one line each (the seccomp filter leaves other calls untraced).
            string[] traced = ["-f", "--seccomp-bpf", "-e", "trace=fsync,fdatasync", "-o", syscallLog, start.FileName, .. start.ArgumentList];
            start.FileName = "strace";
            start.ArgumentList.Clear();
            foreach (var arg in traced)
            {
                start.ArgumentList.Add(arg);
            }
        }

        if (Environment.GetEnvironmentVariable("BENCH_CHILD_JIT_LOG") is { Length: > 0 } jitLog)
        {
            // Every method the child's JIT compiles, with its tier, one line each (to see what is still compiled after a warm-up).
            start.Environment["DOTNET_JitDisasmSummary"] = "1";
            start.Environment["DOTNET_JitStdOutFile"] = $"{jitLog}.{Guid.NewGuid():N}.txt";
        }

        start.Environment["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlpEndpoint.ToString().TrimEnd('/');
        start.Environment["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf";
        return new EmulatorChild(await ChildProcess.StartAsync(start, "The emulator", TimeSpan.FromSeconds(60), GrpcLine()));
    }

    /// <summary>CPU time the emulator process has used so far (user and system).</summary>
    public TimeSpan CpuTime()
    {
        using var process = System.Diagnostics.Process.GetProcessById(_child.Id);
        return process.TotalProcessorTime;
    }

    /// <summary>
    /// CPU time (user and system, from /proc, in clock ticks of 10 ms) of the emulator's threads named
    /// <paramref name="threadName"/> (as the kernel keeps it: at most 15 characters), say the store's writer.
    /// </summary>
    public TimeSpan ThreadCpuTime(string threadName)
    {
        var ticks = 0L;
        foreach (var task in Directory.GetDirectories($"/proc/{_child.Id}/task"))
        {
            try
            {
                if (File.ReadAllText(Path.Combine(task, "comm")).TrimEnd('\n') != threadName)
                {
                    continue;
                }

                var stat = File.ReadAllText(Path.Combine(task, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' '); // after the name, which may hold spaces
                ticks += long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture); // utime, stime
            }
            catch (IOException)
            {
                // the thread ended meanwhile
            }
        }

        return TimeSpan.FromSeconds(ticks / 100.0);
    }

    /// <summary>
    /// Voluntary context switches (from /proc: each one a wait that blocked, so each one a wake-up) of the emulator's
    /// threads named <paramref name="threadName"/>, or of all its threads when null.
    /// </summary>
    public long VoluntaryContextSwitches(string? threadName)
    {
        var switches = 0L;
        foreach (var task in Directory.GetDirectories($"/proc/{_child.Id}/task"))
        {
            try
            {
                if (threadName is not null && File.ReadAllText(Path.Combine(task, "comm")).TrimEnd('\n') != threadName)
                {
                    continue;
                }

                foreach (var line in File.ReadLines(Path.Combine(task, "status")))
                {
                    if (line.StartsWith("voluntary_ctxt_switches:", StringComparison.Ordinal))
                    {
                        switches += long.Parse(line["voluntary_ctxt_switches:".Length..].Trim(), CultureInfo.InvariantCulture);
                    }
                }
            }
            catch (IOException)
            {
                // the thread ended meanwhile
            }
        }

        return switches;
    }

    /// <summary>Resident set size of the emulator process, from /proc (bytes).</summary>
    public long ResidentBytes()
    {
        foreach (var line in File.ReadLines($"/proc/{_child.Id}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line["VmRSS:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
            }
        }

        throw new InvalidOperationException("No VmRSS in /proc status.");
    }

    /// <summary>Kills the emulator (under strace, the emulator too) with a bounded wait.</summary>
    public void Dispose() => _child.Dispose();

    [GeneratedRegex(@"^\s*gRPC:\s+(\S+:\d+)")]
    private static partial Regex GrpcLine();
}
