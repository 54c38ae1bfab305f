using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Bridge.Testing;

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
            .Replace("needs: test", "needs: tests", StringComparison.Ordinal)
            .Replace("${{ vars.AZURE_CLIENT_ID }}", "${{ varz.AZURE_CLIENT_ID }}", StringComparison.Ordinal)
            .Replace("${{ steps.azure.outputs.function_app }}", "${{ steps.azur.outputs.function_app }}", StringComparison.Ordinal)
            .Replace("          } >> \"$GITHUB_OUTPUT\"", "          >> \"$GITHUB_OUTPUT\" (", StringComparison.Ordinal);
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
        var publish = Assert.Single(PublishCommand().Matches(test));
        Assert.True(File.Exists(Path.Combine(RepositoryPaths.Root, publish.Groups[1].Value, "Bridge.Functions.csproj")));
        Assert.Contains("-p:UseOfficialServiceBusExtension=true", publish.Value, StringComparison.Ordinal);
        Assert.Contains("UseOfficialServiceBusExtension", File.ReadAllText(Path.Combine(RepositoryPaths.Root, "src", "Bridge.Functions", "Bridge.Functions.csproj")), StringComparison.Ordinal);

        var deploy = Steps().Where(s => (string?)s["job"] == "deploy").ToList();
        Assert.Contains(deploy, s => ((string?)s["uses"])?.StartsWith("Azure/functions-action@", StringComparison.Ordinal) == true);
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
