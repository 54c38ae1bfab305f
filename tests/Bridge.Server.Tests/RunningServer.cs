using System.Text.Json;
using Bridge.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Bridge.Server.Tests;

/// <summary>
/// The runner as `dotnet run` starts it (embedded emulator, demo route), on ports bound as 0 and read back. Errors it
/// logs fail the test (see <see cref="ErrorLogGuard.CheckOnStop"/>), unless <see cref="Errors"/> expects them.
/// </summary>
public sealed class RunningServer : IAsyncDisposable
{
    public const string DemoQueue = "projects/local-project/locations/local/queues/demo";

    private readonly WebApplication _app;

    private RunningServer(WebApplication app, ErrorLogGuard errors)
    {
        _app = app;
        Errors = errors;
        var options = app.Services.GetRequiredService<IOptions<ServerOptions>>().Value;
        Port = options.Port;
        EmulatorGrpcPort = options.EmulatorGrpcPort;
        Http = new HttpClient { BaseAddress = new Uri($"http://localhost:{Port}") };
    }

    public HttpClient Http { get; }

    public int Port { get; }

    public int EmulatorGrpcPort { get; }

    public ErrorLogGuard Errors { get; }

    public IServiceProvider Services => _app.Services;

    public static Task<RunningServer> StartAsync(params string[] settings) => StartAsync(configure: null, settings);

    public static async Task<RunningServer> StartAsync(Action<WebApplicationBuilder>? configure, params string[] settings)
    {
        var errors = new ErrorLogGuard();
        var args = new[] { "--Bridge:Server:Port=0", "--Bridge:Server:EmulatorGrpcPort=0", "--Bridge:Server:ServiceBusPort=0", "--environment=Testing", "--Logging:LogLevel:Default=Warning" }.Concat(settings).ToArray();
        var app = BridgeServerApp.Build(args, builder =>
        {
            builder.Logging.AddProvider(errors);
            configure?.Invoke(builder);
        });
        await app.StartAsync();
        return new RunningServer(app, errors);
    }

    public async Task<HttpResponseMessage> PostEventAsync(string body, string? idempotencyKey, string route = "demo", params (string, string)[] headers)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/events/{route}") { Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json") };
        if (idempotencyKey is not null)
        {
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        }

        foreach (var (name, value) in headers)
        {
            request.Headers.Add(name, value);
        }

        return await Http.SendAsync(request);
    }

    public async Task<List<JsonElement>> OutcomesAsync() =>
        JsonDocument.Parse(await Http.GetStringAsync("/api/outcomes")).RootElement.EnumerateArray().Select(e => e.Clone()).ToList();

    /// <summary>Waits, within a bound, until <paramref name="count"/> distinct tasks have an outcome.</summary>
    public async Task<List<JsonElement>> WaitForOutcomesAsync(int count, TimeSpan? timeout = null)
    {
        var outcomes = new List<JsonElement>();
        await Eventually.HoldsAsync(async () => (outcomes = await OutcomesAsync()).Select(o => o.GetProperty("subject").GetString()).Distinct().Count() >= count, timeout, () => $"{outcomes.Count} outcomes, expected {count}.");
        return outcomes;
    }

    /// <summary>Waits until the embedded emulator has no task left on the demo queue and no dispatch under way.</summary>
    public Task WaitForIdleAsync() =>
        Services.GetRequiredService<Bridge.Emulators.CloudTasks.CloudTasksEmulator>().WaitForIdleAsync(DemoQueue, TimeSpan.FromSeconds(30));

    public async ValueTask DisposeAsync() => await Teardown.AllAsync(Http, () => _app.StopAsync(), _app, Errors.CheckOnDispose());
}
