using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Bridge.Testing;

/// <summary>
/// A logger provider that fails the test when the code under test logs an error (or worse) the test did not say it
/// expects: a "dispatch loop failed" can't pass unseen. Add it to the host's logging; <see cref="ThrowIfUnexpected"/>
/// (called by the harnesses when they stop) throws with every unexpected entry.
/// </summary>
public sealed class ErrorLogGuard : ILoggerProvider
{
    private readonly ConcurrentQueue<string> _unexpected = new();
    private readonly ConcurrentBag<Func<string, EventId, Exception?, bool>> _expected = [];

    /// <summary>Entries logged at Error or above that no expectation matched.</summary>
    public IReadOnlyCollection<string> Unexpected => _unexpected.ToArray();

    /// <summary>Allows errors from <paramref name="category"/> (a logger category, or its prefix) with the event id, if given.</summary>
    public ErrorLogGuard Expect(string category, int? eventId = null)
    {
        _expected.Add((c, e, _) => c.StartsWith(category, StringComparison.Ordinal) && (eventId is null || e.Id == eventId));
        return this;
    }

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
