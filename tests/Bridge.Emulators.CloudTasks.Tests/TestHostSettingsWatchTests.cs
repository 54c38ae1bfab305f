using Bridge.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Bridge.Emulators.CloudTasks.Tests;

/// <summary>
/// The tests' and benches' emulator host reads its settings files once, as the emulator executable does: a reload watch
/// on the content root (the working directory) watches every folder under it, and a durable data folder there woke the
/// watcher's thread on every store write (the dispatch bench, run from the temp folder its data sits in, paid for it).
/// </summary>
public sealed class TestHostSettingsWatchTests
{
    [Fact]
    public async Task The_emulator_host_watches_no_settings_file()
    {
        await using var host = await EmulatorHost.StartAsync();

        var configuration = (IConfigurationRoot)host.Services.GetRequiredService<IConfiguration>();
        var files = configuration.Providers.OfType<FileConfigurationProvider>().ToList();
        Assert.NotEmpty(files); // appsettings.json is still read, once
        Assert.All(files, file => Assert.False(file.Source.ReloadOnChange, file.Source.Path));
    }
}
