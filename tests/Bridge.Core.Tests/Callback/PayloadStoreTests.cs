using System.Security.Cryptography;
using System.Text.Json;
using Azure.Messaging.ServiceBus;
using Azure.Storage.Blobs;
using Bridge.Core.Callback;
using Bridge.Core.Internal;
using Bridge.Core.Routing;
using Bridge.Emulators.ServiceBus;
using Bridge.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Bridge.Core.Tests.Callback;

/// <summary>
/// Payloads too large for an outcome, end to end on real peers: the callback receiver with real RS256 tokens, the
/// payload store on Azurite (from npm), the Service Bus outcome sink on the Service Bus emulator with duplicate
/// detection. The outcome carries the blob's URI, size and SHA-256; the blob holds the exact bytes.
/// </summary>
public sealed class PayloadStoreTests : IAsyncLifetime
{
    private const string Callback = "https://bridge.example.com/api/tasks/callback";
    private const string Invoker = "orders-invoker@p.iam.gserviceaccount.com";
    private const string OutcomeQueue = "outcomes";
    private const string Container = "payloads";

    private Azurite _azurite = null!;
    private TestTokenIssuer _issuer = null!;
    private ServiceBusEmulator _bus = null!;
    private ServiceBusClient _client = null!;
    private ServiceBusSender _sender = null!;
    private BlobContainerClient _container = null!;

    public async Task InitializeAsync()
    {
        _azurite = await Azurite.StartAsync();
        _issuer = await TestTokenIssuer.StartAsync();
        var options = new ServiceBusEmulatorOptions { Port = 0 };
        options.Queues.Add(new QueueDefinition { Name = OutcomeQueue, Properties = { RequiresDuplicateDetection = true } });
        _bus = ServiceBusEmulator.Start(options);
        _client = new ServiceBusClient(_bus.ConnectionString);
        _sender = _client.CreateSender(OutcomeQueue);
        _container = new BlobContainerClient(_azurite.ConnectionString, Container);
        await _container.CreateAsync();
    }

    public async Task DisposeAsync()
    {
        await _sender.DisposeAsync();
        await _client.DisposeAsync();
        await _bus.DisposeAsync();
        await _issuer.DisposeAsync();
        await _azurite.DisposeAsync();
    }

    private CallbackReceiver Receiver(BlobPayloadStore? store)
    {
        var callback = Options.Create(new CallbackOptions
        {
            Issuers = [new TrustedIssuer { Issuer = _issuer.Issuer, DiscoveryUrl = _issuer.DiscoveryUrl }],
            PublicUrl = Callback,
            AllowedServiceAccounts = [Invoker],
            DefaultMaxAttempts = 5,
        });
        var bridge = new BridgeOptions();
        bridge.Routes["orders"] = new RouteOptions { Queue = "projects/p/locations/l/queues/orders", TargetUrl = Callback, ServiceAccountEmail = Invoker };
        return new CallbackReceiver(
            new OidcTokenVerifier(callback, TimeProvider.System),
            new ServiceBusOutcomeSink(_sender),
            callback,
            TimeProvider.System,
            NullLogger<CallbackReceiver>.Instance,
            new RouteTable(bridge),
            outcomes: Options.Create(new OutcomeOptions()),
            payloads: store);
    }

    private BlobPayloadStore Store(string container = Container, string? connectionString = null) =>
        BlobPayloadStore.Create(new PayloadStoreOptions { ConnectionString = connectionString ?? _azurite.ConnectionString, Container = container }, managedIdentityClientId: null);

