using System.Diagnostics;
using Bridge.Testing;
using Xunit.Abstractions;

namespace Bridge.Emulators.CloudTasks.Tests;

/// <summary>
/// The official Node.js client (@google-cloud/tasks@7.1.0, v2beta3 and v2, insecure gRPC and REST) against this
/// emulator: every RPC and the dispatch rules, by tests/conformance/emulator-conformance.mjs, once per API version
/// (v2 also checks that both versions see the same queues and tasks).
/// </summary>
public sealed class NodeConformanceTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("v2beta3", 25)]
    [InlineData("v2", 27)]
    public async Task The_official_node_client_passes_every_conformance_check(string api, int checks)
    {
        var script = Path.Combine(RepositoryPaths.Root, "tests", "conformance", "emulator-conformance.mjs");
        Assert.True(Directory.Exists(Path.Combine(RepositoryPaths.Root, "tests", "conformance", "node_modules", "@google-cloud", "tasks")), "Run 'npm ci' in tests/conformance (.ci/run does).");
        await using var host = await EmulatorHost.StartAsync();

        var start = new ProcessStartInfo("node")
        {
            ArgumentList = { script },
            WorkingDirectory = Path.GetDirectoryName(script)!,
        };
        start.Environment["EMULATOR_HOST"] = host.GrpcHostPort;
        start.Environment["EMULATOR_HTTP"] = host.HttpAddress.ToString().TrimEnd('/');
        start.Environment["CLOUD_TASKS_API"] = api;
        start.Environment["METADATA_SERVER_DETECTION"] = "none"; // no Google metadata server to probe here
        var node = await ChildProcess.RunToExitAsync(start, TimeSpan.FromMinutes(3));

        var lines = node.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        foreach (var line in lines)
        {
            output.WriteLine(line);
        }

        output.WriteLine(node.Stderr);
        var failures = lines.Where(l => l.StartsWith("not ok", StringComparison.Ordinal)).ToList();
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        Assert.Equal(0, node.ExitCode);
        Assert.True(lines.Count(l => l.StartsWith("ok - ", StringComparison.Ordinal)) >= checks, "fewer checks ran than the script defines");
    }
}
