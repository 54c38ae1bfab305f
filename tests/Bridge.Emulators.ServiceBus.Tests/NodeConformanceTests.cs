using System.Diagnostics;
using Bridge.Testing;
using Xunit.Abstractions;

namespace Bridge.Emulators.ServiceBus.Tests;

/// <summary>
/// The official Node.js Service Bus client (@azure/service-bus, pinned in tests/conformance/package.json) against this
/// emulator with its connection string: send one and batches, peek-lock, complete, abandon with properties, dead-letter,
/// defer, schedule and cancel, peek, lock renewal, receive-and-delete, subscribe(), a topic with a filtered
/// subscription, unknown entity, wrong key; by tests/conformance/servicebus-conformance.mjs.
/// </summary>
public sealed class NodeConformanceTests(ITestOutputHelper output)
{
    const int Checks = 13;

    [Fact]
    public async Task The_official_node_client_passes_every_conformance_check()
    {
        var conformance = Path.Combine(RepositoryPaths.Root, "tests", "conformance");
        Assert.True(Directory.Exists(Path.Combine(conformance, "node_modules", "@azure", "service-bus")), "Run 'npm ci' in tests/conformance (./test.sh does).");
        await using var emulator = ServiceBusEmulator.Start(new ServiceBusEmulatorOptions
        {
            Port = 0,
            Queues = { new QueueDefinition { Name = "node-q" } },
            Topics =
            {
                new TopicDefinition
                {
                    Name = "node-topic",
                    Subscriptions =
                    {
                        new SubscriptionDefinition { Name = "all" },
                        new SubscriptionDefinition
                        {
                            Name = "red",
                            Rules = { new RuleDefinition { Name = "red", Correlation = new CorrelationFilterDefinition { ApplicationProperties = { ["color"] = "red" } } } },
                        },
                    },
                },
            },
        });

        var start = new ProcessStartInfo("node")
        {
            ArgumentList = { Path.Combine(conformance, "servicebus-conformance.mjs") },
            WorkingDirectory = conformance,
        };
        start.Environment["SERVICEBUS_CONNECTION_STRING"] = emulator.ConnectionString;
        start.Environment["QUEUE"] = "node-q";
        start.Environment["TOPIC"] = "node-topic";
        var node = await ChildProcess.RunToExitAsync(start, TimeSpan.FromMinutes(4));

        var lines = node.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        foreach (var line in lines)
        {
            output.WriteLine(line);
        }

        output.WriteLine(node.Stderr);
        var failures = lines.Where(l => l.StartsWith("not ok", StringComparison.Ordinal)).ToList();
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        Assert.Equal(0, node.ExitCode);
        Assert.Equal(Checks, lines.Count(l => l.StartsWith("ok - ", StringComparison.Ordinal)));
    }
}
