using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Task = System.Threading.Tasks.Task;

namespace Bridge.Emulators.CloudTasks.Tests;

/// <summary>
/// The emulator's executable as its own process (the one that holds the state, so Kill is a SIGKILL of it), started
/// on ports 0 and read back from the addresses it prints.
/// </summary>
internal sealed partial class EmulatorProcess : IDisposable
{
    private readonly Process _process;
    private readonly TaskCompletionSource<(string Grpc, Uri Http)> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<string> _output = [];

    private EmulatorProcess(Process process)
    {
        _process = process;
    }

    public string GrpcHostPort { get; private set; } = string.Empty;

    public Uri HttpAddress { get; private set; } = null!;

    public int Id => _process.Id;

    /// <summary>Everything written to stdout and stderr so far.</summary>
    public IReadOnlyList<string> Output
    {
        get
        {
            lock (_output)
            {
                return [.. _output];
            }
        }
    }

    public static ProcessStartInfo StartInfo(params string[] args)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "Bridge.Emulators.CloudTasks.dll");
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(dll);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["Logging__LogLevel__Default"] = "Warning";
        return start;
    }

    /// <summary>Starts the executable with <c>--port 0 --http-port 0</c> and waits (bounded) until it prints its addresses.</summary>
    public static async Task<EmulatorProcess> StartAsync(params string[] args)
    {
        var emulator = new EmulatorProcess(Process.Start(StartInfo(["--port", "0", "--http-port", "0", .. args]))!);
        emulator._process.OutputDataReceived += (_, e) => emulator.OnLine(e.Data);
        emulator._process.ErrorDataReceived += (_, e) => emulator.OnLine(e.Data);
        emulator._process.EnableRaisingEvents = true;
        emulator._process.Exited += (_, _) => emulator._ready.TrySetException(new InvalidOperationException("The emulator exited before it was ready: " + string.Join('\n', emulator.Output)));
        emulator._process.BeginOutputReadLine();
        emulator._process.BeginErrorReadLine();
        var (grpc, http) = await emulator._ready.Task.WaitAsync(TimeSpan.FromSeconds(60));
        emulator.GrpcHostPort = grpc;
        emulator.HttpAddress = http;
        return emulator;
    }

    /// <summary>SIGKILL: no shutdown code runs.</summary>
    public async Task KillAsync()
    {
        _process.Kill();
        await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
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
            var grpc = _output.Select(l => GrpcLine().Match(l)).FirstOrDefault(m => m.Success);
            var http = _output.Select(l => HealthLine().Match(l)).FirstOrDefault(m => m.Success);
            if (grpc is not null && http is not null)
            {
                _ready.TrySetResult((grpc.Groups[1].Value, new Uri(http.Groups[1].Value, UriKind.Absolute)));
            }
        }
    }

    public static int Port(string hostPort) => int.Parse(hostPort[(hostPort.LastIndexOf(':') + 1)..], CultureInfo.InvariantCulture);

    [GeneratedRegex(@"^\s*gRPC:\s+(\S+:\d+)")]
    private static partial Regex GrpcLine();

    [GeneratedRegex(@"^\s*health:\s+(http://\S+:\d+)/health")]
    private static partial Regex HealthLine();
}
