using System.Buffers.Text;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Bridge.Core.Callback;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Protocols;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;
using Microsoft.IdentityModel.Tokens;

namespace Bridge.Core.Internal;

/// <summary>Why a token was not accepted; the name is what is logged and returned (never the token).</summary>
internal enum TokenRejection
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
internal sealed record TokenVerification(int Status, TokenRejection? Rejection, string? Email)
{
    public bool IsValid => Rejection is null;
}

/// <summary>
/// Verifies Google-style OIDC ID tokens, strictly and in this order: compact JWS of exactly three parts, header with
/// <c>alg</c> RS256 and no <c>crit</c>, a trusted <c>iss</c>, the RS256 signature with the issuer's key for the
/// header's <c>kid</c> (from OIDC discovery and JWKS, cached; an unknown kid refreshes at most once per
/// <see cref="CallbackOptions.KeyRefreshInterval"/>), then <c>aud</c>, <c>exp</c>, <c>nbf</c>, <c>iat</c> with a small
/// skew, then <c>email</c> verified and allowed. Claims are read only after the signature verified; a payload with
/// duplicate claims is refused.
/// </summary>
/// <remarks>
/// Microsoft.IdentityModel fetches and parses discovery documents and JWKS (any issuer's URL, so the emulator works
/// exactly like Google). The JWS check itself is this small, allow-list-only code rather than a general JOSE handler:
/// it accepts exactly one algorithm and one token shape, and costs little beyond the RSA verification itself.
/// </remarks>
internal sealed class OidcTokenVerifier
{
    public const int MaxTokenLength = 8192;
    private const string Algorithm = "RS256";
    private const int MinKeyBits = 2048;

    private readonly CallbackOptions _options;
    private readonly TimeProvider _time;
    private readonly HashSet<string> _allowed;
    private readonly HashSet<string> _audiences;
    private readonly Dictionary<string, IssuerKeyCache> _issuers;
    private readonly ConcurrentDictionary<OpenIdConnectConfiguration, IReadOnlyDictionary<string, RSA>> _keys = new();

    public OidcTokenVerifier(IOptions<CallbackOptions> options, TimeProvider time, HttpClient? http = null)
    {
        _options = options.Value.Clone();
        _time = time;
        _allowed = new HashSet<string>(_options.AllowedServiceAccounts, StringComparer.OrdinalIgnoreCase);
        _audiences = new HashSet<string>(_options.EffectiveAudiences, StringComparer.Ordinal);
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

        var raw = authorization.AsMemory("Bearer ".Length).Trim();
        if (raw.Length > MaxTokenLength)
        {
            return Reject(TokenRejection.TooLarge);
        }

        var first = raw.Span.IndexOf('.');
        var second = first < 0 ? -1 : raw.Span[(first + 1)..].IndexOf('.') + first + 1;
        if (first <= 0 || second <= first || raw.Span[(second + 1)..].Contains('.'))
        {
            return Reject(TokenRejection.Malformed);
        }

        if (!JwtParts.TryReadHeader(raw.Span[..first], out var header) || header.HasCrit || JwtParts.TryReadClaims(raw.Span[(first + 1)..second]) is not { Duplicated: false } claims)
        {
            return Reject(TokenRejection.Malformed);
        }

        if (!string.Equals(header.Alg, Algorithm, StringComparison.Ordinal))
        {
            return Reject(TokenRejection.WrongAlgorithm);
        }

        if (claims.Issuer is not { } issuer || !_issuers.TryGetValue(issuer, out var cache))
        {
            return Reject(TokenRejection.UntrustedIssuer);
        }

        var signature = DecodeBase64Url(raw.Span[(second + 1)..]);
        if (signature is null || signature.Length == 0)
        {
            return Reject(TokenRejection.BadSignature);
        }

        var kid = header.Kid;
        RSA? key;
        try
        {
            key = await FindKeyAsync(cache, kid, forceRefresh: false, cancellationToken).ConfigureAwait(false)
                ?? await FindKeyAsync(cache, kid, forceRefresh: true, cancellationToken).ConfigureAwait(false); // keys may have rotated
        }
        catch (Exception ex) when (ex is InvalidOperationException or IOException or HttpRequestException)
        {
            return new TokenVerification(503, TokenRejection.KeysUnavailable, null);
        }

        if (key is null)
        {
            return Reject(TokenRejection.UnknownKey);
        }

        var signedLength = Encoding.ASCII.GetByteCount(raw.Span[..second]);
        var signed = signedLength <= 4096 ? stackalloc byte[signedLength] : new byte[signedLength];
        Encoding.ASCII.GetBytes(raw.Span[..second], signed);
        if (!key.VerifyData(signed, signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1))
        {
            return Reject(TokenRejection.BadSignature);
        }

        // Only now are the claims trusted.
        return CheckClaims(claims);
    }

