using System.Diagnostics;
using System.Reflection;
using System.Text;
using Bridge.Testing;

namespace Bridge.Infrastructure.Tests;

/// <summary>The command-line tools the checks run: the Bicep CLI (NuGet), Node.js with tests/infra, Terraform.</summary>
internal static class Tools
{
    public static string Bicep { get; } = typeof(Tools).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "BicepPath").Value!.Replace('\\', '/');

    public static string InfraChecks => Path.Combine(RepositoryPaths.Root, "tests", "infra");

    /// <summary>Terraform on PATH, or null: unlike the others it comes from no package registry reachable here.</summary>
    public static string? Terraform { get; } = FindOnPath("terraform");

    public static ToolResult Run(string file, IEnumerable<string> arguments, string? workingDirectory = null, IDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo(file)
        {
            WorkingDirectory = workingDirectory ?? RepositoryPaths.Root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        // No colours, no prompts, no telemetry: output is read by the tests.
        start.Environment["NO_COLOR"] = "1";
        start.Environment["TF_IN_AUTOMATION"] = "1";
        start.Environment["TF_INPUT"] = "0";
        start.Environment["CHECKPOINT_DISABLE"] = "1";
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{file} did not start.");
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { stdout.AppendLine(e.Data); } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { stderr.AppendLine(e.Data); } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', arguments)} ran over 5 minutes.");
        }

        process.WaitForExit();
        return new ToolResult(process.ExitCode, stdout.ToString(), stderr.ToString());
    }

    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, name))
            .FirstOrDefault(File.Exists);
}

internal sealed record ToolResult(int ExitCode, string Stdout, string Stderr)
{
    public string Output => Stdout + Stderr;

    public override string ToString() => $"exit {ExitCode}\n{Output}";
}

/// <summary>A throw-away copy of a repository folder, for runs that write (snapshots, state) or break things on purpose.</summary>
internal sealed class TempCopy : IDisposable
{
    public TempCopy(string repositoryRelativePath)
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "bridge-infra-" + Guid.NewGuid().ToString("N"));
        Copy(System.IO.Path.Combine(RepositoryPaths.Root, repositoryRelativePath), Path);
    }

    public string Path { get; }

    public string File(string relative) => System.IO.Path.Combine(Path, relative);

    public void Edit(string relative, Func<string, string> change)
    {
        var file = File(relative);
        var before = System.IO.File.ReadAllText(file);
        var after = change(before);
        Assert.NotEqual(before, after); // the edit must land, or the test proves nothing
        System.IO.File.WriteAllText(file, after);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // a temp folder left behind is harmless
        }
    }

    private static void Copy(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from))
        {
            System.IO.File.Copy(file, System.IO.Path.Combine(to, System.IO.Path.GetFileName(file)));
        }

        foreach (var dir in Directory.GetDirectories(from).Where(d => System.IO.Path.GetFileName(d) != ".terraform"))
        {
            Copy(dir, System.IO.Path.Combine(to, System.IO.Path.GetFileName(dir)));
        }
    }
}

/// <summary>A fact that needs Terraform; skipped, saying so, where it is not installed.</summary>
internal sealed class TerraformFactAttribute : FactAttribute
{
    public TerraformFactAttribute()
    {
        if (Tools.Terraform is null)
        {
            Skip = "terraform is not on PATH (no registry here serves it)";
        }
    }
}
