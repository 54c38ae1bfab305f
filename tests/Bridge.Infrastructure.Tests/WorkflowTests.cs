using System.Reflection;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Bridge.Functions.Functions;
using Bridge.Testing;
using Microsoft.Azure.Functions.Worker;

namespace Bridge.Infrastructure.Tests;

/// <summary>
/// .github/workflows/deploy.yml can't run here; what can be checked is: GitHub's own parser accepts it, its scripts
/// parse, and everything it names (projects, scripts, folders, Bicep and Terraform outputs) exists in this repository.
/// </summary>
public sealed partial class WorkflowTests
{
    private static readonly string Workflow = Path.Combine(RepositoryPaths.Root, ".github", "workflows", "deploy.yml");

    private static (ToolResult Result, JsonObject Report) Check(params string[] files)
    {
        var result = Tools.Run("node", ["check-workflows.mjs", .. files], Tools.InfraChecks);
        return (result, JsonNode.Parse(result.Stdout)?.AsObject() ?? throw new InvalidOperationException(result.ToString()));
    }

    private static List<JsonObject> Steps() => Check(Workflow).Report["steps"]!.AsArray().Select(s => s!.AsObject()).ToList();

    private static string Runs(string job) => string.Join('\n', Steps().Where(s => (string?)s["job"] == job).Select(s => (string?)s["run"] ?? string.Empty));

    private static JsonObject Job(string job) => Check(Workflow).Report["jobs"]!.AsArray().Select(j => j!.AsObject()).Single(j => (string?)j["job"] == job);

    [Fact]
    public void The_workflow_passes_githubs_parser_and_bash()
    {
        var (result, report) = Check(Workflow);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Empty(report["problems"]!.AsArray());
        Assert.True(report["steps"]!.AsArray().Count >= 10);
    }

    [Fact]
    public void The_check_names_schema_expression_reference_and_script_mistakes()
    {
        var broken = Path.Combine(Path.GetTempPath(), $"bridge-workflow-{Guid.NewGuid():N}.yml");
        var text = File.ReadAllText(Workflow)
            .Replace("    timeout-minutes: 45\n", "    timeout-minutes: 45\n    bogus-key: 1\n", StringComparison.Ordinal)
            .Replace("needs: [test, package]", "needs: [tests, package]", StringComparison.Ordinal)
            .Replace("${{ vars.AZURE_CLIENT_ID }}", "${{ varz.AZURE_CLIENT_ID }}", StringComparison.Ordinal)
            .Replace("${{ steps.azure.outputs.function_app }}", "${{ steps.azur.outputs.function_app }}", StringComparison.Ordinal)
            .Replace("          } >> \"$GITHUB_OUTPUT\"", "          >> \"$GITHUB_OUTPUT\" (", StringComparison.Ordinal)
            .Replace("azure/login@a457da9ea143d694b1b9c7c869ebb04ebe844ef5", "azure/login@v2", StringComparison.Ordinal)
            .Replace("        with:\n          persist-credentials: false\n\n      - uses: actions/download-artifact", "\n      - uses: actions/download-artifact", StringComparison.Ordinal);
        File.WriteAllText(broken, text);
        try
        {
            var (result, report) = Check(broken);
            var problems = report["problems"]!.AsArray().Select(p => (string)p!).ToList();

            Assert.Equal(1, result.ExitCode);
            Assert.Contains(problems, p => p.Contains("Unexpected value 'bogus-key'", StringComparison.Ordinal));
            Assert.Contains(problems, p => p.Contains("Unrecognized named-value: 'varz'", StringComparison.Ordinal));
            Assert.Contains(problems, p => p.Contains("needs \"tests\", which is not a job", StringComparison.Ordinal));
            Assert.Contains(problems, p => p.Contains("refers to steps.azur,", StringComparison.Ordinal));
            Assert.Contains(problems, p => p.Contains("bash -n", StringComparison.Ordinal) && p.Contains("syntax error", StringComparison.Ordinal));
            Assert.Contains(problems, p => p.Contains("azure/login@v2 is not pinned by a full commit SHA", StringComparison.Ordinal));
            Assert.Contains(problems, p => p.Contains("job deploy", StringComparison.Ordinal) && p.Contains("checkout must set persist-credentials: false", StringComparison.Ordinal));
        }
        finally
        {
            File.Delete(broken);
        }
    }

