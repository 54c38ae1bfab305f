using System.Collections.Concurrent;
using Bridge.Functions.Internal;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Bridge.Functions.Tests;

/// <summary>The start-up warning for a topic subscription bound as the intake without a hand-back queue.</summary>
public sealed class ServiceBusHandBackCheckTests
{
    [Theory]
    [InlineData("orders/Subscriptions/bridge", null, true)] // abandoned: redelivered at once, dead-lettered after MaxDeliveryCount
    [InlineData("orders/Subscriptions/bridge", "bridge-handback", false)] // handed back to the queue the hand-back function consumes
    [InlineData("orders-in", null, false)] // a queue's copies go back to the queue itself
    public async Task A_subscription_without_a_hand_back_queue_is_warned_about_at_start_up(string intake, string? handBackQueue, bool warns)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["BridgeServiceBusQueue"] = intake,
            ["BridgeServiceBusHandBackQueue"] = handBackQueue,
            ["Bridge:CloudTasks:EmulatorHost"] = "127.0.0.1:1", // never called
            ["Bridge:CloudTasks:EmulatorDetection"] = "None",
            ["Bridge:Routes:orders:Queue"] = "projects/p/locations/l/queues/orders",
            ["Bridge:Routes:orders:TargetUrl"] = "https://worker.example.com/orders",
        }).Build();
        var logs = new RecordingLoggerProvider();
        await using var services = new ServiceCollection()
            .AddLogging(l => l.AddProvider(logs))
            .AddSingleton<IConfiguration>(configuration)
            .AddBridgeFunctions(configuration)
            .BuildServiceProvider();

        await services.GetServices<IHostedService>().OfType<ServiceBusHandBackCheck>().Single().StartAsync(CancellationToken.None);

        var warnings = logs.Entries.Where(e => e.Level == LogLevel.Warning && e.EventId == 404).ToList();
        Assert.Equal(warns ? 1 : 0, warnings.Count);
        Assert.All(warnings, w => Assert.Contains("BridgeServiceBusHandBackQueue names no hand-back queue", w.Message, StringComparison.Ordinal));
    }

    private sealed class RecordingLoggerProvider : ILoggerProvider
    {
        private readonly ConcurrentQueue<(LogLevel Level, int EventId, string Message)> _entries = new();

        public IReadOnlyList<(LogLevel Level, int EventId, string Message)> Entries => [.. _entries];

        public ILogger CreateLogger(string categoryName) => new Logger(_entries);

        public void Dispose()
        {
        }

        private sealed class Logger(ConcurrentQueue<(LogLevel, int, string)> entries) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                entries.Enqueue((logLevel, eventId.Id, formatter(state, exception)));
        }
    }
}
