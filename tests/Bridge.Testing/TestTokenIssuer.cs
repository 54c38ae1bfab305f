using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Bridge.Testing;

/// <summary>
/// An OIDC issuer for tests: real RSA keys, discovery and JWKS served from a loopback HTTP server (counting JWKS
/// fetches), and a minter that can also forge: any header, any claims, any signing key or none.
/// </summary>
public sealed class TestTokenIssuer : IAsyncDisposable
{
    private readonly HttpTargetServer _server;
    private readonly Dictionary<string, RSA> _published = new(StringComparer.Ordinal);
    private int _jwksFetches;

    private TestTokenIssuer(HttpTargetServer server)
    {
        _server = server;
    }

    public string Issuer => _server.Address.ToString().TrimEnd('/');

    public string DiscoveryUrl => Issuer + "/.well-known/openid-configuration";

    public int JwksFetches => Volatile.Read(ref _jwksFetches);

    public string CurrentKid { get; private set; } = string.Empty;

    /// <summary>Raw JWKS entries published after the real keys (malformed keys, for instance).</summary>
    public List<Dictionary<string, object>> ExtraJwks { get; } = [];

    public static async Task<TestTokenIssuer> StartAsync()
    {
        var server = await HttpTargetServer.StartAsync();
        var issuer = new TestTokenIssuer(server);
        issuer.Rotate();
        server.Respond = (request, _) => request.PathAndQuery switch
        {
            "/.well-known/openid-configuration" => new TargetResponse(200, Json: JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["issuer"] = issuer.Issuer,
                ["jwks_uri"] = issuer.Issuer + "/jwks",
                ["id_token_signing_alg_values_supported"] = new[] { "RS256" },
            })),
            "/jwks" => new TargetResponse(200, Json: issuer.JwksJson()),
            _ => new TargetResponse(404),
        };
        return issuer;
    }

    /// <summary>Publishes a new key and signs with it from now on; the old keys stay published.</summary>
    public string Rotate()
    {
        CurrentKid = "kid-" + Guid.NewGuid().ToString("N")[..8];
        _published[CurrentKid] = RSA.Create(2048);
        return CurrentKid;
    }

    /// <summary>Publishes a key of the test's own (weak keys, for instance).</summary>
    public void Publish(string kid, RSA key)
    {
        var copy = RSA.Create();
        copy.ImportParameters(key.ExportParameters(true));
        _published[kid] = copy;
    }

    /// <summary>Stops publishing a key (it is then unknown to verifiers that refresh).</summary>
    public void Unpublish(string kid) => _published.Remove(kid);

    public RSA Key(string kid) => _published[kid];

    public static Dictionary<string, object> Claims(string issuer, string audience, string email, TimeSpan? age = null, TimeSpan? lifetime = null)
    {
        var now = TimeProvider.System.GetUtcNow() - (age ?? TimeSpan.Zero);
        return new Dictionary<string, object>
        {
            ["iss"] = issuer,
            ["aud"] = audience,
            ["azp"] = "1234567890",
            ["sub"] = "1234567890",
            ["email"] = email,
            ["email_verified"] = true,
            ["iat"] = now.ToUnixTimeSeconds(),
            ["exp"] = (now + (lifetime ?? TimeSpan.FromHours(1))).ToUnixTimeSeconds(),
        };
    }

    /// <summary>A token signed with the current key (RS256), unless the header or key say otherwise.</summary>
    public string Mint(Dictionary<string, object> claims, Dictionary<string, object>? header = null, RSA? signingKey = null) =>
        Sign(header ?? new Dictionary<string, object> { ["alg"] = "RS256", ["kid"] = CurrentKid, ["typ"] = "JWT" }, claims, signingKey ?? _published[CurrentKid]);

    public static string Sign(Dictionary<string, object> header, Dictionary<string, object> claims, RSA key)
    {
        var input = Encode(JsonSerializer.SerializeToUtf8Bytes(header)) + "." + Encode(JsonSerializer.SerializeToUtf8Bytes(claims));
        return input + "." + Encode(key.SignData(Encoding.ASCII.GetBytes(input), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1));
    }

    public static string Encode(byte[] data) => Convert.ToBase64String(data).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    public string JwksJson()
    {
        Interlocked.Increment(ref _jwksFetches);
        return JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["keys"] = ExtraJwks.Concat(_published.Select(k =>
            {
                var p = k.Value.ExportParameters(false);
                return new Dictionary<string, object> { ["kty"] = "RSA", ["alg"] = "RS256", ["use"] = "sig", ["kid"] = k.Key, ["n"] = Encode(p.Modulus!), ["e"] = Encode(p.Exponent!) };
            })).ToArray(),
        });
    }

    public async ValueTask DisposeAsync() => await Teardown.AllAsync([_server, .. _published.Values]);
}
