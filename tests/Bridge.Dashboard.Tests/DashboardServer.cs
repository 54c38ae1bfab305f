using Bridge.Emulators.CloudTasks;
using Bridge.Server.Tests;
using Bridge.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Bridge.Dashboard.Tests;

/// <summary>The runner on its embedded defaults, on ports bound as 0 and read back; its error logs fail the test (the server tests' <see cref="RunningServer"/>).</summary>
public sealed class DashboardServer : IAsyncDisposable
{
    public const string DemoQueue = RunningServer.DemoQueue;

    private readonly RunningServer _server;

    private DashboardServer(RunningServer server)
    {
        _server = server;
        BaseUrl = $"http://localhost:{server.Port}";
    }

    public int Port => _server.Port;

    public string BaseUrl { get; }

    public HttpClient Http => _server.Http;

    public ErrorLogGuard Errors => _server.Errors;

    public IServiceProvider Services => _server.Services;

    public CloudTasksEmulator Emulator => Services.GetRequiredService<CloudTasksEmulator>();

    public static async Task<DashboardServer> StartAsync(params string[] settings) => new(await RunningServer.StartAsync(settings));

    public ValueTask DisposeAsync() => _server.DisposeAsync();
}