    private Task<CallbackResponse> DispatchAsync(CallbackReceiver receiver, byte[] payload, int retryCount = 0, string task = "big") =>
        receiver.HandleAsync(new CallbackRequest(
            CallbackAuthorizationTests.Headers(
                ("Authorization", "Bearer " + _issuer.Mint(TestTokenIssuer.Claims(_issuer.Issuer, Callback, Invoker))),
                ("X-CloudTasks-QueueName", "orders"),
                ("X-CloudTasks-TaskName", task),
                ("X-CloudTasks-TaskRetryCount", retryCount.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                ("X-CloudTasks-TaskExecutionCount", retryCount.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                (EventForwarder.TaskInstanceHeader, "inst1")),
            payload,
            "application/octet-stream"));

    private static byte[] Payload(int seed)
    {
        var payload = new byte[300 * 1024];
        new Random(seed).NextBytes(payload);
        return payload;
    }

    private async Task<IReadOnlyList<ServiceBusReceivedMessage>> PeekAllAsync()
    {
        await using var receiver = _client.CreateReceiver(OutcomeQueue);
        return await receiver.PeekMessagesAsync(100, fromSequenceNumber: 0);
    }

    private async Task<List<string>> BlobNamesAsync()
    {
        var names = new List<string>();
        await foreach (var blob in _container.GetBlobsAsync())
        {
            names.Add(blob.Name);
        }

        return names;
    }

    private static JsonElement Data(ServiceBusReceivedMessage message) =>
        JsonDocument.Parse(message.Body.ToString()).RootElement.GetProperty("data").Clone();

    [Fact]
    public async Task A_300_KB_payload_reaches_the_Service_Bus_sink_by_reference_and_the_blob_holds_its_exact_bytes()
    {
        var payload = Payload(1);
        var sha256 = Convert.ToHexStringLower(SHA256.HashData(payload));

        var response = await DispatchAsync(Receiver(Store()), payload);

        Assert.Equal(200, response.Status);
        var message = Assert.Single(await PeekAllAsync());
        Assert.True(message.Body.ToMemory().Length < 64 * 1024); // the reference, not the bytes
        var data = Data(message);
        Assert.Equal(JsonValueKind.Null, data.GetProperty("payload").ValueKind);
        Assert.Equal(payload.Length, data.GetProperty("payloadSize").GetInt32());
        Assert.Equal(sha256, data.GetProperty("payloadSha256").GetString());
        Assert.Equal("application/octet-stream", data.GetProperty("payloadContentType").GetString());
        Assert.Contains("stored at payloadUri", data.GetProperty("payloadNote").GetString(), StringComparison.Ordinal);

        var uri = new Uri(data.GetProperty("payloadUri").GetString()!);
        Assert.Empty(uri.Query); // no SAS, no key in an outcome
        var blobName = Assert.Single(await BlobNamesAsync());
        Assert.Equal($"{response.OutcomeId}/{sha256}", blobName);
        Assert.EndsWith($"/{Container}/{blobName}", uri.AbsolutePath, StringComparison.Ordinal);
        var blob = _container.GetBlobClient(blobName);
        var stored = (await blob.DownloadContentAsync()).Value;
        Assert.Equal(sha256, Convert.ToHexStringLower(SHA256.HashData(stored.Content.ToMemory().Span)));
        Assert.True(stored.Content.ToMemory().Span.SequenceEqual(payload));
        Assert.Equal("application/octet-stream", stored.Details.ContentType);
        Assert.Equal(sha256, stored.Details.Metadata[BlobPayloadStore.Sha256Metadata]);
    }

    [Fact]
    public async Task A_redelivered_callback_creates_neither_a_second_blob_nor_a_second_outcome()
    {
        var receiver = Receiver(Store());
        var payload = Payload(2);
        var first = await DispatchAsync(receiver, payload);
        var blob = _container.GetBlobClient(Assert.Single(await BlobNamesAsync()));
        var written = (await blob.GetPropertiesAsync()).Value.ETag;

        var again = await DispatchAsync(receiver, payload, retryCount: 1);

        Assert.Equal(200, again.Status);
        Assert.Equal(first.OutcomeId, again.OutcomeId);
        Assert.Single(await BlobNamesAsync());
        Assert.Equal(written, (await blob.GetPropertiesAsync()).Value.ETag); // not rewritten either
        Assert.Single(await PeekAllAsync()); // duplicate detection dropped the repeat

        // Another task's payload is a blob and an outcome of its own.
        Assert.Equal(200, (await DispatchAsync(receiver, Payload(3), task: "other")).Status);
        Assert.Equal(2, (await BlobNamesAsync()).Count);
        Assert.Equal(2, (await PeekAllAsync()).Count);
    }

    [Fact]
    public async Task While_the_store_fails_the_callback_answers_503_and_publishes_nothing_then_the_retry_delivers()
    {
        var receiver = Receiver(Store(container: "not-created-yet"));
        var payload = Payload(4);

        var refused = await DispatchAsync(receiver, payload);

        Assert.Equal(503, refused.Status);
        Assert.Equal("PayloadStoreUnavailable", refused.Reason);
        Assert.NotNull(refused.RetryAfter);
        Assert.Empty(await PeekAllAsync()); // no outcome pointing at a blob that is not there

        // The store comes back (here: the container is created); Cloud Tasks' retry of the same task goes through.
        var late = new BlobContainerClient(_azurite.ConnectionString, "not-created-yet");
        await late.CreateAsync();
        var retried = await DispatchAsync(receiver, payload, retryCount: 1);

        Assert.Equal(200, retried.Status);
        var data = Data(Assert.Single(await PeekAllAsync()));
        var stored = (await late.GetBlobClient(new Uri(data.GetProperty("payloadUri").GetString()!).Segments[^2..].Aggregate(string.Concat)).DownloadContentAsync()).Value;
        Assert.True(stored.Content.ToMemory().Span.SequenceEqual(payload));
    }

    [Fact]
    public async Task With_the_store_down_on_the_last_attempt_the_outcome_is_published_with_size_and_digest_saying_why()
    {
        var down = await Azurite.StartAsync();
        var receiver = Receiver(Store(connectionString: down.ConnectionString, container: Container));
        await down.DisposeAsync(); // killed: connections are refused
        var payload = Payload(5);

        Assert.Equal(503, (await DispatchAsync(receiver, payload, retryCount: 0)).Status);
        Assert.Empty(await PeekAllAsync());

        var last = await DispatchAsync(receiver, payload, retryCount: 4); // DefaultMaxAttempts 5: no retry follows

        Assert.Equal(200, last.Status);
        var data = Data(Assert.Single(await PeekAllAsync()));
        Assert.Equal(JsonValueKind.Null, data.GetProperty("payload").ValueKind);
        Assert.False(data.TryGetProperty("payloadUri", out var uri) && uri.ValueKind != JsonValueKind.Null);
        Assert.Equal(payload.Length, data.GetProperty("payloadSize").GetInt32());
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(payload)), data.GetProperty("payloadSha256").GetString());
        Assert.Contains("payload store failed on the task's last attempt", data.GetProperty("payloadNote").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task With_no_store_configured_the_outcome_carries_size_and_digest_and_says_so()
    {
        var payload = Payload(6);

        Assert.Equal(200, (await DispatchAsync(Receiver(store: null), payload)).Status);

        var data = Data(Assert.Single(await PeekAllAsync()));
        Assert.Equal(JsonValueKind.Null, data.GetProperty("payload").ValueKind);
        Assert.Equal(JsonValueKind.Null, data.GetProperty("payloadUri").ValueKind);
        Assert.Equal(payload.Length, data.GetProperty("payloadSize").GetInt32());
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(payload)), data.GetProperty("payloadSha256").GetString());
        Assert.Contains("no payload store is configured", data.GetProperty("payloadNote").GetString(), StringComparison.Ordinal);
        Assert.Empty(await BlobNamesAsync());
    }

