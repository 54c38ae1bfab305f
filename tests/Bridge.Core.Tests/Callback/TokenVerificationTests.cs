using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Bridge.Core.Callback;
using Bridge.Core.Internal;
using Bridge.Testing;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Bridge.Core.Tests.Callback;

/// <summary>Real RSA keys behind a loopback JWKS: one valid token, and forged or malformed ones, each refused with the right status and reason.</summary>
public sealed class TokenVerificationTests : IAsyncLifetime
{
    private const string Audience = "https://bridge.example.com/api/tasks/callback";
    private const string Allowed = "invoker@p.iam.gserviceaccount.com";

    private TestTokenIssuer _issuer = null!;
    private OidcTokenVerifier _verifier = null!;

    public async Task InitializeAsync()
    {
        _issuer = await TestTokenIssuer.StartAsync();
        _verifier = Verifier(_issuer);
    }

    public async Task DisposeAsync() => await _issuer.DisposeAsync();

    private static OidcTokenVerifier Verifier(TestTokenIssuer issuer, TimeSpan? refresh = null, TimeProvider? time = null) => new(Options.Create(new CallbackOptions
    {
        Issuers = [new TrustedIssuer { Issuer = issuer.Issuer, DiscoveryUrl = issuer.DiscoveryUrl }],
        Audiences = [Audience],
        AllowedServiceAccounts = [Allowed],
        ClockSkew = TimeSpan.FromSeconds(30),
        KeyRefreshInterval = refresh ?? TimeSpan.FromSeconds(1),
    }), time ?? TimeProvider.System);

    private Dictionary<string, object> Claims() => TestTokenIssuer.Claims(_issuer.Issuer, Audience, Allowed);

    [Fact]
    public async Task A_valid_token_is_accepted_with_its_account()
    {
        var result = await _verifier.VerifyAsync("Bearer " + _issuer.Mint(Claims()));
        Assert.True(result.IsValid, result.Rejection?.ToString());
        Assert.Equal(Allowed, result.Email);
        Assert.Equal(200, result.Status);
    }

    public sealed record Forgery(string Name, Func<TestTokenIssuer, Dictionary<string, object>, string?> Authorization, int Status, string Reason)
    {
        public override string ToString() => Name;
    }

    private static string Bearer(string token) => "Bearer " + token;

    private static Dictionary<string, object> With(Dictionary<string, object> claims, string key, object? value)
    {
        var copy = new Dictionary<string, object>(claims);
        if (value is null)
        {
            copy.Remove(key);
        }
        else
        {
            copy[key] = value;
        }

        return copy;
    }

    private static string Unsigned(Dictionary<string, object> header, Dictionary<string, object> claims) =>
        TestTokenIssuer.Encode(JsonSerializer.SerializeToUtf8Bytes(header)) + "." + TestTokenIssuer.Encode(JsonSerializer.SerializeToUtf8Bytes(claims)) + ".";

    private static string Hs256(TestTokenIssuer issuer, Dictionary<string, object> claims)
    {
        // The classic confusion attack: HMAC keyed with the RSA public key.
        var header = new Dictionary<string, object> { ["alg"] = "HS256", ["kid"] = issuer.CurrentKid, ["typ"] = "JWT" };
        var input = TestTokenIssuer.Encode(JsonSerializer.SerializeToUtf8Bytes(header)) + "." + TestTokenIssuer.Encode(JsonSerializer.SerializeToUtf8Bytes(claims));
        var secret = issuer.Key(issuer.CurrentKid).ExportSubjectPublicKeyInfo();
        return input + "." + TestTokenIssuer.Encode(HMACSHA256.HashData(secret, Encoding.ASCII.GetBytes(input)));
    }

