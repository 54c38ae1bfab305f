using Bridge.Core.Telemetry;
using Bridge.Emulators.CloudTasks;
using Bridge.Server;
using Bridge.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Bridge.Infrastructure.Tests;

/// <summary>
/// infra/azure with hostingPlan ContainerApps (infra/azure/containerapps.bicepparam): the self-hosted runner on Azure
/// Container Apps. Its settings are fed to the runner's own start-up (<see cref="BridgeServerApp.Build"/>).
/// </summary>
public sealed class ContainerAppsTests
{
    private static readonly string AzureDir = Path.Combine(RepositoryPaths.Root, "infra", "azure");
    private static readonly string IdentityId = $"/subscriptions/{BicepSnapshot.SubscriptionId}/resourceGroups/rg-bridge/providers/Microsoft.ManagedIdentity/userAssignedIdentities/bridge-identity";

    private static string SampleParameters => File.ReadAllText(Path.Combine(AzureDir, "containerapps.bicepparam"));

    [Fact]
    public void The_sample_parameters_lint_without_a_diagnostic()
    {
        foreach (var file in new[] { "containerapps.bicepparam", "modules/containerapp.bicep", "modules/ingress.bicep" })
        {
            var lint = Tools.Run(Tools.Bicep, ["lint", Path.Combine(AzureDir, file)]);
            Assert.True(lint.ExitCode == 0 && lint.Output.Trim().Length == 0, $"bicep lint {file}: {lint}");
        }
    }

    [Fact]
    public void The_deployed_settings_pass_the_runners_start_up_validation()
    {
        var settings = BicepSnapshot.TakeContainerApps().ContainerSettings();

        using var app = BuildRunner(settings);
        app.Services.GetRequiredService<IStartupValidator>().Validate();

        // Google Cloud for real: no embedded emulator; Service Bus intake by the processor; the drain budget applies.
        Assert.Null(app.Services.GetService<CloudTasksEmulator>());
        Assert.Contains(app.Services.GetServices<IHostedService>(), s => s is ServiceBusIntakeService);
        Assert.Equal(TimeSpan.FromSeconds(75), app.Services.GetRequiredService<IOptions<HostOptions>>().Value.ShutdownTimeout);

        var callbackUrl = $"https://bridge-57hy4wyerj4ma.{BicepSnapshot.EnvironmentDomainStandIn}/api/tasks/callback";
        Assert.Equal(callbackUrl, settings["Bridge__Callback__PublicUrl"]);
        Assert.Equal(callbackUrl, settings["Bridge__Routes__reminders__TargetUrl"]);
        Assert.Equal("https://orders-worker-abc123-uc.a.run.app/tasks/orders", settings["Bridge__Routes__orders__TargetUrl"]);
        Assert.Equal("0.0.0.0", settings["Bridge__Server__ListenAddress"]);
        Assert.Equal("false", settings["Bridge__Server__EmbeddedEmulator"]);
        Assert.Equal(BicepSnapshot.ClientIdStandIn, settings["BridgeServiceBus__clientId"]);
        Assert.Equal(BicepSnapshot.ClientIdStandIn, settings["Bridge__CloudTasks__WorkloadIdentity__ManagedIdentityClientId"]);
        Assert.Equal(BicepSnapshot.ClientIdStandIn, settings["Bridge__Outcomes__ManagedIdentityClientId"]);
        Assert.NotNull(AzureMonitorCredential.FromAuthenticationString(settings[AzureMonitorCredential.SettingName]));
        Assert.DoesNotContain(settings, s => s.Value.Contains("AccountKey=", StringComparison.Ordinal) || s.Value.Contains("SharedAccessKey", StringComparison.Ordinal));

        // The same Bridge settings as the function app: only the host's own differ.
        var functionSettings = BicepSnapshot.Take().AppSettings();
        var bridgeKeys = functionSettings.Keys.Where(k => k.StartsWith("Bridge", StringComparison.Ordinal)).ToHashSet();
        Assert.Equal(bridgeKeys.Order(), settings.Keys.Where(k => k.StartsWith("Bridge", StringComparison.Ordinal) && !k.StartsWith("Bridge__Server__", StringComparison.Ordinal)).Order());
    }

