using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Protocols;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;
using Microsoft.IdentityModel.Tokens;

namespace Bridge.Core.Callback;

/// <summary>Why a token was not accepted; the name is what is logged and returned (never the token).</summary>
public enum TokenRejection
{
    Missing,
    TooLarge,
    Malformed,
    WrongAlgorithm,
    UntrustedIssuer,
    UnknownKey,
    BadSignature,
    WrongAudience,
    Expired,
    NotYetValid,
    IssuedInFuture,
    MissingEmail,
    EmailNotVerified,
    AccountNotAllowed,
    KeysUnavailable,
}

/// <summary>The verdict on a token: accepted (with the caller's account), or rejected with a status and a reason.</summary>
public sealed record TokenVerification(int Status, TokenRejection? Rejection, string? Email)
{
    public bool IsValid => Rejection is null;
}

/// <summary>
/// Verifies Google-style OIDC ID tokens: RS256 only, signature against the issuer's JWKS (from OIDC discovery,
/// cached; an unknown <c>kid</c> triggers at most one refresh per <see cref="CallbackOptions.KeyRefreshInterval"/>),
/// trusted <c>iss</c>, expected <c>aud</c>, <c>exp</c>/<c>nbf</c>/<c>iat</c> with a small skew, then <c>email</c>
/// verified and allowed. Microsoft.IdentityModel does the JOSE work (discovery parsing, JWKS, strict algorithm and
/// lifetime checks) with any issuer's discovery URL, so the emulator's issuer works exactly like Google's; the
/// Google-specific rules (iat, email, email_verified) and the key cache policy are here.
/// </summary>
public sealed class OidcTokenVerifier
{
    public const int MaxTokenLength = 8192;
    private const string Algorithm = SecurityAlgorithms.RsaSha256;

    private readonly CallbackOptions _options;
    private readonly TimeProvider _time;
    private readonly HashSet<string> _allowed;
    private readonly Dictionary<string, IssuerKeyCache> _issuers;
    private readonly JsonWebTokenHandler _handler = new() { MapInboundClaims = false };
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, (OpenIdConnectConfiguration Configuration, TokenValidationParameters Parameters)> _parameters = new(StringComparer.Ordinal);

    public OidcTokenVerifier(IOptions<CallbackOptions> options, TimeProvider time, HttpClient? http = null)
    {
        _options = options.Value.Clone();
        _time = time;
        _allowed = new HashSet<string>(_options.AllowedServiceAccounts, StringComparer.OrdinalIgnoreCase);
        _issuers = new Dictionary<string, IssuerKeyCache>(StringComparer.Ordinal);
        foreach (var issuer in _options.EffectiveIssuers)
        {
            var url = new Uri(issuer.EffectiveDiscoveryUrl);

            // http is allowed only where start-up validation allowed it: loopback, for the emulator.
            var retriever = http is null ? new HttpDocumentRetriever { RequireHttps = url.Scheme == Uri.UriSchemeHttps } : new HttpDocumentRetriever(http) { RequireHttps = url.Scheme == Uri.UriSchemeHttps };
            _issuers[issuer.Issuer] = new IssuerKeyCache(url.ToString(), retriever, _options.KeyCacheDuration, _options.KeyRefreshInterval, time);
        }
    }

    public async Task<TokenVerification> VerifyAsync(string? authorization, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrEmpty(authorization) || !authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return Reject(TokenRejection.Missing);
        }

        var raw = authorization["Bearer ".Length..].Trim();
        if (raw.Length > MaxTokenLength)
        {
            return Reject(TokenRejection.TooLarge);
        }

        JsonWebToken token;
        try
        {
            if (raw.Count(c => c == '.') != 2)
            {
                return Reject(TokenRejection.Malformed);
            }

            token = new JsonWebToken(raw);
        }
        catch (ArgumentException)
        {
            return Reject(TokenRejection.Malformed);
        }

        if (!string.Equals(token.Alg, Algorithm, StringComparison.Ordinal))
        {
            return Reject(TokenRejection.WrongAlgorithm);
        }

        if (!_issuers.TryGetValue(token.Issuer ?? string.Empty, out var keys))
        {
            return Reject(TokenRejection.UntrustedIssuer);
        }

