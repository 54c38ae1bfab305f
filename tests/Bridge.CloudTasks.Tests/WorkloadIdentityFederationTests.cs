using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Web;
using Azure.Core;
using Bridge.CloudTasks.Auth;
using Bridge.CloudTasks.Tests.Infrastructure;
using Bridge.Testing;

namespace Bridge.CloudTasks.Tests;

/// <summary>
/// Keyless Azure → Google: the Azure token goes to a token exchange endpoint on loopback (standing in for Google's
/// STS), and the Google token that comes back is what the Cloud Tasks server sees.
/// </summary>
public sealed class WorkloadIdentityFederationTests
{
    private const string Audience = "//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/azure-pool/providers/azure-provider";
    private const string AppIdUri = "api://bridge-gcp-federation";
    private const string TenantId = "6f0f8a3e-58f4-4a8e-9a1e-3c2b1d0e9f11";
    private static readonly QueueName Queue = new("p", "l", "q");
    private static readonly RSA EntraKey = RSA.Create(2048);

    /// <summary>A token shaped like the ones Entra ID issues to a managed identity (v1: iss sts.windows.net, aud the URI asked for).</summary>
    private static string EntraToken(string aud, string iss = $"https://sts.windows.net/{TenantId}/", string ver = "1.0") =>
        TestTokenIssuer.Sign(
            new Dictionary<string, object> { ["alg"] = "RS256", ["typ"] = "JWT", ["kid"] = "entra" },
            new Dictionary<string, object>
            {
                ["aud"] = aud,
                ["iss"] = iss,
                ["ver"] = ver,
                ["tid"] = TenantId,
                ["sub"] = "0b8a4f8e-2c3d-4e5f-8a9b-0c1d2e3f4a5b",
                ["exp"] = TimeProvider.System.GetUtcNow().AddHours(1).ToUnixTimeSeconds(),
            },
            EntraKey);

    private static (int, string) StsResponse(ReceivedRequest _) =>
        (200, """{"access_token":"google-federated-token","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":3600}""");

    [Fact]
    public async Task The_azure_token_is_exchanged_and_the_google_token_is_sent_to_cloud_tasks()
    {
        await using var sts = await HttpTargetServer.StartJsonAsync(StsResponse);
        await using var server = await RecordingCloudTasksServer.StartAsync(tls: true);
        var subjectToken = EntraToken(AppIdUri);
        var azure = new RecordingAzureCredential(subjectToken);
        var (client, handler) = ClientFor(server, FederatedCredential(sts, azure));
        using var disposeClient = client;
        using var disposeHandler = handler;
        await client.GetQueueAsync(Queue);
        await client.GetQueueAsync(Queue);

        Assert.Equal([AppIdUri + "/.default"], azure.RequestedScopes.Distinct());
        var exchange = Assert.Single(sts.Requests); // cached for the second call
        Assert.Equal("POST", exchange.Method);
        var form = HttpUtility.ParseQueryString(exchange.Text);
        Assert.Equal("urn:ietf:params:oauth:grant-type:token-exchange", form["grant_type"]);
        Assert.Equal(Audience, form["audience"]);
        Assert.Equal(subjectToken, form["subject_token"]);
        Assert.Equal("urn:ietf:params:oauth:token-type:jwt", form["subject_token_type"]);
        Assert.Equal("urn:ietf:params:oauth:token-type:access_token", form["requested_token_type"]);
        Assert.Contains("https://www.googleapis.com/auth/cloud-platform", form["scope"], StringComparison.Ordinal);

        Assert.All(server.Calls, c => Assert.Equal("Bearer google-federated-token", c.Headers["authorization"]));
    }

