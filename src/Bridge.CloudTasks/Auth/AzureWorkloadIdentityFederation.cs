using System.Buffers.Text;
using System.Text.Json;
using Azure.Core;
using Azure.Identity;
using Google.Apis.Auth.OAuth2;

namespace Bridge.CloudTasks.Auth;

/// <summary>
/// Settings for keyless access from Azure to Google Cloud: the Azure managed identity's token is the subject token
/// that Google's Security Token Service exchanges for a Google access token (workload identity federation).
/// </summary>
/// <remarks>
/// Google's documented pattern for Azure: a single-tenant Entra application with an App ID URI that issues v1
/// tokens; the managed identity asks for <c>&lt;App ID URI&gt;/.default</c> (<see cref="AzureTokenScope"/>), gets a
/// token whose <c>aud</c> is the App ID URI (<see cref="AzureTokenAudience"/>) and whose <c>iss</c> is
/// <c>https://sts.windows.net/&lt;tenant&gt;/</c>, and the Google provider allows exactly that audience and issuer.
/// </remarks>
public sealed class AzureWorkloadIdentityFederationOptions
{
    public const string DefaultTokenUrl = "https://sts.googleapis.com/v1/token";
    public const string JwtTokenType = "urn:ietf:params:oauth:token-type:jwt";

    /// <summary>The issuer prefix of Entra ID v1 tokens, <c>https://sts.windows.net/&lt;tenant&gt;/</c>.</summary>
    public const string V1IssuerPrefix = "https://sts.windows.net/";

    /// <summary>
    /// The audience Entra ID accepts from other issuers when it federates in; it is no application Entra ID issues
    /// tokens for, so a token asked for it can never match a Google provider's allowed audience.
    /// </summary>
    public const string EntraTokenExchangeAudience = "api://AzureADTokenExchange";

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

    /// <summary>
    /// What the managed identity asks Entra ID for: <c>&lt;App ID URI&gt;/.default</c> of the federation application.
    /// Empty: derived from <see cref="AzureTokenAudience"/>.
    /// </summary>
    public string AzureTokenScope { get; set; } = string.Empty;

    /// <summary>
    /// What the token carries as <c>aud</c>, and what the Google provider's allowed audiences name: the federation
    /// application's App ID URI (a v1 token's audience is the URI asked for). Checked on every token before it is sent.
    /// </summary>
    public string AzureTokenAudience { get; set; } = string.Empty;

    /// <summary>The scope that yields a v1 token with <paramref name="audience"/> as its <c>aud</c>.</summary>
    public static string ScopeFor(string audience) => audience.TrimEnd('/') + "/.default";

    /// <summary>The scope actually requested: <see cref="AzureTokenScope"/>, or the one <see cref="AzureTokenAudience"/> implies.</summary>
    public string EffectiveAzureTokenScope => string.IsNullOrWhiteSpace(AzureTokenScope) ? ScopeFor(AzureTokenAudience) : AzureTokenScope;

    /// <summary>The <c>aud</c> expected on the token: <see cref="AzureTokenAudience"/>, or the one the scope implies.</summary>
    public string EffectiveAzureTokenAudience => string.IsNullOrWhiteSpace(AzureTokenAudience) ? AudienceOf(AzureTokenScope) : AzureTokenAudience;

    private static string AudienceOf(string scope) => scope.EndsWith("/.default", StringComparison.Ordinal) ? scope[..^"/.default".Length] : scope;

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

        errors.AddRange(ValidateEntraToken(prefix));

