using System.Security.Cryptography;
using Bridge.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Bridge.Server.Tests;

/// <summary>
/// An Entra ID look-alike on a port-0 Kestrel: per-tenant v2.0 discovery and JWKS as login.microsoftonline.com lays
/// them out, and RS256 access tokens signed with its key (or a key it never published). Errors it logs (a handler
/// that throws) fail the test (see <see cref="ErrorLogGuard.CheckOnStop"/>), unless <see cref="Errors"/> expects them.
/// </summary>
public sealed class EntraTestIssuer : IAsyncDisposable
{
    public const string Kid = "entra-test-key";
    private readonly WebApplication _app;
    private readonly RSA _key = RSA.Create(2048);

    private EntraTestIssuer(WebApplication app, ErrorLogGuard errors)
    {
        _app = app;
        Errors = errors;
    }

    public ErrorLogGuard Errors { get; }

    /// <summary>The instance (cloud login endpoint), ending in '/'.</summary>
    public string Instance { get; private set; } = string.Empty;

    public string IssuerOf(string tenant) => $"{Instance}{tenant}/v2.0";

    public static async Task<EntraTestIssuer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder(["--hostBuilder:reloadConfigOnChange=false"]); // settings read once: no inotify watch of the working directory and all below it
        builder.WebHost.UseKestrel(k => k.Listen(System.Net.IPAddress.Loopback, 0));
        var errors = new ErrorLogGuard();
        builder.Logging.ClearProviders().AddProvider(errors);
        var app = builder.Build();
        var issuer = new EntraTestIssuer(app, errors);
        app.MapGet("/{tenant}/v2.0/.well-known/openid-configuration", (string tenant) => Results.Json(new Dictionary<string, object>
        {
            ["issuer"] = issuer.IssuerOf(tenant),
            ["jwks_uri"] = $"{issuer.Instance}{tenant}/discovery/v2.0/keys",
            ["id_token_signing_alg_values_supported"] = new[] { "RS256" },
        }));
        app.MapGet("/{tenant}/discovery/v2.0/keys", () =>
        {
            var p = issuer._key.ExportParameters(false);
            return Results.Json(new { keys = new[] { new { kty = "RSA", use = "sig", alg = "RS256", kid = Kid, n = TestTokenIssuer.Encode(p.Modulus!), e = TestTokenIssuer.Encode(p.Exponent!) } } });
        });
        await app.StartAsync();
        issuer.Instance = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single().TrimEnd('/') + "/";
        return issuer;
    }

    /// <summary>Claims of an app-only access token (v2: azp), valid for an hour unless told otherwise.</summary>
    public Dictionary<string, object> Claims(string tenant, string audience, string? clientId = "client-other", string[]? roles = null, TimeSpan? age = null)
    {
        var now = TimeProvider.System.GetUtcNow() - (age ?? TimeSpan.Zero);
        var claims = new Dictionary<string, object>
        {
            ["iss"] = IssuerOf(tenant),
            ["aud"] = audience,
            ["tid"] = tenant,
            ["sub"] = "service-principal-object-id",
            ["iat"] = now.ToUnixTimeSeconds(),
            ["nbf"] = now.ToUnixTimeSeconds(),
            ["exp"] = (now + TimeSpan.FromHours(1)).ToUnixTimeSeconds(),
            ["ver"] = "2.0",
        };
        if (clientId is not null)
        {
            claims["azp"] = clientId;
        }

        if (roles is not null)
        {
            claims["roles"] = roles;
        }

        return claims;
    }

    public string Mint(Dictionary<string, object> claims, RSA? signingKey = null) =>
        TestTokenIssuer.Sign(new Dictionary<string, object> { ["alg"] = "RS256", ["kid"] = Kid, ["typ"] = "JWT" }, claims, signingKey ?? _key);

    public async ValueTask DisposeAsync() => await Teardown.AllAsync(() => _app.StopAsync(), _app, _key, Errors.CheckOnDispose());
}
