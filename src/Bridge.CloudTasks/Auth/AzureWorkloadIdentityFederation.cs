using Azure.Core;
using Azure.Identity;
using Google.Apis.Auth.OAuth2;

namespace Bridge.CloudTasks.Auth;

/// <summary>
/// Settings for keyless access from Azure to Google Cloud: the Azure managed identity's token is the subject token
/// that Google's Security Token Service exchanges for a Google access token (workload identity federation).
/// </summary>
public sealed class AzureWorkloadIdentityFederationOptions
{
    public const string DefaultTokenUrl = "https://sts.googleapis.com/v1/token";
    public const string DefaultAzureTokenScope = "api://AzureADTokenExchange/.default";
    public const string JwtTokenType = "urn:ietf:params:oauth:token-type:jwt";

    /// <summary>
    /// The workload identity provider, e.g.
    /// <c>//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/azure/providers/azure</c>.
    /// </summary>
    public string Audience { get; set; } = string.Empty;

    /// <summary>The token exchange endpoint; only tests point it elsewhere.</summary>
    public string TokenUrl { get; set; } = DefaultTokenUrl;

    /// <summary>
    /// Optional: <c>https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/SA_EMAIL:generateAccessToken</c>,
    /// to act as a service account instead of the federated principal.
    /// </summary>
    public string? ServiceAccountImpersonationUrl { get; set; }

    /// <summary>The scope asked of Entra ID for the subject token (the app registration's exchange audience).</summary>
    public string AzureTokenScope { get; set; } = DefaultAzureTokenScope;

    /// <summary>The client id of a user-assigned managed identity; empty for the system-assigned one.</summary>
    public string? ManagedIdentityClientId { get; set; }

    public AzureWorkloadIdentityFederationOptions Clone() => (AzureWorkloadIdentityFederationOptions)MemberwiseClone();

    /// <summary>Problems with these settings, each naming the setting; empty when they are usable.</summary>
    public IReadOnlyList<string> Validate(string prefix)
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(Audience))
        {
            errors.Add($"{prefix}Audience is required: the workload identity provider, '//iam.googleapis.com/projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>'.");
        }
        else if (!Audience.StartsWith("//iam.googleapis.com/", StringComparison.Ordinal) || !Audience.Contains("/workloadIdentityPools/", StringComparison.Ordinal))
        {
            errors.Add($"{prefix}Audience '{Audience}' is not a workload identity provider name ('//iam.googleapis.com/projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>').");
        }

        if (!IsAllowedUrl(TokenUrl))
        {
            errors.Add($"{prefix}TokenUrl '{TokenUrl}' must be an absolute https URL (http only on loopback).");
        }

        if (ServiceAccountImpersonationUrl is { Length: > 0 } url && !IsAllowedUrl(url))
        {
            errors.Add($"{prefix}ServiceAccountImpersonationUrl '{url}' must be an absolute https URL (http only on loopback).");
        }

        if (string.IsNullOrWhiteSpace(AzureTokenScope))
        {
            errors.Add($"{prefix}AzureTokenScope is required (default '{DefaultAzureTokenScope}').");
        }

        return errors;
    }

    private static bool IsAllowedUrl(string? value) =>
        Uri.TryCreate(value, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttps || (uri.Scheme == Uri.UriSchemeHttp && uri.IsLoopback));
}

/// <summary>Builds the Google credential for workload identity federation from Azure.</summary>
public static class AzureWorkloadIdentityFederation
{
    /// <summary>
    /// A Google credential whose subject token comes from <paramref name="azureCredential"/> (by default the
    /// managed identity named by the options), exchanged at the options' token URL.
    /// </summary>
    public static GoogleCredential CreateCredential(AzureWorkloadIdentityFederationOptions options, TokenCredential? azureCredential = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = options.Validate(string.Empty);
        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join(" ", errors), nameof(options));
        }

        azureCredential ??= string.IsNullOrEmpty(options.ManagedIdentityClientId)
            ? new ManagedIdentityCredential(ManagedIdentityId.SystemAssigned)
            : new ManagedIdentityCredential(ManagedIdentityId.FromUserAssignedClientId(options.ManagedIdentityClientId));

        var initializer = new ProgrammaticExternalAccountCredential.Initializer(
            options.TokenUrl,
            options.Audience,
            AzureWorkloadIdentityFederationOptions.JwtTokenType,
            new AzureSubjectTokenProvider(azureCredential, options.AzureTokenScope))
        {
            ServiceAccountImpersonationUrl = string.IsNullOrEmpty(options.ServiceAccountImpersonationUrl) ? null : options.ServiceAccountImpersonationUrl,
        };

        return GoogleCredential.FromProgrammaticExternalAccountCredential(new ProgrammaticExternalAccountCredential(initializer))
            .CreateScoped(CloudTasksClient.DefaultAuthScopes);
    }

    private sealed class AzureSubjectTokenProvider(TokenCredential azureCredential, string scope) : ProgrammaticExternalAccountCredential.ISubjectTokenProvider
    {
        public async Task<string> GetSubjectTokenAsync(ProgrammaticExternalAccountCredential caller, CancellationToken taskCancellationToken)
        {
            // Azure.Identity caches and refreshes the token itself.
            var token = await azureCredential.GetTokenAsync(new TokenRequestContext([scope]), taskCancellationToken).ConfigureAwait(false);
            return token.Token;
        }
    }
}
