using Microsoft.Extensions.Options;

namespace Bridge.Server.Tests;

/// <summary>
/// The runner refuses to listen beyond loopback with no intake authentication, before it binds anything; bad intake
/// settings stop the start naming the key, never the value.
/// </summary>
public sealed class IntakeStartupTests
{
    private static readonly string[] PortsBoundAsZero = ["--Bridge:Server:Port=0", "--Bridge:Server:EmulatorGrpcPort=0", "--Bridge:Server:ServiceBusPort=0", "--environment=Testing"];

    [Theory]
    [InlineData("--Bridge:Server:ListenAddress=0.0.0.0", "0.0.0.0:0")]
    [InlineData("--Bridge:Server:ListenAddress=::", "[::]:0")]
    [InlineData("--Bridge:Server:ListenAddress=192.0.2.10", "192.0.2.10:0")]
    [InlineData("--Kestrel:Endpoints:Public:Url=http://*:5000", "http://*:5000")]
    [InlineData("--Kestrel:Endpoints:Public:Url=http://+:5000", "http://+:5000")]
    [InlineData("--Kestrel:Endpoints:Public:Url=http://bridge.example.com:5000", "http://bridge.example.com:5000")]
    public void Beyond_loopback_without_intake_authentication_is_refused_in_one_line_naming_the_settings(string setting, string address)
    {
        var error = Assert.Throws<UnprotectedIntakeException>(() => BridgeServerApp.Build([.. PortsBoundAsZero, setting]));

        Assert.DoesNotContain('\n', error.Message);
        Assert.Contains(address, error.Message, StringComparison.Ordinal);
        Assert.Contains("Bridge:Server:Intake:KeyHashes:0", error.Message, StringComparison.Ordinal);
        Assert.Contains("Bridge:Server:Intake:Entra:TenantId", error.Message, StringComparison.Ordinal);
        Assert.Contains("sha256sum", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--Kestrel:Endpoints:Local:Url=http://localhost:5000")]
    [InlineData("--Kestrel:Endpoints:Local:Url=http://[::1]:5000")]
    [InlineData("--Bridge:Server:ListenAddress=127.0.0.1")]
    public async Task Loopback_only_starts_open_as_before(string setting)
    {
        // Only the address check: a Kestrel endpoint from configuration is not bound (the app is not started).
        await using var app = BridgeServerApp.Build([.. PortsBoundAsZero, setting]);
    }

    [Fact]
    public void Bad_intake_settings_name_the_key_and_never_echo_a_key()
    {
        const string secret = "this-is-a-raw-key-not-a-hash";
        var error = Assert.Throws<OptionsValidationException>(() => BridgeServerApp.Build([
            .. PortsBoundAsZero,
            $"--Bridge:Server:Intake:KeyHashes:0={secret}",
            "--Bridge:Server:Intake:Entra:TenantId=common",
            "--Bridge:Server:Intake:Entra:Instance=http://login.example.com/"]));

        Assert.Contains(error.Failures, f => f.StartsWith("Bridge:Server:Intake:KeyHashes:0 (hash 1) is not a SHA-256 hash", StringComparison.Ordinal));
        Assert.Contains(error.Failures, f => f.StartsWith("Bridge:Server:Intake:Entra:TenantId 'common' is not one tenant", StringComparison.Ordinal));
        Assert.Contains(error.Failures, f => f.StartsWith("Bridge:Server:Intake:Entra:Audiences needs at least one audience", StringComparison.Ordinal));
        Assert.Contains(error.Failures, f => f.StartsWith("Bridge:Server:Intake:Entra needs AllowedRoles or AllowedClientIds", StringComparison.Ordinal));
        Assert.Contains(error.Failures, f => f.StartsWith("Bridge:Server:Intake:Entra:Instance 'http://login.example.com/' must be an https URL", StringComparison.Ordinal));
        Assert.DoesNotContain(secret, error.Message, StringComparison.Ordinal);
    }
}