        return errors;
    }

    private List<string> ValidateEntraToken(string prefix)
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(AzureTokenScope) && string.IsNullOrWhiteSpace(AzureTokenAudience))
        {
            errors.Add($"{prefix}AzureTokenAudience is required: the App ID URI of the Entra application the managed identity asks tokens for, which the Google provider allows (docs/deploy.md).");
            return errors;
        }

        foreach (var (name, value) in new[] { ("AzureTokenAudience", AzureTokenAudience), ("AzureTokenScope", AzureTokenScope) })
        {
            if (value.StartsWith(EntraTokenExchangeAudience, StringComparison.OrdinalIgnoreCase))
            {
                errors.Add($"{prefix}{name} '{value}' names {EntraTokenExchangeAudience}, the audience Entra ID accepts from other issuers, not one it issues tokens for: name the App ID URI of the Entra federation application (docs/deploy.md).");
            }
            else if (value.Any(char.IsWhiteSpace))
            {
                errors.Add($"{prefix}{name} '{value}' holds white space.");
            }
        }

        if (!string.IsNullOrWhiteSpace(AzureTokenScope) && !AzureTokenScope.EndsWith("/.default", StringComparison.Ordinal))
        {
            errors.Add($"{prefix}AzureTokenScope '{AzureTokenScope}' must be '<App ID URI>/.default' (a managed identity asks for an application's static scope).");
        }
        else if (!string.IsNullOrWhiteSpace(AzureTokenScope) && !string.IsNullOrWhiteSpace(AzureTokenAudience) && AzureTokenScope != ScopeFor(AzureTokenAudience))
        {
            errors.Add($"{prefix}AzureTokenScope '{AzureTokenScope}' yields tokens with aud '{AudienceOf(AzureTokenScope)}', but {prefix}AzureTokenAudience is '{AzureTokenAudience}': ask for '{ScopeFor(AzureTokenAudience)}'.");
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
            new AzureSubjectTokenProvider(azureCredential, options.EffectiveAzureTokenScope, options.EffectiveAzureTokenAudience))
        {
            ServiceAccountImpersonationUrl = string.IsNullOrEmpty(options.ServiceAccountImpersonationUrl) ? null : options.ServiceAccountImpersonationUrl,
        };

        return GoogleCredential.FromProgrammaticExternalAccountCredential(new ProgrammaticExternalAccountCredential(initializer))
            .CreateScoped(CloudTasksClient.DefaultAuthScopes);
    }

    private sealed class AzureSubjectTokenProvider(TokenCredential azureCredential, string scope, string audience) : ProgrammaticExternalAccountCredential.ISubjectTokenProvider
    {
        public async Task<string> GetSubjectTokenAsync(ProgrammaticExternalAccountCredential caller, CancellationToken taskCancellationToken)
        {
            // Azure.Identity caches and refreshes the token itself.
            var token = await azureCredential.GetTokenAsync(new TokenRequestContext([scope]), taskCancellationToken).ConfigureAwait(false);
            EntraTokenCheck.ThrowIfNotForProvider(token.Token, scope, audience);
            return token.Token;
        }
    }
}

/// <summary>
/// Checks the claims of an Entra ID token before it is sent to Google's STS, so a mismatch between what was asked
/// for, what the token carries and what the provider allows is named here instead of as STS's "invalid_grant".
/// Only <c>aud</c>, <c>iss</c> and <c>ver</c> are read (and named in errors); the signature is STS's to verify.
/// </summary>
internal static class EntraTokenCheck
{
    /// <summary>Throws <see cref="InvalidOperationException"/> unless the token is a v1 token whose aud is <paramref name="audience"/>.</summary>
    public static void ThrowIfNotForProvider(string token, string scope, string audience)
    {
        ArgumentNullException.ThrowIfNull(token);
        var (aud, iss, ver) = ReadClaims(token)
            ?? throw new InvalidOperationException($"The Entra ID token asked for with scope '{scope}' is not a JWT.");
        if (!iss.StartsWith(AzureWorkloadIdentityFederationOptions.V1IssuerPrefix, StringComparison.Ordinal))
        {
            throw new InvalidOperationException(
                $"The Entra ID token asked for with scope '{scope}' is a version {ver} token from issuer '{iss}'; the Google provider trusts v1 tokens " +
                $"('{AzureWorkloadIdentityFederationOptions.V1IssuerPrefix}<tenant>/'): set the Entra application's api.requestedAccessTokenVersion to 1.");
        }

        if (!aud.Contains(audience))
        {
            throw new InvalidOperationException(
                $"The Entra ID token asked for with scope '{scope}' carries aud '{string.Join(", ", aud)}', not '{audience}', the audience the Google provider allows " +
                "(Bridge:CloudTasks:WorkloadIdentity:AzureTokenAudience): the scope must name the Entra application's App ID URI.");
        }
    }

    private static (List<string> Aud, string Iss, string Ver)? ReadClaims(string token)
    {
        var parts = token.Split('.');
        if (parts.Length != 3 || parts[1].Length > 16 * 1024)
        {
            return null;
        }

        try
        {
            using var payload = JsonDocument.Parse(Base64Url.DecodeFromChars(parts[1]));
            var root = payload.RootElement;
            var aud = root.TryGetProperty("aud", out var a)
                ? a.ValueKind == JsonValueKind.Array ? a.EnumerateArray().Select(x => x.GetString() ?? string.Empty).ToList() : [a.GetString() ?? string.Empty]
                : [];
            var iss = root.TryGetProperty("iss", out var i) && i.ValueKind == JsonValueKind.String ? i.GetString()! : string.Empty;
            var ver = root.TryGetProperty("ver", out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : "unknown";
            return (aud, iss, ver);
        }
        catch (Exception ex) when (ex is FormatException or JsonException or InvalidOperationException)
        {
            return null;
        }
    }
}