    [Fact]
    public void The_runner_refuses_what_the_function_app_refuses()
    {
        var wrong = SampleParameters.Replace("param federationAppIdUri = 'api://5d3c1a8e-7b2f-4c6d-9e0a-1f2b3c4d5e6f'", "param federationAppIdUri = 'api://AzureADTokenExchange'", StringComparison.Ordinal);
        Assert.NotEqual(SampleParameters, wrong);

        using var app = BuildRunner(BicepSnapshot.TakeContainerApps(wrong).ContainerSettings());
        var error = Assert.Throws<OptionsValidationException>(() => app.Services.GetRequiredService<IStartupValidator>().Validate());

        Assert.Contains(error.Failures, f => f.StartsWith("Bridge:CloudTasks:WorkloadIdentity:AzureTokenAudience 'api://AzureADTokenExchange' names", StringComparison.Ordinal));
    }

    [Fact]
    public void The_identity_gets_each_role_only_where_it_needs_it_and_no_storage()
    {
        var snapshot = BicepSnapshot.TakeContainerApps();
        var namespaceName = (string)snapshot.Single("Microsoft.ServiceBus/namespaces")["name"]!;
        var registryName = (string)snapshot.Single("Microsoft.ContainerRegistry/registries")["name"]!;
        var group = $"/subscriptions/{BicepSnapshot.SubscriptionId}/resourceGroups/rg-bridge/providers";

        var payloadStore = BicepTests.PayloadStoreAccount(snapshot, containerApps: true);
        var granted = snapshot.RoleAssignments().OrderBy(a => a.Role).ToList();

        Assert.Equal(
            new List<(string, string)>
            {
                ($"{group}/Microsoft.ServiceBus/namespaces/{namespaceName}/queues/bridge-intake", "090c5cfd-751d-490a-894a-3ce6f1109419"), // Service Bus Data Owner: KEDA needs Manage to read the length
                ($"{group}/Microsoft.ServiceBus/namespaces/{namespaceName}/queues/bridge-handback", "090c5cfd-751d-490a-894a-3ce6f1109419"), // the same on the hand-back queue
                ($"{group}/Microsoft.Insights/components/bridge-insights", "3913510d-42f4-4e42-8a64-420c390055eb"), // Monitoring Metrics Publisher
                ($"{group}/Microsoft.ServiceBus/namespaces/{namespaceName}/queues/bridge-outcomes", "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39"), // Service Bus Data Sender
                ($"{group}/Microsoft.ContainerRegistry/registries/{registryName}", "7f951dda-4ed3-4680-a7ca-43fe172d538d"), // AcrPull
                ($"{group}/Microsoft.Storage/storageAccounts/{payloadStore}/blobServices/default/containers/payloads", "ba92f5b4-2d11-453d-a403-e96b0029c9fe"), // Storage Blob Data Contributor: the payload store's container
            },
            granted);
        Assert.All(snapshot.Resources.Where(r => (string?)r["type"] == "Microsoft.Authorization/roleAssignments"),
            r => Assert.Equal("ServicePrincipal", (string?)r["properties"]!["principalType"]));
        // No host storage: the only account is the payload store's.
        Assert.DoesNotContain(snapshot.Resources, r => ((string?)r["type"])!.StartsWith("Microsoft.Web/", StringComparison.Ordinal));
        Assert.Equal(payloadStore, (string?)snapshot.Single("Microsoft.Storage/storageAccounts")["name"]);
    }

