using System.Text.Json;
using Bridge.Core.Telemetry;
using Bridge.Functions;
using Bridge.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Bridge.Infrastructure.Tests;

/// <summary>infra/azure: compiled, linted and evaluated with the Bicep CLI from NuGet; its settings run the app's own validation.</summary>
public sealed class BicepTests
{
    private static readonly string AzureDir = Path.Combine(RepositoryPaths.Root, "infra", "azure");

    private static readonly Dictionary<string, string> Roles = new()
    {
        ["4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0"] = "Service Bus Data Receiver",
        ["69a216fc-b8fb-44d8-bc22-1f3c2cd27a39"] = "Service Bus Data Sender",
        ["b7e6dc6d-f1e8-4753-8033-0f276bb0955b"] = "Storage Blob Data Owner",
        ["974c5e8b-45b9-4653-ba55-5f855dd0fb88"] = "Storage Queue Data Contributor",
        ["0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"] = "Storage Table Data Contributor",
        ["3913510d-42f4-4e42-8a64-420c390055eb"] = "Monitoring Metrics Publisher",
    };

    [Fact]
    public void The_templates_build_and_lint_without_a_diagnostic()
    {
        var output = Path.Combine(Path.GetTempPath(), $"bridge-main-{Guid.NewGuid():N}.json");
        try
        {
            var build = Tools.Run(Tools.Bicep, ["build", Path.Combine(AzureDir, "main.bicep"), "--outfile", output]);
            Assert.True(build.ExitCode == 0 && build.Stderr.Trim().Length == 0, $"bicep build: {build}");
            using var template = JsonDocument.Parse(File.ReadAllText(output));
            Assert.Equal("https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#", template.RootElement.GetProperty("$schema").GetString());

            foreach (var file in new[] { "main.bicep", "main.bicepparam" })
            {
                var lint = Tools.Run(Tools.Bicep, ["lint", Path.Combine(AzureDir, file)]);
                Assert.True(lint.ExitCode == 0 && lint.Output.Trim().Length == 0, $"bicep lint {file}: {lint}");
            }
        }
        finally
        {
            File.Delete(output);
        }
    }

