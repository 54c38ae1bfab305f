using Azure.Messaging.ServiceBus;
using Bridge.Testing;
using Microsoft.Extensions.Time.Testing;

namespace Bridge.Emulators.ServiceBus.Tests;

/// <summary>An emulator on a free loopback port with the official .NET client pointed at it; disposed after each test.</summary>
public sealed class EmulatorFixture : IAsyncDisposable
{
    public static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    EmulatorFixture(ServiceBusEmulator emulator, ServiceBusClient client, TimeProvider time)
    {
        Emulator = emulator;
        Client = client;
        Time = time;
    }

    public ServiceBusEmulator Emulator { get; }

    public ServiceBusClient Client { get; }

    public TimeProvider Time { get; }

    public FakeTimeProvider FakeTime => (FakeTimeProvider)Time;

    public static EmulatorFixture Start(Action<ServiceBusEmulatorOptions>? configure = null, TimeProvider? time = null)
    {
        var options = new ServiceBusEmulatorOptions { Port = 0 };
        options.Queues.Add(new QueueDefinition { Name = "orders" });
        configure?.Invoke(options);
        time ??= TimeProvider.System;
        var emulator = ServiceBusEmulator.Start(options, time);
        var client = new ServiceBusClient(emulator.ConnectionString, new ServiceBusClientOptions
        {
            RetryOptions = new ServiceBusRetryOptions { MaxRetries = 1, Delay = TimeSpan.FromMilliseconds(100), TryTimeout = TimeSpan.FromSeconds(20) },
        });
        return new EmulatorFixture(emulator, client, time);
    }

    /// <summary>The "orders" queue with <paramref name="lockDuration"/>, on a fake clock (<see cref="FakeTime"/>) the test advances.</summary>
    public static EmulatorFixture StartWithLockDuration(TimeSpan lockDuration) =>
        Start(o => o.Queues[0].Properties.LockDuration = lockDuration, NewFakeTime());

    /// <summary>Sends one message a body to <paramref name="queue"/>, in one call, through a sender closed afterwards.</summary>
    public async Task SendAsync(string queue, params string[] bodies)
    {
        await using var sender = Client.CreateSender(queue);
        await sender.SendMessagesAsync(bodies.Select(b => new ServiceBusMessage(b)));
    }

    /// <summary>Fake time starting now, so SAS tokens the client signs with the real clock stay valid.</summary>
    public static FakeTimeProvider NewFakeTime() => new(TimeProvider.System.GetUtcNow());

    public async ValueTask DisposeAsync() => await Teardown.AllAsync(Client, Emulator);
}