    [Fact]
    public void Keda_scales_on_the_intake_queue_with_the_apps_identity_and_no_secret()
    {
        var snapshot = BicepSnapshot.TakeContainerApps();
        var app = snapshot.Single("Microsoft.App/containerApps");
        var properties = app["properties"]!;

        var scale = properties["template"]!["scale"]!;
        Assert.Equal(0, (int)scale["minReplicas"]!);
        Assert.Equal(10, (int)scale["maxReplicas"]!);
        var rules = scale["rules"]!.AsArray().ToDictionary(r => (string)r!["name"]!, r => r!);
        var queue = rules["intake-queue"]["custom"]!;
        Assert.Equal("azure-servicebus", (string?)queue["type"]);
        Assert.Equal(IdentityId, (string?)queue["identity"]);
        Assert.Null(queue["auth"]);
        Assert.Equal((string)snapshot.Single("Microsoft.ServiceBus/namespaces")["name"]!, (string?)queue["metadata"]!["namespace"]);
        Assert.Equal("bridge-intake", (string?)queue["metadata"]!["queueName"]);
        Assert.Equal("50", (string?)queue["metadata"]!["messageCount"]);
        var handBack = rules["handback-queue"]["custom"]!; // copies coming due wake a scaled-to-zero runner too
        Assert.Equal("azure-servicebus", (string?)handBack["type"]);
        Assert.Equal(IdentityId, (string?)handBack["identity"]);
        Assert.Equal("bridge-handback", (string?)handBack["metadata"]!["queueName"]);
        Assert.NotNull(rules["http"]["http"]); // a scaled-to-zero app wakes for callbacks and events

        var configuration = properties["configuration"]!;
        Assert.Null(configuration["secrets"]);
        var registry = Assert.Single(configuration["registries"]!.AsArray())!;
        Assert.Equal(IdentityId, (string?)registry["identity"]);
        Assert.Null(registry["passwordSecretRef"]);
        Assert.False((bool)snapshot.Single("Microsoft.ContainerRegistry/registries")["properties"]!["adminUserEnabled"]!);
        Assert.Equal(IdentityId, Assert.Single(app["identity"]!["userAssignedIdentities"]!.AsObject()).Key);
        Assert.True((bool)snapshot.Single("Microsoft.ServiceBus/namespaces")["properties"]!["disableLocalAuth"]!);

        // Environment logs by diagnostic setting: the workspace has no shared key to give.
        Assert.Equal("azure-monitor", (string?)snapshot.Single("Microsoft.App/managedEnvironments")["properties"]!["appLogsConfiguration"]!["destination"]);
        Assert.NotNull(snapshot.Single("Microsoft.Insights/diagnosticSettings")["properties"]!["workspaceId"]);
    }

    [Fact]
    public void Probes_ask_health_and_a_stopping_replica_drains_before_it_is_killed()
    {
        var snapshot = BicepSnapshot.TakeContainerApps();
        var template = snapshot.Single("Microsoft.App/containerApps")["properties"]!["template"]!;
        var container = Assert.Single(template["containers"]!.AsArray())!;
        var targetPort = (int)snapshot.Single("Microsoft.App/containerApps")["properties"]!["configuration"]!["ingress"]!["targetPort"]!;

        var probes = container["probes"]!.AsArray().ToDictionary(p => (string)p!["type"]!, p => p!["httpGet"]!);
        Assert.Equal(["Liveness", "Readiness", "Startup"], probes.Keys.Order());
        Assert.All(probes.Values, p => Assert.Equal("/api/health", (string?)p["path"]));
        Assert.All(probes.Values, p => Assert.Equal(targetPort, (int)p["port"]!));
        Assert.Equal(targetPort.ToString(System.Globalization.CultureInfo.InvariantCulture), BicepSnapshot.TakeContainerApps().ContainerSettings()["Bridge__Server__Port"]);

        // The host drains (ServiceBusProcessor stops, in-flight messages settle) within shutdownTimeoutSeconds; the
        // platform's grace period is longer, and the drain covers the intake queue's lock (a forward and its retries).
        var drain = int.Parse(BicepSnapshot.TakeContainerApps().ContainerSettings()["shutdownTimeoutSeconds"], System.Globalization.CultureInfo.InvariantCulture);
        var grace = (int)template["terminationGracePeriodSeconds"]!;
        Assert.True(grace > drain, $"grace {grace} s must exceed the drain {drain} s");
        var lockDuration = System.Xml.XmlConvert.ToTimeSpan((string)snapshot.Single("Microsoft.ServiceBus/namespaces/queues", "/bridge-intake")["properties"]!["lockDuration"]!);
        Assert.True(drain >= lockDuration.TotalSeconds, $"drain {drain} s is shorter than the intake lock {lockDuration}");
    }

