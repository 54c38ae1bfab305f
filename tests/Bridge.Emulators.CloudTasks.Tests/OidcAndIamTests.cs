using System.Diagnostics;
using Bridge.CloudTasks;
using Bridge.CloudTasks.Iam.V1;
using Bridge.CloudTasks.V2Beta3;
using Bridge.Testing;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Protocols;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;
using Microsoft.IdentityModel.Tokens;
using OpenTelemetry;
using OpenTelemetry.Trace;
using Task = System.Threading.Tasks.Task;
using TaskMessage = Bridge.CloudTasks.V2Beta3.Task;

namespace Bridge.Emulators.CloudTasks.Tests;

public sealed class OidcAndIamTests : EmulatorWithTargetTests
{
    private const string Invoker = "invoker@emulator-project.iam.gserviceaccount.com";

    /// <summary>Validates a token the way a receiver does against Google: discovery, JWKS, issuer, audience, lifetime.</summary>
    private async Task<TokenValidationResult> ValidateAsync(string token, string audience)
    {
        var discoveryUrl = new Uri(Host.HttpAddress, "/.well-known/openid-configuration").ToString();
        var manager = new ConfigurationManager<OpenIdConnectConfiguration>(discoveryUrl, new OpenIdConnectConfigurationRetriever(), new HttpDocumentRetriever { RequireHttps = false });
        var configuration = await manager.GetConfigurationAsync(CancellationToken.None);
        return await new JsonWebTokenHandler().ValidateTokenAsync(token, new TokenValidationParameters
        {
            ValidIssuer = Host.Emulator.Issuer,
            ValidAudience = audience,
            IssuerSigningKeys = configuration.SigningKeys,
            ValidAlgorithms = [SecurityAlgorithms.RsaSha256],
            RequireSignedTokens = true,
            RequireExpirationTime = true,
        });
    }

    [Fact]
    public async Task Oidc_tasks_carry_a_token_that_verifies_against_the_published_keys()
    {
        var queue = await Host.CreateQueueAsync();
        await Client.CreateTaskAsync(queue, new TaskMessage
        {
            HttpRequest = new HttpRequest { Url = Target.Url("/secure").ToString(), OidcToken = new OidcToken { ServiceAccountEmail = Invoker, Audience = "https://bridge.example.com/api/tasks/callback" } },
        });

        var received = Assert.Single(await Target.WaitForRequestsAsync(1));
        var token = received.Header("Authorization")!["Bearer ".Length..];
        var result = await ValidateAsync(token, "https://bridge.example.com/api/tasks/callback");

        Assert.True(result.IsValid, result.Exception?.Message);
        var jwt = (JsonWebToken)result.SecurityToken;
        Assert.Equal("RS256", jwt.Alg);
        Assert.Equal(Invoker, jwt.GetClaim("email").Value);
        Assert.Equal("true", jwt.GetClaim("email_verified").Value);
        Assert.Matches("^[0-9]{21}$", jwt.Subject);
        Assert.Equal(jwt.Subject, jwt.GetClaim("azp").Value);
        Assert.InRange(jwt.ValidTo - jwt.IssuedAt, TimeSpan.FromMinutes(59), TimeSpan.FromMinutes(61));
    }

    [Fact]
    public async Task The_audience_defaults_to_the_target_url()
    {
        var queue = await Host.CreateQueueAsync();
        var url = Target.Url("/default-audience").ToString();
        await Client.CreateTaskAsync(queue, new TaskMessage { HttpRequest = new HttpRequest { Url = url, OidcToken = new OidcToken { ServiceAccountEmail = Invoker } } });

        var received = Assert.Single(await Target.WaitForRequestsAsync(1));
        var result = await ValidateAsync(received.Header("Authorization")!["Bearer ".Length..], url);

        Assert.True(result.IsValid, result.Exception?.Message);
    }

    [Theory]
    [InlineData("")] // no path: no slash added
    [InlineData("/a%20b/c%2Fd?q=%2F&x=1")] // escapes kept
    public async Task The_default_audience_is_the_url_exactly_as_given(string pathAndQuery)
    {
        var queue = await Host.CreateQueueAsync();
        var url = $"http://127.0.0.1:{Target.Address.Port}{pathAndQuery}";
        await Client.CreateTaskAsync(queue, new TaskMessage { HttpRequest = new HttpRequest { Url = url, OidcToken = new OidcToken { ServiceAccountEmail = Invoker } } });

        var token = new JsonWebToken(Assert.Single(await Target.WaitForRequestsAsync(1)).Header("Authorization")!["Bearer ".Length..]);

        Assert.Equal(url, Assert.Single(token.Audiences));
    }