    private TokenVerification CheckClaims(JwtClaims claims)
    {
        if (claims.AudienceMalformed || !claims.Audiences.Exists(_audiences.Contains))
        {
            return Reject(TokenRejection.WrongAudience);
        }

        var now = _time.GetUtcNow().ToUnixTimeMilliseconds() / 1000.0;
        var skew = _options.ClockSkew.TotalSeconds;
        if (claims.Expires is not { } exp || claims.IssuedAt is not { } iat)
        {
            return Reject(TokenRejection.Malformed);
        }

        if (now > exp + skew)
        {
            return Reject(TokenRejection.Expired);
        }

        if (claims.NotBefore is { } nbf && now + skew < nbf)
        {
            return Reject(TokenRejection.NotYetValid);
        }

        if (iat > now + skew)
        {
            return Reject(TokenRejection.IssuedInFuture);
        }

        if (string.IsNullOrEmpty(claims.Email))
        {
            return Reject(TokenRejection.MissingEmail);
        }

        if (!claims.EmailVerified)
        {
            return Reject(TokenRejection.EmailNotVerified);
        }

        return _allowed.Contains(claims.Email) ? new TokenVerification(200, null, claims.Email) : new TokenVerification(403, TokenRejection.AccountNotAllowed, claims.Email);
    }

    /// <summary>The issuer's RSA key for <paramref name="kid"/>; tokens must name their key.</summary>
    private async Task<RSA?> FindKeyAsync(IssuerKeyCache cache, string? kid, bool forceRefresh, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(kid))
        {
            return null;
        }

        var configuration = await cache.GetAsync(forceRefresh, cancellationToken).ConfigureAwait(false);
        var keys = _keys.GetOrAdd(configuration, static c => RsaKeys(c));
        return keys.GetValueOrDefault(kid);
    }

    private static Dictionary<string, RSA> RsaKeys(OpenIdConnectConfiguration configuration)
    {
        var keys = new Dictionary<string, RSA>(StringComparer.Ordinal);
        foreach (var key in configuration.JsonWebKeySet?.Keys ?? [])
        {
            if (key.Kty != "RSA" || string.IsNullOrEmpty(key.Kid) || string.IsNullOrEmpty(key.N) || string.IsNullOrEmpty(key.E)
                || (key.Use is { Length: > 0 } use && use != "sig") || (key.Alg is { Length: > 0 } keyAlg && keyAlg != Algorithm))
            {
                continue;
            }

            var rsa = RSA.Create(new RSAParameters { Modulus = Base64UrlEncoder.DecodeBytes(key.N), Exponent = Base64UrlEncoder.DecodeBytes(key.E) });
            if (rsa.KeySize >= MinKeyBits)
            {
                keys[key.Kid] = rsa;
            }
        }

        return keys;
    }

    private static byte[]? DecodeBase64Url(ReadOnlySpan<char> text)
    {
        try
        {
            return Base64Url.DecodeFromChars(text);
        }
        catch (FormatException)
        {
            return null;
        }
    }

    private static TokenVerification Reject(TokenRejection reason) => new(401, reason, null);
}