    [Fact]
    public void Public_ingress_only_with_entra_id_on_everything_but_the_callback_and_health()
    {
        var snapshot = BicepSnapshot.TakeContainerApps();
        Assert.True((bool)snapshot.Single("Microsoft.App/containerApps")["properties"]!["configuration"]!["ingress"]!["external"]!);
        var auth = snapshot.Single("Microsoft.App/containerApps/authConfigs")["properties"]!;
        Assert.True((bool)auth["platform"]!["enabled"]!);
        Assert.Equal("Return401", (string?)auth["globalValidation"]!["unauthenticatedClientAction"]);
        Assert.Equal(["/api/health", "/api/tasks/callback"], auth["globalValidation"]!["excludedPaths"]!.AsArray().Select(p => (string?)p).Order());
        var entra = auth["identityProviders"]!["azureActiveDirectory"]!;
        Assert.Equal(["2b3c4d5e-6f70-4819-a2b3-c4d5e6f7a8b9"], entra["validation"]!["defaultAuthorizationPolicy"]!["allowedApplications"]!.AsArray().Select(a => (string?)a));
        Assert.Equal(["api://8a1f0c2e-3b4d-4e5f-9a6b-7c8d9e0f1a2b"], entra["validation"]!["allowedAudiences"]!.AsArray().Select(a => (string?)a));

        // Default: internal only, no authentication resource (nothing public to protect), the callback URL internal.
        var internalOnly = BicepSnapshot.TakeContainerApps(WithoutIngress(SampleParameters));
        Assert.False((bool)internalOnly.Single("Microsoft.App/containerApps")["properties"]!["configuration"]!["ingress"]!["external"]!);
        Assert.DoesNotContain(internalOnly.Resources, r => (string?)r["type"] == "Microsoft.App/containerApps/authConfigs");
        Assert.Equal($"https://bridge-57hy4wyerj4ma.internal.{BicepSnapshot.EnvironmentDomainStandIn}/api/tasks/callback", internalOnly.ContainerSettings()["Bridge__Callback__PublicUrl"]);
    }

    [Fact]
    public void The_runner_on_0_0_0_0_always_gets_its_own_intake_authentication()
    {
        // Public: Entra ID in the runner too, with the ingress' tenant, audiences and callers.
        var settings = BicepSnapshot.TakeContainerApps().ContainerSettings();
        Assert.Equal("0.0.0.0", settings["Bridge__Server__ListenAddress"]);
        Assert.Equal("https://login.microsoftonline.com/", settings["Bridge__Server__Intake__Entra__Instance"]);
        Assert.Equal("00000000-0000-0000-0000-0000000000aa", settings["Bridge__Server__Intake__Entra__TenantId"]);
        Assert.Equal("api://8a1f0c2e-3b4d-4e5f-9a6b-7c8d9e0f1a2b", settings["Bridge__Server__Intake__Entra__Audiences__0"]);
        Assert.Equal("2b3c4d5e-6f70-4819-a2b3-c4d5e6f7a8b9", settings["Bridge__Server__Intake__Entra__AllowedClientIds__0"]);
        Assert.DoesNotContain("Bridge__Server__Intake__UnsafeAllowAnonymousBeyondLoopback", settings.Keys);
        using (BuildRunner(settings))
        {
        }

        // Internal with an intake application: the same check in the runner.
        var internalWithApp = BicepSnapshot.TakeContainerApps(WithoutIngress(SampleParameters)
            + "param runnerIngress = {\n  kind: 'Internal'\n  intakeClientId: '8a1f0c2e-3b4d-4e5f-9a6b-7c8d9e0f1a2b'\n  intakeAudiences: ['api://intake']\n  intakeCallerClientIds: ['3c4d5e6f-7081-4920-b3c4-d5e6f7a8b9c0']\n}\n").ContainerSettings();
        Assert.Equal("api://intake", internalWithApp["Bridge__Server__Intake__Entra__Audiences__0"]);
        Assert.Equal("3c4d5e6f-7081-4920-b3c4-d5e6f7a8b9c0", internalWithApp["Bridge__Server__Intake__Entra__AllowedClientIds__0"]);
        Assert.DoesNotContain("Bridge__Server__Intake__UnsafeAllowAnonymousBeyondLoopback", internalWithApp.Keys);

        // Internal without one: the environment is the boundary, said explicitly (the runner warns at start).
        var internalOnly = BicepSnapshot.TakeContainerApps(WithoutIngress(SampleParameters)).ContainerSettings();
        Assert.Equal("true", internalOnly["Bridge__Server__Intake__UnsafeAllowAnonymousBeyondLoopback"]);
        Assert.DoesNotContain(internalOnly.Keys, k => k.StartsWith("Bridge__Server__Intake__Entra__", StringComparison.Ordinal));
        using (BuildRunner(internalOnly))
        {
        }

        // Without any of it the runner would not start: the settings above are what makes it start.
        var bare = settings.Where(s => !s.Key.StartsWith("Bridge__Server__Intake__", StringComparison.Ordinal)).ToDictionary();
        Assert.Throws<UnprotectedIntakeException>(() => BuildRunner(bare));
    }

