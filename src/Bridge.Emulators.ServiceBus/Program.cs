using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Bridge.Dashboard;
using Bridge.Emulators.ServiceBus;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

// dotnet run --project src/Bridge.Emulators.ServiceBus -- --port 5672 --http-port 8125 --config Config.json [--sas-key KEY] [--listen 127.0.0.1] [--data <dir>]
const int DefaultHttpPort = 8125; // next to the Cloud Tasks emulator's 8123 (gRPC) and 8124 (HTTP)
// Settings files are read once, not watched: a reload watch on the content root watches every folder under it (inotify
// on Linux), a --data folder there included, and then every write of the store woke the watcher's thread.
var builder = WebApplication.CreateSlimBuilder(["--hostBuilder:reloadConfigOnChange=false", .. args]);
builder.Configuration.AddInMemoryCollection(FromEnvironment());
builder.Configuration.AddCommandLine(args, new Dictionary<string, string>
{
    ["--port"] = "ServiceBusEmulator:Port",
    ["--http-port"] = "ServiceBusEmulator:HttpPort",
    ["--config"] = "ServiceBusEmulator:ConfigFile",
    ["--sas-key"] = "ServiceBusEmulator:SasKey",
    ["--sas-key-name"] = "ServiceBusEmulator:SasKeyName",
    ["--listen"] = "ServiceBusEmulator:ListenAddress",
    ["--data"] = "ServiceBusEmulator:DataDirectory",
    ["--max-message-size"] = "ServiceBusEmulator:MaxMessageSizeBytes",
});

// Start-up failures the user can fix get one line from us below, not the host's stack trace.
var started = false;
builder.Logging.AddFilter("Microsoft.AspNetCore.Server.Kestrel", level => level >= LogLevel.Warning && (started || level < LogLevel.Error));
builder.Logging.AddFilter("Microsoft.Extensions.Hosting.Internal.Host", level => level >= LogLevel.Warning && (started || level < LogLevel.Error));

builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning).AddFilter("Microsoft.Hosting.Lifetime", LogLevel.Warning);
var httpPortSetting = builder.Configuration["ServiceBusEmulator:HttpPort"];
var httpPort = DefaultHttpPort;
if (httpPortSetting is { Length: > 0 } && (!int.TryParse(httpPortSetting, NumberStyles.None, CultureInfo.InvariantCulture, out httpPort) || httpPort > 65535))
{
    await Console.Error.WriteLineAsync($"Service Bus emulator did not start: --http-port '{httpPortSetting}' is not a port between 0 and 65535.");
    return 2;
}

using var loggerFactory = LoggerFactory.Create(l => l.AddConsole().SetMinimumLevel(LogLevel.Warning));

// The broker starts first: the dashboard's connection string names the port it bound.
ServiceBusEmulator emulator;
var options = new ServiceBusEmulatorOptions();
try
{
    options = builder.Configuration.GetSection(ServiceBusEmulatorOptions.SectionName).Get<ServiceBusEmulatorOptions>() ?? new ServiceBusEmulatorOptions();
    emulator = ServiceBusEmulator.Start(options, TimeProvider.System, loggerFactory);
}
catch (SocketException e) when (e.SocketErrorCode is SocketError.AddressAlreadyInUse or SocketError.AccessDenied)
{
    await Console.Error.WriteLineAsync(PortNotFree(options.Port, options.ListenAddress, e.SocketErrorCode, "--port", "SERVICEBUS_EMULATOR_PORT"));
    return 2;
}
catch (Exception e) when (e is FormatException or ArgumentException or InvalidOperationException or IOException or System.Text.Json.JsonException or SocketException)
{
    // A bad option or config file: say which, without a stack trace.
    await Console.Error.WriteLineAsync($"Service Bus emulator did not start: {e.Message}");
    return 2;
}

