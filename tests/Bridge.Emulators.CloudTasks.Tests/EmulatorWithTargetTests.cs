using Bridge.CloudTasks;
using Bridge.Testing;
using Task = System.Threading.Tasks.Task;

namespace Bridge.Emulators.CloudTasks.Tests;

/// <summary>Tests that need an emulator and a loopback task target, both fresh for each test.</summary>
public abstract class EmulatorWithTargetTests : IAsyncLifetime
{
    protected EmulatorHost Host { get; private set; } = null!;

    protected HttpTargetServer Target { get; private set; } = null!;

    protected CloudTasksClient Client => Host.Client;

    public async Task InitializeAsync()
    {
        Host = await EmulatorHost.StartAsync();
        Target = await HttpTargetServer.StartAsync();
    }

    public Task DisposeAsync() => Teardown.AllAsync(Host, Target);
}
