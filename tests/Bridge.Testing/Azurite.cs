using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Bridge.Testing;

/// <summary>
/// Azurite's blob service (from npm, tests/azurite) as a child process: in memory, on a port the OS gives (it is
/// started with port 0 and the port is read back from what it prints), killed on dispose. Node runs Azurite's script
/// directly, so the process killed is the one that holds the state.
/// </summary>
public sealed partial class Azurite : IAsyncDisposable
{
    /// <summary>Azurite's well-known development account (public, documented; not a secret).</summary>
    public const string AccountName = "devstoreaccount1";

    private const string AccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    private readonly Process _process;
    private readonly string _location;

    private Azurite(Process process, string location, int blobPort)
    {
        _process = process;
        _location = location;
        BlobPort = blobPort;
    }

    public int BlobPort { get; }

    public string ConnectionString =>
        $"DefaultEndpointsProtocol=http;AccountName={AccountName};AccountKey={AccountKey};BlobEndpoint=http://127.0.0.1:{BlobPort}/{AccountName};";

    public static string Script => Path.Combine(RepositoryPaths.Root, "tests", "azurite", "node_modules", "azurite", "dist", "src", "blob", "main.js");

    public static async Task<Azurite> StartAsync(TimeSpan? timeout = null)
    {
        if (!File.Exists(Script))
        {
            throw new InvalidOperationException($"Azurite is not installed ({Script} is missing): run `npm ci` in tests/azurite (.ci/run does).");
        }

        var location = Directory.CreateTempSubdirectory("azurite-").FullName;
        var start = new ProcessStartInfo("node")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = location, // in memory; anything it still writes lands in a temp folder
        };
        foreach (var arg in new[] { Script, "--blobHost", "127.0.0.1", "--blobPort", "0", "--inMemoryPersistence", "--extentMemoryLimit", "256", "--skipApiVersionCheck", "--loose", "--disableTelemetry" })
        {
            start.ArgumentList.Add(arg);
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException("node did not start.");
        var listening = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var output = new System.Collections.Concurrent.ConcurrentQueue<string>();
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                listening.TrySetException(new InvalidOperationException($"Azurite exited before it listened: {string.Join(" | ", output)}"));
                return;
            }

            output.Enqueue(e.Data);
            if (ListeningLine().Match(e.Data) is { Success: true } match)
            {
                listening.TrySetResult(int.Parse(match.Groups["port"].Value, System.Globalization.CultureInfo.InvariantCulture));
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                output.Enqueue(e.Data);
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            var port = await listening.Task.WaitAsync(timeout ?? TimeSpan.FromSeconds(60));
            return new Azurite(process, location, port);
        }
        catch (Exception ex)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            process.Dispose();
            Directory.Delete(location, recursive: true);
            throw new InvalidOperationException($"Azurite did not start listening: {string.Join(" | ", output)}", ex);
        }
    }

    /// <summary>Kills Azurite now (the store becomes unreachable); dispose still cleans up.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        _process.Dispose();
        try
        {
            Directory.Delete(_location, recursive: true);
        }
        catch (IOException)
        {
            // A temp folder left behind is harmless.
        }
    }

    [GeneratedRegex(@"successfully listens on https?://[^\s:]+:(?<port>\d+)")]
    private static partial Regex ListeningLine();
}
