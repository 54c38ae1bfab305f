using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using Bridge.Core.Callback;
using Microsoft.Extensions.Options;

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

/// <summary>
/// The verdict on a token: accepted (with the caller's account and which of the callback's accepted audiences the token
/// names), or rejected with a status and a reason. A struct: the receiver's path allocates no verdict.
/// </summary>
internal readonly record struct TokenVerification(int Status, TokenRejection? Rejection, string? Email, IReadOnlyList<string>? Audiences = null)
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
/// The JWS check is this small, allow-list-only code rather than a general JOSE handler: it accepts exactly one
/// algorithm and one token shape, and costs little beyond the RSA verification itself. Keys come from
/// <see cref="IssuerKeyCache"/>, which bounds what a slow or hostile issuer can do.
/// </remarks>
internal sealed class OidcTokenVerifier
{
    public const int MaxTokenLength = 8192;
    private const int MinKeyBits = 2048;

    private readonly CallbackOptions _options;
    private readonly TimeProvider _time;
    private readonly HashSet<string> _allowed;
    private readonly Utf8Choices _audiences;
    private readonly Utf8Choices _issuerNames;
    private readonly IssuerKeyCache[] _issuers;

    public OidcTokenVerifier(IOptions<CallbackOptions> options, TimeProvider time, HttpClient? http = null)
    {
        _options = options.Value.Clone();
        _time = time;
        _allowed = new HashSet<string>(_options.AllowedServiceAccounts, StringComparer.OrdinalIgnoreCase);
        _audiences = new Utf8Choices(_options.EffectiveAudiences);
        _issuerNames = new Utf8Choices(_options.EffectiveIssuers.Select(i => i.Issuer));

        // Timeouts are the cache's own (per fetch), not the client's 100 s default. http is allowed only where start-up
        // validation allowed it: loopback, for the emulator.
        http ??= new HttpClient { Timeout = Timeout.InfiniteTimeSpan };
        var settings = new IssuerKeySettings(_options.KeyCacheDuration, _options.KeyRefreshInterval, _options.KeyFetchTimeout, _options.KeyGracePeriod, _options.KeyFailureBackoff);
        var discovery = _options.EffectiveIssuers.GroupBy(i => i.Issuer, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Last().EffectiveDiscoveryUrl, StringComparer.Ordinal);
        _issuers = new IssuerKeyCache[_issuerNames.Count];
        for (var i = 0; i < _issuers.Length; i++)
        {
            _issuers[i] = new IssuerKeyCache(new Uri(discovery[_issuerNames[i]]), http, settings, time);
        }
    }

    /// <summary>The key cache of <paramref name="issuer"/> (tests).</summary>
    internal IssuerKeyCache KeysOf(string issuer)
    {
        for (var i = 0; i < _issuerNames.Count; i++)
        {
            if (_issuerNames[i] == issuer)
            {
                return _issuers[i];
            }
        }

        throw new KeyNotFoundException(issuer);
    }

    public Task<TokenVerification> VerifyAsync(string? authorization, CancellationToken cancellationToken = default) =>
        VerifyValueAsync(authorization, cancellationToken).AsTask();

    /// <summary>As <see cref="VerifyAsync"/>, without a task per call when the keys are held (the receiver's path).</summary>
    internal async ValueTask<TokenVerification> VerifyValueAsync(string? authorization, CancellationToken cancellationToken = default)
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

        if (!JwtParts.TryReadHeader(raw.Span[..first], out var header) || header.HasCrit || !JwtParts.TryReadClaims(raw.Span[(first + 1)..second], _issuerNames, _audiences, out var claims) || claims.Duplicated)
        {
            return Reject(TokenRejection.Malformed);
        }

        if (!header.IsRs256)
        {
            return Reject(TokenRejection.WrongAlgorithm);
        }

        if (claims.Issuer < 0)
        {
            return Reject(TokenRejection.UntrustedIssuer);
        }

        var cache = _issuers[claims.Issuer];

        // Checked now, decoded into a stack buffer once the key is known (a span can't live across the await).
        if (!Base64Url.IsValid(raw.Span[(second + 1)..], out var signatureLength) || signatureLength == 0)
        {
            return Reject(TokenRejection.BadSignature);
        }

        RSA? key;
        try
        {
            key = string.IsNullOrEmpty(header.Kid) ? null : await cache.FindAsync(header.Kid, cancellationToken).ConfigureAwait(false); // tokens must name their key
        }
        catch (KeysUnavailableException)
        {
            return new TokenVerification(503, TokenRejection.KeysUnavailable, null);
        }

        if (key is null)
        {
            return Reject(TokenRejection.UnknownKey);
        }

        var signature = signatureLength <= 1024 ? stackalloc byte[signatureLength] : new byte[signatureLength];
        if (!Base64Url.TryDecodeFromChars(raw.Span[(second + 1)..], signature, out var decoded) || decoded != signatureLength)
        {
            return Reject(TokenRejection.BadSignature);
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

    private TokenVerification CheckClaims(in JwtClaims claims)
    {
        if (claims.AudienceMalformed || claims.Audience < 0)
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

        return _allowed.Contains(claims.Email) ? new TokenVerification(200, null, claims.Email, claims.Audiences ?? _audiences.Single(claims.Audience)) : new TokenVerification(403, TokenRejection.AccountNotAllowed, claims.Email);
    }

    private static TokenVerification Reject(TokenRejection reason) => new(401, reason, null);
}
