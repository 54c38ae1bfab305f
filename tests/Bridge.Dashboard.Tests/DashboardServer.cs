using Bridge.Emulators.CloudTasks;
using Bridge.Server;
using Bridge.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Bridge.Dashboard.Tests;

/// <summary>The runner on its embedded defaults, on ports bound as 0 and read back; its error logs fail the test.</summary>
public sealed class DashboardServer : IAsyncDisposable
{
    public const string DemoQueue = "projects/local-project/locations/local/queues/demo";

    private readonly WebApplication _app;

    private DashboardServer(WebApplication app, ErrorLogGuard errors)
    {
        _app = app;
        Errors = errors;
        Port = app.Services.GetRequiredService<IOptions<ServerOptions>>().Value.Port;
        BaseUrl = $"http://localhost:{Port}";
        Http = new HttpClient { BaseAddress = new Uri(BaseUrl) };
    }

    public int Port { get; }

    public string BaseUrl { get; }

    public HttpClient Http { get; }

    public ErrorLogGuard Errors { get; }

    public IServiceProvider Services => _app.Services;

    public CloudTasksEmulator Emulator => Services.GetRequiredService<CloudTasksEmulator>();

    public static async Task<DashboardServer> StartAsync(params string[] settings)
    {
        var errors = new ErrorLogGuard();
        var args = new[] { "--Bridge:Server:Port=0", "--Bridge:Server:EmulatorGrpcPort=0", "--Bridge:Server:ServiceBusPort=0", "--environment=Testing", "--Logging:LogLevel:Default=Warning" }.Concat(settings).ToArray();
        var app = BridgeServerApp.Build(args, builder => builder.Logging.AddProvider(errors));
        await app.StartAsync();
        return new DashboardServer(app, errors);
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        Errors.ThrowIfUnexpected();
    }
}