    [Theory]
    [InlineData("var forgotten = 'x'\n", "no-unused-vars")]
    [InlineData("output endpoint string = 'https://management.azure.com/'\n", "no-hardcoded-env-urls")]
    [InlineData("resource typo 'Microsoft.ServiceBus/namespaces@2024-01-01' = {\n  name: 'x'\n  location: location\n  properties: { disableLocalAuthh: true }\n}\n", "disableLocalAuthh")]
    public void Lint_names_what_breaks_a_rule(string appended, string expected)
    {
        using var copy = new TempCopy(Path.Combine("infra", "azure"));
        File.AppendAllText(copy.File("main.bicep"), appended);

        var lint = Tools.Run(Tools.Bicep, ["lint", copy.File("main.bicep")]);

        Assert.NotEqual(0, lint.ExitCode + (lint.Output.Contains("Warning", StringComparison.Ordinal) ? 1 : 0));
        Assert.Contains(expected, lint.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void The_committed_snapshot_is_what_the_templates_deploy()
    {
        var result = Tools.Run("bash", [Path.Combine(AzureDir, "snapshot.sh"), "validate"], environment: new Dictionary<string, string> { ["BICEP"] = Tools.Bicep });

        Assert.True(result.ExitCode == 0, $"infra/azure/main.snapshot.json is stale; run infra/azure/snapshot.sh and review the diff.\n{result}");
    }

    [Fact]
    public void The_deployed_settings_pass_the_function_apps_start_up_validation()
    {
        var settings = BicepSnapshot.Take().AppSettings();
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(settings.Select(s => KeyValuePair.Create(s.Key.Replace("__", ":", StringComparison.Ordinal), (string?)s.Value)))
            .Build();
        using var services = new ServiceCollection().AddLogging().AddBridgeFunctions(configuration).BuildServiceProvider();

        services.GetRequiredService<IStartupValidator>().Validate();

        var callbackUrl = $"https://{BicepSnapshot.HostNameStandIn}/api/tasks/callback";
        Assert.Equal(callbackUrl, settings["Bridge__Callback__PublicUrl"]);
        Assert.Equal(callbackUrl, settings["Bridge__Routes__reminders__TargetUrl"]);
        Assert.Equal("https://orders-worker-abc123-uc.a.run.app/tasks/orders", settings["Bridge__Routes__orders__TargetUrl"]);
        Assert.Equal("AzureWorkloadIdentity", settings["Bridge__CloudTasks__Credential"]);
        Assert.Equal(BicepSnapshot.ClientIdStandIn, settings["Bridge__CloudTasks__WorkloadIdentity__ManagedIdentityClientId"]);
        Assert.Equal(settings["Bridge__Routes__orders__ServiceAccountEmail"], settings["Bridge__Callback__AllowedServiceAccounts__0"]);
        Assert.Equal("bridge-intake", settings["Bridge__ServiceBus__Queue"]);
        Assert.Equal(settings["Bridge__ServiceBus__Queue"], settings["Bridge__Routes__reminders__ServiceBusEntity"]);
        Assert.Equal("orders", settings["Bridge__DefaultRoute"]);
        Assert.Equal("OpenTelemetry", settings["AzureFunctionsJobHost__telemetryMode"]);
        using (var host = JsonDocument.Parse(File.ReadAllText(Path.Combine(RepositoryPaths.Root, "host.json"))))
        {
            Assert.Equal(settings["AzureFunctionsJobHost__telemetryMode"], host.RootElement.GetProperty("telemetryMode").GetString());
        }

        Assert.NotNull(AzureMonitorCredential.FromAuthenticationString(settings[AzureMonitorCredential.SettingName]));
        Assert.DoesNotContain(settings, s => s.Key.Contains("ConnectionString", StringComparison.OrdinalIgnoreCase) && s.Key != "APPLICATIONINSIGHTS_CONNECTION_STRING");
        Assert.DoesNotContain(settings, s => s.Value.Contains("AccountKey=", StringComparison.Ordinal) || s.Value.Contains("SharedAccessKey", StringComparison.Ordinal));
    }

    [Fact]
    public void Every_setting_of_the_sample_is_deployed_or_has_a_reason_not_to_be()
    {
        // Keys of local.settings.sample.json the deployment leaves out, each with why.
        var notDeployed = new Dictionary<string, string>
        {
            ["AzureWebJobsStorage"] = "identity-based: AzureWebJobsStorage__accountName/__credential/__clientId",
            ["FUNCTIONS_WORKER_RUNTIME"] = "Flex Consumption sets it in functionAppConfig (Premium gets it as a setting)",
            ["CLOUD_TASKS_EMULATOR_HOST"] = "local development only",
            ["Bridge__Routes__orders__Audience"] = "optional; the target URL by default",
            ["Bridge__Routes__orders__DefaultDelay"] = "optional; set per route when given",
            ["Bridge__Routes__orders__ServiceBusEntity"] = "set with serviceBusSubject; other routes are chosen by property or default",
            ["Bridge__Routes__orders__ServiceBusSubject"] = "optional; set per route when given",
            ["Bridge__Callback__Issuers__0__DiscoveryUrl"] = "Google's issuer is found by its standard discovery URL",
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = "optional exporter; pass it in extraAppSettings",
        };
        using var sample = JsonDocument.Parse(File.ReadAllText(Path.Combine(RepositoryPaths.Root, "local.settings.sample.json")));
        var deployed = BicepSnapshot.Take().AppSettings();

        var missing = sample.RootElement.GetProperty("Values").EnumerateObject()
            .Select(p => p.Name)
            .Where(key => !deployed.ContainsKey(key) && !notDeployed.ContainsKey(key))
            .ToList();

        Assert.True(missing.Count == 0, "Settings the Bicep does not deploy: " + string.Join(", ", missing));
        Assert.DoesNotContain("FUNCTIONS_WORKER_RUNTIME", deployed.Keys); // Flex Consumption refuses it
    }

    [Fact]
    public void The_identity_gets_each_role_only_where_it_needs_it()
    {
        var snapshot = BicepSnapshot.Take();
        var namespaceName = (string)snapshot.Single("Microsoft.ServiceBus/namespaces")["name"]!;
        var storageName = (string)snapshot.Single("Microsoft.Storage/storageAccounts")["name"]!;
        var group = $"/subscriptions/{BicepSnapshot.SubscriptionId}/resourceGroups/rg-bridge/providers";

        var granted = snapshot.RoleAssignments().Select(a => (a.Scope, Roles.GetValueOrDefault(a.Role, a.Role))).OrderBy(a => a.Item2).ToList();

        Assert.Equal(
            new List<(string, string)>
            {
                ($"{group}/Microsoft.Insights/components/bridge-insights", "Monitoring Metrics Publisher"),
                ($"{group}/Microsoft.ServiceBus/namespaces/{namespaceName}/queues/bridge-intake", "Service Bus Data Receiver"),
                ($"{group}/Microsoft.ServiceBus/namespaces/{namespaceName}/queues/bridge-outcomes", "Service Bus Data Sender"),
                ($"{group}/Microsoft.Storage/storageAccounts/{storageName}", "Storage Blob Data Owner"),
                ($"{group}/Microsoft.Storage/storageAccounts/{storageName}", "Storage Queue Data Contributor"),
                ($"{group}/Microsoft.Storage/storageAccounts/{storageName}", "Storage Table Data Contributor"),
            },
            granted);
        Assert.All(snapshot.Resources.Where(r => (string?)r["type"] == "Microsoft.Authorization/roleAssignments"),
            r => Assert.Equal("ServicePrincipal", (string?)r["properties"]!["principalType"]));
    }

    [Fact]
    public void Service_bus_is_keyless_dead_letters_and_drops_repeated_outcomes()
    {
        var snapshot = BicepSnapshot.Take();

        var ns = snapshot.Single("Microsoft.ServiceBus/namespaces")["properties"]!;
        Assert.True((bool)ns["disableLocalAuth"]!);
        var intake = snapshot.Single("Microsoft.ServiceBus/namespaces/queues", "/bridge-intake")["properties"]!;
        Assert.True((bool)intake["deadLetteringOnMessageExpiration"]!);
        Assert.Equal(10, (int)intake["maxDeliveryCount"]!);
        Assert.Equal("PT1M", (string?)intake["lockDuration"]);
        var outcomes = snapshot.Single("Microsoft.ServiceBus/namespaces/queues", "/bridge-outcomes")["properties"]!;
        Assert.True((bool)outcomes["requiresDuplicateDetection"]!);
        Assert.Equal("P1D", (string?)outcomes["duplicateDetectionHistoryTimeWindow"]);
        Assert.True((bool)outcomes["deadLetteringOnMessageExpiration"]!);

        var storage = snapshot.Single("Microsoft.Storage/storageAccounts")["properties"]!;
        Assert.False((bool)storage["allowSharedKeyAccess"]!);
        Assert.False((bool)storage["allowBlobPublicAccess"]!);
        Assert.True((bool)snapshot.Single("Microsoft.Insights/components")["properties"]!["DisableLocalAuth"]!);
    }

    [Fact]
    public void Flex_consumption_runs_dotnet_10_isolated_from_a_package_read_by_identity()
    {
        var snapshot = BicepSnapshot.Take();

        var plan = snapshot.Single("Microsoft.Web/serverfarms");
        Assert.Equal("FC1", (string?)plan["sku"]!["name"]);
        Assert.Equal("FlexConsumption", (string?)plan["sku"]!["tier"]);
        Assert.True((bool)plan["properties"]!["reserved"]!);
        var site = snapshot.Single("Microsoft.Web/sites");
        Assert.Equal("functionapp,linux", (string?)site["kind"]);
        Assert.True((bool)site["properties"]!["httpsOnly"]!);
        var config = site["properties"]!["functionAppConfig"]!;
        Assert.Equal("dotnet-isolated", (string?)config["runtime"]!["name"]);
        Assert.Equal("10.0", (string?)config["runtime"]!["version"]);
        Assert.Equal("UserAssignedIdentity", (string?)config["deployment"]!["storage"]!["authentication"]!["type"]);
    }

    [Fact]
    public void Premium_with_topics_wires_the_intake_topic_and_outcome_topic()
    {
        var parameters = File.ReadAllText(Path.Combine(AzureDir, "main.bicepparam"))
            .Replace("param hostingPlan = 'FlexConsumption'", "param hostingPlan = 'ElasticPremium'\nparam intakeTopicName = 'events'\nparam outcomeEntityKind = 'topic'", StringComparison.Ordinal);
        Assert.Contains("ElasticPremium", parameters, StringComparison.Ordinal);

        var snapshot = BicepSnapshot.Take(parameters);

        var plan = snapshot.Single("Microsoft.Web/serverfarms");
        Assert.Equal("EP1", (string?)plan["sku"]!["name"]);
        var site = snapshot.Single("Microsoft.Web/sites");
        Assert.Equal("DOTNET-ISOLATED|10.0", (string?)site["properties"]!["siteConfig"]!["linuxFxVersion"]);
        Assert.Null(site["properties"]!["functionAppConfig"]);
        var settings = snapshot.AppSettings();
        Assert.Equal("dotnet-isolated", settings["FUNCTIONS_WORKER_RUNTIME"]);
        Assert.Equal("~4", settings["FUNCTIONS_EXTENSION_VERSION"]);

        var subscription = snapshot.Single("Microsoft.ServiceBus/namespaces/topics/subscriptions");
        Assert.EndsWith("/events/bridge", (string)subscription["name"]!, StringComparison.Ordinal);
        Assert.Equal("bridge-intake", (string?)subscription["properties"]!["forwardTo"]);
        var outcomeTopic = snapshot.Single("Microsoft.ServiceBus/namespaces/topics", "/bridge-outcomes");
        Assert.True((bool)outcomeTopic["properties"]!["requiresDuplicateDetection"]!);
        Assert.DoesNotContain(snapshot.Resources, r => (string?)r["type"] == "Microsoft.ServiceBus/namespaces/queues" && ((string)r["name"]!).EndsWith("/bridge-outcomes", StringComparison.Ordinal));
        Assert.Contains(snapshot.RoleAssignments(), a => a.Scope.EndsWith("/topics/bridge-outcomes", StringComparison.Ordinal) && a.Role == "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39");
    }
}
