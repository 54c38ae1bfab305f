using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Bridge.Infrastructure.Tests;

/// <summary>
/// What infra/azure would deploy, evaluated locally by <c>bicep snapshot</c>: every resource with its properties.
/// Values known only at deployment (an identity's client id, the app's host name) stay ARM expressions; <see
/// cref="AppSettings"/> replaces them with stand-ins so the settings can be fed to the app itself.
/// </summary>
internal sealed partial class BicepSnapshot
{
    public const string ClientIdStandIn = "4c6e7d2a-1b2c-4d5e-8f90-123456789abc";
    public const string HostNameStandIn = "bridge-test.azurewebsites.net";
    public const string SubscriptionId = "00000000-0000-0000-0000-000000000001";
    public const string EnvironmentDomainStandIn = "purplesea-1a2b3c4d.westeurope.azurecontainerapps.io";

    private BicepSnapshot(JsonObject root) => Root = root;

    public JsonObject Root { get; }

    public IEnumerable<JsonObject> Resources => Root["predictedResources"]!.AsArray().Select(r => r!.AsObject());

    // The snapshot of main.bicepparam is taken once per run (a few seconds each); every caller parses its own copy,
    // since JsonNode trees are not safe to read from parallel tests.
    private static readonly Lazy<string> Default = new(() => Snapshot(parameters: null, "main"));
    private static readonly Lazy<string> DeployerDefault = new(() => Snapshot(parameters: null, "deployer"));
    private static readonly Lazy<string> ContainerAppsDefault = new(() => Snapshot(parameters: null, "containerapps"));

    /// <summary>Snapshots infra/azure with its main.bicepparam, or with <paramref name="parameters"/> in its place.</summary>
    public static BicepSnapshot Take(string? parameters = null) =>
        new(JsonNode.Parse(parameters is null ? Default.Value : Snapshot(parameters, "main"))!.AsObject());

    /// <summary>Snapshots infra/azure/deployer (the GitHub deployer and planner identities) with its main.bicepparam.</summary>
    public static BicepSnapshot TakeDeployer() => new(JsonNode.Parse(DeployerDefault.Value)!.AsObject());

    /// <summary>Snapshots the Container Apps variant with its containerapps.bicepparam, or with <paramref name="parameters"/> in its place.</summary>
    public static BicepSnapshot TakeContainerApps(string? parameters = null) =>
        new(JsonNode.Parse(parameters is null ? ContainerAppsDefault.Value : Snapshot(parameters, "containerapps"))!.AsObject());

    private static string Snapshot(string? parameters, string which)
    {
        using var copy = new TempCopy(Path.Combine("infra", "azure"));
        var folder = which == "deployer" ? copy.File("deployer") : copy.Path;
        var file = which == "containerapps" ? "containerapps" : "main";
        if (parameters is not null)
        {
            File.WriteAllText(Path.Combine(folder, file + ".bicepparam"), parameters);
        }

        var result = Tools.Run("bash", [copy.File("snapshot.sh"), "overwrite", which], environment: new Dictionary<string, string> { ["BICEP"] = Tools.Bicep });
        Assert.True(result.ExitCode == 0, $"bicep snapshot failed: {result}");
        return File.ReadAllText(Path.Combine(folder, file + ".snapshot.json"));
    }

    public JsonObject Single(string type) => Assert.Single(Resources, r => (string?)r["type"] == type);

    public JsonObject Single(string type, string nameEndsWith) =>
        Assert.Single(Resources, r => (string?)r["type"] == type && ((string?)r["name"])!.EndsWith(nameEndsWith, StringComparison.Ordinal));

    /// <summary>The function app's settings, deployment-time expressions replaced by stand-ins (unknown ones fail).</summary>
    public Dictionary<string, string> AppSettings() =>
        Single("Microsoft.Web/sites/config").AsObject()["properties"]!.AsObject()
            .ToDictionary(p => p.Key, p => Resolve(p.Key, (string)p.Value!));

    /// <summary>The container app's environment variables, deployment-time expressions replaced by stand-ins (unknown ones fail).</summary>
    public Dictionary<string, string> ContainerSettings() =>
        Assert.Single(Single("Microsoft.App/containerApps")["properties"]!["template"]!["containers"]!.AsArray())!["env"]!.AsArray()
            .ToDictionary(e => (string)e!["name"]!, e => Resolve((string)e!["name"]!, (string)e!["value"]!));

