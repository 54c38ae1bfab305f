using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Bridge.Testing;

namespace Bridge.Server.Tests;

/// <summary>The runner with intake keys and Entra ID configured (one for the class), and an Entra look-alike issuer.</summary>
public sealed class IntakeFixture : IAsyncLifetime
{
    public const string Key = "intake-key-0123456789abcdefghijklmnopqrstuvwxyz";
    public const string RotatedKey = "intake-key-rotated-zyxwvutsrqponmlkjihgfedcba";
    public const string Tenant = "11111111-2222-3333-4444-555555555555";
    public const string Audience = "api://bridge-intake";
    public const string Role = "Events.Send";
    public const string AllowedClient = "22222222-aaaa-bbbb-cccc-dddddddddddd";

    public EntraTestIssuer Entra { get; private set; } = null!;

    public RunningServer Server { get; private set; } = null!;

    public static string Hash(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    public async Task InitializeAsync()
    {
        Entra = await EntraTestIssuer.StartAsync();
        Server = await RunningServer.StartAsync(
            $"--Bridge:Server:Intake:KeyHashes:0={Hash(Key)}",
            $"--Bridge:Server:Intake:KeyHashes:1={Hash("an-old-key")}, {Hash(RotatedKey).ToUpperInvariant()}", // one secret holding a rotation
            $"--Bridge:Server:Intake:Entra:Instance={Entra.Instance}",
            $"--Bridge:Server:Intake:Entra:TenantId={Tenant}",
            $"--Bridge:Server:Intake:Entra:Audiences:0={Audience}",
            $"--Bridge:Server:Intake:Entra:AllowedRoles:0={Role}",
            $"--Bridge:Server:Intake:Entra:AllowedClientIds:0={AllowedClient}");
    }

    // Both, even when the server's stop throws; Server is null when it never started.
    public Task DisposeAsync() => Teardown.AllAsync(Server, Entra);
}

/// <summary>
/// Runner intake authentication: keys as a function app takes them, Entra ID tokens (real RS256, from a local issuer),
/// and the refusals, each with its status and reason. The callback and anonymous health are not behind it.
/// </summary>
public sealed class IntakeAuthenticationTests(IntakeFixture fixture) : IClassFixture<IntakeFixture>
{
    private RunningServer Server => fixture.Server;

    private EntraTestIssuer Entra => fixture.Entra;

    private async Task<HttpResponseMessage> PostAsync(string path = "/api/events/demo", string? key = null, string? bearer = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent("{\"order\":1}", Encoding.UTF8, "application/json") };
        request.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString("N"));
        if (key is not null)
        {
            request.Headers.Add("x-functions-key", key);
        }

        if (bearer is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }

