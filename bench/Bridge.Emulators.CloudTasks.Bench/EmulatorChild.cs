using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Bridge.CloudTasks;

namespace Bridge.Emulators.CloudTasks.Bench;

/// <summary>
/// The emulator's executable as a process of its own (so its RSS is its own), on ports 0 read back from what it
/// prints, with telemetry on (OTLP over HTTP to <c>otlpEndpoint</c>).
/// </summary>
internal sealed partial class EmulatorChild : IDisposable
{
    private readonly Process _process;
    private readonly TaskCompletionSource<string> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<string> _output = [];

    private EmulatorChild(Process process)
    {
        _process = process;
    }

    public string GrpcHostPort { get; private set; } = string.Empty;

    public CloudTasksClient Client { get; private set; } = null!;

    public static Task<EmulatorChild> StartAsync(Uri otlpEndpoint, params string[] args) => StartAsync(otlpEndpoint, args, syscallLog: null);

    /// <summary>The emulator under strace, which logs its fsync calls to <paramref name="syscallLog"/>.</summary>
    public static Task<EmulatorChild> StartTracedAsync(Uri otlpEndpoint, string syscallLog, params string[] args) => StartAsync(otlpEndpoint, args, syscallLog);

    private static async Task<EmulatorChild> StartAsync(Uri otlpEndpoint, string[] args, string? syscallLog)
    {
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";
        var start = new ProcessStartInfo(syscallLog is null ? dotnet : "strace")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (syscallLog is not null)
        {
            // Every fsync/fdatasync of the emulator's threads, one line each (the seccomp filter leaves other calls untraced).
            foreach (var arg in (string[])["-f", "--seccomp-bpf", "-e", "trace=fsync,fdatasync", "-o", syscallLog, dotnet])
            {
                start.ArgumentList.Add(arg);
            }
        }

        // BENCH_EMULATOR_DLL: another build of the emulator (say, of an earlier commit) to measure against.
        start.ArgumentList.Add(Environment.GetEnvironmentVariable("BENCH_EMULATOR_DLL") ?? Path.Combine(AppContext.BaseDirectory, "Bridge.Emulators.CloudTasks.dll"));
        foreach (var arg in (string[])["--port", "0", "--http-port", "0", .. args])
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["Logging__LogLevel__Default"] = "Warning";
        start.Environment["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlpEndpoint.ToString().TrimEnd('/');
        start.Environment["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf";
        var child = new EmulatorChild(Process.Start(start)!);
        child._process.OutputDataReceived += (_, e) => child.OnLine(e.Data);
        child._process.ErrorDataReceived += (_, e) => child.OnLine(e.Data);
        child._process.EnableRaisingEvents = true;
        child._process.Exited += (_, _) => child._ready.TrySetException(new InvalidOperationException("The emulator exited: " + string.Join('\n', child._output)));
        child._process.BeginOutputReadLine();
        child._process.BeginErrorReadLine();
        child.GrpcHostPort = await child._ready.Task.WaitAsync(TimeSpan.FromSeconds(60));
        child.Client = new CloudTasksClientBuilder { EmulatorHost = child.GrpcHostPort, EmulatorDetection = EmulatorDetection.None }.Build();
        return child;
    }

    /// <summary>CPU time the emulator process has used so far (user and system).</summary>
    public TimeSpan CpuTime()
    {
        _process.Refresh();
        return _process.TotalProcessorTime;
    }

    /// <summary>Resident set size of the emulator process, from /proc (bytes).</summary>
    public long ResidentBytes()
    {
        foreach (var line in File.ReadLines($"/proc/{_process.Id}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line["VmRSS:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
            }
        }

        throw new InvalidOperationException("No VmRSS in /proc status.");
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true); // under strace, the emulator too
            _process.WaitForExit(30_000);
        }

        _process.Dispose();
    }

    private void OnLine(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.Add(line);
            if (GrpcLine().Match(line) is { Success: true } match)
            {
                _ready.TrySetResult(match.Groups[1].Value);
            }
        }
    }

    [GeneratedRegex(@"^\s*gRPC:\s+(\S+:\d+)")]
    private static partial Regex GrpcLine();
}
