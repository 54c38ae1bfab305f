using System.Collections.Concurrent;
using System.Globalization;
using System.Numerics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Bridge.Emulators.CloudTasks.Internal;

/// <summary>
/// Signs OIDC ID tokens for HTTP tasks the way Google does (RS256, claims iss, aud, azp, sub, email,
/// email_verified, iat, exp) and publishes the discovery document and JWKS, so a receiver verifies emulator tokens
/// exactly as it verifies Google's. The key is kept with the data, so its kid is stable across restarts.
/// </summary>
internal sealed class OidcIssuer : IDisposable
{
    public const string DiscoveryPath = "/.well-known/openid-configuration";
    public const string JwksPath = "/oauth2/v3/certs";

    private readonly RSA _key;
    private readonly TimeProvider _time;
    private readonly TimeSpan _lifetime;
    private readonly Func<string> _issuer;

    /// <summary>Signed tokens by (issuer, account, audience), reused until near expiry as Google reuses its ID tokens: an RSA signature per dispatch cost more than the rest of the attempt.</summary>
    private readonly ConcurrentDictionary<(string Issuer, string Account, string Audience), CachedToken> _tokens = new();

    /// <summary>Distinct audiences are unbounded (by default each URL is one): past this, the cache starts over.</summary>
    private const int MaxCachedTokens = 4096;

    public OidcIssuer(string signingKeyPem, Func<string> issuer, TimeProvider time, TimeSpan lifetime)
    {
        _key = RSA.Create();
        _key.ImportFromPem(signingKeyPem);
        _issuer = issuer;
        _time = time;
        _lifetime = lifetime;
        var parameters = _key.ExportParameters(false);
        Modulus = Base64Url(parameters.Modulus!);
        Exponent = Base64Url(parameters.Exponent!);
        KeyId = Convert.ToHexStringLower(SHA256.HashData(parameters.Modulus!))[..40];
    }

    public string KeyId { get; }

    public string Issuer => _issuer();

    private string Modulus { get; }

    private string Exponent { get; }

    public static string CreateSigningKeyPem()
    {
        using var rsa = RSA.Create(2048);
        return rsa.ExportPkcs8PrivateKeyPem();
    }

    /// <summary>A stable numeric id for a service account, like the <c>sub</c> Google puts in its tokens.</summary>
    public static string SubjectFor(string serviceAccountEmail)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(serviceAccountEmail.ToLowerInvariant()));
        var value = new BigInteger(hash.AsSpan(0, 9), isUnsigned: true) % BigInteger.Pow(10, 20);
        return "1" + value.ToString("D20", CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// An ID token for the account and audience: a cached one while it has at least a quarter of its lifetime (at
    /// most 5 minutes) left, else a newly signed one.
    /// </summary>
    public string GetIdToken(string serviceAccountEmail, string audience)
    {
        var now = _time.GetUtcNow();
        var issuer = Issuer;
        var key = (issuer, serviceAccountEmail, audience);
        if (_tokens.TryGetValue(key, out var cached) && now >= cached.IssuedAt && now < cached.RefreshAt)
        {
            return cached.Token;
        }

        var token = CreateIdToken(serviceAccountEmail, audience, issuer, now);
        if (_tokens.Count >= MaxCachedTokens)
        {
            _tokens.Clear();
        }

        var margin = TimeSpan.FromTicks(Math.Min(TimeSpan.FromMinutes(5).Ticks, _lifetime.Ticks / 4));
        _tokens[key] = new CachedToken(token, now, now + _lifetime - margin);
        return token;
    }

    private string CreateIdToken(string serviceAccountEmail, string audience, string issuer, DateTimeOffset now)
    {
        var subject = SubjectFor(serviceAccountEmail);
        var header = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, string> { ["alg"] = "RS256", ["kid"] = KeyId, ["typ"] = "JWT" });
        var payload = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["aud"] = audience,
            ["azp"] = subject,
            ["email"] = serviceAccountEmail,
            ["email_verified"] = true,
            ["exp"] = (now + _lifetime).ToUnixTimeSeconds(),
            ["iat"] = now.ToUnixTimeSeconds(),
            ["iss"] = issuer,
            ["sub"] = subject,
        });
        var signingInput = Base64Url(header) + "." + Base64Url(payload);
        var signature = _key.SignData(Encoding.ASCII.GetBytes(signingInput), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        return signingInput + "." + Base64Url(signature);
    }

    /// <summary>An opaque bearer token for <c>oauth_token</c> tasks (there is no Google token service here to ask).</summary>
    public static string CreateAccessToken() => "ya29.emulator." + Base64Url(RandomNumberGenerator.GetBytes(24));

    public object DiscoveryDocument() => new Dictionary<string, object>
    {
        ["issuer"] = Issuer,
        ["jwks_uri"] = Issuer.TrimEnd('/') + JwksPath,
        ["response_types_supported"] = new[] { "id_token" },
        ["subject_types_supported"] = new[] { "public" },
        ["id_token_signing_alg_values_supported"] = new[] { "RS256" },
        ["claims_supported"] = new[] { "aud", "azp", "email", "email_verified", "exp", "iat", "iss", "sub" },
    };

    public object Jwks() => new Dictionary<string, object>
    {
        ["keys"] = new[]
        {
            new Dictionary<string, string> { ["kty"] = "RSA", ["alg"] = "RS256", ["use"] = "sig", ["kid"] = KeyId, ["n"] = Modulus, ["e"] = Exponent },
        },
    };

    public void Dispose() => _key.Dispose();

    private sealed record CachedToken(string Token, DateTimeOffset IssuedAt, DateTimeOffset RefreshAt);

    private static string Base64Url(byte[] data) => Convert.ToBase64String(data).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
