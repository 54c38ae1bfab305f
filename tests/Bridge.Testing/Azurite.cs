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

    private readonly ChildProcess _process;
    private readonly string _location;

    private Azurite(ChildProcess process, string location, int blobPort)
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
            WorkingDirectory = location, // in memory; anything it still writes lands in a temp folder
        };
        foreach (var arg in new[] { Script, "--blobHost", "127.0.0.1", "--blobPort", "0", "--inMemoryPersistence", "--extentMemoryLimit", "256", "--skipApiVersionCheck", "--loose", "--disableTelemetry" })
        {
            start.ArgumentList.Add(arg);
        }

        try
        {
            var process = await ChildProcess.StartAsync(start, "Azurite", timeout ?? TimeSpan.FromSeconds(60), ListeningLine());
            return new Azurite(process, location, int.Parse(process.Values[0], System.Globalization.CultureInfo.InvariantCulture));
        }
        catch
        {
            Directory.Delete(location, recursive: true);
            throw;
        }
    }

    /// <summary>Kills Azurite now (the store becomes unreachable); dispose still cleans up.</summary>
    public Task KillAsync() => _process.KillAsync();

    public async ValueTask DisposeAsync()
    {
        await Teardown.AllAsync(() => KillAsync(), _process);
        try
        {
            Directory.Delete(_location, recursive: true);
        }
        catch (IOException)
        {
            // A temp folder left behind is harmless.
        }
    }

    [GeneratedRegex(@"successfully listens on https?://[^\s:]+:(\d+)")]
    private static partial Regex ListeningLine();
}
