using System.Globalization;
using System.Text.RegularExpressions;
using Bridge.Testing;

namespace Bridge.Server.Tests;

/// <summary>
/// The runner's executable as its own process, started the way a user starts it (<c>dotnet Bridge.Server.dll</c>,
/// embedded emulator): so <see cref="KillAsync"/> is a SIGKILL of the process holding the state and no shutdown code
/// runs. Ports come from the lines it prints, so they can be 0.
/// </summary>
internal sealed partial class RunnerProcess : IDisposable
{
    private readonly ChildProcess _child;

    private RunnerProcess(ChildProcess child, int port, int emulatorGrpcPort)
    {
        _child = child;
        Port = port;
        EmulatorGrpcPort = emulatorGrpcPort;
    }

    public int Port { get; }

    public int EmulatorGrpcPort { get; }

    /// <summary>The embedded Service Bus emulator's AMQP port as the banner names it (0 when it has none).</summary>
    public int ServiceBusPort => _child.FirstMatch(ServiceBusLine()) is { } match ? ParsePort(match.Groups[1].Value) : 0;

    /// <summary>Everything written to stdout and stderr so far.</summary>
    public IReadOnlyList<string> Output => _child.Output;

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
        var start = ChildProcess.DotnetStartInfo("Bridge.Server.dll", settings);
        start.WorkingDirectory = AppContext.BaseDirectory;
        start.Environment["DOTNET_ENVIRONMENT"] = "Testing";
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Testing";
        start.Environment["Logging__LogLevel__Bridge"] = "Warning";
        var timeout = TimeSpan.FromSeconds(90);
        if (readyWhen is not null)
        {
            return new RunnerProcess(await ChildProcess.StartAsync(start, "The runner", timeout, readyWhen), 0, 0);
        }

        var child = await ChildProcess.StartAsync(start, "The runner", timeout, EventLine(), GrpcLine());
        return new RunnerProcess(child, ParsePort(child.Values[0]), ParsePort(child.Values[1]));
    }

    /// <summary>SIGKILL: no shutdown code runs; whatever was in flight is cut.</summary>
    public Task KillAsync() => _child.KillAsync();

    public void Dispose() => _child.Dispose();

    private static int ParsePort(string value) => int.Parse(value, CultureInfo.InvariantCulture);

    [GeneratedRegex(@"embedded Cloud Tasks emulator \(gRPC 127\.0\.0\.1:(\d+),")]
    private static partial Regex GrpcLine();

    [GeneratedRegex(@"embedded Service Bus emulator \(AMQP 127\.0\.0\.1:(\d+),")]
    private static partial Regex ServiceBusLine();

    [GeneratedRegex(@"send an event:\s+curl -X POST http://localhost:(\d+)/api/events/demo")]
    private static partial Regex EventLine();
}
