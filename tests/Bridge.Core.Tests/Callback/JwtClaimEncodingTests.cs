using System.Text;
using Bridge.Core.Callback;
using Bridge.Core.Internal;
using Bridge.Testing;
using Microsoft.Extensions.Options;

namespace Bridge.Core.Tests.Callback;

/// <summary>
/// <c>iss</c> and <c>aud</c> are compared as the token's UTF-8 bytes, without a string made of them: the same verdicts
/// as comparing strings, whatever JSON escapes the claim uses (JSON allows <c>\/</c> and <c>\uXXXX</c> anywhere in a
/// string), for non-ASCII values too, and invalid UTF-8 or a lone surrogate escape is still a malformed token.
/// </summary>
public sealed class JwtClaimEncodingTests
{
    private const string Google = "https://accounts.google.com";
    private const string Other = "https://émetteur.example.com";
    private static readonly Utf8Choices Issuers = new([Google, Other]);
    private static readonly Utf8Choices Audiences = new(["https://bridge.example.com/callback", "https://brücke.example.com/callback"]);

    private static JwtClaims? Read(string json) => Read(Encoding.UTF8.GetBytes(json));

    private static JwtClaims? Read(byte[] json) => JwtParts.TryReadClaims(TestTokenIssuer.Encode(json), Issuers, Audiences, out var claims) ? claims : null;

    [Theory]
    [InlineData("https://accounts.google.com", 0)]
    [InlineData(@"https:\/\/accounts.google.com", 0)]
    [InlineData(@"\u0068ttps://accounts.google.com", 0)]
    [InlineData("https://émetteur.example.com", 1)]
    [InlineData(@"https://\u00e9metteur.example.com", 1)]
    [InlineData(@"https:\/\/\u00E9metteur.example.com", 1)]
    [InlineData("https://e\u0301metteur.example.com", -1)] // the same text, decomposed: another string, so not trusted
    [InlineData("HTTPS://accounts.google.com", -1)]
    [InlineData("https://accounts.google.com/", -1)]
    [InlineData("https://accounts.google.co", -1)]
    [InlineData("", -1)]
    public void The_issuer_is_the_trusted_one_its_unescaped_text_equals(string issuerJson, int expected)
    {
        var claims = Read("{\"iss\":\"" + issuerJson + "\",\"exp\":1}");

        Assert.NotNull(claims);
        Assert.Equal(expected, claims.Value.Issuer);
    }

    [Theory]
    [InlineData("{\"exp\":1}")]
    [InlineData("{\"iss\":7}")]
    [InlineData("{\"iss\":null}")]
    [InlineData("{\"iss\":[\"https://accounts.google.com\"]}")]
    public void A_missing_or_non_string_issuer_is_trusted_by_no_one(string json) =>
        Assert.Equal(-1, Read(json)!.Value.Issuer);

    [Theory]
    [InlineData(@"{""iss"":""https://accounts.google.com\ud800""}")]
    [InlineData(@"{""aud"":""\udc00""}")]
    public void A_lone_surrogate_escape_in_a_compared_claim_is_malformed_as_before(string json) =>
        Assert.Null(Read(json));

    [Fact]
    public void Invalid_utf8_in_a_compared_claim_is_malformed_as_before()
    {
        // "iss":"https://accounts.google.com" followed by a lone continuation byte, then the same in aud.
        var prefix = Encoding.UTF8.GetBytes("{\"iss\":\"https://accounts.google.com");
        Assert.Null(Read([.. prefix, 0x80, .. "\"}"u8]));
        Assert.Null(Read([.. "{\"aud\":\"x"u8, 0xC3, .. "\"}"u8]));
    }