        var issuer = token.Issuer!;
        var (rejection, validated) = await ValidateAsync(token, issuer, keys, forceRefresh: false, cancellationToken).ConfigureAwait(false);
        if (rejection is { Rejection: TokenRejection.UnknownKey })
        {
            // Keys may have rotated: fetch fresh ones (rate-limited, shared by concurrent callers) and try once more.
            (rejection, validated) = await ValidateAsync(token, issuer, keys, forceRefresh: true, cancellationToken).ConfigureAwait(false);
        }

        return rejection ?? CheckIdentity(validated!);
    }

    /// <summary>The validated token, or a rejection: signature, issuer, audience, lifetime, iat.</summary>
    private async Task<(TokenVerification? Rejection, JsonWebToken? Token)> ValidateAsync(JsonWebToken parsed, string issuer, IssuerKeyCache keys, bool forceRefresh, CancellationToken cancellationToken)
    {
        OpenIdConnectConfiguration configuration;
        try
        {
            configuration = await keys.GetAsync(forceRefresh, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is InvalidOperationException or IOException or HttpRequestException)
        {
            return (new TokenVerification(503, TokenRejection.KeysUnavailable, null), null);
        }

        var result = await _handler.ValidateTokenAsync(parsed, Parameters(issuer, configuration)).ConfigureAwait(false);
        if (!result.IsValid)
        {
            return (Reject(result.Exception switch
            {
                SecurityTokenSignatureKeyNotFoundException => TokenRejection.UnknownKey,
                SecurityTokenInvalidSignatureException => TokenRejection.BadSignature,
                SecurityTokenExpiredException => TokenRejection.Expired,
                SecurityTokenNotYetValidException => TokenRejection.NotYetValid,
                SecurityTokenInvalidAudienceException => TokenRejection.WrongAudience,
                SecurityTokenInvalidIssuerException => TokenRejection.UntrustedIssuer,
                SecurityTokenInvalidAlgorithmException => TokenRejection.WrongAlgorithm,
                SecurityTokenNoExpirationException => TokenRejection.Malformed,
                _ => TokenRejection.Malformed,
            }), null);
        }

        var token = (JsonWebToken)result.SecurityToken;
        if (!token.TryGetPayloadValue<long>("iat", out var issuedAt))
        {
            return (Reject(TokenRejection.Malformed), null);
        }

        if (DateTimeOffset.FromUnixTimeSeconds(issuedAt) > _time.GetUtcNow() + _options.ClockSkew)
        {
            return (Reject(TokenRejection.IssuedInFuture), null);
        }

        return (null, token);
    }

    private TokenVerification CheckIdentity(JsonWebToken token)
    {
        if (!token.TryGetPayloadValue<string>("email", out var email) || string.IsNullOrEmpty(email))
        {
            return Reject(TokenRejection.MissingEmail);
        }

        var verified = token.TryGetPayloadValue<bool>("email_verified", out var flag) ? flag
            : token.TryGetPayloadValue<string>("email_verified", out var text) && string.Equals(text, "true", StringComparison.OrdinalIgnoreCase);
        if (!verified)
        {
            return Reject(TokenRejection.EmailNotVerified);
        }

        return _allowed.Contains(email) ? new TokenVerification(200, null, email) : new TokenVerification(403, TokenRejection.AccountNotAllowed, email);
    }

    /// <summary>Built once per issuer and key set, not per call.</summary>
    private TokenValidationParameters Parameters(string issuer, OpenIdConnectConfiguration configuration)
    {
        var cached = _parameters.GetValueOrDefault(issuer);
        if (cached.Configuration == configuration)
        {
            return cached.Parameters;
        }

        var parameters = NewParameters(issuer, configuration.SigningKeys);
        _parameters[issuer] = (configuration, parameters);
        return parameters;
    }

    private TokenValidationParameters NewParameters(string issuer, ICollection<SecurityKey> keys) => new()
    {
        ValidIssuer = issuer,
        ValidAudiences = _options.EffectiveAudiences,
        IssuerSigningKeys = keys,
        ValidAlgorithms = [Algorithm],
        RequireSignedTokens = true,
        RequireExpirationTime = true,
        ValidateLifetime = true,
        ValidateIssuerSigningKey = true,
        TryAllIssuerSigningKeys = false,
        ClockSkew = _options.ClockSkew,
    };

    private static TokenVerification Reject(TokenRejection reason) => new(401, reason, null);
}
