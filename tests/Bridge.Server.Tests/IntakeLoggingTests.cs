using System.Collections.Concurrent;
using System.Net;
using Microsoft.Extensions.Logging;

namespace Bridge.Server.Tests;

/// <summary>What the runner logs about intake authentication: the opt-out loudly, keys never.</summary>
public sealed class IntakeLoggingTests
{
    [Fact]
    public async Task The_anonymous_opt_out_beyond_loopback_is_a_warning_at_start()
    {
        var logs = new CapturingLogs();
        await using var server = await RunningServer.StartAsync(
            b => b.Logging.AddProvider(logs),
            "--Bridge:Server:ListenAddress=0.0.0.0",
            "--Bridge:Server:Intake:UnsafeAllowAnonymousBeyondLoopback=true");

        var warning = Assert.Single(logs.Entries, e => e.Category == "Bridge.Server.Intake");
        Assert.Equal(LogLevel.Warning, warning.Level);
        Assert.Contains("0.0.0.0:", warning.Message, StringComparison.Ordinal);
        Assert.Contains("UnsafeAllowAnonymousBeyondLoopback", warning.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task No_key_reaches_the_logs_right_or_wrong_header_or_query()
    {
        const string right = "the-right-key-0123456789abcdefghijklmnopqrstu";
        const string wrong = "a-wrong-key-0123456789abcdefghijklmnopqrstuvw";
        var logs = new CapturingLogs();
        await using var server = await RunningServer.StartAsync(
            b => b.Logging.AddProvider(logs),
            $"--Bridge:Server:Intake:KeyHashes:0={IntakeFixture.Hash(right)}",
            "--Logging:LogLevel:Default=Trace");

        foreach (var key in new[] { right, wrong })
        {
            using var byHeader = new HttpRequestMessage(HttpMethod.Get, "/api/health/details");
            byHeader.Headers.Add("x-functions-key", key);
            using var header = await server.Http.SendAsync(byHeader);
            using var query = await server.Http.GetAsync($"/api/health/details?code={key}");
            Assert.Equal(key == right ? HttpStatusCode.OK : HttpStatusCode.Unauthorized, header.StatusCode);
            Assert.Equal(header.StatusCode, query.StatusCode);
        }

        Assert.NotEmpty(logs.Entries); // it did log (at Trace), just not the keys
        Assert.DoesNotContain(logs.Entries, e => e.Message.Contains(right, StringComparison.Ordinal) || e.Message.Contains(wrong, StringComparison.Ordinal));
    }

    private sealed class CapturingLogs : ILoggerProvider
    {
        public ConcurrentQueue<(string Category, LogLevel Level, string Message)> Entries { get; } = new();

        public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

        public void Dispose()
        {
        }

        private sealed class Logger(CapturingLogs logs, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                logs.Entries.Enqueue((category, logLevel, formatter(state, exception) + (exception is null ? string.Empty : " " + exception)));
        }
    }
}