    public static TheoryData<Forgery> Forgeries()
    {
        var now = TimeProvider.System.GetUtcNow();
        using var stranger = RSA.Create(2048);
        var strangerParameters = stranger.ExportParameters(true);
        RSA Stranger()
        {
            var key = RSA.Create();
            key.ImportParameters(strangerParameters);
            return key;
        }

        return
        [
            new("no Authorization header", (_, _) => null, 401, nameof(TokenRejection.Missing)),
            new("Basic instead of Bearer", (_, _) => "Basic dXNlcjpwYXNz", 401, nameof(TokenRejection.Missing)),
            new("empty bearer", (_, _) => "Bearer ", 401, nameof(TokenRejection.Malformed)),
            new("alg none, no signature", (i, c) => Bearer(Unsigned(new() { ["alg"] = "none", ["typ"] = "JWT" }, c)), 401, nameof(TokenRejection.WrongAlgorithm)),
            new("alg None spelled oddly", (i, c) => Bearer(Unsigned(new() { ["alg"] = "None", ["kid"] = i.CurrentKid }, c)), 401, nameof(TokenRejection.WrongAlgorithm)),
            new("HS256 keyed with the public key", (i, c) => Bearer(Hs256(i, c)), 401, nameof(TokenRejection.WrongAlgorithm)),
            new("RS512 header", (i, c) => Bearer(i.Mint(c, new() { ["alg"] = "RS512", ["kid"] = i.CurrentKid })), 401, nameof(TokenRejection.WrongAlgorithm)),
            new("PS256 header", (i, c) => Bearer(i.Mint(c, new() { ["alg"] = "PS256", ["kid"] = i.CurrentKid })), 401, nameof(TokenRejection.WrongAlgorithm)),
            new("unknown kid", (i, c) => Bearer(i.Mint(c, new() { ["alg"] = "RS256", ["kid"] = "no-such-key" })), 401, nameof(TokenRejection.UnknownKey)),
            new("no kid", (i, c) => Bearer(i.Mint(c, new() { ["alg"] = "RS256" })), 401, nameof(TokenRejection.UnknownKey)),
            new("signed by another key under the right kid", (i, c) => Bearer(i.Mint(c, signingKey: Stranger())), 401, nameof(TokenRejection.BadSignature)),
            new("payload changed after signing", (i, c) =>
            {
                var parts = i.Mint(c).Split('.');
                var forged = TestTokenIssuer.Encode(JsonSerializer.SerializeToUtf8Bytes(With(c, "email", "attacker@evil.example")));
                return Bearer($"{parts[0]}.{forged}.{parts[2]}");
            }, 401, nameof(TokenRejection.BadSignature)),
            new("signature of another token", (i, c) =>
            {
                var a = i.Mint(c).Split('.');
                var b = i.Mint(With(c, "sub", "999")).Split('.');
                return Bearer($"{a[0]}.{a[1]}.{b[2]}");
            }, 401, nameof(TokenRejection.BadSignature)),
            new("wrong issuer", (i, c) => Bearer(i.Mint(With(c, "iss", "https://accounts.evil.example"))), 401, nameof(TokenRejection.UntrustedIssuer)),
            new("no issuer", (i, c) => Bearer(i.Mint(With(c, "iss", null))), 401, nameof(TokenRejection.UntrustedIssuer)),
            new("wrong audience", (i, c) => Bearer(i.Mint(With(c, "aud", "https://other.example.com"))), 401, nameof(TokenRejection.WrongAudience)),
            new("no audience", (i, c) => Bearer(i.Mint(With(c, "aud", null))), 401, nameof(TokenRejection.WrongAudience)),
            new("expired", (i, c) => Bearer(i.Mint(With(With(c, "iat", now.AddHours(-2).ToUnixTimeSeconds()), "exp", now.AddMinutes(-5).ToUnixTimeSeconds()))), 401, nameof(TokenRejection.Expired)),
            new("no expiry", (i, c) => Bearer(i.Mint(With(c, "exp", null))), 401, nameof(TokenRejection.Malformed)),
            new("not yet valid", (i, c) => Bearer(i.Mint(With(c, "nbf", now.AddMinutes(10).ToUnixTimeSeconds()))), 401, nameof(TokenRejection.NotYetValid)),
            new("issued in the future", (i, c) => Bearer(i.Mint(With(With(c, "iat", now.AddMinutes(10).ToUnixTimeSeconds()), "exp", now.AddHours(1).ToUnixTimeSeconds()))), 401, nameof(TokenRejection.IssuedInFuture)),
            new("no iat", (i, c) => Bearer(i.Mint(With(c, "iat", null))), 401, nameof(TokenRejection.Malformed)),
            new("no email", (i, c) => Bearer(i.Mint(With(c, "email", null))), 401, nameof(TokenRejection.MissingEmail)),
            new("email_verified false", (i, c) => Bearer(i.Mint(With(c, "email_verified", false))), 401, nameof(TokenRejection.EmailNotVerified)),
            new("email_verified missing", (i, c) => Bearer(i.Mint(With(c, "email_verified", null))), 401, nameof(TokenRejection.EmailNotVerified)),
            new("an account that is not allowed", (i, c) => Bearer(i.Mint(With(c, "email", "someone-else@p.iam.gserviceaccount.com"))), 403, nameof(TokenRejection.AccountNotAllowed)),
            new("truncated to two segments", (i, c) => Bearer(string.Join('.', i.Mint(c).Split('.').Take(2))), 401, nameof(TokenRejection.Malformed)),
            new("an extra segment", (i, c) => Bearer(i.Mint(c) + ".extra"), 401, nameof(TokenRejection.Malformed)),
            new("five segments (JWE shape)", (i, c) => Bearer("a.b.c.d.e"), 401, nameof(TokenRejection.Malformed)),
            new("bad base64 in the header", (i, c) => Bearer("!!!." + i.Mint(c).Split('.')[1] + ".sig"), 401, nameof(TokenRejection.Malformed)),
            new("header that is not JSON", (i, c) => Bearer(TestTokenIssuer.Encode("not json"u8.ToArray()) + "." + i.Mint(c).Split('.')[1] + ".sig"), 401, nameof(TokenRejection.Malformed)),
            new("huge header", (i, c) => Bearer(i.Mint(c, new() { ["alg"] = "RS256", ["kid"] = i.CurrentKid, ["pad"] = new string('x', 20_000) })), 401, nameof(TokenRejection.TooLarge)),
            new("garbage", (_, _) => "Bearer not-a-token-at-all", 401, nameof(TokenRejection.Malformed)),
            new("a crit header the verifier can't honour", (i, c) => Bearer(i.Mint(c, new() { ["alg"] = "RS256", ["kid"] = i.CurrentKid, ["crit"] = new[] { "exp" } })), 401, nameof(TokenRejection.Malformed)),
            new("duplicate claims (a second, forged aud)", (i, c) =>
            {
                var json = JsonSerializer.Serialize(c);
                var payload = json[..^1] + ",\"aud\":\"https://other.example.com\"}";
                var header = TestTokenIssuer.Encode(JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object> { ["alg"] = "RS256", ["kid"] = i.CurrentKid }));
                var input = header + "." + TestTokenIssuer.Encode(Encoding.UTF8.GetBytes(payload));
                return Bearer(input + "." + TestTokenIssuer.Encode(i.Key(i.CurrentKid).SignData(Encoding.ASCII.GetBytes(input), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1)));
            }, 401, nameof(TokenRejection.Malformed)),
            new("an empty signature", (i, c) => Bearer(string.Join('.', i.Mint(c).Split('.').Take(2)) + "."), 401, nameof(TokenRejection.BadSignature)),
            new("a payload that is a JSON array", (i, c) => Bearer(i.Mint(c).Split('.')[0] + "." + TestTokenIssuer.Encode("[1]"u8.ToArray()) + ".sig"), 401, nameof(TokenRejection.Malformed)),
        ];
    }

    [Theory]
    [MemberData(nameof(Forgeries))]
    public async Task Forged_and_malformed_tokens_are_refused_with_the_right_status(Forgery forgery)
    {
        var result = await _verifier.VerifyAsync(forgery.Authorization(_issuer, Claims()));

        Assert.False(result.IsValid);
        Assert.Equal(forgery.Reason, result.Rejection?.ToString());
        Assert.Equal(forgery.Status, result.Status);
    }

    [Fact]
    public async Task An_audience_list_that_contains_the_callback_is_accepted()
    {
        var claims = Claims();
        claims["aud"] = new[] { "https://someone-else.example.com", Audience };
        Assert.True((await _verifier.VerifyAsync(Bearer(_issuer.Mint(claims)))).IsValid);
    }

    [Fact]
    public async Task A_published_key_under_2048_bits_is_never_used()
    {
        using var weak = RSA.Create(1024);
        var kid = "weak";
        var weakIssuer = _issuer;
        weakIssuer.Publish(kid, weak);
        var result = await _verifier.VerifyAsync(Bearer(_issuer.Mint(Claims(), new() { ["alg"] = "RS256", ["kid"] = kid }, weak)));
        Assert.Equal(TokenRejection.UnknownKey, result.Rejection);
    }

    [Fact]
    public void The_table_holds_at_least_25_forgeries()
    {
        Assert.True(Forgeries().Count >= 25);
    }

    [Fact]
    public async Task A_rotated_key_is_accepted_without_restart_once_the_refresh_interval_passed()
    {
        var time = new FakeTimeProvider(TimeProvider.System.GetUtcNow());
        var verifier = Verifier(_issuer, refresh: TimeSpan.FromSeconds(30), time: time);
        Assert.True((await verifier.VerifyAsync(Bearer(_issuer.Mint(Claims())))).IsValid);
        var old = _issuer.CurrentKid;
        _issuer.Rotate();
        _issuer.Unpublish(old);
        var fetches = _issuer.JwksFetches;

        time.Advance(TimeSpan.FromSeconds(31)); // past the refresh interval
        var result = await verifier.VerifyAsync(Bearer(_issuer.Mint(Claims())));

        Assert.True(result.IsValid, result.Rejection?.ToString());
        Assert.Equal(fetches + 1, _issuer.JwksFetches); // the unknown kid refreshed the keys, once
    }

    [Fact]
    public async Task A_storm_of_unknown_kids_does_not_flood_the_issuer()
    {
        var verifier = Verifier(_issuer, refresh: TimeSpan.FromMinutes(5));
        Assert.True((await verifier.VerifyAsync(Bearer(_issuer.Mint(Claims())))).IsValid);
        var before = _issuer.JwksFetches;

        var results = await Task.WhenAll(Enumerable.Range(0, 200).Select(n =>
            verifier.VerifyAsync(Bearer(_issuer.Mint(Claims(), new() { ["alg"] = "RS256", ["kid"] = $"random-{n}" })))));

        Assert.All(results, r => Assert.Equal(TokenRejection.UnknownKey, r.Rejection));
        Assert.InRange(_issuer.JwksFetches - before, 0, 1);
    }

    [Fact]
    public async Task Keys_are_cached_not_fetched_per_request()
    {
        Assert.True((await _verifier.VerifyAsync(Bearer(_issuer.Mint(Claims())))).IsValid);
        var before = _issuer.JwksFetches;
        for (var i = 0; i < 50; i++)
        {
            Assert.True((await _verifier.VerifyAsync(Bearer(_issuer.Mint(Claims())))).IsValid);
        }

        Assert.Equal(before, _issuer.JwksFetches);
    }

    [Fact]
    public async Task An_unreachable_issuer_is_a_503_so_cloud_tasks_retries()
    {
        using var down = new UnreachableEndpoint();
        var verifier = new OidcTokenVerifier(Options.Create(new CallbackOptions
        {
            Issuers = [new TrustedIssuer { Issuer = _issuer.Issuer, DiscoveryUrl = down.Url("/.well-known/openid-configuration").ToString() }],
            Audiences = [Audience],
            AllowedServiceAccounts = [Allowed],
        }), TimeProvider.System);

        var result = await verifier.VerifyAsync(Bearer(_issuer.Mint(Claims())));

        Assert.Equal(503, result.Status);
        Assert.Equal(TokenRejection.KeysUnavailable, result.Rejection);
    }
}
