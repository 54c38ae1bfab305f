using System.Net;
using Bridge.CloudTasks;
using Bridge.CloudTasks.V2Beta3;
using Bridge.Emulators.CloudTasks;
using Google.Protobuf.WellKnownTypes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Bridge.Testing;

/// <summary>
/// The emulator hosted in-process on two loopback ports (gRPC over HTTP/2, REST and OIDC over HTTP/1.1), with a client.
/// Errors it logs (a failed dispatch loop, an exception in a service method) fail the test (see <see cref="ErrorLogGuard.CheckOnStop"/>),
/// unless <see cref="Errors"/> expects them.
/// </summary>
public sealed class EmulatorHost : IAsyncDisposable
{
    private readonly WebApplication _app;

    private EmulatorHost(WebApplication app, ErrorLogGuard errors, string grpcHostPort, Uri httpAddress)
    {
        _app = app;
        Errors = errors;
        GrpcHostPort = grpcHostPort;
        HttpAddress = httpAddress;
        Emulator = app.Services.GetRequiredService<CloudTasksEmulator>();
        Client = new CloudTasksClientBuilder { EmulatorHost = grpcHostPort, EmulatorDetection = EmulatorDetection.None }.Build();
    }

    public static readonly LocationName Location = new("emulator-project", "europe-west1");

    public string GrpcHostPort { get; }

    public Uri HttpAddress { get; }

    public CloudTasksEmulator Emulator { get; }

    public CloudTasksClient Client { get; }

    public IServiceProvider Services => _app.Services;

    public ErrorLogGuard Errors { get; }

    /// <summary>Starts an emulator on two ports bound as 0; <paramref name="time"/> (a FakeTimeProvider) drives its backoff, schedules and deadlines.</summary>
    public static async Task<EmulatorHost> StartAsync(Action<EmulatorOptions>? configure = null, TimeProvider? time = null)
    {
        var builder = WebApplication.CreateSlimBuilder(["--hostBuilder:reloadConfigOnChange=false"]); // settings read once: no inotify watch of the working directory and all below it
        var errors = new ErrorLogGuard();
        builder.Logging.ClearProviders().AddProvider(errors);
        if (time is not null)
        {
            builder.Services.AddSingleton(time);
        }

        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http2);
            k.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http1);
        });
        builder.Services.AddCloudTasksEmulator(o =>
        {
            o.Port = 0;
            o.HttpPort = 0;
            configure?.Invoke(o);
        });
        var app = builder.Build();
        app.MapCloudTasksEmulator();
        await app.StartAsync();
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Select(a => new Uri(a)).ToList();
        var host = new EmulatorHost(app, errors, $"127.0.0.1:{addresses[0].Port}", new Uri($"http://127.0.0.1:{addresses[1].Port}"));
        host.Emulator.UseHttpAddress(host.HttpAddress);
        return host;
    }

    /// <summary>Creates a queue with a unique id and fast retries unless the caller says otherwise.</summary>
    public async Task<QueueName> CreateQueueAsync(Action<Queue>? configure = null)
    {
        var name = Location.Queue("q-" + Guid.NewGuid().ToString("N")[..12]);
        var queue = new Queue
        {
            Name = name.ToString(),
            RetryConfig = new RetryConfig { MaxAttempts = 5, MinBackoff = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(100)), MaxBackoff = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(400)), MaxDoublings = 2 },
        };
        configure?.Invoke(queue);
        await Client.CreateQueueAsync(Location, queue);
        return name;
    }

    public async ValueTask DisposeAsync() => await Teardown.AllAsync(Client, () => _app.StopAsync(), _app, Errors.CheckOnDispose());
}