        return await Server.Http.SendAsync(request);
    }

    private static async Task<string?> ReasonAsync(HttpResponseMessage response) =>
        JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("reason").GetString();

    [Fact]
    public async Task No_credentials_is_401_with_a_challenge_for_both_kinds()
    {
        using var response = await PostAsync();

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("MissingCredentials", await ReasonAsync(response));
        var challenges = response.Headers.WwwAuthenticate.Select(c => c.Scheme).ToList();
        Assert.Contains("Bearer", challenges);
        Assert.Contains("FunctionKey", challenges);
    }

    [Fact]
    public async Task A_key_in_the_header_or_the_code_query_is_accepted_and_each_key_of_a_rotation_works()
    {
        using var header = await PostAsync(key: IntakeFixture.Key);
        using var query = await PostAsync($"/api/events/demo?code={Uri.EscapeDataString(IntakeFixture.RotatedKey)}");

        Assert.Equal(HttpStatusCode.Accepted, header.StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, query.StatusCode);
    }

    [Theory]
    [InlineData("not-the-key")]
    [InlineData("intake-key-0123456789abcdefghijklmnopqrstuvwxy")] // one character short
    public async Task A_wrong_key_is_401(string key)
    {
        using var header = await PostAsync(key: key);
        using var query = await PostAsync($"/api/events/demo?code={Uri.EscapeDataString(key)}");

        Assert.Equal(HttpStatusCode.Unauthorized, header.StatusCode);
        Assert.Equal("InvalidCredentials", await ReasonAsync(header));
        Assert.Equal(HttpStatusCode.Unauthorized, query.StatusCode);
        Assert.NotEmpty(header.Headers.WwwAuthenticate);
    }

    [Fact]
    public async Task A_hash_is_not_a_key()
    {
        using var response = await PostAsync(key: IntakeFixture.Hash(IntakeFixture.Key));

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task An_entra_token_with_an_allowed_role_or_client_id_is_accepted()
    {
        var byRole = Entra.Mint(Entra.Claims(IntakeFixture.Tenant, IntakeFixture.Audience, roles: [IntakeFixture.Role]));
        var byClient = Entra.Mint(Entra.Claims(IntakeFixture.Tenant, IntakeFixture.Audience, clientId: IntakeFixture.AllowedClient));
        var v1Claims = Entra.Claims(IntakeFixture.Tenant, IntakeFixture.Audience, clientId: null);
        v1Claims["appid"] = IntakeFixture.AllowedClient;
        v1Claims["iss"] = $"{Entra.Instance}{IntakeFixture.Tenant}/";

        using var role = await PostAsync(bearer: byRole);
        using var client = await PostAsync(bearer: byClient);
        using var v1 = await PostAsync(bearer: Entra.Mint(v1Claims));

        Assert.Equal(HttpStatusCode.Accepted, role.StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, client.StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, v1.StatusCode);
    }

    [Fact]
    public async Task A_valid_token_with_neither_role_nor_client_id_is_403_with_the_reason()
    {
        using var response = await PostAsync(bearer: Entra.Mint(Entra.Claims(IntakeFixture.Tenant, IntakeFixture.Audience, roles: ["Something.Else"])));

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Equal("NotAllowed", await ReasonAsync(response));
        var detail = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("detail").GetString();
        Assert.Contains("AllowedRoles", detail, StringComparison.Ordinal);
        Assert.Contains("client-other", detail, StringComparison.Ordinal);
    }

    public static TheoryData<string> BadTokens() => ["expired", "wrong-audience", "wrong-tenant", "unknown-key", "garbage"];

    [Theory]
    [MemberData(nameof(BadTokens))]
    public async Task A_bad_token_is_401_with_a_bearer_challenge(string kind)
    {
        using var stranger = RSA.Create(2048);
        var token = kind switch
        {
            "expired" => Entra.Mint(Entra.Claims(IntakeFixture.Tenant, IntakeFixture.Audience, roles: [IntakeFixture.Role], age: TimeSpan.FromHours(3))),
            "wrong-audience" => Entra.Mint(Entra.Claims(IntakeFixture.Tenant, "api://another-app", roles: [IntakeFixture.Role])),
            "wrong-tenant" => Entra.Mint(Entra.Claims("99999999-9999-9999-9999-999999999999", IntakeFixture.Audience, roles: [IntakeFixture.Role])),
            "unknown-key" => Entra.Mint(Entra.Claims(IntakeFixture.Tenant, IntakeFixture.Audience, roles: [IntakeFixture.Role]), stranger),
            _ => "not.a.token",
        };

        using var response = await PostAsync(bearer: token);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("InvalidCredentials", await ReasonAsync(response));
        Assert.Contains(response.Headers.WwwAuthenticate, c => c.Scheme == "Bearer" && (c.Parameter ?? string.Empty).Contains("invalid_token", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_callback_keeps_its_own_check_and_health_stays_anonymous_without_details()
    {
        using var callback = await PostAsync("/api/tasks/callback");
        using var health = await Server.Http.GetAsync("/api/health");
        using var details = await Server.Http.GetAsync("/api/health/details");
        using var detailsRequest = new HttpRequestMessage(HttpMethod.Get, "/api/health/details");
        detailsRequest.Headers.Add("x-functions-key", IntakeFixture.Key);
        using var detailsWithKey = await Server.Http.SendAsync(detailsRequest);
        using var outcomes = await Server.Http.GetAsync("/api/outcomes");

        Assert.Equal(HttpStatusCode.Unauthorized, callback.StatusCode);
        Assert.Equal("Missing", await ReasonAsync(callback)); // the callback's token check, not the intake's
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.Equal("""{"status":"ok"}""", await health.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.Unauthorized, details.StatusCode);
        Assert.Equal(HttpStatusCode.OK, detailsWithKey.StatusCode);
        Assert.Equal(["demo"], JsonDocument.Parse(await detailsWithKey.Content.ReadAsStringAsync()).RootElement.GetProperty("routes").EnumerateArray().Select(r => r.GetString()));
        Assert.Equal(HttpStatusCode.Unauthorized, outcomes.StatusCode);
    }
}
