using System.Text.Json.Nodes;
using Bridge.CloudTasks.Iam.V1;
using Bridge.CloudTasks.Tests.Infrastructure;
using Bridge.Testing;
using Bridge.CloudTasks.V2Beta3;
using Google.Protobuf.Reflection;

namespace Bridge.CloudTasks.Tests;

/// <summary>
/// The project's wire contract against the official Node.js client's protos.json (@google-cloud/tasks@7.1.0,
/// installed into tests/conformance by .ci/run). Any difference fails, named.
/// </summary>
public sealed class WireContractTests
{
    private static readonly string[] Packages = ["google.cloud.tasks.v2beta3", "google.iam.v1"];

    /// <summary>What the project leaves out on purpose, and why (see the closing note of issue 2).</summary>
    private static readonly string[] KnownOmissions =
    [
        // Both return google.longrunning.Operation; no package for google.longrunning is served here.
        "google.cloud.tasks.v2beta3.CloudTasks/BatchCreateTasks",
        "google.cloud.tasks.v2beta3.CloudTasks/BatchDeleteTasks",

        // The generic IAM service: Cloud Tasks serves the IAM RPCs on its own service.
        "google.iam.v1.IAMPolicy",
        "google.iam.v1.IAMPolicy/SetIamPolicy",
        "google.iam.v1.IAMPolicy/GetIamPolicy",
        "google.iam.v1.IAMPolicy/TestIamPermissions",
    ];

    private static IReadOnlyList<FileDescriptor> ProjectFiles =>
    [
        CloudtasksReflection.Descriptor,
        QueueReflection.Descriptor,
        TaskReflection.Descriptor,
        TargetReflection.Descriptor,
        CmekConfigReflection.Descriptor,
        IamPolicyReflection.Descriptor,
        PolicyReflection.Descriptor,
        OptionsReflection.Descriptor,
    ];

    private static JsonNode LoadOfficial()
    {
        var path = RepositoryPaths.OfficialProtosJson;
        Assert.True(File.Exists(path), $"Official definitions not found at {path}: run 'npm ci' in tests/conformance (.ci/run does).");
        return JsonNode.Parse(File.ReadAllText(path))!;
    }

    [Fact]
    public void Project_contract_equals_the_official_definitions()
    {
        var diffs = WireContractComparer.Compare(LoadOfficial(), ProjectFiles, Packages, KnownOmissions);
        Assert.True(diffs.Count == 0, $"{diffs.Count} difference(s) from the official contract:\n" + string.Join("\n", diffs));

        // Guards against a comparison that silently compares nothing: every message, enum, service and RPC counted.
        Assert.Equal(85, WireContractComparer.CountCompared(LoadOfficial(), Packages, KnownOmissions));
    }

    [Fact]
    public void Every_rpc_of_the_official_service_but_the_known_omissions_is_present()
    {
        var official = LoadOfficial()["nested"]!["google"]!["nested"]!["cloud"]!["nested"]!["tasks"]!["nested"]!["v2beta3"]!["nested"]!["CloudTasks"]!["methods"]!.AsObject()
            .Select(m => m.Key).ToHashSet();
        var ours = CloudtasksReflection.Descriptor.Services.Single().Methods.Select(m => m.Name).ToHashSet();
        official.ExceptWith(["BatchCreateTasks", "BatchDeleteTasks"]);
        Assert.Equal(official.Order(), ours.Order());
        Assert.Equal(18, ours.Count);
    }

    [Theory]
    [InlineData("Queue", "tombstoneTtl", "id", 10, "google.cloud.tasks.v2beta3.Queue: field tombstoneTtl differs: official '#10 google.protobuf.Duration', project '#9 google.protobuf.Duration'")]
    [InlineData("HttpRequest", "headers", "keyType", "int32", "google.cloud.tasks.v2beta3.HttpRequest: field headers differs: official '#3 map<int32, string>'")]
    [InlineData("Task", "dispatchCount", "type", "int64", "google.cloud.tasks.v2beta3.Task: field dispatchCount differs: official '#6 int64', project '#6 int32'")]
    public void A_changed_official_field_is_reported_by_name(string message, string field, string property, object value, string expected)
    {
        var official = LoadOfficial();
        var fieldNode = official["nested"]!["google"]!["nested"]!["cloud"]!["nested"]!["tasks"]!["nested"]!["v2beta3"]!["nested"]![message]!["fields"]![field]!;
        fieldNode[property] = value switch { int i => JsonValue.Create(i), string s => JsonValue.Create(s), _ => throw new ArgumentException(null, nameof(value)) };

        var diffs = WireContractComparer.Compare(official, ProjectFiles, Packages, KnownOmissions);

        Assert.Contains(diffs, d => d.StartsWith(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void An_official_message_the_project_lacks_is_reported()
    {
        var official = LoadOfficial();
        official["nested"]!["google"]!["nested"]!["iam"]!["nested"]!["v1"]!["nested"]!.AsObject()["BrandNewMessage"] = new JsonObject { ["fields"] = new JsonObject() };

        var diffs = WireContractComparer.Compare(official, ProjectFiles, Packages, KnownOmissions);

        Assert.Contains("google.iam.v1.BrandNewMessage: missing from the project's contract (message)", diffs);
    }

    [Fact]
    public void A_changed_http_binding_is_reported()
    {
        var official = LoadOfficial();
        var options = official["nested"]!["google"]!["nested"]!["cloud"]!["nested"]!["tasks"]!["nested"]!["v2beta3"]!["nested"]!["CloudTasks"]!["methods"]!["RunTask"]!["options"]!;
        options["(google.api.http).post"] = "/v2beta3/{name=projects/*/locations/*/queues/*/tasks/*}:execute";

        var diffs = WireContractComparer.Compare(official, ProjectFiles, Packages, KnownOmissions);

        Assert.Contains(diffs, d => d.StartsWith("google.cloud.tasks.v2beta3.CloudTasks/RunTask: http differs", StringComparison.Ordinal));
    }
}