    [Fact]
    public void It_tests_with_this_repositorys_ci_and_ships_the_official_service_bus_build()
    {
        var test = Runs("test");

        Assert.Contains("./.ci/run", test, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(RepositoryPaths.Root, ".ci", "run")));
        // The shipped build's own tests, with the metadata tests strict for it.
        Assert.Contains("dotnet test tests/Bridge.Functions.Tests -c Release -p:UseOfficialServiceBusExtension=true", test, StringComparison.Ordinal);
        Assert.Contains("OFFICIAL_SERVICEBUS_EXTENSION", File.ReadAllText(Path.Combine(RepositoryPaths.Root, "tests", "Bridge.Functions.Tests", "Bridge.Functions.Tests.csproj")), StringComparison.Ordinal);
        Assert.Contains("#if OFFICIAL_SERVICEBUS_EXTENSION", File.ReadAllText(Path.Combine(RepositoryPaths.Root, "tests", "Bridge.Functions.Tests", "FunctionsMetadataTests.cs")), StringComparison.Ordinal);

        var publish = Assert.Single(PublishCommand().Matches(Runs("package")));
        Assert.True(File.Exists(Path.Combine(RepositoryPaths.Root, publish.Groups[1].Value, "Bridge.Functions.csproj")));
        Assert.Contains("-p:UseOfficialServiceBusExtension=true", publish.Value, StringComparison.Ordinal);
        Assert.Contains("UseOfficialServiceBusExtension", File.ReadAllText(Path.Combine(RepositoryPaths.Root, "src", "Bridge.Functions", "Bridge.Functions.csproj")), StringComparison.Ordinal);

