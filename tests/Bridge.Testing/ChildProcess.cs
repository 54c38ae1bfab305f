using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Bridge.Testing;

/// <summary>
/// An executable run as a process of its own (so a kill is a SIGKILL of the process that holds the state), ready once
/// every wanted pattern has matched a line it printed: servers bound to port 0 announce the ports they got, and the
/// wrappers read them back from <see cref="Values"/>. Stdout and stderr are kept for failure messages; every wait is
/// bounded.
/// </summary>
public sealed class ChildProcess : IDisposable
{
    private static readonly TimeSpan ExitBound = TimeSpan.FromSeconds(30);

    private readonly Process _process;
    private readonly string _name;
    private readonly Regex[] _wanted;
    private readonly Match?[] _found;
    private readonly List<string> _output = [];
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ChildProcess(Process process, string name, Regex[] wanted)
    {
        _process = process;
        _name = name;
        _wanted = wanted;
        _found = new Match?[wanted.Length];
    }

    public int Id => _process.Id;

    /// <summary>What each wanted pattern's first group captured on the first line it matched, in the order asked.</summary>
    public IReadOnlyList<string> Values { get; private set; } = [];

    /// <summary>Everything written to stdout and stderr so far, one entry a line.</summary>
    public IReadOnlyList<string> Output
    {
        get
        {
            lock (_output)
            {
                return [.. _output];
            }
        }
    }

    /// <summary>
    /// How a .NET executable next to the tests (<paramref name="assemblyPath"/>, relative to the test output folder
    /// or absolute) is started: the same dotnet host the tests run under, output redirected, console logging at Warning.
    /// </summary>
    public static ProcessStartInfo DotnetStartInfo(string assemblyPath, IEnumerable<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet");
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, assemblyPath));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["Logging__LogLevel__Default"] = "Warning";
        return Redirected(start);
    }

    /// <summary>
    /// Starts <paramref name="start"/> and waits until every pattern in <paramref name="wanted"/> has matched a line
    /// (none: ready at once), at most <paramref name="timeout"/>. If it exits first or the time runs out, the process
    /// is killed and the exception carries <paramref name="name"/> and its output.
    /// </summary>
    public static async Task<ChildProcess> StartAsync(ProcessStartInfo start, string name, TimeSpan timeout, params Regex[] wanted)
    {
        ArgumentNullException.ThrowIfNull(start);
        ArgumentNullException.ThrowIfNull(wanted);
        var child = new ChildProcess(Process.Start(Redirected(start)) ?? throw new InvalidOperationException($"{name} did not start."), name, wanted);
        child._process.OutputDataReceived += (_, e) => child.OnLine(e.Data);
        child._process.ErrorDataReceived += (_, e) => child.OnLine(e.Data);
        child._process.EnableRaisingEvents = true;
        child._process.Exited += (_, _) => child._ready.TrySetException(new InvalidOperationException($"{name} exited before it was ready:\n{child.OutputText()}"));
        child._process.BeginOutputReadLine();
        child._process.BeginErrorReadLine();
        child.CheckReady();
        try
        {
            await child._ready.Task.WaitAsync(timeout);
        }
        catch (TimeoutException ex)
        {
            child.Dispose();
            throw new TimeoutException($"{name} was not ready within {timeout}:\n{child.OutputText()}", ex);
        }
        catch
        {
            child.Dispose();
            throw;
        }

        return child;
    }

    /// <summary>
    /// Runs <paramref name="start"/> to its exit, at most <paramref name="timeout"/> (then it is killed, its whole
    /// tree, and <see cref="TimeoutException"/> is thrown), and returns its exit code and what it wrote.
    /// </summary>
    public static async Task<ExitedProcess> RunToExitAsync(ProcessStartInfo start, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(start);
        using var process = Process.Start(Redirected(start)) ?? throw new InvalidOperationException($"{start.FileName} did not start.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync().WaitAsync(ExitBound);
            throw new TimeoutException($"{start.FileName} did not exit within {timeout}:\n{await stdout}\n{await stderr}");
        }

        return new ExitedProcess(process.ExitCode, await stdout, await stderr);
    }

    /// <summary>The first line so far that <paramref name="pattern"/> matches, or null.</summary>
    public Match? FirstMatch(Regex pattern)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        lock (_output)
        {
            return _output.Select(l => pattern.Match(l)).FirstOrDefault(m => m.Success);
        }
    }

    /// <summary>SIGKILL (of the whole tree, say a tracer and what it traces): no shutdown code runs. Bounded wait for the exit.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        await _process.WaitForExitAsync().WaitAsync(ExitBound);
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(ExitBound);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }

        _process.Dispose();
    }

    private static ProcessStartInfo Redirected(ProcessStartInfo start)
    {
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.UseShellExecute = false;
        return start;
    }

    private string OutputText()
    {
        lock (_output)
        {
            return string.Join('\n', _output);
        }
    }

    private void OnLine(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.Add(line);
            for (var i = 0; i < _wanted.Length; i++)
            {
                if (_found[i] is null && _wanted[i].Match(line) is { Success: true } match)
                {
                    _found[i] = match;
                }
            }
        }

        CheckReady();
    }

    private void CheckReady()
    {
        lock (_output)
        {
            if (_ready.Task.IsCompleted || _found.Any(m => m is null))
            {
                return;
            }

            Values = [.. _found.Select(m => m!.Groups[1].Value)];
        }

        _ready.TrySetResult();
    }
}

/// <summary>A process that ran to its exit: its exit code and everything it wrote.</summary>
public sealed record ExitedProcess(int ExitCode, string Stdout, string Stderr);