    [Fact]
    public async Task With_impersonation_the_federated_token_buys_a_service_account_token()
    {
        await using var sts = await HttpTargetServer.StartJsonAsync(StsResponse);
        var expiry = TimeProvider.System.GetUtcNow().AddHours(1).ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
        await using var iam = await HttpTargetServer.StartJsonAsync(_ => (200, $$"""{"accessToken":"service-account-token","expireTime":"{{expiry}}"}"""));
        await using var server = await RecordingCloudTasksServer.StartAsync(tls: true);
        var credential = AzureWorkloadIdentityFederation.CreateCredential(
            new AzureWorkloadIdentityFederationOptions
            {
                Audience = Audience,
                AzureTokenAudience = AppIdUri,
                TokenUrl = new Uri(sts.Address, "/v1/token").ToString(),
                ServiceAccountImpersonationUrl = new Uri(iam.Address, "/v1/projects/-/serviceAccounts/bridge@p.iam.gserviceaccount.com:generateAccessToken").ToString(),
            },
            new RecordingAzureCredential(EntraToken(AppIdUri)));

        using var handler = server.CreateTrustingHandler();
        using var client = new CloudTasksClientBuilder { Endpoint = server.Address.ToString(), Credential = credential, HttpHandler = handler, EmulatorDetection = EmulatorDetection.None }.Build();
        await client.GetQueueAsync(Queue);

        var impersonation = Assert.Single(iam.Requests);
        Assert.Equal("Bearer google-federated-token", impersonation.Headers["authorization"]);
        Assert.EndsWith("bridge@p.iam.gserviceaccount.com:generateAccessToken", impersonation.PathAndQuery, StringComparison.Ordinal);
        Assert.Equal("Bearer service-account-token", server.Single("GetQueue").Headers["authorization"]);
    }

