using Bridge.Testing;
using Microsoft.Extensions.Logging;

namespace Bridge.Functions.Tests;

/// <summary>
/// The shared harness's two conventions: an unexpected error log is reported when the test is over (next to the test's
/// own failure, never in its place), and a teardown runs every part even when one throws.
/// </summary>
public sealed class TestHarnessConventionTests
{
    private static readonly System.Reflection.MethodInfo Method = typeof(TestHarnessConventionTests).GetMethod(nameof(An_error_logged_after_the_host_stopped_is_reported_when_the_test_ends))!;

    [Fact]
    public void An_error_logged_after_the_host_stopped_is_reported_when_the_test_ends()
    {
        var report = new ReportUnexpectedErrorLogsAttribute();
        report.Before(Method);
        var guard = new ErrorLogGuard();
        guard.CreateLogger("Bridge.Probe").LogError("before the stop");
        guard.CheckOnStop(); // left to the test's end: a harness disposed while the test unwinds must not replace its failure
        guard.CreateLogger("Bridge.Probe").LogError("after the stop");

        var reported = Assert.Throws<InvalidOperationException>(() => report.After(Method));
        Assert.Contains("2 unexpected error(s)", reported.Message, StringComparison.Ordinal);
        Assert.Contains("[Error] Bridge.Probe (0): before the stop", reported.Message, StringComparison.Ordinal);
        Assert.Contains("[Error] Bridge.Probe (0): after the stop", reported.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Expected_errors_and_warnings_are_not_reported()
    {
        var report = new ReportUnexpectedErrorLogsAttribute();
        report.Before(Method);
        var guard = new ErrorLogGuard().Expect("Bridge.Probe", eventId: 7);
        guard.CreateLogger("Bridge.Probe.Inner").LogError(new EventId(7), "expected");
        guard.CreateLogger("Bridge.Probe").LogWarning("only a warning");

        report.After(Method);
        Assert.Empty(guard.Unexpected);
        guard.CreateLogger("Bridge.Probe").LogError(new EventId(8), "another id");
        Assert.Single(guard.Unexpected);
    }

    [Fact]
    public async Task Outside_a_test_a_guard_throws_when_its_host_stops()
    {
        // A class fixture's guard is made before any test runs: no test's end will report it.
        Task<ErrorLogGuard> made;
        using (ExecutionContext.SuppressFlow())
        {
            made = Task.Run(() => new ErrorLogGuard());
        }

        var guard = await made;
        guard.CheckOnStop();
        guard.CreateLogger("Bridge.Probe").LogCritical("dispatch loop failed");
        var check = guard.CheckOnDispose();
        Assert.Contains("dispatch loop failed", Assert.Throws<InvalidOperationException>(guard.CheckOnStop).Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(check.Dispose);
    }

    [Fact]
    public async Task A_teardown_runs_every_part_and_rethrows_the_one_failure_as_it_was()
    {
        List<string> ran = [];
        var failure = new InvalidOperationException("the server's stop failed");
        var thrown = await Assert.ThrowsAsync<InvalidOperationException>(() => Teardown.AllAsync(
            new Part(ran, "server", failure),
            null, // a part that never started
            new Part(ran, "issuer"),
            (Action)(() => ran.Add("check"))));

        Assert.Same(failure, thrown);
        Assert.Equal(["server", "issuer", "check"], ran);
    }

    [Fact]
    public void A_teardown_with_several_failures_reports_them_all_the_first_first()
    {
        List<string> ran = [];
        var first = new InvalidOperationException("first");
        var second = new IOException("second");
        var thrown = Assert.Throws<AggregateException>(() => Teardown.All(new Part(ran, "a", first), new Part(ran, "b", second), new Part(ran, "c")));

        Assert.Equal([first, second], thrown.InnerExceptions);
        Assert.Contains("first", thrown.Message, StringComparison.Ordinal);
        Assert.Equal(["a", "b", "c"], ran);
        Assert.Throws<ArgumentException>(() => Teardown.All("not a part"));
    }

    private sealed class Part(List<string> ran, string name, Exception? failure = null) : IDisposable, IAsyncDisposable
    {
        public void Dispose()
        {
            ran.Add(name);
            if (failure is not null)
            {
                throw failure;
            }
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
