using System.Text.Json.Nodes;
using Bridge.CloudTasks.Tests.Infrastructure;
using Bridge.Emulators.CloudTasks.V2;
using Bridge.Testing;
using Google.Protobuf.Reflection;

namespace Bridge.Emulators.CloudTasks.Tests;

/// <summary>
/// The emulator's google.cloud.tasks.v2 protos against the official Node.js client's
/// protos.json (@google-cloud/tasks@7.1.0 in tests/conformance), by the client tests' comparer: every message, enum,
/// field, RPC, HTTP rule and method signature. Any difference fails, named. (protos.json has no google.cloud.location:
/// the client takes that mixin from google-gax.)
/// </summary>
public sealed class V2WireContractTests
{
    private static IReadOnlyList<FileDescriptor> EmulatorFiles =>
    [
        CloudtasksReflection.Descriptor,
        QueueReflection.Descriptor,
        TaskReflection.Descriptor,
        TargetReflection.Descriptor,
    ];

    private static JsonNode LoadOfficial()
    {
        var path = RepositoryPaths.OfficialProtosJson;
        Assert.True(File.Exists(path), $"Official definitions not found at {path}: run 'npm ci' in tests/conformance (.ci/run does).");
        return JsonNode.Parse(File.ReadAllText(path))!;
    }

    [Fact]
    public void Emulator_v2_contract_equals_the_official_definitions()
    {
        string[] packages = ["google.cloud.tasks.v2"];
        var diffs = WireContractComparer.Compare(LoadOfficial(), EmulatorFiles, packages, []);
        Assert.True(diffs.Count == 0, $"{diffs.Count} difference(s) from the official v2 contract:\n" + string.Join("\n", diffs));

        // Guards against a comparison that silently compares nothing: every message, enum, service and RPC counted.
        Assert.Equal(46, WireContractComparer.CountCompared(LoadOfficial(), packages, []));
    }
}
