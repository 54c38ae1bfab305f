using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Bridge.Dashboard.Tests;

/// <summary>
/// A standalone emulator's executable as its own process, started on ports 0 and read back from the lines it prints
/// (bounded wait); killed on dispose. Its output is kept for failure messages.
/// </summary>
internal sealed class EmulatorExecutable : IDisposable
{
    private readonly Process _process;
    private readonly List<string> _output = [];
    private readonly Regex[] _wanted;
    private readonly TaskCompletionSource<string[]> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private EmulatorExecutable(Process process, Regex[] wanted)
    {
        _process = process;
        _wanted = wanted;
    }

    /// <summary>What each wanted line's first group captured, in the order asked.</summary>
    public IReadOnlyList<string> Values { get; private set; } = [];

    public string Output
    {
        get
        {
            lock (_output)
            {
                return string.Join('\n', _output);
            }
        }
    }

    /// <summary>Runs <paramref name="assembly"/> (a dll next to the tests) with <paramref name="args"/>; ready once every pattern matched a line.</summary>
    public static async Task<EmulatorExecutable> StartAsync(string assembly, IEnumerable<string> args, params Regex[] wanted)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, assembly));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["Logging__LogLevel__Default"] = "Warning";
        var executable = new EmulatorExecutable(Process.Start(start)!, wanted);
        executable._process.OutputDataReceived += (_, e) => executable.OnLine(e.Data);
        executable._process.ErrorDataReceived += (_, e) => executable.OnLine(e.Data);
        executable._process.EnableRaisingEvents = true;
        executable._process.Exited += (_, _) => executable._ready.TrySetException(new InvalidOperationException($"{assembly} exited before it was ready:\n{executable.Output}"));
        executable._process.BeginOutputReadLine();
        executable._process.BeginErrorReadLine();
        try
        {
            executable.Values = await executable._ready.Task.WaitAsync(TimeSpan.FromSeconds(90));
        }
        catch
        {
            executable.Dispose();
            throw;
        }

        return executable;
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
            var found = _wanted.Select(w => _output.Select(l => w.Match(l)).FirstOrDefault(m => m.Success)).ToList();
            if (found.All(m => m is not null))
            {
                _ready.TrySetResult([.. found.Select(m => m!.Groups[1].Value)]);
            }
        }
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(30_000);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }

        _process.Dispose();
    }
}
