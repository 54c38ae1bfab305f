using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Azure.Storage.Blobs;
using Bridge.Testing;
using Microsoft.Extensions.Options;

namespace Bridge.Server.Tests;

/// <summary>
/// The runner with a payload store, as configured from settings: a 300 KB event goes through the embedded Cloud Tasks
/// emulator's real dispatch to the callback, and its outcome reaches the Service Bus outcome sink (the Service Bus
/// emulator) by reference to a blob in Azurite that holds the exact bytes.
/// </summary>
public sealed class PayloadStoreRunnerTests
{
    [Fact]
    public async Task A_300_KB_delivered_payload_reaches_the_outcome_sink_by_reference()
    {
        await using var azurite = await Azurite.StartAsync();
        var container = new BlobContainerClient(azurite.ConnectionString, "payloads");
        await container.CreateAsync();
        await using var runner = await ServiceBusOutcomeRunner.StartAsync(
            $"--Bridge:Outcomes:PayloadStore:ConnectionString={azurite.ConnectionString}",
            "--Bridge:Outcomes:PayloadStore:Container=payloads");
        var (client, server) = (runner.Client, runner.Server);
        var filler = new byte[225 * 1024];
        new Random(13).NextBytes(filler);
        var body = $"{{\"order\":1,\"attachment\":\"{Convert.ToBase64String(filler)}\"}}"; // 300 KB of JSON
        var bytes = Encoding.UTF8.GetBytes(body);
        Assert.InRange(bytes.Length, 300 * 1024, 301 * 1024);

        Assert.Equal(HttpStatusCode.Accepted, (await server.PostEventAsync(body, "big-1")).StatusCode);
        await server.WaitForOutcomesAsync(1); // the Local sink has it, so every sink has it

        await using var receiver = client.CreateReceiver(ServiceBusOutcomeRunner.OutcomeQueue);
        var message = Assert.Single(await receiver.PeekMessagesAsync(10, fromSequenceNumber: 0));
        Assert.True(message.Body.ToMemory().Length < 64 * 1024);
        var data = JsonDocument.Parse(message.Body.ToString()).RootElement.GetProperty("data");
        Assert.Equal("delivered", data.GetProperty("status").GetString());
        Assert.Equal(JsonValueKind.Null, data.GetProperty("payload").ValueKind);
        Assert.Equal(bytes.Length, data.GetProperty("payloadSize").GetInt32());
        var sha256 = Convert.ToHexStringLower(SHA256.HashData(bytes));
        Assert.Equal(sha256, data.GetProperty("payloadSha256").GetString());

        var uri = new Uri(data.GetProperty("payloadUri").GetString()!);
        Assert.Empty(uri.Query);
        var blobs = new List<string>();
        await foreach (var item in container.GetBlobsAsync())
        {
            blobs.Add(item.Name);
        }

        var name = Assert.Single(blobs);
        Assert.EndsWith("/payloads/" + name, uri.AbsolutePath, StringComparison.Ordinal);
        var stored = (await container.GetBlobClient(name).DownloadContentAsync()).Value.Content.ToArray();
        Assert.Equal(sha256, Convert.ToHexStringLower(SHA256.HashData(stored)));
        Assert.Equal(bytes, stored);
    }

    [Fact]
    public async Task A_half_configured_payload_store_stops_the_start_naming_the_key()
    {
        await using var app = BridgeServerApp.Build(["--Bridge:Server:Port=0", "--Bridge:Server:EmulatorGrpcPort=0", "--Bridge:Server:ServiceBusPort=0", "--Bridge:Outcomes:PayloadStore:Container=payloads", "--environment=Testing"]);

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => app.StartAsync());

        Assert.Contains(error.Failures, f => f.Contains("Bridge:Outcomes:PayloadStore needs Bridge:Outcomes:PayloadStore:BlobServiceUri", StringComparison.Ordinal));
    }
}