    [Fact]
    public async Task A_refused_exchange_fails_the_call_and_sends_nothing_to_cloud_tasks()
    {
        await using var sts = await HttpTargetServer.StartJsonAsync(_ => (400, """{"error":"invalid_grant","error_description":"The audience in the subject token does not match"}"""));
        await using var server = await RecordingCloudTasksServer.StartAsync(tls: true);
        var subjectToken = EntraToken(AppIdUri);
        var (client, handler) = ClientFor(server, FederatedCredential(sts, new RecordingAzureCredential(subjectToken)));
        using var disposeClient = client;
        using var disposeHandler = handler;

        var error = await Assert.ThrowsAsync<CloudTasksException>(() => client.GetQueueAsync(Queue));

        Assert.Empty(server.Calls);
        Assert.Equal(CloudTasksFailureReason.Unauthenticated, error.Reason);
        Assert.Contains("invalid_grant", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(subjectToken.Split('.')[2], error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unavailable_token_endpoint_is_a_transient_failure()
    {
        await using var sts = await HttpTargetServer.StartJsonAsync(_ => (503, """{"error":"temporarily_unavailable"}"""));
        await using var server = await RecordingCloudTasksServer.StartAsync(tls: true);
        var (client, handler) = ClientFor(server, FederatedCredential(sts, new RecordingAzureCredential(EntraToken(AppIdUri))));
        using var disposeClient = client;
        using var disposeHandler = handler;

        var error = await Assert.ThrowsAsync<CloudTasksException>(() => client.CreateTaskAsync(Queue, new V2Beta3.Task()));

        Assert.Equal(CloudTasksFailureReason.Unavailable, error.Reason);
        Assert.True(error.IsTransient);
        Assert.Empty(server.Calls);
    }

    [Theory]
    [InlineData("", "Audience is required")]
    [InlineData("projects/123/pools/x", "is not a workload identity provider name")]
    public void Bad_audiences_are_rejected_naming_the_setting(string audience, string expected)
    {
        var errors = new AzureWorkloadIdentityFederationOptions { Audience = audience, AzureTokenAudience = AppIdUri }.Validate("Bridge:CloudTasks:WorkloadIdentity:");
        Assert.Contains(errors, e => e.StartsWith("Bridge:CloudTasks:WorkloadIdentity:Audience", StringComparison.Ordinal) && e.Contains(expected, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("http://sts.example.com/v1/token")]
    [InlineData("not a url")]
    public void Token_urls_must_be_https_or_loopback(string url)
    {
        var errors = new AzureWorkloadIdentityFederationOptions { Audience = Audience, AzureTokenAudience = AppIdUri, TokenUrl = url }.Validate(string.Empty);
        Assert.Contains(errors, e => e.StartsWith("TokenUrl", StringComparison.Ordinal));
    }

    /// <summary>
    /// The rule, end to end: the real Azure.Identity managed identity credential asks an App Service style identity
    /// endpoint on loopback for the configured scope; the endpoint answers as Entra ID does for an application that
    /// issues v1 tokens (aud = the URI asked for, iss = sts.windows.net/&lt;tenant&gt;/); the token exchange stand-in
    /// accepts only what a Google provider with that issuer and allowed audience accepts. Requested scope, token
    /// audience and provider audience must agree for Cloud Tasks to be reached; each mismatch is named before STS.
    /// </summary>
    [Theory]
    [InlineData("all agree", null)]
    [InlineData("token audience differs", "carries aud '{0}-other', not '{0}'")]
    [InlineData("v2 token", "is a version 2.0 token")]
    [InlineData("provider allows another audience", "invalid_grant")]
    public async Task Requested_scope_token_audience_and_provider_audience_must_agree(string scenario, string? expectedError)
    {
        // A fresh App ID URI per case: Azure.Identity caches managed identity tokens per resource, process-wide.
        var configuredAudience = "api://bridge-" + Guid.NewGuid().ToString("N")[..12];
        var tokenVersion = scenario == "v2 token" ? "2.0" : "1.0";
        var providerAllowedAudience = scenario == "provider allows another audience" ? "api://other-app" : configuredAudience;
        expectedError = expectedError is null ? null : string.Format(CultureInfo.InvariantCulture, expectedError, configuredAudience);
        var expiresOn = TimeProvider.System.GetUtcNow().AddHours(1).ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        var issuer = tokenVersion == "1.0" ? $"https://sts.windows.net/{TenantId}/" : $"https://login.microsoftonline.com/{TenantId}/v2.0";
        await using var identity = await HttpTargetServer.StartJsonAsync(request =>
        {
            var resource = HttpUtility.ParseQueryString(request.PathAndQuery[request.PathAndQuery.IndexOf('?', StringComparison.Ordinal)..])["resource"]!;
            // A v1 token's aud is the resource asked for; the test bends it only to prove the check reads the token.
            var aud = scenario == "token audience differs" ? resource + "-other" : resource;
            var token = EntraToken(tokenVersion == "1.0" ? aud : "3f1c9a3e-0000-4000-8000-00000000abcd", issuer, tokenVersion);
            return (200, JsonSerializer.Serialize(new Dictionary<string, string> { ["access_token"] = token, ["expires_on"] = expiresOn, ["resource"] = resource, ["token_type"] = "Bearer" }));
        });
        await using var sts = await HttpTargetServer.StartJsonAsync(request => GoogleProviderRule(request, $"https://sts.windows.net/{TenantId}/", providerAllowedAudience));
        await using var server = await RecordingCloudTasksServer.StartAsync(tls: true);

        Exception? error = null;
        Environment.SetEnvironmentVariable("IDENTITY_ENDPOINT", new Uri(identity.Address, "/msi/token").ToString());
        Environment.SetEnvironmentVariable("IDENTITY_HEADER", "identity-header-secret");
        try
        {
            var credential = AzureWorkloadIdentityFederation.CreateCredential(
                new AzureWorkloadIdentityFederationOptions { Audience = Audience, AzureTokenAudience = configuredAudience, TokenUrl = new Uri(sts.Address, "/v1/token").ToString() });
            using var handler = server.CreateTrustingHandler();
            using var client = new CloudTasksClientBuilder { Endpoint = server.Address.ToString(), Credential = credential, HttpHandler = handler, EmulatorDetection = EmulatorDetection.None }.Build();

            error = await Record.ExceptionAsync(() => client.GetQueueAsync(Queue));
        }
        finally
        {
            Environment.SetEnvironmentVariable("IDENTITY_ENDPOINT", null);
            Environment.SetEnvironmentVariable("IDENTITY_HEADER", null);
        }

        Assert.True(identity.Requests.Count == 1, $"identity endpoint calls: {identity.Requests.Count}; error: {error}");
        var mi = identity.Requests.First();
        Assert.Equal(configuredAudience, HttpUtility.ParseQueryString(new Uri(identity.Address, mi.PathAndQuery).Query)["resource"]);
        Assert.Equal("identity-header-secret", mi.Headers["x-identity-header"]);
        if (expectedError is null)
        {
            Assert.Null(error);
            Assert.Equal("Bearer google-federated-token", server.Single("GetQueue").Headers["authorization"]);
            return;
        }

        var failure = Assert.IsType<CloudTasksException>(error);
        Assert.Equal(CloudTasksFailureReason.Unauthenticated, failure.Reason);
        Assert.False(failure.IsTransient);
        Assert.Contains(expectedError, failure.Message, StringComparison.Ordinal);
        Assert.Empty(server.Calls);
        Assert.Equal(expectedError == "invalid_grant" ? 1 : 0, sts.Requests.Count); // mismatches on the Azure side never reach STS
    }

    [Theory]
    [InlineData("", "", "AzureTokenAudience is required")]
    [InlineData("api://AzureADTokenExchange", "", "AzureTokenAudience 'api://AzureADTokenExchange' names api://AzureADTokenExchange")]
    [InlineData("", "api://AzureADTokenExchange/.default", "AzureTokenScope 'api://AzureADTokenExchange/.default' names api://AzureADTokenExchange")]
    [InlineData(AppIdUri, "api://other-app/.default", "AzureTokenScope 'api://other-app/.default' yields tokens with aud 'api://other-app', but Bridge:CloudTasks:WorkloadIdentity:AzureTokenAudience is 'api://bridge-gcp-federation'")]
    [InlineData("", AppIdUri, "AzureTokenScope 'api://bridge-gcp-federation' must be '<App ID URI>/.default'")]
    public void Scope_and_audience_that_cannot_match_the_provider_are_refused_naming_the_setting(string audience, string scope, string expected)
    {
        var errors = new AzureWorkloadIdentityFederationOptions { Audience = Audience, AzureTokenAudience = audience, AzureTokenScope = scope }.Validate("Bridge:CloudTasks:WorkloadIdentity:");

        Assert.Contains(errors, e => e.StartsWith("Bridge:CloudTasks:WorkloadIdentity:", StringComparison.Ordinal) && e.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void The_scope_asked_for_is_the_audience_the_token_carries_plus_default()
    {
        Assert.Equal("api://bridge-gcp-federation/.default", AzureWorkloadIdentityFederationOptions.ScopeFor(AppIdUri));
        var fromAudience = new AzureWorkloadIdentityFederationOptions { AzureTokenAudience = AppIdUri };
        Assert.Equal((AppIdUri + "/.default", AppIdUri), (fromAudience.EffectiveAzureTokenScope, fromAudience.EffectiveAzureTokenAudience));
        var fromScope = new AzureWorkloadIdentityFederationOptions { AzureTokenScope = AppIdUri + "/.default" };
        Assert.Equal((AppIdUri + "/.default", AppIdUri), (fromScope.EffectiveAzureTokenScope, fromScope.EffectiveAzureTokenAudience));
        Assert.Empty(new AzureWorkloadIdentityFederationOptions { Audience = Audience, AzureTokenAudience = AppIdUri, AzureTokenScope = AppIdUri + "/.default" }.Validate(string.Empty));
    }

    /// <summary>What Google's STS checks of an OIDC subject token against a provider: issuer and allowed audiences.</summary>
    private static (int, string) GoogleProviderRule(ReceivedRequest request, string providerIssuer, string allowedAudience)
    {
        var token = HttpUtility.ParseQueryString(request.Text)["subject_token"] ?? string.Empty;
        using var claims = JsonDocument.Parse(System.Buffers.Text.Base64Url.DecodeFromChars(token.Split('.')[1]));
        var iss = claims.RootElement.GetProperty("iss").GetString();
        var aud = claims.RootElement.GetProperty("aud").GetString();
        return iss == providerIssuer && aud == allowedAudience
            ? StsResponse(request)
            : (400, """{"error":"invalid_grant","error_description":"The audience in ID Token does not match the expected audience."}""");
    }

    private static (CloudTasksClient Client, IDisposable Handler) ClientFor(RecordingCloudTasksServer server, Google.Apis.Auth.OAuth2.ITokenAccess credential)
    {
        var handler = server.CreateTrustingHandler();
        var client = new CloudTasksClientBuilder { Endpoint = server.Address.ToString(), Credential = credential, HttpHandler = handler, EmulatorDetection = EmulatorDetection.None }.Build();
        return (client, handler);
    }

    private static Google.Apis.Auth.OAuth2.GoogleCredential FederatedCredential(HttpTargetServer sts, TokenCredential azure) =>
        AzureWorkloadIdentityFederation.CreateCredential(
            new AzureWorkloadIdentityFederationOptions { Audience = Audience, AzureTokenAudience = AppIdUri, TokenUrl = new Uri(sts.Address, "/v1/token").ToString() },
            azure);

    private sealed class RecordingAzureCredential(string token) : TokenCredential
    {
        public List<string> RequestedScopes { get; } = [];

        public override AccessToken GetToken(TokenRequestContext requestContext, CancellationToken cancellationToken)
        {
            RequestedScopes.AddRange(requestContext.Scopes);
            return new AccessToken(token, TimeProvider.System.GetUtcNow().AddHours(1));
        }

        public override ValueTask<AccessToken> GetTokenAsync(TokenRequestContext requestContext, CancellationToken cancellationToken) =>
            ValueTask.FromResult(GetToken(requestContext, cancellationToken));
    }
}