    [Fact]
    public async Task A_token_for_another_audience_or_with_a_changed_payload_does_not_verify()
    {
        var queue = await Host.CreateQueueAsync();
        await Client.CreateTaskAsync(queue, new TaskMessage { HttpRequest = new HttpRequest { Url = Target.Url("/x").ToString(), OidcToken = new OidcToken { ServiceAccountEmail = Invoker, Audience = "aud-a" } } });
        var token = Assert.Single(await Target.WaitForRequestsAsync(1)).Header("Authorization")!["Bearer ".Length..];

        Assert.False((await ValidateAsync(token, "aud-b")).IsValid);
        var parts = token.Split('.');
        var forgedPayload = Base64UrlEncoder.Encode(Base64UrlEncoder.DecodeBytes(parts[1]).Select(b => b == (byte)'a' ? (byte)'b' : b).ToArray());
        Assert.False((await ValidateAsync($"{parts[0]}.{forgedPayload}.{parts[2]}", "aud-a")).IsValid);
    }

    [Fact]
    public async Task Oauth_tasks_carry_a_bearer_token()
    {
        var queue = await Host.CreateQueueAsync();
        await Client.CreateTaskAsync(queue, new TaskMessage { HttpRequest = new HttpRequest { Url = Target.Url("/google-api").ToString(), OauthToken = new OAuthToken { ServiceAccountEmail = Invoker } } });

        var received = Assert.Single(await Target.WaitForRequestsAsync(1));

        Assert.StartsWith("Bearer ya29.", received.Header("Authorization"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_tasks_own_authorization_header_is_forwarded_when_it_has_no_token()
    {
        var queue = await Host.CreateQueueAsync();
        await Client.CreateTaskAsync(queue, new TaskMessage { HttpRequest = new HttpRequest { Url = Target.Url("/basic").ToString(), Headers = { ["Authorization"] = "Basic dXNlcjpwYXNz" } } });

        Assert.Equal("Basic dXNlcjpwYXNz", Assert.Single(await Target.WaitForRequestsAsync(1)).Header("Authorization"));
    }

    [Fact]
    public async Task A_token_replaces_the_tasks_own_authorization_header()
    {
        var queue = await Host.CreateQueueAsync();
        await Client.CreateTaskAsync(queue, new TaskMessage
        {
            HttpRequest = new HttpRequest { Url = Target.Url("/both").ToString(), Headers = { ["Authorization"] = "Bearer static" }, OidcToken = new OidcToken { ServiceAccountEmail = Invoker, Audience = "aud" } },
        });

        var authorization = Assert.Single(await Target.WaitForRequestsAsync(1)).Header("Authorization")!;
        Assert.StartsWith("Bearer ey", authorization, StringComparison.Ordinal);
        Assert.True((await ValidateAsync(authorization["Bearer ".Length..], "aud")).IsValid);
    }

    [Fact]
    public async Task Tasks_without_a_token_or_header_send_no_authorization()
    {
        var queue = await Host.CreateQueueAsync();
        await Client.CreateTaskAsync(queue, new TaskMessage { HttpRequest = new HttpRequest { Url = Target.Url("/open").ToString() } });

        Assert.Null(Assert.Single(await Target.WaitForRequestsAsync(1)).Header("Authorization"));
    }

    [Fact]
    public async Task The_dispatch_span_continues_the_trace_in_the_task_headers()
    {
        var spans = new List<Activity>();
        using var tracer = Sdk.CreateTracerProviderBuilder().AddSource(CloudTasksEmulatorTelemetry.SourceName).AddInMemoryExporter(spans).Build();
        var queue = await Host.CreateQueueAsync();
        const string traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
        var traceparent = $"00-{traceId}-00f067aa0ba902b7-01";
        var task = await Client.CreateTaskAsync(queue, new TaskMessage { HttpRequest = new HttpRequest { Url = Target.Url("/traced").ToString(), Headers = { ["traceparent"] = traceparent } } });

        var received = Assert.Single(await Target.WaitForRequestsAsync(1));
        await Host.Emulator.WaitForIdleAsync(queue.ToString());
        tracer.ForceFlush();

        Assert.Equal(traceparent, received.Header("traceparent")); // the task's own header, as Cloud Tasks sends it
        Activity span;
        lock (spans)
        {
            span = Assert.Single(spans, s => s.TraceId.ToHexString() == traceId);
        }

        Assert.Equal("00f067aa0ba902b7", span.ParentSpanId.ToHexString());
        Assert.Equal(ActivityKind.Client, span.Kind);
        Assert.Equal(200, span.GetTagItem("http.response.status_code"));
        Assert.Equal(queue.ToString(), span.GetTagItem(CloudTasksTelemetry.Tags.QueueName)); // one name per concept, as the forwarder tags it
        Assert.Equal(task.Name, span.GetTagItem(CloudTasksTelemetry.Tags.TaskName));
        Assert.Equal(0, span.GetTagItem(CloudTasksTelemetry.Tags.RetryCount));
    }

    [Fact]
    public async Task The_signing_key_is_served_as_a_jwks_with_a_stable_kid()
    {
        using var http = new HttpClient();
        var first = await http.GetStringAsync(new Uri(Host.HttpAddress, "/oauth2/v3/certs"));
        var second = await http.GetStringAsync(new Uri(Host.HttpAddress, "/oauth2/v3/certs"));
        var keys = new JsonWebKeySet(first);

        Assert.Equal(first, second);
        var key = Assert.Single(keys.Keys);
        Assert.Equal("RSA", key.Kty);
        Assert.Equal("RS256", key.Alg);
        Assert.False(string.IsNullOrEmpty(key.Kid));
    }

    // ---- IAM ----

    [Fact]
    public async Task A_queue_without_a_policy_has_an_empty_one_with_an_etag()
    {
        var queue = await Host.CreateQueueAsync();
        var policy = await Client.GetIamPolicyAsync(queue);
        Assert.Empty(policy.Bindings);
        Assert.False(policy.Etag.IsEmpty);
    }

    [Fact]
    public async Task Set_policy_replaces_the_policy_and_a_stale_etag_is_rejected()
    {
        var queue = await Host.CreateQueueAsync();
        var initial = await Client.GetIamPolicyAsync(queue);
        var binding = new Binding { Role = "roles/cloudtasks.enqueuer", Members = { "serviceAccount:bridge@p.iam.gserviceaccount.com" } };

        var set = await Client.SetIamPolicyAsync(queue, new Policy { Bindings = { binding }, Etag = initial.Etag });

        Assert.Equal(binding, Assert.Single(set.Bindings));
        Assert.NotEqual(initial.Etag, set.Etag);
        Assert.Equal(set, await Client.GetIamPolicyAsync(queue));
        var stale = await Assert.ThrowsAsync<CloudTasksException>(() => Client.SetIamPolicyAsync(queue, new Policy { Etag = initial.Etag }));
        Assert.Equal(CloudTasksFailureReason.Aborted, stale.Reason);

        var replaced = await Client.SetIamPolicyAsync(queue, new Policy { Bindings = { new Binding { Role = "roles/cloudtasks.viewer", Members = { "user:a@example.com" } } } });
        Assert.Equal("roles/cloudtasks.viewer", Assert.Single(replaced.Bindings).Role);
    }

    [Theory]
    [InlineData("cloudtasks.enqueuer", "serviceAccount:x@p.iam.gserviceaccount.com", "must start with 'roles/'")]
    [InlineData("roles/cloudtasks.enqueuer", "someone@example.com", "not of a known type")]
    public async Task Malformed_bindings_are_rejected(string role, string member, string message)
    {
        var queue = await Host.CreateQueueAsync();
        var error = await Assert.ThrowsAsync<CloudTasksException>(() => Client.SetIamPolicyAsync(queue, new Policy { Bindings = { new Binding { Role = role, Members = { member } } } }));
        Assert.Equal(CloudTasksFailureReason.InvalidArgument, error.Reason);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Test_permissions_answers_the_known_ones_and_nothing_for_a_missing_queue()
    {
        var queue = await Host.CreateQueueAsync();
        var granted = await Client.TestIamPermissionsAsync(queue, ["cloudtasks.tasks.create", "cloudtasks.queues.get", "storage.objects.get"]);
        Assert.Equal(["cloudtasks.tasks.create", "cloudtasks.queues.get"], granted.Permissions);

        var missing = await Client.TestIamPermissionsAsync(EmulatorHost.Location.Queue("missing"), ["cloudtasks.tasks.create"]);
        Assert.Empty(missing.Permissions);

        var wildcard = await Assert.ThrowsAsync<CloudTasksException>(() => Client.TestIamPermissionsAsync(queue, ["cloudtasks.*"]));
        Assert.Equal(CloudTasksFailureReason.InvalidArgument, wildcard.Reason);
    }

    [Fact]
    public async Task Iam_on_a_missing_queue_is_not_found()
    {
        var error = await Assert.ThrowsAsync<CloudTasksException>(() => Client.GetIamPolicyAsync(EmulatorHost.Location.Queue("missing")));
        Assert.Equal(CloudTasksFailureReason.NotFound, error.Reason);
    }

    [Fact]
    public async Task Cmek_config_round_trips_and_rejects_keys_of_another_location()
    {
        var location = EmulatorHost.Location;
        Assert.Empty((await Client.GetCmekConfigAsync(location)).KmsKey);
        var key = $"{location}/keyRings/ring/cryptoKeys/key";

        var updated = await Client.UpdateCmekConfigAsync(new UpdateCmekConfigRequest { CmekConfig = new CmekConfig { Name = $"{location}/cmekConfig", KmsKey = key } });

        Assert.Equal(key, updated.KmsKey);
        Assert.Equal(key, (await Client.GetCmekConfigAsync(location)).KmsKey);
        var error = await Assert.ThrowsAsync<CloudTasksException>(() => Client.UpdateCmekConfigAsync(new UpdateCmekConfigRequest { CmekConfig = new CmekConfig { Name = $"{location}/cmekConfig", KmsKey = "projects/p/locations/elsewhere/keyRings/r/cryptoKeys/k" } }));
        Assert.Equal(CloudTasksFailureReason.InvalidArgument, error.Reason);
    }
}
