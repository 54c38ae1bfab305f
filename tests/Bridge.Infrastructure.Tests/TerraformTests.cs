using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Bridge.Testing;
using Google.Apis.Auth.OAuth2;

namespace Bridge.Infrastructure.Tests;

/// <summary>
/// infra/gcp: checked against the google provider's schema by tests/infra/check-terraform.mjs (no provider
/// download, no account); its federation and grants asserted over the parsed configuration; the credential
/// configuration module run by terraform itself where terraform is installed.
/// </summary>
public sealed partial class TerraformTests
{
    private static readonly string GcpDir = Path.Combine(RepositoryPaths.Root, "infra", "gcp");

    private static (ToolResult Result, JsonObject Report) Check(string dir, bool dump = false)
    {
        var result = Tools.Run("node", dump ? ["check-terraform.mjs", dir, "--dump"] : ["check-terraform.mjs", dir], Tools.InfraChecks);
        var report = JsonNode.Parse(result.Stdout)?.AsObject() ?? throw new InvalidOperationException($"No report: {result}");
        return (result, report);
    }

    private static List<string> Problems(JsonObject report) => report["problems"]!.AsArray().Select(p => (string)p!).ToList();

    [Fact]
    public void The_google_configuration_matches_the_provider_schema()
    {
        var (result, report) = Check(GcpDir);

        Assert.True(result.ExitCode == 0, string.Join('\n', Problems(report)) + result.Stderr);
        Assert.Equal("hashicorp/google 6.50.0", (string?)report["provider"]);
        var types = report["resources"]!.AsArray().Select(r => (string)r!["type"]!).ToHashSet();
        foreach (var expected in new[]
        {
            "google_cloud_tasks_queue", "google_service_account", "google_iam_workload_identity_pool",
            "google_iam_workload_identity_pool_provider", "google_service_account_iam_member",
            "google_cloud_tasks_queue_iam_member", "google_project_service", "google_project",
        })
        {
            Assert.Contains(expected, types);
        }

        Assert.Contains("modules/credential-configuration", report["modules"]!.AsArray().Select(m => (string)m!));
    }

