namespace Bridge.Server;

/// <summary>
/// Who may use the runner's intake (<c>POST /api/events/{route}</c>, <c>/api/outcomes</c>, <c>/api/health/details</c>,
/// the dashboard from another machine), bound from <c>Bridge:Server:Intake</c>. Keys, Entra ID tokens, or both; the
/// callback (its own OIDC check) and <c>/api/health</c> stay anonymous.
/// </summary>
public sealed class IntakeAuthenticationOptions
{
    public const string SectionName = "Bridge:Server:Intake";

    /// <summary>
    /// SHA-256 hashes of the accepted keys, as 64 hex digits (<c>printf %s "$key" | sha256sum</c>); an entry may hold
    /// several separated by commas or spaces (one Key Vault secret for a rotation). Callers send the key itself as
    /// <c>x-functions-key</c> or <c>?code=</c>, as to a function app.
    /// </summary>
    public List<string> KeyHashes { get; set; } = [];

    /// <summary>Entra ID bearer tokens.</summary>
    public EntraIntakeOptions Entra { get; set; } = new();

    /// <summary>
    /// Listen beyond loopback with no intake authentication (a network where something in front authenticates). Off:
    /// the runner refuses such a start. Logged as a warning at every start.
    /// </summary>
    public bool UnsafeAllowAnonymousBeyondLoopback { get; set; }

    public bool IsConfigured => KeyHashes.Exists(h => !string.IsNullOrWhiteSpace(h)) || Entra.IsConfigured;
}

/// <summary>Entra ID (v1 or v2) access tokens for the intake application.</summary>
public sealed class EntraIntakeOptions
{
    public const string DefaultInstance = "https://login.microsoftonline.com/";

    /// <summary>The cloud's login endpoint; tests point it at a local issuer.</summary>
    public string Instance { get; set; } = DefaultInstance;

    /// <summary>The tenant id (one tenant: not <c>common</c>, <c>organizations</c> or <c>consumers</c>).</summary>
    public string? TenantId { get; set; }

    /// <summary>Accepted <c>aud</c> values: the App ID URI (<c>api://…</c>, v1 tokens) and/or the client id (v2).</summary>
    public List<string> Audiences { get; set; } = [];

    /// <summary>App roles (<c>roles</c> claim) that admit a caller.</summary>
    public List<string> AllowedRoles { get; set; } = [];

    /// <summary>Client ids (<c>azp</c> in v2, <c>appid</c> in v1 tokens) that admit a caller.</summary>
    public List<string> AllowedClientIds { get; set; } = [];

    public bool IsConfigured => !string.IsNullOrWhiteSpace(TenantId) || Audiences.Count > 0 || AllowedRoles.Count > 0 || AllowedClientIds.Count > 0;

    internal string Authority => $"{Instance.TrimEnd('/')}/{TenantId}/v2.0";
}

/// <summary>A start refused because the intake would be open beyond loopback; the one-line message says what to set.</summary>
public sealed class UnprotectedIntakeException(string message) : Exception(message);
