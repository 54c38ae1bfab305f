using System.Diagnostics.Metrics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Bridge.Core.Callback;
using Bridge.Core.Internal;
using Bridge.Core.Routing;
using Bridge.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Bridge.Core.Tests.Callback;

/// <summary>
/// Who may make which callback, cell by cell: every caller × call kind × route, with real RS256 tokens from a loopback
/// issuer. Every caller is a trusted account with a valid token; only its role for the route decides.
/// </summary>
public sealed class CallbackAuthorizationTests : IAsyncLifetime
{
    private const string Callback = "https://bridge.example.com/api/tasks/callback";
    private const string OrdersInvoker = "orders-invoker@p.iam.gserviceaccount.com";
    private const string BillingInvoker = "billing-invoker@p.iam.gserviceaccount.com";
    private const string OrdersWorker = "orders-worker@p.iam.gserviceaccount.com";
    private const string BillingWorker = "billing-worker@p.iam.gserviceaccount.com";
    private const string ExternalWorker = "external-worker@p.iam.gserviceaccount.com";
    private const string Stranger = "stranger@p.iam.gserviceaccount.com";
    private const string RotatedOut = "orders-invoker-old@p.iam.gserviceaccount.com";
    private const string AuditAudience = "https://bridge.example.com/audit";

    private static readonly string[] Callers = [OrdersInvoker, BillingInvoker, OrdersWorker, BillingWorker, ExternalWorker, Stranger];

    // "external" is signed as the orders invoker but targets another service: its queue is not this callback's.
    // "nowhere" is a queue of no route.
    private static readonly string[] Queues = ["orders", "billing", "external", "nowhere"];

    private TestTokenIssuer _issuer = null!;
    private CallbackReceiver _receiver = null!;
    private readonly RecordingSink _sink = new();

    public async Task InitializeAsync()
    {
        _issuer = await TestTokenIssuer.StartAsync();
        _receiver = Receiver(_issuer, _sink);
    }

    public async Task DisposeAsync() => await _issuer.DisposeAsync();

    internal static CallbackReceiver Receiver(TestTokenIssuer issuer, IOutcomeSink sink)
    {
        var callback = new CallbackOptions
        {
            Issuers = [new TrustedIssuer { Issuer = issuer.Issuer, DiscoveryUrl = issuer.DiscoveryUrl }],
            PublicUrl = Callback,
            AllowedServiceAccounts = [.. Callers, RotatedOut],
        };
        var bridge = new BridgeOptions();
        bridge.Routes["orders"] = new RouteOptions { Queue = "projects/p/locations/l/queues/orders", TargetUrl = Callback, ServiceAccountEmail = OrdersInvoker, ReportingServiceAccounts = [OrdersWorker], PreviousServiceAccounts = [RotatedOut] };
        bridge.Routes["billing"] = new RouteOptions { Queue = "projects/p/locations/l/queues/billing", TargetUrl = "https://billing.example.com/run", Audience = Callback, ServiceAccountEmail = BillingInvoker, ReportingServiceAccounts = [BillingWorker] };
        bridge.Routes["external"] = new RouteOptions { Queue = "projects/p/locations/l/queues/external", TargetUrl = "https://elsewhere.example.com/hook", ServiceAccountEmail = OrdersInvoker, ReportingServiceAccounts = [ExternalWorker] };
        var options = Options.Create(callback);
        return new CallbackReceiver(new OidcTokenVerifier(options, TimeProvider.System), sink, options, TimeProvider.System, NullLogger<CallbackReceiver>.Instance, new RouteTable(bridge));
    }

    private string Token(string email) => "Bearer " + _issuer.Mint(TestTokenIssuer.Claims(_issuer.Issuer, Callback, email));

