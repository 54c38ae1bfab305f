using System.Text.Json.Nodes;
using Bridge.CloudTasks.Iam.V1;
using Bridge.CloudTasks.LongRunning;
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
    private static readonly string[] Packages = ["google.cloud.tasks.v2beta3", "google.iam.v1", "google.longrunning"];

    /// <summary>What the project leaves out on purpose, and why (see the closing note of issue 2).</summary>
    private static readonly string[] KnownOmissions =
    [
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
        OperationsReflection.Descriptor,
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
        Assert.Equal(102, WireContractComparer.CountCompared(LoadOfficial(), Packages, KnownOmissions));
    }

    [Fact]
    public void Every_rpc_of_the_official_service_but_the_known_omissions_is_present()
    {
        var official = LoadOfficial()["nested"]!["google"]!["nested"]!["cloud"]!["nested"]!["tasks"]!["nested"]!["v2beta3"]!["nested"]!["CloudTasks"]!["methods"]!.AsObject()
            .Select(m => m.Key).ToHashSet();
        var ours = CloudtasksReflection.Descriptor.Services.Single().Methods.Select(m => m.Name).ToHashSet();
        Assert.Equal(official.Order(), ours.Order());
        Assert.Equal(20, ours.Count);
    }

    [Fact]
    public void Every_rpc_of_the_official_operations_service_is_present()
    {
        var official = LoadOfficial()["nested"]!["google"]!["nested"]!["longrunning"]!["nested"]!["Operations"]!["methods"]!.AsObject()
            .Select(m => m.Key).Order();
        var ours = OperationsReflection.Descriptor.Services.Single().Methods.Select(m => m.Name).Order();
        Assert.Equal(["CancelOperation", "DeleteOperation", "GetOperation", "ListOperations", "WaitOperation"], ours);
        Assert.Equal(official, ours);
    }

    [Fact]
    public void The_batch_rpcs_name_existing_response_and_metadata_types()
    {
        foreach (var method in CloudtasksReflection.Descriptor.Services.Single().Methods.Where(m => m.OutputType.FullName == "google.longrunning.Operation"))
        {
            var info = method.GetOptions().GetExtension(OperationsExtensions.OperationInfo);
            Assert.NotNull(info);
            foreach (var type in new[] { info.ResponseType, info.MetadataType })
            {
                var found = type == "google.protobuf.Empty" ? Google.Protobuf.WellKnownTypes.Empty.Descriptor : CloudtasksReflection.Descriptor.FindTypeByName<MessageDescriptor>(type);
                Assert.True(found is not null, $"{method.Name}: {type} is not a message of the contract");
            }
        }
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

    [Theory]
    [InlineData("ListOperationsRequest", "name", "id", 1, "google.longrunning.ListOperationsRequest: field name differs: official '#1 string', project '#4 string'")]
    [InlineData("Operation", "response", "type", "google.protobuf.Empty", "google.longrunning.Operation: field response differs: official '#5 google.protobuf.Empty oneof result'")]
    [InlineData("WaitOperationRequest", "timeout", "id", 3, "google.longrunning.WaitOperationRequest: field timeout differs: official '#3 google.protobuf.Duration'")]
    public void A_changed_official_longrunning_field_is_reported_by_name(string message, string field, string property, object value, string expected)
    {
        var official = LoadOfficial();
        official["nested"]!["google"]!["nested"]!["longrunning"]!["nested"]![message]!["fields"]![field]![property] =
            value switch { int i => JsonValue.Create(i), string s => JsonValue.Create(s), _ => throw new ArgumentException(null, nameof(value)) };

        var diffs = WireContractComparer.Compare(official, ProjectFiles, Packages, KnownOmissions);

        Assert.Contains(diffs, d => d.StartsWith(expected, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("BatchCreateTasksMetadata", "PARTIALLY_SUCCEEDED", 3, "google.cloud.tasks.v2beta3.BatchCreateTasksMetadata.State: value PARTIALLY_SUCCEEDED differs: official '3', project '5'")]
    [InlineData("BatchDeleteTasksMetadata", "FAILED", 3, "google.cloud.tasks.v2beta3.BatchDeleteTasksMetadata.State: value FAILED differs: official '3', project '4'")]
    public void A_changed_batch_state_number_is_reported(string message, string value, int number, string expected)
    {
        var official = LoadOfficial();
        V2Beta3(official)[message]!["nested"]!["State"]!["values"]![value] = number;

        var diffs = WireContractComparer.Compare(official, ProjectFiles, Packages, KnownOmissions);

        Assert.Contains(expected, diffs);
    }

    [Fact]
    public void A_changed_failed_requests_map_is_reported()
    {
        var official = LoadOfficial();
        V2Beta3(official)["BatchCreateTasksMetadata"]!["fields"]!["failedRequests"]!["keyType"] = "int64";

        var diffs = WireContractComparer.Compare(official, ProjectFiles, Packages, KnownOmissions);

        Assert.Contains(diffs, d => d.StartsWith("google.cloud.tasks.v2beta3.BatchCreateTasksMetadata: field failedRequests differs: official '#4 map<int64, google.rpc.Status>'", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("BatchCreateTasks", "(google.longrunning.operation_info).metadata_type", "BatchDeleteTasksMetadata", "google.cloud.tasks.v2beta3.CloudTasks/BatchCreateTasks: operation_info differs")]
    [InlineData("BatchDeleteTasks", "(google.api.http).post", "/v2beta3/{parent=projects/*/locations/*/queues/*}/tasks:delete", "google.cloud.tasks.v2beta3.CloudTasks/BatchDeleteTasks: http differs")]
    [InlineData("BatchCreateTasks", "(google.api.http).body", "requests", "google.cloud.tasks.v2beta3.CloudTasks/BatchCreateTasks: http differs")]
    public void A_changed_batch_rpc_option_is_reported(string method, string option, string value, string expected)
    {
        var official = LoadOfficial();
        V2Beta3(official)["CloudTasks"]!["methods"]![method]!["options"]![option] = value;

        var diffs = WireContractComparer.Compare(official, ProjectFiles, Packages, KnownOmissions);

        Assert.Contains(diffs, d => d.StartsWith(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void A_changed_method_signature_is_reported()
    {
        var official = LoadOfficial();
        var parsed = V2Beta3(official)["CloudTasks"]!["methods"]!["BatchDeleteTasks"]!["parsedOptions"]!.AsArray();
        parsed.Single(o => o!["(google.api.method_signature)"] is not null)!["(google.api.method_signature)"] = "parent";

        var diffs = WireContractComparer.Compare(official, ProjectFiles, Packages, KnownOmissions);

        Assert.Contains("google.cloud.tasks.v2beta3.CloudTasks/BatchDeleteTasks: signatures differs: official 'parent', project 'parent,names'", diffs);
    }

    [Fact]
    public void A_changed_operation_info_extension_is_reported()
    {
        var official = LoadOfficial();
        official["nested"]!["google"]!["nested"]!["longrunning"]!["nested"]!["operationInfo"]!["id"] = 1050;

        var diffs = WireContractComparer.Compare(official, ProjectFiles, Packages, KnownOmissions);

        Assert.Contains("google.longrunning.operationInfo: field differs: official '#1050 google.longrunning.OperationInfo', project '#1049 google.longrunning.OperationInfo'", diffs);
    }

    [Fact]
    public void A_removed_operations_rpc_is_reported_as_defined_only_by_the_project()
    {
        var official = LoadOfficial();
        official["nested"]!["google"]!["nested"]!["longrunning"]!["nested"]!["Operations"]!["methods"]!.AsObject().Remove("WaitOperation");

        var diffs = WireContractComparer.Compare(official, ProjectFiles, Packages, KnownOmissions);

        Assert.Contains("google.longrunning.Operations/WaitOperation: defined by the project but not in the official contract", diffs);
    }

    private static JsonNode V2Beta3(JsonNode official) =>
        official["nested"]!["google"]!["nested"]!["cloud"]!["nested"]!["tasks"]!["nested"]!["v2beta3"]!["nested"]!;

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
