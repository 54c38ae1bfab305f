using Bridge.Core.Callback;
using Bridge.Core.Internal;
using Bridge.Testing;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Bridge.Core.Tests.Callback;

/// <summary>
/// The issuer's keys under a slow, dead or hostile issuer: a black-holed issuer (accepts, never answers) after the
/// cache expired, fetch timeouts on the injected clock, single-flight, failure backoff, a bad key in the JWKS, and a
/// bounded cache.
/// </summary>
public sealed class KeyCacheTests : IAsyncLifetime
{
    private const string Audience = "https://bridge.example.com/api/tasks/callback";
    private const string Allowed = "invoker@p.iam.gserviceaccount.com";
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30); // a hang fails the test, not the run

    private TestTokenIssuer _issuer = null!;
    private readonly BlackHole _blackHole = new();
    private readonly FakeTimeProvider _time = new(TimeProvider.System.GetUtcNow());

    public async Task InitializeAsync() => _issuer = await TestTokenIssuer.StartAsync();

    public async Task DisposeAsync()
    {
        _blackHole.Dispose();
        await _issuer.DisposeAsync();
    }

    private OidcTokenVerifier Verifier(HttpClient http) => new(Options.Create(new CallbackOptions
    {
        Issuers = [new TrustedIssuer { Issuer = _issuer.Issuer, DiscoveryUrl = _issuer.DiscoveryUrl }],
        Audiences = [Audience],
        AllowedServiceAccounts = [Allowed],
        KeyCacheDuration = TimeSpan.FromHours(1),
        KeyRefreshInterval = TimeSpan.FromSeconds(30),
        KeyFetchTimeout = TimeSpan.FromSeconds(5),
        KeyGracePeriod = TimeSpan.FromHours(6),
        KeyFailureBackoff = TimeSpan.FromSeconds(10),
    }), _time, http);

    /// <summary>A token valid at the fake clock's now.</summary>
    private string Token(string? kid = null)
    {
        var claims = TestTokenIssuer.Claims(_issuer.Issuer, Audience, Allowed);
        var now = _time.GetUtcNow();
        claims["iat"] = now.ToUnixTimeSeconds();
        claims["exp"] = now.AddHours(1).ToUnixTimeSeconds();
        return "Bearer " + (kid is null ? _issuer.Mint(claims) : _issuer.Mint(claims, new() { ["alg"] = "RS256", ["kid"] = kid }));
    }

    [Fact]
    public async Task A_black_holed_issuer_after_the_cache_expired_is_answered_from_held_keys()
    {
        using var http = _blackHole.Divert();
        var verifier = Verifier(http);
        Assert.True((await verifier.VerifyAsync(Token()).WaitAsync(Bound)).IsValid);

        _blackHole.Enabled = true;
        _time.Advance(TimeSpan.FromHours(1) + TimeSpan.FromMinutes(1)); // past the cache time, within the grace period
        var result = await verifier.VerifyAsync(Token()).WaitAsync(Bound);

        Assert.True(result.IsValid, result.Rejection?.ToString());
        await Eventually.HoldsAsync(() => Task.FromResult(_blackHole.Connections >= 1), describe: () => "the background refresh never asked the issuer");

        // The refresh times out on the injected clock; the held keys keep serving, and the failure is remembered.
        var fetches = verifier.KeysOf(_issuer.Issuer).Fetches;
        _time.Advance(TimeSpan.FromSeconds(5));
        Assert.True((await verifier.VerifyAsync(Token()).WaitAsync(Bound)).IsValid);
        Assert.True((await verifier.VerifyAsync(Token()).WaitAsync(Bound)).IsValid);
        Assert.InRange(verifier.KeysOf(_issuer.Issuer).Fetches, fetches, fetches + 1);
    }

    [Fact]
    public async Task Past_the_grace_period_a_dead_issuer_is_a_503_not_a_stale_key()
    {
        using var http = _blackHole.Divert();
        var verifier = Verifier(http);
        Assert.True((await verifier.VerifyAsync(Token()).WaitAsync(Bound)).IsValid);

        _blackHole.Enabled = true;
        _time.Advance(TimeSpan.FromHours(7) + TimeSpan.FromMinutes(1));
        var pending = verifier.VerifyAsync(Token());
        await Eventually.HoldsAsync(() => Task.FromResult(_blackHole.Connections >= 1), describe: () => "the issuer was never asked");
        _time.Advance(TimeSpan.FromSeconds(5)); // the fetch's own timeout
        var result = await pending.WaitAsync(Bound);

        Assert.Equal(503, result.Status);
        Assert.Equal(TokenRejection.KeysUnavailable, result.Rejection);
    }

    [Fact]
    public async Task An_unknown_kid_waits_at_most_the_fetch_timeout_for_a_black_holed_issuer()
    {
        using var http = _blackHole.Divert();
        var verifier = Verifier(http);
        Assert.True((await verifier.VerifyAsync(Token()).WaitAsync(Bound)).IsValid);

        _blackHole.Enabled = true;
        var pending = verifier.VerifyAsync(Token("rotated-kid"));
        await Eventually.HoldsAsync(() => Task.FromResult(_blackHole.Connections >= 1), describe: () => "the unknown kid did not refresh");
        _time.Advance(TimeSpan.FromSeconds(5));
        var result = await pending.WaitAsync(Bound);

        Assert.Equal(TokenRejection.UnknownKey, result.Rejection);
        Assert.True((await verifier.VerifyAsync(Token()).WaitAsync(Bound)).IsValid); // the held key still serves
    }

    [Fact]
    public async Task A_waiting_caller_can_stop_waiting_on_its_own_token()
    {
        using var http = _blackHole.Divert();
        _blackHole.Enabled = true;
        var verifier = Verifier(http);
        using var cancel = new CancellationTokenSource();

        var pending = verifier.VerifyAsync(Token(), cancel.Token);
        await Eventually.HoldsAsync(() => Task.FromResult(_blackHole.Connections >= 1), describe: () => "the issuer was never asked");
        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending.WaitAsync(Bound));
    }

    [Fact]
    public async Task Concurrent_callers_share_one_fetch()
    {
        using var http = new HttpClient();
        var verifier = Verifier(http);

        var results = await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => verifier.VerifyAsync(Token()))).WaitAsync(Bound);

        Assert.All(results, r => Assert.True(r.IsValid, r.Rejection?.ToString()));
        Assert.Equal(1, verifier.KeysOf(_issuer.Issuer).Fetches);
        Assert.Equal(1, _issuer.JwksFetches);
    }

    [Fact]
    public async Task One_bad_key_in_the_jwks_is_skipped_and_the_others_serve()
    {
        _issuer.ExtraJwks.Add(new() { ["kty"] = "RSA", ["kid"] = "broken-n", ["n"] = "!!!not base64!!!", ["e"] = "AQAB" });
        _issuer.ExtraJwks.Add(new() { ["kty"] = "RSA", ["kid"] = "number-n", ["n"] = 12345, ["e"] = "AQAB" });
        _issuer.ExtraJwks.Add(new() { ["kty"] = "RSA", ["kid"] = "empty-e", ["n"] = "AQAB", ["e"] = "" });
        _issuer.ExtraJwks.Add(new() { ["kty"] = "EC", ["kid"] = "ec", ["crv"] = "P-256", ["x"] = "AA", ["y"] = "AA" });
        _issuer.ExtraJwks.Add(new() { ["kty"] = "RSA", ["kid"] = "zero-modulus", ["n"] = "AA", ["e"] = "AA" });
        using var http = new HttpClient();
        var verifier = Verifier(http);

        var result = await verifier.VerifyAsync(Token()).WaitAsync(Bound);

        Assert.True(result.IsValid, result.Rejection?.ToString());
        Assert.Equal(TokenRejection.UnknownKey, (await verifier.VerifyAsync(Token("broken-n")).WaitAsync(Bound)).Rejection);
    }

    [Fact]
    public async Task Rotations_and_unknown_kids_keep_the_cache_bounded()
    {
        using var http = new HttpClient();
        var verifier = Verifier(http);
        Assert.True((await verifier.VerifyAsync(Token()).WaitAsync(Bound)).IsValid);

        for (var i = 0; i < 20; i++)
        {
            var old = _issuer.CurrentKid;
            _issuer.Rotate();
            _issuer.Unpublish(old);
            _time.Advance(TimeSpan.FromSeconds(31)); // past the refresh interval: the new kid refreshes
            Assert.True((await verifier.VerifyAsync(Token()).WaitAsync(Bound)).IsValid);
            Assert.Equal(TokenRejection.UnknownKey, (await verifier.VerifyAsync(Token($"random-{i}")).WaitAsync(Bound)).Rejection);
        }

        Assert.InRange(verifier.KeysOf(_issuer.Issuer).HeldKeys, 1, 2); // the current set and the one it replaced
    }

    [Fact]
    public async Task A_failed_fetch_is_remembered_briefly()
    {
        using var http = new HttpClient();
        var verifier = new OidcTokenVerifier(Options.Create(new CallbackOptions
        {
            Issuers = [new TrustedIssuer { Issuer = _issuer.Issuer, DiscoveryUrl = "http://127.0.0.1:1/.well-known/openid-configuration" }],
            Audiences = [Audience],
            AllowedServiceAccounts = [Allowed],
            KeyFailureBackoff = TimeSpan.FromSeconds(10),
        }), _time, http);

        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(TokenRejection.KeysUnavailable, (await verifier.VerifyAsync(Token()).WaitAsync(Bound)).Rejection);
        }

        Assert.Equal(1, verifier.KeysOf(_issuer.Issuer).Fetches);
        _time.Advance(TimeSpan.FromSeconds(11));
        Assert.Equal(TokenRejection.KeysUnavailable, (await verifier.VerifyAsync(Token()).WaitAsync(Bound)).Rejection);
        Assert.Equal(2, verifier.KeysOf(_issuer.Issuer).Fetches);
    }
}
