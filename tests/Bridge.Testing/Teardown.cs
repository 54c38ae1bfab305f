using System.Runtime.ExceptionServices;

namespace Bridge.Testing;

/// <summary>
/// Tears down the parts of a fixture or harness in order, every one of them even when an earlier one throws (a harness
/// whose DisposeAsync throws must not leave the next server running), then reports what failed: the first failure as
/// it was thrown, or all of them, first first, in an <see cref="AggregateException"/> when more than one did.
/// </summary>
public static class Teardown
{
    /// <summary>
    /// Each part is an <see cref="IAsyncDisposable"/> (preferred when a part is both), an <see cref="IDisposable"/>, a
    /// <c>Func&lt;Task&gt;</c>, a <c>Func&lt;ValueTask&gt;</c> or an <see cref="Action"/>; null parts are skipped.
    /// </summary>
    public static async Task AllAsync(params object?[] parts)
    {
        List<Exception> failures = [];
        foreach (var part in parts)
        {
            try
            {
                await TearDownAsync(part);
            }
            catch (Exception e)
            {
                failures.Add(e);
            }
        }

        Report(failures);
    }

    /// <summary>The synchronous counterpart of <see cref="AllAsync"/>, for a <c>Dispose()</c>: each part an <see cref="IDisposable"/> or an <see cref="Action"/>.</summary>
    public static void All(params object?[] parts)
    {
        List<Exception> failures = [];
        foreach (var part in parts)
        {
            try
            {
                TearDown(part);
            }
            catch (Exception e)
            {
                failures.Add(e);
            }
        }

        Report(failures);
    }

    private static async ValueTask TearDownAsync(object? part)
    {
        switch (part)
        {
            case IAsyncDisposable disposable:
                await disposable.DisposeAsync();
                break;
            case Func<Task> step:
                await step();
                break;
            case Func<ValueTask> step:
                await step();
                break;
            default:
                TearDown(part);
                break;
        }
    }

    private static void TearDown(object? part)
    {
        switch (part)
        {
            case null:
                break;
            case IDisposable disposable:
                disposable.Dispose();
                break;
            case Action step:
                step();
                break;
            default:
                throw new ArgumentException($"Teardown cannot run a {part.GetType().Name}: pass a disposable or an Action (and, to AllAsync, a Func<Task>).", nameof(part));
        }
    }

    private static void Report(List<Exception> failures)
    {
        if (failures.Count == 1)
        {
            ExceptionDispatchInfo.Capture(failures[0]).Throw();
        }

        if (failures.Count > 1)
        {
            throw new AggregateException($"{failures.Count} parts failed to tear down; the first: {failures[0].Message}", failures);
        }
    }
}