    [Fact]
    public void Only_accepted_audiences_are_kept_each_once_whatever_their_escapes()
    {
        var one = Read(@"{""aud"":[""https://other.example.com"",""https:\/\/bridge.example.com\/callback""]}")!.Value;
        Assert.Equal(0, one.Audience);
        Assert.Null(one.Audiences);

        var both = Read(@"{""aud"":[""https://br\u00fccke.example.com/callback"",""https://other.example.com"",""https://bridge.example.com/callback"",""https://brücke.example.com/callback""]}")!.Value;
        Assert.Equal(1, both.Audience);
        Assert.Equal(["https://brücke.example.com/callback", "https://bridge.example.com/callback"], both.Audiences);

        var none = Read(@"{""aud"":""https://bridge.example.com/callback/""}")!.Value;
        Assert.Equal(-1, none.Audience);
    }

    [Fact]
    public void A_configured_value_with_a_lone_surrogate_matches_no_token()
    {
        var choices = new Utf8Choices(["a\ud800", "b"]);
        Assert.True(JwtParts.TryReadClaims(TestTokenIssuer.Encode([.. "{\"aud\":[\"a\uFFFD\",\"b\"]}"u8]), choices, choices, out var claims));

        Assert.Equal(1, claims.Audience);
        Assert.Null(claims.Audiences);
    }

    [Fact]
    public async Task A_token_whose_issuer_and_audience_are_escaped_is_verified_like_any_other()
    {
        await using var issuer = await TestTokenIssuer.StartAsync();
        const string Audience = "https://brücke.example.com/api/tasks/callback";
        const string Caller = "invoker@p.iam.gserviceaccount.com";
        var verifier = new OidcTokenVerifier(Options.Create(new CallbackOptions
        {
            Issuers = [new TrustedIssuer { Issuer = issuer.Issuer, DiscoveryUrl = issuer.DiscoveryUrl }],
            Audiences = ["https://bridge.example.com/api/tasks/callback", Audience],
            AllowedServiceAccounts = [Caller],
        }), TimeProvider.System);
        var now = TimeProvider.System.GetUtcNow().ToUnixTimeSeconds();
        string Token(string iss, string aud)
        {
            var header = TestTokenIssuer.Encode(Encoding.UTF8.GetBytes($"{{\"alg\":\"RS256\",\"kid\":\"{issuer.CurrentKid}\"}}"));
            var payload = TestTokenIssuer.Encode(Encoding.UTF8.GetBytes($"{{\"iss\":\"{iss}\",\"aud\":{aud},\"email\":\"{Caller}\",\"email_verified\":true,\"iat\":{now},\"exp\":{now + 600}}}"));
            var signature = issuer.Key(issuer.CurrentKid).SignData(Encoding.ASCII.GetBytes(header + "." + payload), System.Security.Cryptography.HashAlgorithmName.SHA256, System.Security.Cryptography.RSASignaturePadding.Pkcs1);
            return "Bearer " + header + "." + payload + "." + TestTokenIssuer.Encode(signature);
        }

        var escaped = await verifier.VerifyAsync(Token(issuer.Issuer.Replace("/", "\\/", StringComparison.Ordinal), "\"https:\\/\\/br\\u00fccke.example.com\\/api\\/tasks\\/callback\""));
        Assert.True(escaped.IsValid, escaped.Rejection?.ToString());
        Assert.Equal([Audience], escaped.Audiences);

        var raw = await verifier.VerifyAsync(Token(issuer.Issuer, "[\"https://other.example.com\",\"" + Audience + "\"]"));
        Assert.True(raw.IsValid, raw.Rejection?.ToString());
        Assert.Equal([Audience], raw.Audiences);

        var notOurs = await verifier.VerifyAsync(Token(issuer.Issuer + "\\/", "\"" + Audience + "\""));
        Assert.Equal(TokenRejection.UntrustedIssuer, notOurs.Rejection);

        var otherAudience = await verifier.VerifyAsync(Token(issuer.Issuer, "\"https:\\/\\/brucke.example.com\\/api\\/tasks\\/callback\""));
        Assert.Equal(TokenRejection.WrongAudience, otherAudience.Rejection);
    }
}