    /// <summary>The headers; a later one replaces an earlier one of the same name.</summary>
    internal static Dictionary<string, string> Headers(params (string Name, string Value)[] headers)
    {
        var result = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, value) in headers)
        {
            result[name] = value;
        }

        return result;
    }

    private Task<CallbackResponse> DispatchAsync(string caller, string queue, string taskId = "t1", params (string, string)[] extra) =>
        _receiver.HandleAsync(new CallbackRequest(
            Headers([("Authorization", Token(caller)), ("X-CloudTasks-QueueName", queue), ("X-CloudTasks-TaskName", taskId), ("X-CloudTasks-TaskRetryCount", "0"), .. extra]),
            "{}"u8.ToArray(),
            "application/json"));

    private Task<CallbackResponse> ReportAsync(string caller, string queue, string status = "succeeded", string? instance = null) =>
        _receiver.HandleAsync(new CallbackRequest(
            Headers(("Authorization", Token(caller))),
            Encoding.UTF8.GetBytes($$"""{"taskName":"projects/p/locations/l/queues/{{queue}}/tasks/t1","status":"{{status}}"{{(instance is null ? "" : $",\"taskInstance\":\"{instance}\"")}}}"""),
            "application/json"));

    public static TheoryData<string, string, string> Matrix()
    {
        var data = new TheoryData<string, string, string>();
        foreach (var caller in Callers)
        {
            foreach (var kind in new[] { "dispatch", "report" })
            {
                foreach (var queue in Queues)
                {
                    data.Add(caller, kind, queue);
                }
            }
        }

        return data;
    }

    /// <summary>The allowed cells, written out: everything else is refused.</summary>
    private static readonly HashSet<(string Caller, string Kind, string Queue)> Allowed =
    [
        (OrdersInvoker, "dispatch", "orders"),
        (BillingInvoker, "dispatch", "billing"),
        (OrdersWorker, "report", "orders"),
        (BillingWorker, "report", "billing"),
        (ExternalWorker, "report", "external"),
    ];

    [Theory]
    [MemberData(nameof(Matrix))]
    public async Task Each_caller_may_make_only_the_calls_its_route_gives_it(string caller, string kind, string queue)
    {
        var response = kind == "dispatch" ? await DispatchAsync(caller, queue) : await ReportAsync(caller, queue);

        if (Allowed.Contains((caller, kind, queue)))
        {
            Assert.Equal(200, response.Status);
            var outcome = Assert.Single(_sink.Published);
            Assert.Equal(queue, System.Text.Json.JsonSerializer.SerializeToElement(outcome.Data).GetProperty("route").GetString());
            Assert.Equal($"projects/p/locations/l/queues/{queue}/tasks/t1", outcome.Subject);
            return;
        }

        Assert.Equal(403, response.Status);
        var expected = (kind, queue) switch
        {
            ("dispatch", "external" or "nowhere") => nameof(CallbackRefusal.QueueNotRoutedHere),
            ("dispatch", _) => nameof(CallbackRefusal.NotTheRouteServiceAccount),
            ("report", "nowhere") => nameof(CallbackRefusal.TaskOfNoRoute),
            _ => nameof(CallbackRefusal.NotAllowedToReport),
        };
        Assert.Equal(expected, response.Reason);
        Assert.False(string.IsNullOrEmpty(response.Detail));
        Assert.Empty(_sink.Published);
    }

    [Fact]
    public void The_matrix_covers_every_caller_kind_and_route()
    {
        Assert.Equal(Callers.Length * 2 * Queues.Length, Matrix().Count);
    }

    [Fact]
    public async Task A_dispatch_naming_another_route_does_not_borrow_that_routes_account()
    {
        // The billing invoker may dispatch billing tasks; naming route "billing" on an orders task must not let it in.
        var response = await DispatchAsync(BillingInvoker, "orders", extra: ("X-Bridge-Route", "billing"));

        Assert.Equal(403, response.Status);
        Assert.Equal(nameof(CallbackRefusal.NotTheRouteServiceAccount), response.Reason);
    }

    [Fact]
    public async Task After_a_rotation_the_previous_account_still_dispatches_its_routes_tasks_only()
    {
        Assert.Equal(200, (await DispatchAsync(RotatedOut, "orders")).Status);
        Assert.Equal(nameof(CallbackRefusal.NotTheRouteServiceAccount), (await DispatchAsync(RotatedOut, "billing")).Reason);
        Assert.Equal(nameof(CallbackRefusal.NotAllowedToReport), (await ReportAsync(RotatedOut, "orders")).Reason);
    }

    [Fact]
    public async Task A_300_KB_payload_is_published_without_its_bytes_but_with_size_and_digest()
    {
        var payload = new byte[300 * 1024];
        new Random(7).NextBytes(payload);
        var response = await _receiver.HandleAsync(new CallbackRequest(
            Headers(("Authorization", Token(OrdersInvoker)), ("X-CloudTasks-QueueName", "orders"), ("X-CloudTasks-TaskName", "big")),
            payload,
            "application/octet-stream"));

        Assert.Equal(200, response.Status);
        var outcome = Assert.Single(_sink.Published);
        var data = System.Text.Json.JsonSerializer.SerializeToElement(outcome.Data);
        Assert.Equal(JsonValueKind.Null, data.GetProperty("payload").ValueKind);
        Assert.Equal(payload.Length, data.GetProperty("payloadSize").GetInt32());
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(payload)), data.GetProperty("payloadSha256").GetString());
        Assert.Contains("MaxInlinePayloadBytes", data.GetProperty("payloadNote").GetString(), StringComparison.Ordinal);
        Assert.True(ServiceBusOutcomeSink.ToMessage(outcome).Body.ToMemory().Length < 256 * 1024); // fits a Standard-tier message
    }

    [Fact]
    public async Task Refusals_are_counted_by_reason()
    {
        var counted = new List<string>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Name == "bridge.callbacks.rejected")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, _, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "error.type" || tag.Key.EndsWith("reason", StringComparison.Ordinal))
                {
                    lock (counted)
                    {
                        counted.Add(tag.Value?.ToString() ?? string.Empty);
                    }
                }
            }
        });
        listener.Start();

        await DispatchAsync(Stranger, "orders");
        await ReportAsync(Stranger, "nowhere");

        lock (counted)
        {
            Assert.Contains(nameof(CallbackRefusal.NotTheRouteServiceAccount), counted);
            Assert.Contains(nameof(CallbackRefusal.TaskOfNoRoute), counted);
        }
    }

    [Fact]
    public async Task A_redelivery_of_one_task_instance_keeps_its_outcome_id()
    {
        var first = await DispatchAsync(OrdersInvoker, "orders", extra: [("X-Bridge-Task-Instance", "aaa111"), ("X-CloudTasks-TaskETA", "1764355200.000000")]);
        var again = await DispatchAsync(OrdersInvoker, "orders", extra: [("X-Bridge-Task-Instance", "aaa111"), ("X-CloudTasks-TaskETA", "1764355290.250000"), ("X-CloudTasks-TaskRetryCount", "3")]);

        Assert.Equal(200, first.Status);
        Assert.Equal(first.OutcomeId, again.OutcomeId);
    }

    [Fact]
    public async Task A_new_task_reusing_an_expired_name_gets_new_outcome_ids()
    {
        var old = await DispatchAsync(OrdersInvoker, "orders", extra: ("X-Bridge-Task-Instance", "aaa111"));
        var reused = await DispatchAsync(OrdersInvoker, "orders", extra: ("X-Bridge-Task-Instance", "bbb222"));
        var oldReport = await ReportAsync(OrdersWorker, "orders", instance: "aaa111");
        var reusedReport = await ReportAsync(OrdersWorker, "orders", instance: "bbb222");

        Assert.All(new[] { old, reused, oldReport, reusedReport }, r => Assert.Equal(200, r.Status));
        Assert.NotEqual(old.OutcomeId, reused.OutcomeId);
        Assert.NotEqual(oldReport.OutcomeId, reusedReport.OutcomeId);
    }

    [Fact]
    public async Task Delivered_and_failed_outcomes_of_one_task_have_different_ids()
    {
        var delivered = await DispatchAsync(OrdersInvoker, "orders", extra: ("X-Bridge-Task-Instance", "aaa111"));
        var failed = await ReportAsync(OrdersWorker, "orders", "failed", instance: "aaa111");
        var succeeded = await ReportAsync(OrdersWorker, "orders", "succeeded", instance: "aaa111");

        Assert.Equal(3, new[] { delivered.OutcomeId, failed.OutcomeId, succeeded.OutcomeId }.Distinct().Count());
    }

    public sealed record BadCall(string Name, Func<TestTokenIssuer, object> Request, int Status, string Reason) // object: CallbackRequest is internal
    {
        public override string ToString() => Name;
    }

    /// <summary>A token signed with the issuer's key whose JSON text is given as is (to hold escapes a serializer won't write).</summary>
    private static string RawToken(TestTokenIssuer issuer, string headerJson, string claimsJson)
    {
        var input = TestTokenIssuer.Encode(Encoding.UTF8.GetBytes(headerJson)) + "." + TestTokenIssuer.Encode(Encoding.UTF8.GetBytes(claimsJson));
        return input + "." + TestTokenIssuer.Encode(issuer.Key(issuer.CurrentKid).SignData(Encoding.ASCII.GetBytes(input), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1));
    }

    private static string ClaimsJson(TestTokenIssuer issuer, string email)
    {
        var now = TimeProvider.System.GetUtcNow().ToUnixTimeSeconds();
        return $$"""{"iss":"{{issuer.Issuer}}","aud":"{{Callback}}","email":"{{email}}","email_verified":true,"iat":{{now}},"exp":{{now + 3600}}}""";
    }

    private static CallbackRequest Raw(TestTokenIssuer issuer, string? headerJson, Func<string, string> editClaims)
    {
        var token = RawToken(issuer, headerJson ?? $$"""{"alg":"RS256","kid":"{{issuer.CurrentKid}}"}""", editClaims(ClaimsJson(issuer, OrdersInvoker)));
        return new CallbackRequest(Headers(("Authorization", "Bearer " + token), ("X-CloudTasks-QueueName", "orders"), ("X-CloudTasks-TaskName", "t1")), "{}"u8.ToArray(), null);
    }

    private static CallbackRequest Dispatch(TestTokenIssuer issuer, params (string, string)[] headers) => new(
        Headers([("Authorization", "Bearer " + issuer.Mint(TestTokenIssuer.Claims(issuer.Issuer, Callback, OrdersInvoker))), ("X-CloudTasks-QueueName", "orders"), ("X-CloudTasks-TaskName", "t1"), .. headers]),
        "{}"u8.ToArray(),
        "application/json");

    private static CallbackRequest Report(TestTokenIssuer issuer, string json) => new(
        Headers(("Authorization", "Bearer " + issuer.Mint(TestTokenIssuer.Claims(issuer.Issuer, Callback, OrdersWorker)))),
        Encoding.UTF8.GetBytes(json),
        "application/json");

    public static TheoryData<BadCall> BadCalls() =>
    [
        new("lone surrogate in the token's email", i => Raw(i, null, c => c.Replace(OrdersInvoker, "orders-invoker\\ud800@p.iam.gserviceaccount.com", StringComparison.Ordinal)), 401, nameof(TokenRejection.Malformed)),
        new("lone surrogate in the token's issuer", i => Raw(i, null, c => c.Replace("\"iss\":\"", "\"iss\":\"\\udfff", StringComparison.Ordinal)), 401, nameof(TokenRejection.Malformed)),
        new("lone surrogate in the token's audience list", i => Raw(i, null, c => c.Replace($"\"aud\":\"{Callback}\"", $"\"aud\":[\"{Callback}\",\"\\ud83d\"]", StringComparison.Ordinal)), 401, nameof(TokenRejection.Malformed)),
        new("lone surrogate in the token header's kid", i => Raw(i, """{"alg":"RS256","kid":"k\ud800"}""", c => c), 401, nameof(TokenRejection.Malformed)),
        new("lone surrogate in the token header's alg", i => Raw(i, """{"alg":"RS256\udc00","kid":"k"}""", c => c), 401, nameof(TokenRejection.Malformed)),
        new("lone surrogate in a report's taskName", i => Report(i, """{"taskName":"projects/p/locations/l/queues/orders/tasks/t\ud800","status":"succeeded"}"""), 400, "InvalidReport"),
        new("lone surrogate in a report's detail", i => Report(i, """{"taskName":"projects/p/locations/l/queues/orders/tasks/t1","status":"failed","detail":"card \udc00 declined"}"""), 400, "InvalidReport"),
        new("lone surrogate in a report's status", i => Report(i, """{"taskName":"projects/p/locations/l/queues/orders/tasks/t1","status":"\ud800"}"""), 400, "InvalidReport"),
        new("a report that is a JSON array", i => Report(i, "[1]"), 400, "InvalidReport"),
        new("X-CloudTasks-TaskETA that overflows the clock", i => Dispatch(i, ("X-CloudTasks-TaskETA", "300000000000000.5")), 400, "InvalidTaskEta"),
        new("X-CloudTasks-TaskETA that overflows a decimal", i => Dispatch(i, ("X-CloudTasks-TaskETA", "9" + new string('9', 40))), 400, "InvalidTaskEta"),
        new("X-CloudTasks-TaskETA in exponent form", i => Dispatch(i, ("X-CloudTasks-TaskETA", "1e30")), 400, "InvalidTaskEta"),
        new("X-CloudTasks-TaskETA that is negative", i => Dispatch(i, ("X-CloudTasks-TaskETA", "-5")), 400, "InvalidTaskEta"),
        new("task name with a slash", i => Dispatch(i, ("X-CloudTasks-TaskName", "a/b")), 400, "InvalidTaskName"),
        new("task name that walks up", i => Dispatch(i, ("X-CloudTasks-TaskName", "../../queues/billing/tasks/x")), 400, "InvalidTaskName"),
        new("empty task name", i => Dispatch(i, ("X-CloudTasks-TaskName", "")), 400, "InvalidTaskName"),
        new("task name over 500 characters", i => Dispatch(i, ("X-CloudTasks-TaskName", new string('a', 501))), 400, "InvalidTaskName"),
        new("dispatch without a queue", i => Dispatch(i, ("X-CloudTasks-QueueName", "")), 400, "InvalidDispatch"),
        new("task instance that is not letters and digits", i => Dispatch(i, ("X-Bridge-Task-Instance", "a b")), 400, "InvalidTaskInstance"),
    ];

    [Theory]
    [MemberData(nameof(BadCalls))]
    public async Task Malformed_calls_answer_4xx_naming_the_problem(BadCall bad)
    {
        var response = await _receiver.HandleAsync((CallbackRequest)bad.Request(_issuer));

        Assert.Equal(bad.Status, response.Status);
        Assert.Equal(bad.Reason, response.Reason);
        if (bad.Status == 400)
        {
            Assert.False(string.IsNullOrEmpty(response.Detail));
        }

        Assert.Empty(_sink.Published);
    }

    [Fact]
    public async Task The_body_is_not_read_before_the_token_is_verified()
    {
        var read = false;
        var response = await _receiver.HandleAsync(
            Headers(("Authorization", "Bearer not.a.token"), ("X-CloudTasks-QueueName", "orders"), ("X-CloudTasks-TaskName", "t1")),
            "application/json",
            _ =>
            {
                read = true;
                return Task.FromResult<ReadOnlyMemory<byte>?>("{}"u8.ToArray());
            });

        Assert.Equal(401, response.Status);
        Assert.False(read);
    }

    /// <summary>
    /// The audience cells: two routes signed as the same account, each with its own audience the callback accepts. A
    /// dispatch for one route with a token minted for the other is refused.
    /// </summary>
    [Theory]
    [InlineData("orders", Callback, 200, null)]
    [InlineData("audit", AuditAudience, 200, null)]
    [InlineData("orders", AuditAudience, 403, nameof(CallbackRefusal.NotTheRouteAudience))]
    [InlineData("audit", Callback, 403, nameof(CallbackRefusal.NotTheRouteAudience))]
    public async Task A_dispatch_must_carry_its_own_routes_audience(string queue, string audience, int status, string? reason)
    {
        var callback = new CallbackOptions
        {
            Issuers = [new TrustedIssuer { Issuer = _issuer.Issuer, DiscoveryUrl = _issuer.DiscoveryUrl }],
            PublicUrl = Callback,
            Audiences = [Callback, AuditAudience],
            AllowedServiceAccounts = [OrdersInvoker],
        };
        var bridge = new BridgeOptions();
        bridge.Routes["orders"] = new RouteOptions { Queue = "projects/p/locations/l/queues/orders", TargetUrl = Callback, ServiceAccountEmail = OrdersInvoker };
        bridge.Routes["audit"] = new RouteOptions { Queue = "projects/p/locations/l/queues/audit", TargetUrl = "https://audit.example.com/run", Audience = AuditAudience, ServiceAccountEmail = OrdersInvoker };
        var options = Options.Create(callback);
        var sink = new RecordingSink();
        var receiver = new CallbackReceiver(new OidcTokenVerifier(options, TimeProvider.System), sink, options, TimeProvider.System, NullLogger<CallbackReceiver>.Instance, new RouteTable(bridge));

        var response = await receiver.HandleAsync(new CallbackRequest(
            Headers(("Authorization", "Bearer " + _issuer.Mint(TestTokenIssuer.Claims(_issuer.Issuer, audience, OrdersInvoker))), ("X-CloudTasks-QueueName", queue), ("X-CloudTasks-TaskName", "t1")),
            "{}"u8.ToArray(),
            "application/json"));

        Assert.Equal(status, response.Status);
        Assert.Equal(reason, response.Reason);
        Assert.Equal(status == 200 ? 1 : 0, sink.Published.Count);
    }
}
