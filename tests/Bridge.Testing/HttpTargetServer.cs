using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Bridge.Testing;

/// <summary>A request as the target received it.</summary>
public sealed record ReceivedRequest(string Method, string PathAndQuery, IReadOnlyDictionary<string, string> Headers, byte[] Body, DateTimeOffset ReceivedAt)
{
    public string? Header(string name) => Headers.TryGetValue(name, out var value) ? value : null;

    /// <summary>The body as UTF-8 text.</summary>
    public string Text => System.Text.Encoding.UTF8.GetString(Body);
}

/// <summary>How the target answers one request.</summary>
public sealed record TargetResponse(int Status, TimeSpan Delay = default, IReadOnlyDictionary<string, string>? Headers = null, string? Json = null)
{
    public static TargetResponse Ok { get; } = new(200);
}

/// <summary>
/// A real HTTP server on a loopback port that plays a task's target or a token endpoint: records every request
/// (headers, body, time) and answers as <see cref="Respond"/> says. Errors logged by the server (a
/// <see cref="Respond"/> that throws) fail the test (see <see cref="ErrorLogGuard.CheckOnStop"/>), unless <see cref="Errors"/> expects them.
/// </summary>
public sealed class HttpTargetServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly SemaphoreSlim _arrived = new(0);

    private HttpTargetServer(WebApplication app, ErrorLogGuard errors)
    {
        _app = app;
        Errors = errors;
    }

    public ErrorLogGuard Errors { get; }

    public Uri Address { get; private set; } = null!;

    public ConcurrentQueue<ReceivedRequest> Requests { get; } = new();

    /// <summary>Answers a request; gets the request and how many requests came before it on the same path.</summary>
    public Func<ReceivedRequest, int, TargetResponse> Respond { get; set; } = (_, _) => TargetResponse.Ok;

    public Uri Url(string path) => new(Address, path);

    /// <summary>A server that answers every request with a JSON body (token endpoints, metadata services).</summary>
    public static async Task<HttpTargetServer> StartJsonAsync(Func<ReceivedRequest, (int Status, string Json)> respond)
    {
        var server = await StartAsync();
        server.Respond = (request, _) =>
        {
            var (status, json) = respond(request);
            return new TargetResponse(status, Json: json);
        };
        return server;
    }

    public static async Task<HttpTargetServer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder(["--hostBuilder:reloadConfigOnChange=false"]); // settings read once: no inotify watch of the working directory and all below it
        var errors = new ErrorLogGuard();
        builder.Logging.ClearProviders().AddProvider(errors);
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        var server = new HttpTargetServer(app, errors);
        var perPath = new ConcurrentDictionary<string, int>();
        app.Run(async context =>
        {
            using var body = new MemoryStream();
            try
            {
                await context.Request.Body.CopyToAsync(body, context.RequestAborted);
            }
            catch (Exception) when (context.RequestAborted.IsCancellationRequested)
            {
                return; // the caller gave up (a dispatch deadline, a test ending): nothing to record or answer
            }
            var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            foreach (var (key, value) in context.Request.Headers)
            {
                headers[key] = value.ToString();
            }

            var request = new ReceivedRequest(context.Request.Method, context.Request.Path + context.Request.QueryString, headers, body.ToArray(), TimeProvider.System.GetUtcNow());
            var before = perPath.AddOrUpdate(context.Request.Path, 1, (_, n) => n + 1) - 1;
            server.Requests.Enqueue(request);
            server._arrived.Release();
            var response = server.Respond(request, before);
            if (response.Delay > TimeSpan.Zero)
            {
                try
                {
                    await Task.Delay(response.Delay, context.RequestAborted);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }

            context.Response.StatusCode = response.Status;
            foreach (var (key, value) in response.Headers ?? new Dictionary<string, string>())
            {
                context.Response.Headers[key] = value;
            }

            if (response.Json is not null)
            {
                context.Response.ContentType = "application/json";
                await context.Response.Body.WriteAsync(System.Text.Encoding.UTF8.GetBytes(response.Json));
            }
        });
        await app.StartAsync();
        var bound = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single());
        server.Address = new Uri($"http://127.0.0.1:{bound.Port}");
        return server;
    }

    /// <summary>Waits until at least <paramref name="count"/> requests arrived in all.</summary>
    public async Task<IReadOnlyList<ReceivedRequest>> WaitForRequestsAsync(int count, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
        while (Requests.Count < count)
        {
            try
            {
                await _arrived.WaitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"Expected {count} requests at the target, got {Requests.Count}.");
            }
        }

        return Requests.ToList();
    }

    public async ValueTask DisposeAsync() => await Teardown.AllAsync(() => _app.StopAsync(), _app, _arrived, Errors.CheckOnDispose());
}
