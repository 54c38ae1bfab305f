using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Bridge.Testing;

/// <summary>
/// A logger provider that fails the test when the code under test logs an error (or worse) the test did not say it
/// expects: a "dispatch loop failed" can't pass unseen. Add it to the host's logging, and call <see cref="CheckOnStop"/>
/// when that host stops (as every harness here does in its DisposeAsync). Inside a test of an assembly marked
/// <see cref="ReportUnexpectedErrorLogsAttribute"/> the check waits for the test's end, so nothing logged late is missed
/// and a test's own failure is never replaced by the report; elsewhere (a class fixture) it throws at once.
/// </summary>
public sealed class ErrorLogGuard : ILoggerProvider
{
    private readonly ConcurrentQueue<string> _unexpected = new();
    private readonly ConcurrentBag<Func<string, EventId, Exception?, bool>> _expected = [];
    private readonly bool _reportedAtTestEnd;

    public ErrorLogGuard()
    {
        _reportedAtTestEnd = ReportUnexpectedErrorLogsAttribute.Enlist(this);
    }

    /// <summary>Entries logged at Error or above that no expectation matched.</summary>
    public IReadOnlyCollection<string> Unexpected => _unexpected.ToArray();

    /// <summary>Allows errors from <paramref name="category"/> (a logger category, or its prefix) with the event id, if given.</summary>
    public ErrorLogGuard Expect(string category, int? eventId = null)
    {
        _expected.Add((c, e, _) => c.StartsWith(category, StringComparison.Ordinal) && (eventId is null || e.Id == eventId));
        return this;
    }

    /// <summary>What the owner of a guard calls when the host it watches stops: throws now, unless the running test's end reports it.</summary>
    public void CheckOnStop()
    {
        if (!_reportedAtTestEnd)
        {
            ThrowIfUnexpected();
        }
    }

    /// <summary><see cref="CheckOnStop"/> when disposed: for a test that owns a host without a harness (declare it before the host, so it runs after the host stopped).</summary>
    public IDisposable CheckOnDispose() => new Check(this);

    /// <summary>Throws now with every unexpected entry.</summary>
    public void ThrowIfUnexpected()
    {
        if (!_unexpected.IsEmpty)
        {
            throw new InvalidOperationException($"The code under test logged {_unexpected.Count} unexpected error(s):{Environment.NewLine}{string.Join(Environment.NewLine, _unexpected)}");
        }
    }

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Check(ErrorLogGuard guard) : IDisposable
    {
        public void Dispose() => guard.CheckOnStop();
    }

    private sealed class Logger(ErrorLogGuard guard, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Error;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (logLevel < LogLevel.Error || guard._expected.Any(e => e(category, eventId, exception)))
            {
                return;
            }

            guard._unexpected.Enqueue($"[{logLevel}] {category} ({eventId.Id}): {formatter(state, exception)}{(exception is null ? string.Empty : " — " + exception.GetType().Name + ": " + exception.Message)}");
        }
    }
}
