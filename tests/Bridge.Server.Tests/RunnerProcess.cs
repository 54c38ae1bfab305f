using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Bridge.Server.Tests;

/// <summary>
/// The runner's executable as its own process, started the way a user starts it (<c>dotnet Bridge.Server.dll</c>,
/// embedded emulator): so <see cref="KillAsync"/> is a SIGKILL of the process holding the state and no shutdown code
/// runs. Ports come from the lines it prints, so they can be 0.
/// </summary>
internal sealed partial class RunnerProcess : IDisposable
{
    private readonly Process _process;
    private readonly TaskCompletionSource<(int Port, int Grpc)> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<string> _output = [];
    private readonly Regex? _readyWhen;

    private RunnerProcess(Process process, Regex? readyWhen)
    {
        _process = process;
        _readyWhen = readyWhen;
    }

    public int Port { get; private set; }

    public int EmulatorGrpcPort { get; private set; }

    /// <summary>The embedded Service Bus emulator's AMQP port as the banner names it (0 when it has none).</summary>
    public int ServiceBusPort
    {
        get
        {
            lock (_output)
            {
                return _output.Select(l => ServiceBusLine().Match(l)).FirstOrDefault(m => m.Success) is { } match
                    ? int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture)
                    : 0;
            }
        }
    }

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

    /// <summary>Lines the console logger wrote at Error or Critical: the child's counterpart of ErrorLogGuard.</summary>
    public IReadOnlyList<string> Errors => Output.Where(l => l.StartsWith("fail:", StringComparison.Ordinal) || l.StartsWith("crit:", StringComparison.Ordinal)).ToList();

    /// <summary>Starts the runner with <paramref name="settings"/> (command-line configuration) and waits, bounded, until it serves.</summary>
    public static Task<RunnerProcess> StartAsync(params string[] settings) => StartAsync(readyWhen: null, settings);

    /// <summary>
    /// Starts the runner and waits, bounded, until it prints a line matching <paramref name="readyWhen"/> (for a runner
    /// without the embedded emulator, whose banner it does not print); null: until it serves the embedded emulator.
    /// </summary>
    public static async Task<RunnerProcess> StartAsync(Regex? readyWhen, params string[] settings)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = AppContext.BaseDirectory,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Bridge.Server.dll"));
        foreach (var setting in settings)
        {
            start.ArgumentList.Add(setting);
        }

        start.Environment["DOTNET_ENVIRONMENT"] = "Testing";
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Testing";
        start.Environment["Logging__LogLevel__Default"] = "Warning";
        start.Environment["Logging__LogLevel__Bridge"] = "Warning";
        var runner = new RunnerProcess(Process.Start(start)!, readyWhen);
        runner._process.OutputDataReceived += (_, e) => runner.OnLine(e.Data);
        runner._process.ErrorDataReceived += (_, e) => runner.OnLine(e.Data);
        runner._process.EnableRaisingEvents = true;
        runner._process.Exited += (_, _) => runner._ready.TrySetException(new InvalidOperationException("The runner exited before it was ready: " + string.Join('\n', runner.Output)));
        runner._process.BeginOutputReadLine();
        runner._process.BeginErrorReadLine();
        try
        {
            (runner.Port, runner.EmulatorGrpcPort) = await runner._ready.Task.WaitAsync(TimeSpan.FromSeconds(90));
        }
        catch
        {
            runner.Dispose();
            throw;
        }

        return runner;
    }

    /// <summary>SIGKILL: no shutdown code runs; whatever was in flight is cut.</summary>
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
            if (_readyWhen is not null)
            {
                if (_readyWhen.IsMatch(line))
                {
                    _ready.TrySetResult((0, 0));
                }

                return;
            }

            var grpc = _output.Select(l => GrpcLine().Match(l)).FirstOrDefault(m => m.Success);
            var api = _output.Select(l => EventLine().Match(l)).FirstOrDefault(m => m.Success);
            if (grpc is not null && api is not null)
            {
                _ready.TrySetResult((int.Parse(api.Groups[1].Value, CultureInfo.InvariantCulture), int.Parse(grpc.Groups[1].Value, CultureInfo.InvariantCulture)));
            }
        }
    }

    [GeneratedRegex(@"embedded Cloud Tasks emulator \(gRPC 127\.0\.0\.1:(\d+),")]
    private static partial Regex GrpcLine();

    [GeneratedRegex(@"embedded Service Bus emulator \(AMQP 127\.0\.0\.1:(\d+),")]
    private static partial Regex ServiceBusLine();

    [GeneratedRegex(@"send an event:\s+curl -X POST http://localhost:(\d+)/api/events/demo")]
    private static partial Regex EventLine();
}
