using Microsoft.Extensions.Configuration;

namespace Bridge.Server.Tests;

/// <summary>
/// The runner reads its settings files once: a reload watch on the content root would watch every folder under it,
/// an emulator data folder there included, and wake the watcher's thread on every write of the stores.
/// </summary>
public sealed class SettingsWatchTests
{
    private static readonly string[] PortsBoundAsZero = ["--Bridge:Server:Port=0", "--Bridge:Server:EmulatorGrpcPort=0", "--Bridge:Server:ServiceBusPort=0", "--environment=Testing"];

    [Fact]
    public async Task No_settings_file_is_watched_for_changes()
    {
        await using var app = BridgeServerApp.Build(PortsBoundAsZero);

        var files = ((IConfigurationRoot)app.Configuration).Providers.OfType<FileConfigurationProvider>().ToList();
        Assert.NotEmpty(files); // appsettings.json is still read
        Assert.All(files, file => Assert.False(file.Source.ReloadOnChange, file.Source.Path));
    }

    [Fact]
    public async Task A_later_argument_can_still_turn_the_watch_on()
    {
        await using var app = BridgeServerApp.Build([.. PortsBoundAsZero, "--hostBuilder:reloadConfigOnChange=true"]);

        var files = ((IConfigurationRoot)app.Configuration).Providers.OfType<FileConfigurationProvider>().ToList();
        Assert.Contains(files, file => file.Source.ReloadOnChange);
    }
}
