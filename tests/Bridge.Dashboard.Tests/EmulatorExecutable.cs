using System.Text.RegularExpressions;
using Bridge.Testing;

namespace Bridge.Dashboard.Tests;

/// <summary>
/// A standalone emulator's executable as its own process, started on ports 0 and read back from the lines it prints
/// (bounded wait); killed on dispose. Its output is kept for failure messages.
/// </summary>
internal sealed class EmulatorExecutable : IDisposable
{
    private readonly ChildProcess _child;

    private EmulatorExecutable(ChildProcess child)
    {
        _child = child;
    }

    /// <summary>What each wanted line's first group captured, in the order asked.</summary>
    public IReadOnlyList<string> Values => _child.Values;

    public string Output => string.Join('\n', _child.Output);

    /// <summary>Runs <paramref name="assembly"/> (a dll next to the tests) with <paramref name="args"/>; ready once every pattern matched a line.</summary>
    public static async Task<EmulatorExecutable> StartAsync(string assembly, IEnumerable<string> args, params Regex[] wanted) =>
        new(await ChildProcess.StartAsync(ChildProcess.DotnetStartInfo(assembly, args), assembly, TimeSpan.FromSeconds(90), wanted));

    public void Dispose() => _child.Dispose();
}
