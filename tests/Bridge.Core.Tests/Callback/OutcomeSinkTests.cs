using System.Text;
using Bridge.Core.Callback;
using Bridge.Core.Internal;
using Microsoft.Extensions.Logging;

namespace Bridge.Core.Tests.Callback;

public sealed class OutcomeSinkTests
{
    private sealed class CapturingLogger<T> : ILogger<T>
    {
        public List<string> Messages { get; } = [];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Messages.Add(formatter(state, exception));
    }

    private static TaskOutcome Delivered() => new()
    {
        Status = OutcomeStatus.Delivered,
        TaskName = "projects/p/locations/l/queues/q/tasks/t1",
        Queue = "projects/p/locations/l/queues/q",
        ReportedBy = "invoker@p.iam.gserviceaccount.com",
        ReceivedAt = TimeProvider.System.GetUtcNow(),
        Payload = Encoding.UTF8.GetBytes("{\"card\":\"4111111111111111\"}"),
        PayloadContentType = "application/json",
    };

    [Fact]
    public async Task The_log_sink_writes_no_payload_unless_asked()
    {
        var logger = new CapturingLogger<LogOutcomeSink>();
        await new LogOutcomeSink(logger).PublishAsync(Delivered(), CancellationToken.None);

        var message = Assert.Single(logger.Messages);
        Assert.DoesNotContain(Convert.ToBase64String(Delivered().Payload.Span), message, StringComparison.Ordinal);
        Assert.DoesNotContain("4111111111111111", message, StringComparison.Ordinal);
        Assert.Contains("payload 27 bytes", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_log_sink_writes_the_payload_when_the_option_asks()
    {
        var logger = new CapturingLogger<LogOutcomeSink>();
        await new LogOutcomeSink(logger, logPayloads: true).PublishAsync(Delivered(), CancellationToken.None);

        Assert.Contains(Convert.ToBase64String(Delivered().Payload.Span), Assert.Single(logger.Messages), StringComparison.Ordinal);
    }
}
