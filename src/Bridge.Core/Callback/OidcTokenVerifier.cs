using System.Buffers.Text;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Options;
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
public sealed class OidcTokenVerifier
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

        using var header = ParseJson(raw.Span[..first]);
        using var payload = ParseJson(raw.Span[(first + 1)..second]);
        if (header is null || payload is null || HasDuplicateNames(payload.RootElement) || header.RootElement.TryGetProperty("crit", out _))
        {
            return Reject(TokenRejection.Malformed);
        }

        if (!header.RootElement.TryGetProperty("alg", out var alg) || alg.ValueKind != JsonValueKind.String || !alg.ValueEquals(Algorithm))
        {
            return Reject(TokenRejection.WrongAlgorithm);
        }

        var issuer = String(payload.RootElement, "iss");
        if (issuer is null || !_issuers.TryGetValue(issuer, out var cache))
        {
            return Reject(TokenRejection.UntrustedIssuer);
        }

        var signature = DecodeBase64Url(raw.Span[(second + 1)..]);
        if (signature is null || signature.Length == 0)
        {
            return Reject(TokenRejection.BadSignature);
        }

        var kid = String(header.RootElement, "kid");
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
        return CheckClaims(payload.RootElement);
    }

    private TokenVerification CheckClaims(JsonElement claims)
    {
        if (!HasAudience(claims))
        {
            return Reject(TokenRejection.WrongAudience);
        }

        var now = _time.GetUtcNow().ToUnixTimeMilliseconds() / 1000.0;
        var skew = _options.ClockSkew.TotalSeconds;
        if (Number(claims, "exp") is not { } exp || Number(claims, "iat") is not { } iat)
        {
            return Reject(TokenRejection.Malformed);
        }

        if (now > exp + skew)
        {
            return Reject(TokenRejection.Expired);
        }

        if (Number(claims, "nbf") is { } nbf && now + skew < nbf)
        {
            return Reject(TokenRejection.NotYetValid);
        }

        if (iat > now + skew)
        {
            return Reject(TokenRejection.IssuedInFuture);
        }

        var email = String(claims, "email");
        if (string.IsNullOrEmpty(email))
        {
            return Reject(TokenRejection.MissingEmail);
        }

        var verified = claims.TryGetProperty("email_verified", out var flag)
            && (flag.ValueKind == JsonValueKind.True || (flag.ValueKind == JsonValueKind.String && flag.ValueEquals("true")));
        if (!verified)
        {
            return Reject(TokenRejection.EmailNotVerified);
        }

        return _allowed.Contains(email) ? new TokenVerification(200, null, email) : new TokenVerification(403, TokenRejection.AccountNotAllowed, email);
    }

    private bool HasAudience(JsonElement claims)
    {
        if (!claims.TryGetProperty("aud", out var aud))
        {
            return false;
        }

        if (aud.ValueKind == JsonValueKind.String)
        {
            return _audiences.Contains(aud.GetString()!);
        }

        return aud.ValueKind == JsonValueKind.Array && aud.EnumerateArray().Any(a => a.ValueKind == JsonValueKind.String && _audiences.Contains(a.GetString()!));
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

    private static JsonDocument? ParseJson(ReadOnlySpan<char> base64Url)
    {
        var bytes = DecodeBase64Url(base64Url);
        if (bytes is null)
        {
            return null;
        }

        try
        {
            var document = JsonDocument.Parse(bytes);
            if (document.RootElement.ValueKind == JsonValueKind.Object)
            {
                return document;
            }

            document.Dispose();
            return null;
        }
        catch (JsonException)
        {
            return null;
        }
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

    private static bool HasDuplicateNames(JsonElement element)
    {
        // Tokens carry a handful of claims: a linear scan beats a hash set here.
        var names = new List<string>(12);
        foreach (var property in element.EnumerateObject())
        {
            if (names.Contains(property.Name, StringComparer.Ordinal))
            {
                return true;
            }

            names.Add(property.Name);
        }

        return false;
    }

    private static string? String(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static double? Number(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetDouble(out var number) && double.IsFinite(number) ? number : null;

    private static TokenVerification Reject(TokenRejection reason) => new(401, reason, null);
}
