namespace Bridge.Core.Callback;

/// <summary>The callback receiver's settings, bound from <c>Bridge:Callback</c>.</summary>
public sealed class CallbackOptions
{
    public const string SectionName = "Bridge:Callback";
    public const string GoogleIssuer = "https://accounts.google.com";

    /// <summary>Issuers whose tokens are accepted; default Google. Each needs an OIDC discovery document.</summary>
    public List<TrustedIssuer> Issuers { get; set; } = [];

    /// <summary>Accepted <c>aud</c> values; default: <see cref="PublicUrl"/>.</summary>
    public List<string> Audiences { get; set; } = [];

    /// <summary>The receiver's public URL (the tasks' audience by default).</summary>
    public string? PublicUrl { get; set; }

    /// <summary>Service accounts (<c>email</c> claim) allowed to call; required.</summary>
    public List<string> AllowedServiceAccounts { get; set; } = [];

    /// <summary>Leeway for <c>exp</c>, <c>nbf</c> and <c>iat</c>.</summary>
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Least time between two key refreshes caused by unknown <c>kid</c>s.</summary>
    public TimeSpan KeyRefreshInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long discovery documents and keys are cached.</summary>
    public TimeSpan KeyCacheDuration { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Longest one discovery or JWKS fetch may take; a slow issuer fails fast and held keys keep serving.</summary>
    public TimeSpan KeyFetchTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long past <see cref="KeyCacheDuration"/> held keys keep serving while refreshes fail.</summary>
    public TimeSpan KeyGracePeriod { get; set; } = TimeSpan.FromHours(6);

    /// <summary>How long a failed fetch is remembered before the issuer is asked again.</summary>
    public TimeSpan KeyFailureBackoff { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Largest callback body accepted.</summary>
    public int MaxBodyBytes { get; set; } = 1_048_576;

    /// <summary>Attempts a queue allows when its retry config can't be read (the service's default).</summary>
    public int DefaultMaxAttempts { get; set; } = 100;

    public CallbackOptions Clone()
    {
        var copy = (CallbackOptions)MemberwiseClone();
        copy.Issuers = Issuers.Select(i => i with { }).ToList();
        copy.Audiences = [.. Audiences];
        copy.AllowedServiceAccounts = [.. AllowedServiceAccounts];
        return copy;
    }

    /// <summary>The issuers in force: the configured ones, or Google's.</summary>
    public IReadOnlyList<TrustedIssuer> EffectiveIssuers => Issuers.Count > 0 ? Issuers : [new TrustedIssuer { Issuer = GoogleIssuer }];

    /// <summary>The audiences in force: the configured ones, or the public URL.</summary>
    public IReadOnlyList<string> EffectiveAudiences => Audiences.Count > 0 ? Audiences : string.IsNullOrEmpty(PublicUrl) ? [] : [PublicUrl];
}

/// <summary>An issuer and where its discovery document is (default: <c>{issuer}/.well-known/openid-configuration</c>).</summary>
public sealed record TrustedIssuer
{
    public string Issuer { get; set; } = string.Empty;

    public string? DiscoveryUrl { get; set; }

    public string EffectiveDiscoveryUrl => string.IsNullOrEmpty(DiscoveryUrl) ? Issuer.TrimEnd('/') + "/.well-known/openid-configuration" : DiscoveryUrl;
}