    /// <summary>Role assignments as (scope resource id, role definition guid).</summary>
    public List<(string Scope, string Role)> RoleAssignments() =>
        Resources.Where(r => (string?)r["type"] == "Microsoft.Authorization/roleAssignments")
            .Select(r => (
                ScopePattern().Match((string)r["id"]!).Groups[1].Value,
                ((string)r["properties"]!["roleDefinitionId"]!).Split('/').Last()))
            .ToList();

    private static string Resolve(string key, string value)
    {
        if (!value.StartsWith('['))
        {
            return value;
        }

        if (HostNameFormat().Match(value) is { Success: true } host)
        {
            return host.Groups[1].Value + HostNameStandIn + host.Groups[2].Value;
        }

        if (EnvironmentDomainFormat().Match(value) is { Success: true } domain)
        {
            return $"{domain.Groups[1].Value}{domain.Groups[4].Value}.{domain.Groups[3].Value}{EnvironmentDomainStandIn}{domain.Groups[2].Value}";
        }

        if (ClientIdFormat().Match(value) is { Success: true } client)
        {
            return client.Groups[1].Value + ClientIdStandIn + client.Groups[2].Value;
        }

        if (BlobEndpointFormat().Match(value) is { Success: true } account)
        {
            return $"https://{account.Groups[1].Value}.blob.core.windows.net/"; // environment().suffixes.storage in AzureCloud
        }

        if (ClientIdReference().IsMatch(value))
        {
            return ClientIdStandIn;
        }

        if (value == "[environment().authentication.loginEndpoint]")
        {
            return "https://login.microsoftonline.com/";
        }

        if (value.EndsWith(".ConnectionString]", StringComparison.Ordinal))
        {
            return "InstrumentationKey=00000000-0000-0000-0000-0000000000bb;IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/";
        }

        throw new InvalidOperationException($"App setting {key} has a deployment-time expression the test has no stand-in for: {value}");
    }

    /// <summary>Role assignments whose scope is a resource group (deployer/): (resource group, role definition guid, condition).</summary>
    public List<(string ResourceGroup, string Role, string? Condition)> ResourceGroupRoleAssignments() =>
        Resources.Where(r => (string?)r["type"] == "Microsoft.Authorization/roleAssignments")
            .Select(r => (
                ResourceGroupPattern().Match((string)r["id"]!).Groups[1].Value,
                ((string)r["properties"]!["roleDefinitionId"]!).Split('/').Last(),
                (string?)r["properties"]!["condition"]))
            .ToList();

    [GeneratedRegex(@"^\[extensionResourceId\('([^']+)'")]
    private static partial Regex ScopePattern();

    [GeneratedRegex(@"^\[resourceId\('[^']+', '([^']+)', 'Microsoft.Authorization/roleAssignments'")]
    private static partial Regex ResourceGroupPattern();

    [GeneratedRegex(@"^\[format\('([^']*)\{0\}([^']*)', reference\('[^']+', '[^']+'\)\.defaultHostName\)\]$")]
    private static partial Regex HostNameFormat();

    [GeneratedRegex(@"^\[format\('([^']*)\{0\}([^']*)', format\('\{0\}\.(internal\.)?\{1\}', '([^']+)', reference\('[^']+managedEnvironments[^']+', '[^']+'\)\.defaultDomain\)\)\]$")]
    private static partial Regex EnvironmentDomainFormat();

    [GeneratedRegex(@"^\[format\('([^']*)\{0\}([^']*)', reference\('[^']+userAssignedIdentities[^']+', '[^']+'\)\.clientId\)\]$")]
    private static partial Regex ClientIdFormat();

    [GeneratedRegex(@"^\[reference\('[^']+userAssignedIdentities[^']+', '[^']+'\)\.clientId\]$")]
    private static partial Regex ClientIdReference();

    [GeneratedRegex(@"^\[format\('https://\{0\}\.blob\.\{1\}/', '([^']+)', environment\(\)\.suffixes\.storage\)\]$")]
    private static partial Regex BlobEndpointFormat();
}
