using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Bridge.CloudTasks;
using Bridge.Testing;
using Task = System.Threading.Tasks.Task;

namespace Bridge.Emulators.CloudTasks.Tests;

/// <summary>
/// The emulator's executable as its own process (the one that holds the state, so Kill is a SIGKILL of it), started
/// on ports 0 and read back from the addresses it prints.
/// </summary>
internal sealed partial class EmulatorProcess : IDisposable
{
    private readonly ChildProcess _child;

    private EmulatorProcess(ChildProcess child)
    {
        _child = child;
        GrpcHostPort = child.Values[0];
        HttpAddress = new Uri(child.Values[1], UriKind.Absolute);
    }

    public string GrpcHostPort { get; }

    public Uri HttpAddress { get; }

    public int Id => _child.Id;

    /// <summary>A client of the emulator's gRPC port (the caller disposes it).</summary>
    public CloudTasksClient CreateClient() => new CloudTasksClientBuilder { EmulatorHost = GrpcHostPort, EmulatorDetection = EmulatorDetection.None }.Build();

    /// <summary>Everything written to stdout and stderr so far.</summary>
    public IReadOnlyList<string> Output => _child.Output;

    public static ProcessStartInfo StartInfo(params string[] args) => ChildProcess.DotnetStartInfo("Bridge.Emulators.CloudTasks.dll", args);

    /// <summary>Starts the executable with <c>--port 0 --http-port 0</c> and waits (bounded) until it prints its addresses.</summary>
    public static async Task<EmulatorProcess> StartAsync(params string[] args) =>
        new(await ChildProcess.StartAsync(StartInfo(["--port", "0", "--http-port", "0", .. args]), "The emulator", TimeSpan.FromSeconds(60), GrpcLine(), HealthLine()));

    /// <summary>SIGKILL: no shutdown code runs.</summary>
    public Task KillAsync() => _child.KillAsync();

    public void Dispose() => _child.Dispose();

    public static int Port(string hostPort) => int.Parse(hostPort[(hostPort.LastIndexOf(':') + 1)..], CultureInfo.InvariantCulture);

    [GeneratedRegex(@"^\s*gRPC:\s+(\S+:\d+)")]
    private static partial Regex GrpcLine();

    [GeneratedRegex(@"^\s*health:\s+(http://\S+:\d+)/health")]
    private static partial Regex HealthLine();
}
