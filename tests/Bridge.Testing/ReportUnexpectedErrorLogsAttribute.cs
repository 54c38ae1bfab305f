using System.Collections.Concurrent;
using System.Reflection;
using Xunit.Sdk;

namespace Bridge.Testing;

/// <summary>
/// Checks every <see cref="ErrorLogGuard"/> made during a test once the test is over, after its own disposals: an error
/// logged after the assertions, or in a test that threw, is still reported, and xunit lists the report next to the
/// test's own failure instead of in its place (a harness that threw from its DisposeAsync would replace it). Each test
/// assembly applies it once: <c>[assembly: ReportUnexpectedErrorLogs]</c>.
/// </summary>
[AttributeUsage(AttributeTargets.Assembly | AttributeTargets.Class | AttributeTargets.Method)]
public sealed class ReportUnexpectedErrorLogsAttribute : BeforeAfterTestAttribute
{
    // Set in Before, which xunit calls synchronously in the flow that then runs the test: the test and every task it
    // starts see it.
    private static readonly AsyncLocal<Scope?> Current = new();

    /// <summary>Adds <paramref name="guard"/> to the running test's report; false outside a test (a class fixture, a benchmark).</summary>
    internal static bool Enlist(ErrorLogGuard guard)
    {
        var scope = Current.Value;
        scope?.Guards.Enqueue(guard);
        return scope is not null;
    }

    public override void Before(MethodInfo methodUnderTest) => Current.Value = new Scope(Current.Value);

    public override void After(MethodInfo methodUnderTest)
    {
        var scope = Current.Value;
        if (scope is null)
        {
            return;
        }

        Current.Value = scope.Outer;
        var unexpected = scope.Guards.SelectMany(g => g.Unexpected).ToList();
        if (unexpected.Count > 0)
        {
            throw new InvalidOperationException($"The code under test logged {unexpected.Count} unexpected error(s):{Environment.NewLine}{string.Join(Environment.NewLine, unexpected)}");
        }
    }

    private sealed class Scope(Scope? outer)
    {
        public Scope? Outer { get; } = outer;

        public ConcurrentQueue<ErrorLogGuard> Guards { get; } = new();
    }
}
