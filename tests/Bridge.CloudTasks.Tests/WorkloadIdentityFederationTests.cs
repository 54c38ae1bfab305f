using System.Globalization;
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
    private static readonly QueueName Queue = new("p", "l", "q");

    private static (int, string) StsResponse(ReceivedRequest _) =>
        (200, """{"access_token":"google-federated-token","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":3600}""");

    [Fact]
    public async Task The_azure_token_is_exchanged_and_the_google_token_is_sent_to_cloud_tasks()
    {
        await using var sts = await HttpTargetServer.StartJsonAsync(StsResponse);
        await using var server = await RecordingCloudTasksServer.StartAsync(tls: true);
        var azure = new RecordingAzureCredential("azure-subject-token");
        var (client, handler) = ClientFor(server, FederatedCredential(sts, azure));
        using var disposeClient = client;
        using var disposeHandler = handler;
        await client.GetQueueAsync(Queue);
        await client.GetQueueAsync(Queue);

        Assert.Equal(["api://AzureADTokenExchange/.default"], azure.RequestedScopes.Distinct());
        var exchange = Assert.Single(sts.Requests); // cached for the second call
        Assert.Equal("POST", exchange.Method);
        var form = HttpUtility.ParseQueryString(exchange.Text);
        Assert.Equal("urn:ietf:params:oauth:grant-type:token-exchange", form["grant_type"]);
        Assert.Equal(Audience, form["audience"]);
        Assert.Equal("azure-subject-token", form["subject_token"]);
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
                TokenUrl = new Uri(sts.Address, "/v1/token").ToString(),
                ServiceAccountImpersonationUrl = new Uri(iam.Address, "/v1/projects/-/serviceAccounts/bridge@p.iam.gserviceaccount.com:generateAccessToken").ToString(),
            },
            new RecordingAzureCredential("azure-subject-token"));

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
        var (client, handler) = ClientFor(server, FederatedCredential(sts, new RecordingAzureCredential("azure-subject-token")));
        using var disposeClient = client;
        using var disposeHandler = handler;

        var error = await Assert.ThrowsAsync<CloudTasksException>(() => client.GetQueueAsync(Queue));

        Assert.Empty(server.Calls);
        Assert.Equal(CloudTasksFailureReason.Unauthenticated, error.Reason);
        Assert.Contains("invalid_grant", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("azure-subject-token", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unavailable_token_endpoint_is_a_transient_failure()
    {
        await using var sts = await HttpTargetServer.StartJsonAsync(_ => (503, """{"error":"temporarily_unavailable"}"""));
        await using var server = await RecordingCloudTasksServer.StartAsync(tls: true);
        var (client, handler) = ClientFor(server, FederatedCredential(sts, new RecordingAzureCredential("azure-subject-token")));
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
        var errors = new AzureWorkloadIdentityFederationOptions { Audience = audience }.Validate("Bridge:CloudTasks:WorkloadIdentity:");
        Assert.Contains(errors, e => e.StartsWith("Bridge:CloudTasks:WorkloadIdentity:Audience", StringComparison.Ordinal) && e.Contains(expected, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("http://sts.example.com/v1/token")]
    [InlineData("not a url")]
    public void Token_urls_must_be_https_or_loopback(string url)
    {
        var errors = new AzureWorkloadIdentityFederationOptions { Audience = Audience, TokenUrl = url }.Validate(string.Empty);
        Assert.Contains(errors, e => e.StartsWith("TokenUrl", StringComparison.Ordinal));
    }

    /// <summary>
    /// The real Azure.Identity managed identity credential, talking to an App Service style identity endpoint on
    /// loopback: proves the subject token is what Azure's managed identity returns for api://AzureADTokenExchange.
    /// </summary>
    [Fact]
    public async Task The_managed_identity_token_from_azure_identity_becomes_the_subject_token()
    {
        var expiresOn = TimeProvider.System.GetUtcNow().AddHours(1).ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        await using var identity = await HttpTargetServer.StartJsonAsync(_ =>
            (200, JsonSerializer.Serialize(new Dictionary<string, string> { ["access_token"] = "mi-token-from-azure", ["expires_on"] = expiresOn, ["resource"] = "api://AzureADTokenExchange", ["token_type"] = "Bearer" })));
        await using var sts = await HttpTargetServer.StartJsonAsync(StsResponse);
        await using var server = await RecordingCloudTasksServer.StartAsync(tls: true);

        Environment.SetEnvironmentVariable("IDENTITY_ENDPOINT", new Uri(identity.Address, "/msi/token").ToString());
        Environment.SetEnvironmentVariable("IDENTITY_HEADER", "identity-header-secret");
        try
        {
            var credential = AzureWorkloadIdentityFederation.CreateCredential(
                new AzureWorkloadIdentityFederationOptions { Audience = Audience, TokenUrl = new Uri(sts.Address, "/v1/token").ToString() });
            using var handler = server.CreateTrustingHandler();
            using var client = new CloudTasksClientBuilder { Endpoint = server.Address.ToString(), Credential = credential, HttpHandler = handler, EmulatorDetection = EmulatorDetection.None }.Build();

            await client.GetQueueAsync(Queue);
        }
        finally
        {
            Environment.SetEnvironmentVariable("IDENTITY_ENDPOINT", null);
            Environment.SetEnvironmentVariable("IDENTITY_HEADER", null);
        }

        var mi = Assert.Single(identity.Requests);
        Assert.Equal("api://AzureADTokenExchange", HttpUtility.ParseQueryString(new Uri(identity.Address, mi.PathAndQuery).Query)["resource"]);
        Assert.Equal("identity-header-secret", mi.Headers["x-identity-header"]);
        Assert.Equal("mi-token-from-azure", HttpUtility.ParseQueryString(Assert.Single(sts.Requests).Text)["subject_token"]);
        Assert.Equal("Bearer google-federated-token", server.Single("GetQueue").Headers["authorization"]);
    }

    private static (CloudTasksClient Client, IDisposable Handler) ClientFor(RecordingCloudTasksServer server, Google.Apis.Auth.OAuth2.ITokenAccess credential)
    {
        var handler = server.CreateTrustingHandler();
        var client = new CloudTasksClientBuilder { Endpoint = server.Address.ToString(), Credential = credential, HttpHandler = handler, EmulatorDetection = EmulatorDetection.None }.Build();
        return (client, handler);
    }

    private static Google.Apis.Auth.OAuth2.GoogleCredential FederatedCredential(HttpTargetServer sts, TokenCredential azure) =>
        AzureWorkloadIdentityFederation.CreateCredential(
            new AzureWorkloadIdentityFederationOptions { Audience = Audience, TokenUrl = new Uri(sts.Address, "/v1/token").ToString() },
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
