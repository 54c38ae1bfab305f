using System.Text.Json;
using System.Text.RegularExpressions;
using Bridge.CloudTasks.Auth;
using Bridge.Core.Telemetry;
using Bridge.Functions;
using Bridge.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Bridge.Infrastructure.Tests;

/// <summary>infra/azure: compiled, linted and evaluated with the Bicep CLI from NuGet; its settings run the app's own validation.</summary>
public sealed partial class BicepTests
{
    private static readonly string AzureDir = Path.Combine(RepositoryPaths.Root, "infra", "azure");

    private static readonly Dictionary<string, string> Roles = new()
    {
        ["4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0"] = "Service Bus Data Receiver",
        ["69a216fc-b8fb-44d8-bc22-1f3c2cd27a39"] = "Service Bus Data Sender",
        ["b7e6dc6d-f1e8-4753-8033-0f276bb0955b"] = "Storage Blob Data Owner",
        ["ba92f5b4-2d11-453d-a403-e96b0029c9fe"] = "Storage Blob Data Contributor",
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
        Assert.Equal("bridge-intake", settings[Functions.Functions.ServiceBusForwardFunction.QueueSetting]);
        Assert.Equal(settings["BridgeServiceBusQueue"], settings["Bridge__Routes__reminders__ServiceBusEntity"]);
        // Always set: the hand-back function's trigger (%BridgeServiceBusHandBackQueue%) is never left unresolved.
        Assert.Equal("bridge-handback", settings[Functions.Functions.ServiceBusHandBackFunction.QueueSetting]);
        Assert.Equal("X-Api-Version", settings["Bridge__Routes__orders__Headers__0__Name"]);
        Assert.Equal("2", settings["Bridge__Routes__orders__Headers__0__Value"]);
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

    /// <summary>
    /// Flex Consumption is Linux only, and Linux app setting names hold only letters, digits, '.' and '_': one name
    /// outside that (a header name, a route name with '-') and the platform refuses the whole deployment.
    /// </summary>
    [Fact]
    public void Every_generated_app_setting_name_is_one_linux_accepts()
    {
        var manyOfEverything = File.ReadAllText(Path.Combine(AzureDir, "main.bicepparam"))
            .Replace("headers: { 'X-Api-Version': '2' }", "headers: { 'X-Api-Version': '2', 'X-Tenant.Group': 'a', 'Content-Language': 'de' }\n    carryProperties: ['tenant', 'trace-id']", StringComparison.Ordinal)
            .Replace("    carryProperties: ['tenant']\n", string.Empty, StringComparison.Ordinal)
            .Replace("param hostingPlan = 'FlexConsumption'", "param hostingPlan = 'ElasticPremium'\nparam outcomeEntityKind = 'topic'\nparam extraAppSettings = { OTEL_EXPORTER_OTLP_ENDPOINT: 'https://otel.example.com' }", StringComparison.Ordinal);

        var variant = BicepSnapshot.Take(manyOfEverything);
        foreach (var snapshot in new[] { BicepSnapshot.Take(), variant })
        {
            var settings = snapshot.AppSettings();
            Assert.True(settings.Count > 30);
            Assert.All(settings.Keys, name => Assert.Matches(LinuxAppSettingName(), name));
        }

        var headers = variant.AppSettings().Where(s => s.Key.StartsWith("Bridge__Routes__orders__Headers__", StringComparison.Ordinal)).ToDictionary();
        Assert.Equal(6, headers.Count);
        Assert.Equal(["Content-Language", "X-Api-Version", "X-Tenant.Group"], headers.Where(h => h.Key.EndsWith("__Name", StringComparison.Ordinal)).Select(h => h.Value).Order());
    }

    /// <summary>
    /// The federation rule on the Azure side: the identity asks for &lt;App ID URI&gt;/.default, expects the App ID
    /// URI as the token's audience, and hands that same URI to Terraform as the provider's allowed audience.
    /// </summary>
    [Fact]
    public void The_federation_settings_ask_for_the_app_id_uri_the_provider_allows()
    {
        var snapshot = BicepSnapshot.Take();
        var settings = snapshot.AppSettings();
        var appIdUri = Assert.Single(ParameterValue().Matches(File.ReadAllText(Path.Combine(AzureDir, "main.bicepparam")))).Groups[1].Value;

        Assert.Equal(appIdUri, settings["Bridge__CloudTasks__WorkloadIdentity__AzureTokenAudience"]);
        Assert.Equal(AzureWorkloadIdentityFederationOptions.ScopeFor(appIdUri), settings["Bridge__CloudTasks__WorkloadIdentity__AzureTokenScope"]);
        Assert.Equal("federationAppIdUri", Assert.Single(BicepOutputReading().Matches(File.ReadAllText(Path.Combine(AzureDir, "main.bicep")))).Groups[1].Value);
        Assert.DoesNotContain(settings.Values, v => v.Contains("AzureADTokenExchange", StringComparison.Ordinal));

        // The app refuses the old, never-matching audience at start-up, naming the setting.
        var wrong = File.ReadAllText(Path.Combine(AzureDir, "main.bicepparam")).Replace(appIdUri, "api://AzureADTokenExchange", StringComparison.Ordinal);
        var error = Assert.Throws<OptionsValidationException>(() => Validate(BicepSnapshot.Take(wrong).AppSettings()));
        Assert.Contains(error.Failures, f => f.StartsWith("Bridge:CloudTasks:WorkloadIdentity:AzureTokenAudience 'api://AzureADTokenExchange' names", StringComparison.Ordinal));
    }

    [Fact]
    public void No_basic_publishing_credentials_and_no_log_analytics_keys()
    {
        var snapshot = BicepSnapshot.Take();

        var policies = snapshot.Resources.Where(r => (string?)r["type"] == "Microsoft.Web/sites/basicPublishingCredentialsPolicies")
            .ToDictionary(r => ((string)r["name"]!).Split('/').Last(), r => (bool)r["properties"]!["allow"]!);
        Assert.Equal(new Dictionary<string, bool> { ["ftp"] = false, ["scm"] = false }, policies);
        Assert.True((bool)snapshot.Single("Microsoft.OperationalInsights/workspaces")["properties"]!["features"]!["disableLocalAuth"]!);
    }

    /// <summary>
    /// GitHub → Azure: the deployer trusts one repository's jobs in the protected environment, the planner its pull
    /// requests; the deployer may assign exactly the roles the app's template assigns, to service principals, in
    /// the app's resource group; the planner writes nothing.
    /// </summary>
    [Fact]
    public void The_github_deployer_is_trusted_for_one_environment_and_assigns_only_the_apps_roles()
    {
        var deployer = BicepSnapshot.TakeDeployer();

        var trust = deployer.Resources.Where(r => (string?)r["type"] == "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials")
            .ToDictionary(r => ((string)r["name"]!).Split('/')[0], r => r["properties"]!);
        Assert.Equal(["bridge-github-deployer", "bridge-github-planner"], trust.Keys.Order());
        Assert.All(trust.Values, t => Assert.Equal("https://token.actions.githubusercontent.com", (string?)t["issuer"]));
        Assert.All(trust.Values, t => Assert.Equal(["api://AzureADTokenExchange"], t["audiences"]!.AsArray().Select(a => (string?)a)));
        Assert.Equal("repo:my-org/bridge:environment:production", (string?)trust["bridge-github-deployer"]["subject"]);
        Assert.Equal("repo:my-org/bridge:pull_request", (string?)trust["bridge-github-planner"]["subject"]);

        var grants = deployer.ResourceGroupRoleAssignments();
        Assert.All(grants, g => Assert.Equal("rg-bridge", g.ResourceGroup));
        Assert.Equal(4, grants.Count);
        Assert.DoesNotContain(grants, g => g.Role is "8e3af657-a8ff-443c-a75c-2fe8c4bcb635" or "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"); // Owner, User Access Administrator
        var rbacAdmin = Assert.Single(grants, g => g.Role == "f58310d9-a9f6-439a-9e8d-f62e7b41a168");
        var allowed = GuidList().Matches(rbacAdmin.Condition!).Select(m => m.Groups[1].Value.Split(", ").Order().ToList()).ToList();
        // Both variants' roles: the function app's seven (six, and the payload container's Blob Data Contributor), and the Container Apps variant's Data Owner (intake queue) and AcrPull.
        var appRoles = BicepSnapshot.Take().RoleAssignments().Concat(BicepSnapshot.TakeContainerApps().RoleAssignments()).Select(a => a.Role).Distinct().Order().ToList();
        Assert.Equal(9, appRoles.Count);
        Assert.Equal(2, allowed.Count); // create and delete
        Assert.All(allowed, roles => Assert.Equal(appRoles, roles));
        Assert.Contains("@Request[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {'ServicePrincipal'}", rbacAdmin.Condition, StringComparison.Ordinal);

        var whatIf = deployer.Single("Microsoft.Authorization/roleDefinitions")["properties"]!["permissions"]![0]!;
        Assert.Equal(["Microsoft.Resources/deployments/validate/action", "Microsoft.Resources/deployments/whatIf/action"], whatIf["actions"]!.AsArray().Select(a => (string?)a).Order());
        Assert.Contains(grants, g => g.Role == "acdd72a7-3385-48ef-bd42-f606fba81ae7"); // the planner: Reader
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
            ["Bridge__CloudTasks__EmulatorHost"] = "local development only: the emulator switch through configuration",
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

    private static void Validate(Dictionary<string, string> settings)
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(settings.Select(s => KeyValuePair.Create(s.Key.Replace("__", ":", StringComparison.Ordinal), (string?)s.Value)))
            .Build();
        using var services = new ServiceCollection().AddLogging().AddBridgeFunctions(configuration).BuildServiceProvider();
        services.GetRequiredService<IStartupValidator>().Validate();
    }

    // https://learn.microsoft.com/azure/app-service/reference-app-settings: on Linux, letters, digits, '.' and '_'.
    [GeneratedRegex("^[A-Za-z0-9._]+$")]
    private static partial Regex LinuxAppSettingName();

    [GeneratedRegex(@"^param federationAppIdUri = '([^']+)'", RegexOptions.Multiline)]
    private static partial Regex ParameterValue();

    [GeneratedRegex(@"^output (federation\w+) string = federationAppIdUri", RegexOptions.Multiline)]
    private static partial Regex BicepOutputReading();

    [GeneratedRegex(@"GuidEquals \{([^}]+)\}")]
    private static partial Regex GuidList();

    [Fact]
    public void The_identity_gets_each_role_only_where_it_needs_it()
    {
        var snapshot = BicepSnapshot.Take();
        var namespaceName = (string)snapshot.Single("Microsoft.ServiceBus/namespaces")["name"]!;
        var payloadStore = PayloadStoreAccount(snapshot);
        var storageName = (string)Assert.Single(snapshot.Resources, r => (string?)r["type"] == "Microsoft.Storage/storageAccounts" && (string?)r["name"] != payloadStore)["name"]!;
        var group = $"/subscriptions/{BicepSnapshot.SubscriptionId}/resourceGroups/rg-bridge/providers";

        var granted = snapshot.RoleAssignments().Select(a => (a.Scope, Roles.GetValueOrDefault(a.Role, a.Role))).OrderBy(a => a.Item2).ToList();

        Assert.Equal(
            new List<(string, string)>
            {
                ($"{group}/Microsoft.Insights/components/bridge-insights", "Monitoring Metrics Publisher"),
                ($"{group}/Microsoft.ServiceBus/namespaces/{namespaceName}/queues/bridge-intake", "Service Bus Data Receiver"),
                ($"{group}/Microsoft.ServiceBus/namespaces/{namespaceName}/queues/bridge-handback", "Service Bus Data Receiver"), // the hand-back function
                ($"{group}/Microsoft.ServiceBus/namespaces/{namespaceName}/queues/bridge-intake", "Service Bus Data Sender"), // hand-backs: a scheduled copy to the intake queue
                ($"{group}/Microsoft.ServiceBus/namespaces/{namespaceName}/queues/bridge-handback", "Service Bus Data Sender"), // a topic subscription's hand-backs
                ($"{group}/Microsoft.ServiceBus/namespaces/{namespaceName}/queues/bridge-outcomes", "Service Bus Data Sender"),
                ($"{group}/Microsoft.Storage/storageAccounts/{payloadStore}/blobServices/default/containers/payloads", "Storage Blob Data Contributor"),
                ($"{group}/Microsoft.Storage/storageAccounts/{storageName}", "Storage Blob Data Owner"),
                ($"{group}/Microsoft.Storage/storageAccounts/{storageName}", "Storage Queue Data Contributor"),
                ($"{group}/Microsoft.Storage/storageAccounts/{storageName}", "Storage Table Data Contributor"),
            },
            granted);
        Assert.All(snapshot.Resources.Where(r => (string?)r["type"] == "Microsoft.Authorization/roleAssignments"),
            r => Assert.Equal("ServicePrincipal", (string?)r["properties"]!["principalType"]));
    }

    /// <summary>The payload store's account: the one the app settings point at.</summary>
    internal static string PayloadStoreAccount(BicepSnapshot snapshot, bool containerApps = false)
    {
        var settings = containerApps ? snapshot.ContainerSettings() : snapshot.AppSettings();
        return new Uri(settings["Bridge__Outcomes__PayloadStore__BlobServiceUri"]).Host.Split('.')[0];
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Large_payloads_go_to_a_keyless_container_only_the_identity_writes_and_that_expires_them(bool containerApps)
    {
        var snapshot = containerApps ? BicepSnapshot.TakeContainerApps() : BicepSnapshot.Take();
        var settings = containerApps ? snapshot.ContainerSettings() : snapshot.AppSettings();
        var account = PayloadStoreAccount(snapshot, containerApps);

        Assert.Equal($"https://{account}.blob.core.windows.net/", settings["Bridge__Outcomes__PayloadStore__BlobServiceUri"]);
        Assert.Equal("payloads", settings["Bridge__Outcomes__PayloadStore__Container"]);
        Assert.Equal(BicepSnapshot.ClientIdStandIn, settings["Bridge__Outcomes__ManagedIdentityClientId"]);
        Assert.DoesNotContain(settings, s => s.Key.StartsWith("Bridge__Outcomes__PayloadStore__ConnectionString", StringComparison.Ordinal));

        var storage = snapshot.Single("Microsoft.Storage/storageAccounts", account);
        Assert.False((bool)storage["properties"]!["allowSharedKeyAccess"]!);
        Assert.False((bool)storage["properties"]!["allowBlobPublicAccess"]!);
        Assert.Equal("TLS1_2", (string?)storage["properties"]!["minimumTlsVersion"]);
        Assert.Equal("None", (string?)snapshot.Single("Microsoft.Storage/storageAccounts/blobServices/containers", $"{account}/default/payloads")["properties"]!["publicAccess"]);

        var granted = snapshot.RoleAssignments().Where(a => a.Scope.Contains($"/storageAccounts/{account}", StringComparison.Ordinal)).ToList();
        var grant = Assert.Single(granted); // the container only, and nothing broader on the account
        Assert.EndsWith($"/storageAccounts/{account}/blobServices/default/containers/payloads", grant.Scope, StringComparison.Ordinal);
        Assert.Equal("ba92f5b4-2d11-453d-a403-e96b0029c9fe", grant.Role); // Storage Blob Data Contributor

        var rule = Assert.Single(snapshot.Single("Microsoft.Storage/storageAccounts/managementPolicies", $"{account}/default")["properties"]!["policy"]!["rules"]!.AsArray())!;
        Assert.Equal(["payloads/"], rule["definition"]!["filters"]!["prefixMatch"]!.AsArray().Select(p => (string?)p));
        Assert.Equal(30, (int)rule["definition"]!["actions"]!["baseBlob"]!["delete"]!["daysAfterCreationGreaterThan"]!);
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
        var handBack = snapshot.Single("Microsoft.ServiceBus/namespaces/queues", "/bridge-handback")["properties"]!;
        Assert.True((bool)handBack["deadLetteringOnMessageExpiration"]!);
        Assert.Equal(10, (int)handBack["maxDeliveryCount"]!);
        Assert.True((bool)handBack["requiresDuplicateDetection"]!); // a copy's MessageId is deterministic: a second copy is dropped
        var outcomes = snapshot.Single("Microsoft.ServiceBus/namespaces/queues", "/bridge-outcomes")["properties"]!;
        Assert.True((bool)outcomes["requiresDuplicateDetection"]!);
        Assert.Equal("P1D", (string?)outcomes["duplicateDetectionHistoryTimeWindow"]);
        Assert.True((bool)outcomes["deadLetteringOnMessageExpiration"]!);

        Assert.All(snapshot.Resources.Where(r => (string?)r["type"] == "Microsoft.Storage/storageAccounts"), account =>
        {
            Assert.False((bool)account["properties"]!["allowSharedKeyAccess"]!);
            Assert.False((bool)account["properties"]!["allowBlobPublicAccess"]!);
        });
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
