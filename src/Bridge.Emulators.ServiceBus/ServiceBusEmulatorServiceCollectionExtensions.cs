using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Bridge.Emulators.ServiceBus;

public static class ServiceBusEmulatorServiceCollectionExtensions
{
    /// <summary>
    /// Runs the Service Bus emulator inside a host: it starts with the host and stops with it. Resolve
    /// <see cref="ServiceBusEmulatorHost"/> for the bound port and the connection string once the host has started.
    /// </summary>
    public static IServiceCollection AddServiceBusEmulator(this IServiceCollection services, Action<ServiceBusEmulatorOptions>? configure = null)
    {
        var options = services.AddOptions<ServiceBusEmulatorOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<ServiceBusEmulatorHost>();
        services.AddHostedService(sp => sp.GetRequiredService<ServiceBusEmulatorHost>());
        return services;
    }
}

/// <summary>The hosted emulator: <see cref="Emulator"/> is set once the host has started it.</summary>
public sealed class ServiceBusEmulatorHost(IOptions<ServiceBusEmulatorOptions> options, TimeProvider time, ILoggerFactory loggerFactory) : IHostedService, IDisposable
{
    public ServiceBusEmulator? Emulator { get; private set; }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        Emulator = ServiceBusEmulator.Start(options.Value, time, loggerFactory);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        Emulator?.Dispose();
        return Task.CompletedTask;
    }

    public void Dispose() => Emulator?.Dispose();
}
