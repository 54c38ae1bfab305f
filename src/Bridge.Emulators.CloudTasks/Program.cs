using Bridge.CloudTasks;
using Bridge.Dashboard;
using Bridge.Emulators.CloudTasks;
using Bridge.Emulators.CloudTasks.Internal;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;
using OpenTelemetry.Trace;

// dotnet run --project src/Bridge.Emulators.CloudTasks -- --port 8123 --http-port 8124 [--data <dir>] [--durability ProcessCrash|PowerLoss] [--issuer <url>] [--queues p/l/q,...]
// Settings files are read once, not watched: a reload watch on the content root watches every folder under it (inotify
// on Linux), a --data folder there included, and then every commit's writes woke the watcher's thread.
var builder = WebApplication.CreateSlimBuilder(["--hostBuilder:reloadConfigOnChange=false", .. args]);
builder.Configuration.AddInMemoryCollection(FromEnvironment());
builder.Configuration.AddCommandLine(args, new Dictionary<string, string>
{
    ["--port"] = "Emulator:Port",
    ["--http-port"] = "Emulator:HttpPort",
    ["--data"] = "Emulator:Data",
    ["--durability"] = "Emulator:Durability",
    ["--issuer"] = "Emulator:Issuer",
    ["--queues"] = "Emulator:Queues",
    ["--listen"] = "Emulator:ListenAddress",
    ["--app-engine-host"] = "Emulator:AppEngineHost",
});

// Start-up failures the user can fix (a bad setting, a port in use) get one line from us below, not the host's
// stack trace; after start-up every log passes.
var started = false;
builder.Logging.AddFilter("Microsoft.AspNetCore.Server.Kestrel", level => level >= LogLevel.Warning && (started || level < LogLevel.Error));
builder.Logging.AddFilter("Microsoft.Extensions.Hosting.Internal.Host", level => level >= LogLevel.Warning && (started || level < LogLevel.Error));

if (EmulatorOptionsValidator.CheckDurabilityText(builder.Configuration["Emulator:Durability"]) is { } badDurability)
{
    return InvalidSettings([badDurability]);
}

var options = builder.Configuration.GetSection(EmulatorOptions.SectionName).Get<EmulatorOptions>() ?? new EmulatorOptions();
if (new EmulatorOptionsValidator().Validate(null, options) is { Failed: true } invalid)
{
    // Checked here too because Kestrel's listen addresses are read while the app is built, before ValidateOnStart.
    return InvalidSettings(invalid.Failures!);
}

builder.Services.AddCloudTasksEmulator(o => builder.Configuration.GetSection(EmulatorOptions.SectionName).Bind(o));

// The dashboard's queue pages, through the official client's path: a Bridge client on this emulator's own gRPC port.
builder.Services.AddBridgeDashboardPages();
builder.Services.AddOptions<DashboardOptions>().Configure<CloudTasksEmulator>((o, emulator) => o.LocationSource = emulator.QueueLocations);
builder.Services.AddSingleton(sp => new CloudTasksClientBuilder
{
    EmulatorHost = OwnGrpcHostPort(sp.GetRequiredService<IServer>()),
    EmulatorDetection = EmulatorDetection.None,
}.Build());
builder.WebHost.ConfigureKestrel(kestrel =>
{
    EmulatorOptionsValidator.TryParseListenAddress(options.ListenAddress, out var address);
    kestrel.Listen(address, options.Port, listen => listen.Protocols = HttpProtocols.Http2);
    kestrel.Listen(address, options.HttpPort, listen => listen.Protocols = HttpProtocols.Http1);
});
if (!string.IsNullOrEmpty(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]))
{
    builder.Services.AddOpenTelemetry().WithTracing(t => t.AddSource(CloudTasksEmulatorTelemetry.SourceName).AddOtlpExporter());
}

