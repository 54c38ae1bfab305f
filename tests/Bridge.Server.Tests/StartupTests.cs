using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Options;

namespace Bridge.Server.Tests;

/// <summary>What the runner says when it can't start: one line naming the setting to change.</summary>
public sealed class StartupTests
{
    [Theory]
    [InlineData("Bridge:Server:Port")]
    [InlineData("Bridge:Server:EmulatorGrpcPort")]
    [InlineData("Bridge:Server:ServiceBusPort")]
    public void A_port_in_use_is_one_line_naming_the_setting(string setting)
    {
        using var holder = new TcpListener(IPAddress.Loopback, 0);
        holder.Start();
        var taken = ((IPEndPoint)holder.LocalEndpoint).Port;
        string[] others = [.. new[] { "Bridge:Server:Port", "Bridge:Server:EmulatorGrpcPort", "Bridge:Server:ServiceBusPort" }.Where(s => s != setting).Select(s => $"--{s}=0")];

        var error = Assert.Throws<PortInUseException>(() => BridgeServerApp.Build([$"--{setting}={taken}", .. others, "--environment=Testing"]));

        Assert.Equal($"Port {taken} on 127.0.0.1 is already in use: set {setting} (environment {setting.Replace(":", "__", StringComparison.Ordinal)}) to a free port, or 0 for any.", error.Message);
    }

    [Fact]
    public void Bad_server_settings_stop_the_start_naming_key_and_value()
    {
        var error = Assert.Throws<OptionsValidationException>(() => BridgeServerApp.Build(["--Bridge:Server:Port=70000", "--Bridge:Server:ListenAddress=localhost", "--Bridge:Server:ServiceBusPort=-1", "--environment=Testing"]));

        Assert.Contains("Bridge:Server:Port 70000 must be between 0 (any free port) and 65535.", error.Failures);
        Assert.Contains("Bridge:Server:ListenAddress 'localhost' is not an IP address (127.0.0.1, 0.0.0.0, ::).", error.Failures);
        Assert.Contains("Bridge:Server:ServiceBusPort -1 must be between 0 (any free port) and 65535.", error.Failures);
    }

    [Theory]
    [InlineData("0", "-1")]
    [InlineData("abc", "10001")]
    [InlineData("65", "1.5")]
    public void Bad_service_bus_intake_settings_stop_the_start_one_message_each(string calls, string prefetch)
    {
        var error = Assert.Throws<OptionsValidationException>(() => BridgeServerApp.Build(
        [
            "--Bridge:Server:Port=0", "--Bridge:Server:EmulatorGrpcPort=0", "--Bridge:Server:ServiceBusPort=0", "--environment=Testing",
            $"--Bridge:ServiceBus:MaxConcurrentCalls={calls}", $"--Bridge:ServiceBus:PrefetchCount={prefetch}",
        ]));

        Assert.Equal(
            [
                $"Bridge:ServiceBus:MaxConcurrentCalls '{calls}' must be a whole number from 1 to 64 (batches under way at once).",
                $"Bridge:ServiceBus:PrefetchCount '{prefetch}' must be a whole number from 0 to 10000 (messages fetched ahead, 0 for none).",
            ],
            error.Failures);
    }

    [Fact]
    public async Task Service_bus_intake_settings_at_their_limits_are_accepted()
    {
        await using var app = BridgeServerApp.Build(
        [
            "--Bridge:Server:Port=0", "--Bridge:Server:EmulatorGrpcPort=0", "--Bridge:Server:ServiceBusPort=0", "--environment=Testing",
            "--Bridge:ServiceBus:MaxConcurrentCalls=64", "--Bridge:ServiceBus:PrefetchCount=0", "--Bridge:ServiceBus:MaxBatchSize=100",
        ]);

        Assert.NotNull(app);
    }

    [Fact]
    public void An_embedded_emulator_behind_a_specific_non_loopback_address_stops_the_start()
    {
        // A specific address (not 0.0.0.0 or ::) is never listened on through localhost, which the embedded emulator uses.
        var error = Assert.Throws<OptionsValidationException>(() => BridgeServerApp.Build(
        [
            "--Bridge:Server:Port=0", "--Bridge:Server:EmulatorGrpcPort=0", "--Bridge:Server:ServiceBusPort=0", "--environment=Testing",
            "--Bridge:Server:ListenAddress=192.0.2.10", $"--Bridge:Server:Intake:KeyHashes:0={new string('a', 64)}",
        ]));

        Assert.Contains(error.Failures, f => f.StartsWith("Bridge:Server:ListenAddress '192.0.2.10' leaves the embedded emulator no loopback way in", StringComparison.Ordinal));
    }
}