    [Fact]
    public async Task A_payload_within_the_inline_limit_is_carried_inline_and_not_stored()
    {
        var payload = "{\"order\":1}"u8.ToArray();

        Assert.Equal(200, (await DispatchAsync(Receiver(Store()), payload)).Status);

        var data = Data(Assert.Single(await PeekAllAsync()));
        Assert.Equal(payload, data.GetProperty("payload").GetBytesFromBase64());
        Assert.Equal(JsonValueKind.Null, data.GetProperty("payloadUri").ValueKind);
        Assert.Empty(await BlobNamesAsync());
    }

    [Fact]
    public void The_store_is_created_from_configuration_only_when_configured()
    {
        static CallbackReceiver Build(params (string, string?)[] settings)
        {
            var configuration = new ConfigurationBuilder().AddInMemoryCollection(
                new Dictionary<string, string?>(settings.Select(s => KeyValuePair.Create(s.Item1, s.Item2)))
                {
                    ["Bridge:Callback:AllowedServiceAccounts:0"] = Invoker,
                    ["Bridge:Callback:PublicUrl"] = Callback,
                }).Build();
            var services = new ServiceCollection().AddLogging().AddBridgeCallback(configuration).BuildServiceProvider();
            return services.GetRequiredService<CallbackReceiver>();
        }

        Assert.Null(Build().PayloadStore);
        var store = Build(("Bridge:Outcomes:PayloadStore:BlobServiceUri", "https://account.blob.core.windows.net"), ("Bridge:Outcomes:PayloadStore:Container", "payloads")).PayloadStore;
        Assert.Equal(new Uri("https://account.blob.core.windows.net/payloads"), store?.ContainerUri);
    }
}