    [Fact]
    public void The_check_names_each_kind_of_mistake()
    {
        using var copy = new TempCopy(Path.Combine("infra", "gcp"));
        copy.Edit("main.tf", s => s.Replace("max_dispatches_per_second = each.value", "max_dispatch_per_second = each.value", StringComparison.Ordinal));
        copy.Edit("iam.tf", s => s.Replace("  role               = \"roles/iam.serviceAccountUser\"\n", string.Empty, StringComparison.Ordinal));
        copy.Edit("identity.tf", s => s.Replace("  oidc {", "  oidc = {", StringComparison.Ordinal));
        copy.Edit("outputs.tf", s => s.Replace("var.location", "var.region", StringComparison.Ordinal));
        copy.Edit("variables.tf", s => s.Replace("variable \"enable_apis\" {", "variable \"enable_apis\" {\n  oops = ", StringComparison.Ordinal));
        File.WriteAllText(copy.File("extra.tf"), "resource \"google_cloud_tasks_queues\" \"typo\" {\n  name = \"x\"\n}\n\nmodule \"cfg\" {\n  source         = \"./modules/credential-configuration\"\n  project_number = \"1\"\n  pool           = \"p\"\n}\n");

        var (result, report) = Check(copy.Path);
        var problems = Problems(report);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains(problems, p => p.Contains("google_cloud_tasks_queue.queues.rate_limits: unknown argument \"max_dispatch_per_second\"", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("enqueuer_acts_as_invoker: required argument \"role\" is missing", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("\"oidc\" is a block, written as an attribute", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("reference to undeclared var.region", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("variables.tf: does not parse", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("no resource type \"google_cloud_tasks_queues\"", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("module.cfg passes \"pool\"", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("module.cfg omits required variable \"workload_identity_pool_id\"", StringComparison.Ordinal));
    }

    [Fact]
    public void Federation_trusts_only_the_app_identity_and_grants_stay_narrow()
    {
        var (result, report) = Check(GcpDir, dump: true);
        Assert.Equal(0, result.ExitCode);
        var root = report["parsed"]!["."]!;
        var resources = root["resource"]!.AsObject();

        var provider = resources["google_iam_workload_identity_pool_provider"]!["function_app"]![0]!;
        Assert.Equal("https://sts.windows.net/${var.azure_tenant_id}/", (string?)provider["oidc"]![0]!["issuer_uri"]);
        Assert.Equal("${var.azure_token_audience}", (string?)provider["oidc"]![0]!["allowed_audiences"]![0]);
        var condition = (string)provider["attribute_condition"]!;
        Assert.Contains("assertion.tid == '${var.azure_tenant_id}'", condition, StringComparison.Ordinal);
        Assert.Contains("assertion.sub == '${var.azure_managed_identity_principal_id}'", condition, StringComparison.Ordinal);
        Assert.Equal("assertion.sub", (string?)provider["attribute_mapping"]!["google.subject"]);

        // Nothing project-wide: every grant is on a queue or a service account.
        Assert.DoesNotContain(resources, r => r.Key.StartsWith("google_project_iam", StringComparison.Ordinal));

        var accountGrants = resources["google_service_account_iam_member"]!.AsObject()
            .ToDictionary(g => g.Key, g => (Role: (string)g.Value![0]!["role"]!, Account: (string)g.Value![0]!["service_account_id"]!, Member: (string)g.Value![0]!["member"]!));
        Assert.Equal(("roles/iam.workloadIdentityUser", "${google_service_account.enqueuer.name}", "${local.federated_principal}"), accountGrants["federated_enqueuer"]);
        Assert.Equal(("roles/iam.serviceAccountUser", "${google_service_account.invoker.name}", "serviceAccount:${google_service_account.enqueuer.email}"), accountGrants["enqueuer_acts_as_invoker"]);
        // The service agent only mints the invoker's OIDC tokens: OpenID token creator, not Token Creator.
        Assert.Equal(("roles/iam.serviceAccountOpenIdTokenCreator", "${google_service_account.invoker.name}", "serviceAccount:${local.cloud_tasks_service_agent}"), accountGrants["service_agent_mints_invoker_tokens"]);
        Assert.StartsWith("principal://iam.googleapis.com/${google_iam_workload_identity_pool.azure.name}/subject/", (string)root["locals"]!["federated_principal"]!, StringComparison.Ordinal);

        var queueGrant = Assert.Single(resources["google_cloud_tasks_queue_iam_member"]!.AsObject()).Value![0]!;
        Assert.Equal("serviceAccount:${google_service_account.enqueuer.email}", (string?)queueGrant["member"]);
        Assert.Contains("setproduct(keys(var.queues), local.enqueuer_queue_roles)", (string)queueGrant["for_each"]!, StringComparison.Ordinal);
        var queueRoles = root["locals"]!["enqueuer_queue_roles"]!.AsArray().Select(r => (string)r!).Order().ToList();
        Assert.Equal(["roles/cloudtasks.enqueuer", "roles/cloudtasks.viewer"], queueRoles);

        var queue = resources["google_cloud_tasks_queue"]!["queues"]![0]!;
        Assert.NotNull(queue["rate_limits"]![0]!["max_dispatches_per_second"]);
        Assert.NotNull(queue["retry_config"]![0]!["max_attempts"]);
    }

    /// <summary>
    /// The federation rule on the Google side: the provider trusts the tenant's v1 issuer and allows exactly one
    /// audience, the variable the workflow fills from the Bicep's federationAppIdUri output, which has no default and
    /// refuses api://AzureADTokenExchange (no Entra token carries it).
    /// </summary>
    [Fact]
    public void The_provider_allows_the_federation_apps_uri_and_no_default()
    {
        var (_, report) = Check(GcpDir, dump: true);
        var root = report["parsed"]!["."]!;

        var variable = root["variable"]!["azure_token_audience"]![0]!;
        Assert.Null(variable["default"]);
        Assert.Contains("azureadtokenexchange", (string)variable["validation"]![0]!["condition"]!, StringComparison.Ordinal);
        var provider = root["resource"]!["google_iam_workload_identity_pool_provider"]!["function_app"]![0]!;
        Assert.Equal(["${var.azure_token_audience}"], provider["oidc"]![0]!["allowed_audiences"]!.AsArray().Select(a => (string?)a));
        Assert.Equal("https://sts.windows.net/${var.azure_tenant_id}/", (string?)provider["oidc"]![0]!["issuer_uri"]);
        Assert.Equal("${var.azure_token_audience}", (string?)root["module"]!["credential_configuration"]![0]!["azure_token_audience"]);
        Assert.Null(report["parsed"]!["modules/credential-configuration"]!["variable"]!["azure_token_audience"]![0]!["default"]);
    }

    /// <summary>Both roots lock the provider version whose schema the check uses, with the registry's package hashes.</summary>
    [Theory]
    [InlineData("")]
    [InlineData("deployer")]
    public void The_provider_is_locked_to_the_checked_version(string root)
    {
        var lockFile = File.ReadAllText(Path.Combine(GcpDir, root, ".terraform.lock.hcl"));
        var (result, report) = Check(Path.Combine(GcpDir, root));

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("hashicorp/google " + LockedVersion().Match(lockFile).Groups[1].Value, (string?)report["provider"]);
        Assert.Equal(12, ZipHash().Matches(lockFile).Count); // one per platform Terraform publishes the provider for
        Assert.Contains("version = \"~> 6.50\"", File.ReadAllText(Path.Combine(GcpDir, root, root.Length == 0 ? "versions.tf" : "main.tf")), StringComparison.Ordinal);
    }

    /// <summary>
    /// GitHub → Google: one repository, and from it pull requests (plan) or main in the production environment
    /// (apply); the deployer gets the admin roles of what infra/gcp creates, never project IAM admin or owner.
    /// </summary>
    [Fact]
    public void The_github_deployer_is_trusted_for_main_in_production_and_holds_only_what_the_terraform_needs()
    {
        var (result, report) = Check(Path.Combine(GcpDir, "deployer"), dump: true);
        Assert.True(result.ExitCode == 0, string.Join('\n', Problems(report)));
        var root = report["parsed"]!["."]!;
        var resources = root["resource"]!.AsObject();

        var provider = resources["google_iam_workload_identity_pool_provider"]!["github"]![0]!;
        Assert.Equal("https://token.actions.githubusercontent.com", (string?)provider["oidc"]![0]!["issuer_uri"]);
        var condition = (string)provider["attribute_condition"]!;
        Assert.StartsWith("assertion.repository == '${var.github_repository}' && (", condition, StringComparison.Ordinal);
        Assert.Contains("assertion.ref == '${var.deploy_ref}' && assertion.environment == '${var.github_environment}'", condition, StringComparison.Ordinal);
        Assert.Equal("refs/heads/main", (string?)root["variable"]!["deploy_ref"]![0]!["default"]);
        Assert.Equal("production", (string?)root["variable"]!["github_environment"]![0]!["default"]);

        var deploys = resources["google_service_account_iam_member"]!["github_deploys"]![0]!;
        Assert.EndsWith("/subject/repo:${var.github_repository}:environment:${var.github_environment}", (string)deploys["member"]!, StringComparison.Ordinal);
        Assert.Equal("${google_service_account.deployer.name}", (string?)deploys["service_account_id"]);

        var deployerRoles = root["locals"]!["deployer_roles"]!.ToString();
        foreach (var forbidden in new[] { "roles/owner", "roles/editor", "roles/resourcemanager.projectIamAdmin", "roles/iam.securityAdmin", "roles/iam.serviceAccountTokenCreator" })
        {
            Assert.DoesNotContain(forbidden, deployerRoles, StringComparison.Ordinal);
        }

        foreach (var needed in new[] { "roles/cloudtasks.admin", "roles/iam.serviceAccountAdmin", "roles/iam.workloadIdentityPoolAdmin", "roles/serviceusage.serviceUsageAdmin" })
        {
            Assert.Contains(needed, deployerRoles, StringComparison.Ordinal);
        }

        Assert.DoesNotContain("admin", root["locals"]!["planner_roles"]!.ToString(), StringComparison.OrdinalIgnoreCase);
        Assert.Equal("roles/storage.objectViewer", (string?)resources["google_storage_bucket_iam_member"]!["planner_state"]![0]!["role"]);
    }

    [GeneratedRegex(@"version\s+=\s+""([0-9.]+)""")]
    private static partial Regex LockedVersion();

    [GeneratedRegex(@"""zh:[0-9a-f]{64}""")]
    private static partial Regex ZipHash();

    [TerraformFact]
    public void The_credential_configuration_module_passes_its_terraform_tests()
    {
        using var copy = new TempCopy(Path.Combine("infra", "gcp", "modules", "credential-configuration"));
        Assert.Equal(0, Tools.Run(Tools.Terraform!, ["init", "-backend=false", "-input=false", "-no-color"], copy.Path).ExitCode);

        var test = Tools.Run(Tools.Terraform!, ["test", "-no-color"], copy.Path);

        Assert.True(test.ExitCode == 0, test.ToString());
        Assert.Contains("4 passed, 0 failed", test.Stdout, StringComparison.Ordinal);
    }

    [TerraformFact]
    public async Task The_generated_credential_configuration_loads_as_a_keyless_external_account_and_agrees_with_the_bicep()
    {
        // Same inputs as infra/azure/main.bicepparam's google parameter.
        using var copy = new TempCopy(Path.Combine("infra", "gcp", "modules", "credential-configuration"));
        Assert.Equal(0, Tools.Run(Tools.Terraform!, ["init", "-backend=false", "-input=false", "-no-color"], copy.Path).ExitCode);
        var apply = Tools.Run(Tools.Terraform!,
        [
            "apply", "-auto-approve", "-no-color",
            "-var", "project_number=123456789012",
            "-var", "workload_identity_pool_id=bridge-azure",
            "-var", "workload_identity_provider_id=bridge-function-app",
            "-var", "service_account_email=bridge-enqueuer@my-project.iam.gserviceaccount.com",
            "-var", "azure_token_audience=api://5d3c1a8e-7b2f-4c6d-9e0a-1f2b3c4d5e6f",
        ], copy.Path);
        Assert.True(apply.ExitCode == 0, apply.ToString());
        var outputs = JsonNode.Parse(Tools.Run(Tools.Terraform!, ["output", "-json"], copy.Path).Stdout)!;
        var json = (string)outputs["json"]!["value"]!;
        var path = copy.File("bridge-gcp-credential.json");
        await File.WriteAllTextAsync(path, json);

        // Loaded the way Bridge's client loads a credential file (Credential=File): an external account that takes
        // its subject token from Azure IMDS and exchanges it at Google STS, with no key inside.
        var google = await CredentialFactory.FromFileAsync(path, "external_account", CancellationToken.None);
        var credential = Assert.IsType<UrlSourcedExternalAccountCredential>(google.UnderlyingCredential);
        Assert.Equal("//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/bridge-azure/providers/bridge-function-app", credential.Audience);
        Assert.Equal("urn:ietf:params:oauth:token-type:jwt", credential.SubjectTokenType);
        Assert.StartsWith("http://169.254.169.254/metadata/identity/oauth2/token?", credential.SubjectTokenUrl, StringComparison.Ordinal);
        Assert.Contains("&resource=api%3A%2F%2F5d3c1a8e-7b2f-4c6d-9e0a-1f2b3c4d5e6f", credential.SubjectTokenUrl, StringComparison.Ordinal);
        Assert.Equal("True", credential.Headers["Metadata"]);
        Assert.Equal("access_token", credential.SubjectTokenJsonFieldName);
        Assert.EndsWith("bridge-enqueuer@my-project.iam.gserviceaccount.com:generateAccessToken", credential.ServiceAccountImpersonationUrl, StringComparison.Ordinal);
        using (var document = JsonDocument.Parse(json))
        {
            Assert.False(document.RootElement.TryGetProperty("private_key", out _));
        }

        // The function app's settings, composed by the Bicep from the same values, say the same thing.
        var bicepSettings = BicepSnapshot.Take().AppSettings();
        foreach (var setting in outputs["bridge_settings"]!["value"]!.AsObject())
        {
            Assert.Equal((string)setting.Value!, bicepSettings[setting.Key]);
        }
    }
}
