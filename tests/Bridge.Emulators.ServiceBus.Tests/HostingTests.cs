using Azure.Messaging.ServiceBus;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Bridge.Emulators.ServiceBus.Tests;

public sealed class HostingTests
{
    [Fact]
    public async Task AddServiceBusEmulator_runs_the_endpoint_with_the_host_and_stops_it_with_the_host()
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddServiceBusEmulator(o =>
        {
            o.Port = 0;
            o.Queues.Add(new QueueDefinition { Name = "Hosted" });
        });
        using var host = builder.Build();
        await host.StartAsync();
        var emulator = host.Services.GetRequiredService<ServiceBusEmulatorHost>().Emulator!;
        Assert.NotEqual(0, emulator.Port);
        Assert.StartsWith($"Endpoint=sb://localhost:{emulator.Port};SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;", emulator.ConnectionString, StringComparison.Ordinal);

        await using (var client = new ServiceBusClient(emulator.ConnectionString))
        {
            // Entity names are case-insensitive, as in Service Bus.
            await using var sender = client.CreateSender("HOSTED");
            await sender.SendMessageAsync(new ServiceBusMessage("via the host"));
            await using var receiver = client.CreateReceiver("hosted");
            Assert.Equal("via the host", (await receiver.ReceiveMessageAsync(EmulatorFixture.Wait)).Body.ToString());
        }

        await host.StopAsync();
        await using var after = new ServiceBusClient(emulator.ConnectionString, new ServiceBusClientOptions { RetryOptions = new ServiceBusRetryOptions { MaxRetries = 0, TryTimeout = TimeSpan.FromSeconds(5) } });
        await using var refused = after.CreateSender("hosted");
        await Assert.ThrowsAnyAsync<Exception>(() => refused.SendMessageAsync(new ServiceBusMessage("x")));
    }

    [Fact]
    public void Invalid_options_are_refused_at_start_naming_the_value()
    {
        Assert.Contains("70000", Assert.Throws<ArgumentException>(() => ServiceBusEmulator.Start(new ServiceBusEmulatorOptions { Port = 70000 })).Message, StringComparison.Ordinal);
        Assert.Contains("my-laptop", Assert.Throws<ArgumentException>(() => ServiceBusEmulator.Start(new ServiceBusEmulatorOptions { Port = 0, ListenAddress = "my-laptop" })).Message, StringComparison.Ordinal);
        using (var local = ServiceBusEmulator.Start(new ServiceBusEmulatorOptions { Port = 0, ListenAddress = "localhost" }))
        {
            Assert.StartsWith("Endpoint=sb://localhost:", local.ConnectionString, StringComparison.Ordinal);
        }

        Assert.Contains("SasKey", Assert.Throws<ArgumentException>(() => ServiceBusEmulator.Start(new ServiceBusEmulatorOptions { Port = 0, SasKey = "" })).Message, StringComparison.Ordinal);
        Assert.Contains("LockDuration", Assert.Throws<InvalidOperationException>(() => ServiceBusEmulator.Start(new ServiceBusEmulatorOptions
        {
            Port = 0,
            Queues = { new QueueDefinition { Name = "q", Properties = { LockDuration = TimeSpan.FromMinutes(10) } } },
        })).Message, StringComparison.Ordinal);
        Assert.Contains("used twice", Assert.Throws<InvalidOperationException>(() => ServiceBusEmulator.Start(new ServiceBusEmulatorOptions
        {
            Port = 0,
            Queues = { new QueueDefinition { Name = "q" }, new QueueDefinition { Name = "Q" } },
        })).Message, StringComparison.Ordinal);
    }
}