        var deploy = Steps().Where(s => (string?)s["job"] == "deploy").ToList();
        Assert.Contains("az functionapp deployment source config-zip", Runs("deploy"), StringComparison.Ordinal); // signed in with Entra ID; no publishing credentials
        Assert.Contains(deploy, s => ((string?)s["uses"])?.StartsWith("azure/login@", StringComparison.Ordinal) == true);
        Assert.Contains(deploy, s => ((string?)s["uses"])?.StartsWith("google-github-actions/auth@", StringComparison.Ordinal) == true);
        Assert.DoesNotContain("secrets.", File.ReadAllText(Workflow), StringComparison.Ordinal); // keyless: OIDC sign-ins only
    }

    [Fact]
    public void Every_output_and_folder_it_reads_exists()
    {
        var deploy = Runs("deploy");
        var steps = Steps();

        foreach (var dir in steps.Select(s => (string?)s["workingDirectory"]).OfType<string>().Where(d => d != "publish"))
        {
            Assert.True(Directory.Exists(Path.Combine(RepositoryPaths.Root, dir)), $"working-directory {dir} does not exist");
        }

        // Bicep outputs the deploy job reads (jq -r .<name>.value azure-outputs.json) are outputs of main.bicep.
        var bicep = File.ReadAllText(Path.Combine(RepositoryPaths.Root, "infra", "azure", "main.bicep"));
        var bicepOutputs = BicepOutput().Matches(bicep).Select(m => m.Groups[1].Value).ToHashSet();
        var read = JqOutput().Matches(deploy).Select(m => m.Groups[1].Value).ToList();
        Assert.NotEmpty(read);
        Assert.All(read, name => Assert.Contains(name, bicepOutputs));

        // Terraform outputs and variables it uses exist in infra/gcp.
        var gcp = string.Join('\n', Directory.GetFiles(Path.Combine(RepositoryPaths.Root, "infra", "gcp"), "*.tf").Select(File.ReadAllText));
        foreach (Match output in TerraformOutput().Matches(deploy))
        {
            Assert.Contains($"output \"{output.Groups[1].Value}\"", gcp, StringComparison.Ordinal);
        }

        foreach (Match variable in TerraformVariable().Matches(deploy))
        {
            Assert.Contains($"variable \"{variable.Groups[1].Value}\"", gcp, StringComparison.Ordinal);
        }

        Assert.NotEmpty(TerraformVariable().Matches(deploy));
    }

    /// <summary>The package deployed is built in a job that installs and runs nothing from npm.</summary>
    [Fact]
    public void The_shipped_package_is_built_where_no_npm_lifecycle_script_runs()
    {
        var package = Steps().Where(s => (string?)s["job"] == "package").ToList();

        Assert.DoesNotContain(package, s => ((string?)s["uses"])?.Contains("setup-node", StringComparison.Ordinal) == true);
        Assert.All(package.Select(s => (string?)s["run"] ?? string.Empty), run => Assert.DoesNotMatch(@"\b(npm|npx|yarn|pnpm|node)\b|\.ci/run|test\.sh", run));
        Assert.Contains(package, s => ((string?)s["uses"])?.StartsWith("actions/upload-artifact@", StringComparison.Ordinal) == true && (string?)s["with"]!["name"] == "bridge-functions");
        Assert.Contains("package", Job("deploy")["needs"]!.AsArray().Select(n => (string?)n));
        Assert.Contains(Steps(), s => (string?)s["job"] == "deploy" && ((string?)s["uses"])?.StartsWith("actions/download-artifact@", StringComparison.Ordinal) == true && (string?)s["with"]!["name"] == "bridge-functions");
    }

    /// <summary>Only main deploys, in the protected environment; pull requests preview with read-only identities.</summary>
    [Fact]
    public void Main_deploys_in_production_and_pull_requests_only_preview()
    {
        var deploy = Job("deploy");
        Assert.Equal("production", (string?)deploy["environment"]);
        Assert.Contains("github.ref == 'refs/heads/main'", (string)deploy["if"]!, StringComparison.Ordinal);
        Assert.Contains("github.event_name != 'pull_request'", (string)deploy["if"]!, StringComparison.Ordinal);

        var plan = Job("plan");
        Assert.Contains("github.event_name == 'pull_request'", (string)plan["if"]!, StringComparison.Ordinal);
        Assert.Null(plan["environment"]);
        var preview = Runs("plan");
        Assert.Contains("az deployment group what-if", preview, StringComparison.Ordinal);
        Assert.Contains("terraform plan -input=false -lock=false", preview, StringComparison.Ordinal);
        Assert.DoesNotContain("terraform apply", preview, StringComparison.Ordinal);
        Assert.DoesNotContain("deployment group create", preview, StringComparison.Ordinal);
        var planSignIns = Steps().Where(s => (string?)s["job"] == "plan" && s["with"] is not null).Select(s => s["with"]!.ToJsonString()).ToList();
        Assert.Contains(planSignIns, w => w.Contains("vars.AZURE_PLAN_CLIENT_ID", StringComparison.Ordinal));
        Assert.Contains(planSignIns, w => w.Contains("vars.GCP_PLAN_SERVICE_ACCOUNT", StringComparison.Ordinal));
        Assert.DoesNotContain(planSignIns, w => w.Contains("vars.AZURE_CLIENT_ID", StringComparison.Ordinal) || w.Contains("GCP_DEPLOY_SERVICE_ACCOUNT", StringComparison.Ordinal));

        // Only the jobs that sign in to a cloud may ask GitHub for an OIDC token.
        foreach (var job in new[] { "test", "package" })
        {
            Assert.Null(Job(job)["permissions"]);
        }

        Assert.Contains("permissions:\n  contents: read\n", File.ReadAllText(Workflow), StringComparison.Ordinal);
    }

    /// <summary>
    /// The federation rule across the workflow: Terraform's allowed audience is the Bicep's federationAppIdUri output,
    /// the same URI the app asks Entra ID for.
    /// </summary>
    [Fact]
    public void Terraform_allows_the_audience_the_bicep_gives_the_app()
    {
        var deploy = Runs("deploy");
        Assert.Contains("echo \"federation_app_id_uri=$(jq -r .federationAppIdUri.value azure-outputs.json)\"", deploy, StringComparison.Ordinal);
        Assert.Contains("-var \"azure_token_audience=${APP_ID_URI}\"", deploy, StringComparison.Ordinal);
        Assert.Contains("APP_ID_URI: ${{ steps.azure.outputs.federation_app_id_uri }}", File.ReadAllText(Workflow), StringComparison.Ordinal);
        Assert.Contains("-var \"azure_token_audience=$(jq -r .federationAppIdUri.value \"$outputs\")\"", Runs("plan"), StringComparison.Ordinal);
    }

    /// <summary>
    /// The smoke test proves the path: the queue check is the app's own admin-key endpoint (its route read from the
    /// function itself), and each callback route's event must be delivered (the task deleted after a 2xx callback).
    /// </summary>
    [Fact]
    public void The_smoke_test_checks_every_queue_through_the_app_and_a_round_trip_per_callback_route()
    {
        var smoke = (string)Steps().Single(s => (string?)s["name"] == "Smoke test")["run"]!;
        var trigger = typeof(QueueCheckFunction).GetMethod(nameof(QueueCheckFunction.RunAsync))!.GetParameters()[0].GetCustomAttribute<HttpTriggerAttribute>()!;

        Assert.Equal(AuthorizationLevel.Admin, trigger.AuthLevel);
        Assert.Contains($"-H \"x-functions-key: ${{master_key}}\" \"${{base}}/api/{trigger.Route}\"", smoke, StringComparison.Ordinal);
        Assert.Contains("--query masterKey", smoke, StringComparison.Ordinal);
        Assert.Contains("echo \"::add-mask::${master_key}\"", smoke, StringComparison.Ordinal);
        Assert.Contains("test \"$status\" = \"200\" || { echo \"::error::the app cannot reach its queues", smoke, StringComparison.Ordinal);

        Assert.Contains("for route in $(jq -r '.[]' <<<\"$CALLBACK_ROUTES\")", smoke, StringComparison.Ordinal);
        Assert.Contains("-H 'X-Bridge-Delay: 5'", smoke, StringComparison.Ordinal);
        Assert.Contains("-H \"Idempotency-Key: ${key}\"", smoke, StringComparison.Ordinal);
        Assert.Contains("test \"$status\" = \"202\"", smoke, StringComparison.Ordinal);
        Assert.Contains("gcloud tasks describe \"$task\"", smoke, StringComparison.Ordinal);
        Assert.Contains("grep -q NOT_FOUND task.err; then delivered=yes", smoke, StringComparison.Ordinal);
        Assert.Contains("echo \"callback_routes=$(jq -c .callbackRoutes.value azure-outputs.json)\"", Runs("deploy"), StringComparison.Ordinal);
        Assert.Contains("output callbackRoutes string[]", File.ReadAllText(Path.Combine(RepositoryPaths.Root, "infra", "azure", "main.bicep")), StringComparison.Ordinal);
    }

    /// <summary>
    /// Either variant: the Bicep's hostingPlan output picks the function app's steps or the runner's. The runner's
    /// image is built by the SDK's container publishing (no Docker), pushed with a masked short-lived token, and
    /// deployed as a revision by a second Bicep pass that carries it; each variant's smoke test runs only for it.
    /// </summary>
    [Fact]
    public void The_workflow_deploys_either_the_function_app_or_the_runner_on_container_apps()
    {
        var deploy = Steps().Where(s => (string?)s["job"] == "deploy").ToList();
        string Condition(string name) => (string?)deploy.Single(s => (string?)s["name"] == name)["if"] ?? string.Empty;

        Assert.Contains("echo \"hosting_plan=$(jq -r .hostingPlan.value azure-outputs.json)\"", Runs("deploy"), StringComparison.Ordinal);
        foreach (var name in new[] { "Check the app's Google settings against Terraform", "Deploy the function app", "Smoke test" })
        {
            Assert.Equal("steps.azure.outputs.hosting_plan != 'ContainerApps'", Condition(name));
        }

        foreach (var name in new[] { "Build and push the runner's image (Container Apps)", "Deploy the runner's revision (Container Apps)", "Smoke test (Container Apps)" })
        {
            Assert.Equal("steps.azure.outputs.hosting_plan == 'ContainerApps'", Condition(name));
        }

        var image = (string)deploy.Single(s => (string?)s["name"] == "Build and push the runner's image (Container Apps)")["run"]!;
        var publish = Assert.Single(PublishCommand().Matches(image));
        Assert.True(File.Exists(Path.Combine(RepositoryPaths.Root, publish.Groups[1].Value, "Bridge.Server.csproj")));
        Assert.Contains("-t:PublishContainer", image, StringComparison.Ordinal);
        Assert.Contains("echo \"::add-mask::${token}\"", image, StringComparison.Ordinal);
        Assert.DoesNotMatch(@"\bdocker\b", image);
        Assert.Contains("<ContainerRepository>bridge-server</ContainerRepository>", File.ReadAllText(Path.Combine(RepositoryPaths.Root, "src", "Bridge.Server", "Bridge.Server.csproj")), StringComparison.Ordinal);
        Assert.Contains("echo \"image=${REGISTRY}/bridge-server:${GITHUB_SHA}\"", image, StringComparison.Ordinal);

        // First pass without an image, second with the one just pushed; the revision must become ready.
        Assert.Contains("--parameters containerImage=''", (string)deploy.Single(s => (string?)s["id"] == "azure")["run"]!, StringComparison.Ordinal);
        var revision = (string)deploy.Single(s => (string?)s["name"] == "Deploy the runner's revision (Container Apps)")["run"]!;
        Assert.Contains("--parameters containerImage=\"$IMAGE\"", revision, StringComparison.Ordinal);
        Assert.Contains("latestReadyRevisionName", revision, StringComparison.Ordinal);
        Assert.Contains("Bridge__CloudTasks__", revision, StringComparison.Ordinal);
        Assert.Contains("param containerImage string = ''", File.ReadAllText(Path.Combine(RepositoryPaths.Root, "infra", "azure", "main.bicep")), StringComparison.Ordinal);

        var smoke = (string)deploy.Single(s => (string?)s["name"] == "Smoke test (Container Apps)")["run"]!;
        Assert.Contains("intake answered $status to a call without a token; expected 401", smoke, StringComparison.Ordinal);
    }

    [GeneratedRegex(@"dotnet publish (src/[\w./]+)[^\n]*")]
    private static partial Regex PublishCommand();

    [GeneratedRegex(@"^output (\w+) ", RegexOptions.Multiline)]
    private static partial Regex BicepOutput();

    [GeneratedRegex(@"jq -r \.(\w+)\.value azure-outputs\.json")]
    private static partial Regex JqOutput();

    [GeneratedRegex(@"terraform output -json (\w+)")]
    private static partial Regex TerraformOutput();

    [GeneratedRegex(@"-var ""(\w+)=")]
    private static partial Regex TerraformVariable();
}