await using var owned = emulator;
builder.Services.AddSingleton(emulator);
builder.Services.AddBridgeDashboardPages(o =>
{
    o.ServiceBusConnectionString = emulator.ConnectionString;
    o.ServiceBusEntitySource = () => emulator.Entities;
    o.ServiceBusCountSource = entity => emulator.GetMessageCounts(entity) is { } c ? new ServiceBusEntityCounts(c.Active, c.Scheduled, c.DeadLettered) : null;
});

// The dashboard's port is loopback only, whatever --listen says for AMQP.
builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, httpPort, listen => listen.Protocols = HttpProtocols.Http1));
var app = builder.Build();
app.MapGet("/health", () => Results.Json(new { status = "ok" }));
app.MapServiceBusDashboard();
app.MapGet("/", () => Results.Redirect("/servicebus"));
try
{
    await app.StartAsync();
}
catch (IOException e) when (e.InnerException is AddressInUseException)
{
    await Console.Error.WriteLineAsync(PortNotFree(httpPort, "127.0.0.1", SocketError.AddressAlreadyInUse, "--http-port", "SERVICEBUS_EMULATOR_HTTP_PORT"));
    return 2;
}

started = true;
var http = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
var data = builder.Configuration["ServiceBusEmulator:DataDirectory"];
Console.WriteLine("Service Bus emulator (AMQP 1.0, plain TCP)");
Console.WriteLine($"  port:     {emulator.Port}");
Console.WriteLine($"  entities: {(emulator.Entities.Count == 0 ? "none (use --config Config.json)" : string.Join(", ", emulator.Entities.Order(StringComparer.Ordinal)))}");
Console.WriteLine($"  data:     {(string.IsNullOrWhiteSpace(data) ? "in memory (use --data <dir> to keep messages)" : Path.GetFullPath(data))}");
Console.WriteLine($"  dashboard: http://localhost:{http.Port}/   (loopback only)");
Console.WriteLine($"  connection string: {emulator.ConnectionString}");
await app.WaitForShutdownAsync();
return 0;

// One line naming the setting to change, in the Cloud Tasks emulator's words (a port below 1024 may be refused, not taken).
static string PortNotFree(int port, string address, SocketError error, string flag, string variable) =>
    $"Service Bus emulator did not start: port {port} on {address} is {(error == SocketError.AccessDenied ? "not allowed" : "already in use")}: choose another with {flag} <port> (or {variable}; 0 picks a free port).";

// SERVICEBUS_EMULATOR_PORT, _HTTP_PORT, _CONFIG, _SAS_KEY, _SAS_KEY_NAME, _LISTEN, _DATA, _MAX_MESSAGE_SIZE
static Dictionary<string, string?> FromEnvironment()
{
    var map = new Dictionary<string, string>
    {
        ["SERVICEBUS_EMULATOR_PORT"] = "ServiceBusEmulator:Port",
        ["SERVICEBUS_EMULATOR_HTTP_PORT"] = "ServiceBusEmulator:HttpPort",
        ["SERVICEBUS_EMULATOR_CONFIG"] = "ServiceBusEmulator:ConfigFile",
        ["SERVICEBUS_EMULATOR_SAS_KEY"] = "ServiceBusEmulator:SasKey",
        ["SERVICEBUS_EMULATOR_SAS_KEY_NAME"] = "ServiceBusEmulator:SasKeyName",
        ["SERVICEBUS_EMULATOR_LISTEN"] = "ServiceBusEmulator:ListenAddress",
        ["SERVICEBUS_EMULATOR_DATA"] = "ServiceBusEmulator:DataDirectory",
        ["SERVICEBUS_EMULATOR_MAX_MESSAGE_SIZE"] = "ServiceBusEmulator:MaxMessageSizeBytes",
    };
    return map.Where(m => Environment.GetEnvironmentVariable(m.Key) is { Length: > 0 })
        .ToDictionary(m => m.Value, m => Environment.GetEnvironmentVariable(m.Key));
}
