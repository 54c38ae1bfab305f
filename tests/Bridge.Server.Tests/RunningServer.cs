using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;

namespace Bridge.Server.Tests;

/// <summary>The runner as `dotnet run` starts it (embedded emulator, demo route), on free loopback ports.</summary>
public sealed class RunningServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private RunningServer(WebApplication app, int port)
    {
        _app = app;
        Http = new HttpClient { BaseAddress = new Uri($"http://localhost:{port}") };
    }

    public HttpClient Http { get; }

    public IServiceProvider Services => _app.Services;

    public static Task<RunningServer> StartAsync(params string[] settings) => StartOnAsync(FreePort(), FreePort(), settings);

    public static async Task<RunningServer> StartOnAsync(int port, int grpc, params string[] settings)
    {
        var args = new[] { $"--Bridge:Server:Port={port}", $"--Bridge:Server:EmulatorGrpcPort={grpc}", "--environment=Testing", "--Logging:LogLevel:Default=Warning" }.Concat(settings).ToArray();
        var app = BridgeServerApp.Build(args);
        await app.StartAsync();
        return new RunningServer(app, port);
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

    /// <summary>Polls the outcomes until <paramref name="count"/> distinct tasks have one.</summary>
    public async Task<List<JsonElement>> WaitForOutcomesAsync(int count, TimeSpan? timeout = null)
    {
        var until = TimeProvider.System.GetUtcNow() + (timeout ?? TimeSpan.FromSeconds(30));
        List<JsonElement> outcomes;
        while ((outcomes = await OutcomesAsync()).Select(o => o.GetProperty("subject").GetString()).Distinct().Count() < count)
        {
            if (TimeProvider.System.GetUtcNow() > until)
            {
                throw new TimeoutException($"{outcomes.Count} outcomes, expected {count}.");
            }

            await Task.Delay(50);
        }

        return outcomes;
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
