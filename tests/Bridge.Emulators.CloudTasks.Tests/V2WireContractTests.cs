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

    /// <summary>
    /// Queue.http_target: the v2 REST API serves it (its discovery document, from which gcloud's GA track is generated,
    /// has Queue.httpTarget, HttpTarget, UriOverride, PathOverride, QueryOverride, HeaderOverride, Header), but neither
    /// googleapis' published v2 protos nor the Node.js client's protos.json have it yet.
    /// </summary>
    private static readonly string[] HttpTargetMessages = ["HttpTarget", "UriOverride", "PathOverride", "QueryOverride"];

    [Fact]
    public void Emulator_v2_contract_equals_the_official_definitions_plus_the_queue_http_target_of_the_rest_api()
    {
        string[] packages = ["google.cloud.tasks.v2"];
        var diffs = WireContractComparer.Compare(LoadOfficial(), EmulatorFiles, packages, []);
        string[] additions =
        [
            "google.cloud.tasks.v2.Queue: the project has field httpTarget = #13 google.cloud.tasks.v2.HttpTarget, which the official contract lacks",
            .. new[] { "HttpTarget", "HttpTarget.Header", "HttpTarget.HeaderOverride", "PathOverride", "QueryOverride", "UriOverride", "UriOverride.Scheme", "UriOverride.UriOverrideEnforceMode" }
                .Select(m => $"google.cloud.tasks.v2.{m}: defined by the project but not in the official contract"),
        ];
        Assert.True(diffs.Order(StringComparer.Ordinal).SequenceEqual(additions.Order(StringComparer.Ordinal)),
            $"Differences from the official v2 contract other than the queue's http_target (or the official contract has it now: compare its numbers):\n" + string.Join("\n", diffs.Except(additions)));

        // Guards against a comparison that silently compares nothing: every message, enum, service and RPC counted.
        Assert.Equal(46, WireContractComparer.CountCompared(LoadOfficial(), packages, []));
    }

    [Fact]
    public void The_v2_http_target_messages_are_exactly_v2beta3s_official_ones()
    {
        // The official contract with v2beta3's official http target messages copied into v2 (type names inside them are
        // relative, so they resolve to v2's HttpMethod, OAuthToken and OidcToken) and Queue.http_target at v2beta3's number.
        var official = LoadOfficial();
        var tasks = official["nested"]!["google"]!["nested"]!["cloud"]!["nested"]!["tasks"]!["nested"]!;
        var (beta, v2) = (tasks["v2beta3"]!["nested"]!.AsObject(), tasks["v2"]!["nested"]!.AsObject());
        foreach (var message in HttpTargetMessages)
        {
            v2[message] = beta[message]!.DeepClone();
        }

        v2["Queue"]!["fields"]!["httpTarget"] = beta["Queue"]!["fields"]!["httpTarget"]!.DeepClone();

        var diffs = WireContractComparer.Compare(official, EmulatorFiles, ["google.cloud.tasks.v2"], []);

        Assert.True(diffs.Count == 0, $"{diffs.Count} difference(s) from v2beta3's http target messages:\n" + string.Join("\n", diffs));
        Assert.Equal(46 + 8, WireContractComparer.CountCompared(official, ["google.cloud.tasks.v2"], []));
    }
}