var app = builder.Build();
try
{
    app.MapCloudTasksEmulator();
    app.MapCloudTasksDashboard();
    await app.StartAsync();
    app.Services.CreateConfiguredQueues();
}
catch (OptionsValidationException ex)
{
    return InvalidSettings(ex.Failures);
}
catch (DataFolderRefusedException ex)
{
    Console.Error.WriteLine(ex.Message);
    return 2;
}
catch (IOException ex) when (ex.InnerException is AddressInUseException)
{
    Console.Error.WriteLine(PortInUse(ex.Message, options));
    return 2;
}

started = true;
var bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Select(a => new Uri(a)).ToList();
var grpc = bound[0];
var http = bound[1];
var emulator = app.Services.GetRequiredService<CloudTasksEmulator>();
emulator.UseHttpAddress(http);
Console.WriteLine($"Cloud Tasks emulator (v2beta3 and v2)");
Console.WriteLine($"  gRPC:   {grpc.Host}:{grpc.Port}   (export CLOUD_TASKS_EMULATOR_HOST={grpc.Host}:{grpc.Port})");
Console.WriteLine($"  REST:   http://{http.Host}:{http.Port}/v2beta3/... and /v2/...");
Console.WriteLine($"  OIDC:   issuer {emulator.Issuer}, discovery {emulator.DiscoveryUrl}");
Console.WriteLine($"  health: http://{http.Host}:{http.Port}/health");
Console.WriteLine($"  dashboard: http://localhost:{http.Port}/   (loopback only)");
Console.WriteLine($"  data:   {(string.IsNullOrWhiteSpace(options.Data) ? "in memory (use --data <dir> to keep state)" : $"{Path.GetFullPath(options.Data)} (durability {options.Durability})")}");
await app.WaitForShutdownAsync();
return 0;

// The first address bound is gRPC's (see ConfigureKestrel); a wildcard listen is reached on loopback.
static string OwnGrpcHostPort(IServer server)
{
    var grpc = new Uri(server.Features.Get<IServerAddressesFeature>()!.Addresses.First());
    var host = grpc.Host is "0.0.0.0" or "[::]" ? "127.0.0.1" : grpc.Host;
    return $"{host}:{grpc.Port}";
}

static int InvalidSettings(IEnumerable<string> failures)
{
    foreach (var failure in failures)
    {
        Console.Error.WriteLine($"Invalid setting: {failure}");
    }

    return 2;
}

// One line naming the setting to change; Kestrel's message carries the address it failed to bind.
static string PortInUse(string message, EmulatorOptions options)
{
    var (port, flag, variable) = message.Contains($":{options.HttpPort}:", StringComparison.Ordinal)
        ? (options.HttpPort, "--http-port", "CLOUDTASKS_EMULATOR_HTTP_PORT")
        : (options.Port, "--port", "CLOUDTASKS_EMULATOR_PORT");
    return $"Port {port} on {options.ListenAddress} is already in use: choose another with {flag} <port> (or {variable}; 0 picks a free port).";
}

// CLOUDTASKS_EMULATOR_PORT, _HTTP_PORT, _DATA, _DURABILITY, _ISSUER, _QUEUES, _LISTEN, _APP_ENGINE_HOST
static Dictionary<string, string?> FromEnvironment()
{
    var map = new Dictionary<string, string>
    {
        ["CLOUDTASKS_EMULATOR_PORT"] = "Emulator:Port",
        ["CLOUDTASKS_EMULATOR_HTTP_PORT"] = "Emulator:HttpPort",
        ["CLOUDTASKS_EMULATOR_DATA"] = "Emulator:Data",
        ["CLOUDTASKS_EMULATOR_DURABILITY"] = "Emulator:Durability",
        ["CLOUDTASKS_EMULATOR_ISSUER"] = "Emulator:Issuer",
        ["CLOUDTASKS_EMULATOR_QUEUES"] = "Emulator:Queues",
        ["CLOUDTASKS_EMULATOR_LISTEN"] = "Emulator:ListenAddress",
        ["CLOUDTASKS_EMULATOR_APP_ENGINE_HOST"] = "Emulator:AppEngineHost",
    };
    return map.Where(m => Environment.GetEnvironmentVariable(m.Key) is { Length: > 0 })
        .ToDictionary(m => m.Value, m => Environment.GetEnvironmentVariable(m.Key));
}