    [Theory]
    [InlineData("param runnerIngress = {\n  kind: 'External'\n}\n", "intakeClientId")]
    [InlineData("param runnerIngress = {\n  kind: 'External'\n  intakeClientId: '8a1f0c2e-3b4d-4e5f-9a6b-7c8d9e0f1a2b'\n  intakeAudiences: ['api://x']\n  intakeCallerClientIds: []\n}\n", "minimum allowable length is 1")]
    public void A_public_ingress_without_intake_authentication_or_callers_does_not_build(string ingress, string named)
    {
        using var copy = new TempCopy(Path.Combine("infra", "azure"));
        File.WriteAllText(copy.File("containerapps.bicepparam"), WithoutIngress(SampleParameters) + ingress);

        var build = Tools.Run(Tools.Bicep, ["build-params", copy.File("containerapps.bicepparam"), "--stdout"]);

        Assert.NotEqual(0, build.ExitCode);
        Assert.Contains(named, build.Output + build.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Without_an_image_only_the_registry_and_environment_are_deployed()
    {
        var firstPass = BicepSnapshot.TakeContainerApps(SampleParameters.Replace(
            "param containerImage = 'bridgeregistry.azurecr.io/bridge-server:0123456789abcdef0123456789abcdef01234567'", "param containerImage = ''", StringComparison.Ordinal));

        Assert.DoesNotContain(firstPass.Resources, r => ((string?)r["type"])!.StartsWith("Microsoft.App/containerApps", StringComparison.Ordinal));
        Assert.NotNull(firstPass.Single("Microsoft.ContainerRegistry/registries"));
        Assert.NotNull(firstPass.Single("Microsoft.App/managedEnvironments"));
        Assert.Contains(firstPass.RoleAssignments(), a => a.Role == "7f951dda-4ed3-4680-a7ca-43fe172d538d");
    }

    private static string WithoutIngress(string parameters)
    {
        var start = parameters.IndexOf("param runnerIngress = {", StringComparison.Ordinal);
        var end = parameters.IndexOf("}\n", start, StringComparison.Ordinal) + 2;
        Assert.True(start > 0 && end > start);
        return parameters[..start] + parameters[end..];
    }

    private static WebApplication BuildRunner(Dictionary<string, string> settings) =>
        BridgeServerApp.Build([], builder => builder.Configuration.AddInMemoryCollection(
            settings.Select(s => KeyValuePair.Create(s.Key.Replace("__", ":", StringComparison.Ordinal), (string?)s.Value))));
}
