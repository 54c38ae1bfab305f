using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Bridge.Testing;

namespace Bridge.Emulators.ServiceBus.Tests;

/// <summary>The executable's start-up: a port in use is one line naming the setting to change, not a stack trace.</summary>
public sealed class ExecutableTests
{
    [Theory]
    [InlineData("--port", "SERVICEBUS_EMULATOR_PORT")]
    [InlineData("--http-port", "SERVICEBUS_EMULATOR_HTTP_PORT")]
    public async Task A_port_in_use_is_one_line_naming_the_setting_to_change(string flag, string variable)
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port.ToString(CultureInfo.InvariantCulture);
        string[] args = flag == "--port" ? ["--port", port, "--http-port", "0"] : ["--port", "0", "--http-port", port];

        var exited = await ChildProcess.RunToExitAsync(ChildProcess.DotnetStartInfo("Bridge.Emulators.ServiceBus.dll", args), TimeSpan.FromSeconds(60));

        Assert.Equal(2, exited.ExitCode);
        var line = Assert.Single(exited.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains($"port {port} on 127.0.0.1 is already in use", line, StringComparison.Ordinal);
        Assert.Contains($"choose another with {flag} <port> (or {variable}; 0 picks a free port)", line, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", exited.Stdout + exited.Stderr, StringComparison.Ordinal);
    }
}
