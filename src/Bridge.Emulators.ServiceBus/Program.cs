using Bridge.Emulators.ServiceBus;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

// dotnet run --project src/Bridge.Emulators.ServiceBus -- --port 5672 --config Config.json [--sas-key KEY] [--listen 127.0.0.1] [--data <dir>]
var builder = Host.CreateApplicationBuilder(args);
builder.Configuration.AddInMemoryCollection(FromEnvironment());
builder.Configuration.AddCommandLine(args, new Dictionary<string, string>
{
    ["--port"] = "ServiceBusEmulator:Port",
    ["--config"] = "ServiceBusEmulator:ConfigFile",
    ["--sas-key"] = "ServiceBusEmulator:SasKey",
    ["--sas-key-name"] = "ServiceBusEmulator:SasKeyName",
    ["--listen"] = "ServiceBusEmulator:ListenAddress",
    ["--data"] = "ServiceBusEmulator:DataDirectory",
    ["--max-message-size"] = "ServiceBusEmulator:MaxMessageSizeBytes",
});
builder.Services.AddServiceBusEmulator(o => builder.Configuration.GetSection(ServiceBusEmulatorOptions.SectionName).Bind(o));

using var host = builder.Build();
try
{
    await host.StartAsync();
}
catch (Exception e) when (e is FormatException or ArgumentException or InvalidOperationException or IOException or System.Text.Json.JsonException or System.Net.Sockets.SocketException)
{
    // A bad option or config file: say which, without a stack trace.
    await Console.Error.WriteLineAsync($"Service Bus emulator did not start: {e.Message}");
    return 2;
}

var emulator = host.Services.GetRequiredService<ServiceBusEmulatorHost>().Emulator!;
var data = builder.Configuration["ServiceBusEmulator:DataDirectory"];
Console.WriteLine("Service Bus emulator (AMQP 1.0, plain TCP)");
Console.WriteLine($"  port:     {emulator.Port}");
Console.WriteLine($"  entities: {(emulator.Entities.Count == 0 ? "none (use --config Config.json)" : string.Join(", ", emulator.Entities.Order(StringComparer.Ordinal)))}");
Console.WriteLine($"  data:     {(string.IsNullOrWhiteSpace(data) ? "in memory (use --data <dir> to keep messages)" : Path.GetFullPath(data))}");
Console.WriteLine($"  connection string: {emulator.ConnectionString}");
await host.WaitForShutdownAsync();
return 0;

// SERVICEBUS_EMULATOR_PORT, _CONFIG, _SAS_KEY, _SAS_KEY_NAME, _LISTEN, _DATA, _MAX_MESSAGE_SIZE
static Dictionary<string, string?> FromEnvironment()
{
    var map = new Dictionary<string, string>
    {
        ["SERVICEBUS_EMULATOR_PORT"] = "ServiceBusEmulator:Port",
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
