using System.Net.Sockets;
using Azure.Messaging.ServiceBus;

namespace Bridge.Emulators.ServiceBus.Tests;

public sealed class ErrorTests
{
    [Fact]
    public async Task A_connection_string_with_the_wrong_key_is_refused()
    {
        await using var f = EmulatorFixture.Start();
        var wrong = f.Emulator.ConnectionString.Replace("SharedAccessKey=SAS_KEY_VALUE", "SharedAccessKey=not-the-key", StringComparison.Ordinal);
        await using var client = new ServiceBusClient(wrong, new ServiceBusClientOptions { RetryOptions = new ServiceBusRetryOptions { MaxRetries = 0, TryTimeout = TimeSpan.FromSeconds(20) } });
        await using var sender = client.CreateSender("orders");

        await Assert.ThrowsAsync<UnauthorizedAccessException>(() => sender.SendMessageAsync(new ServiceBusMessage("x")));
        await using var receiver = client.CreateReceiver("orders");
        await Assert.ThrowsAsync<UnauthorizedAccessException>(() => receiver.PeekMessageAsync());
    }

    [Fact]
    public async Task Another_key_configured_on_the_emulator_is_the_one_checked()
    {
        await using var f = EmulatorFixture.Start(o => o.SasKey = "c2VjcmV0LWtleQ==");
        Assert.Contains("SharedAccessKey=c2VjcmV0LWtleQ==", f.Emulator.ConnectionString, StringComparison.Ordinal);
        await using var sender = f.Client.CreateSender("orders");
        await sender.SendMessageAsync(new ServiceBusMessage("x"));

        var placeholder = f.Emulator.ConnectionString.Replace("c2VjcmV0LWtleQ==", "SAS_KEY_VALUE", StringComparison.Ordinal);
        await using var client = new ServiceBusClient(placeholder, new ServiceBusClientOptions { RetryOptions = new ServiceBusRetryOptions { MaxRetries = 0 } });
        await using var refused = client.CreateSender("orders");
        await Assert.ThrowsAsync<UnauthorizedAccessException>(() => refused.SendMessageAsync(new ServiceBusMessage("x")));
    }

    [Fact]
    public async Task Unknown_entities_are_reported_as_MessagingEntityNotFound()
    {
        await using var f = EmulatorFixture.Start();
        await using var sender = f.Client.CreateSender("no-such-queue");
        var send = await Assert.ThrowsAsync<ServiceBusException>(() => sender.SendMessageAsync(new ServiceBusMessage("x")));
        Assert.Equal(ServiceBusFailureReason.MessagingEntityNotFound, send.Reason);

        await using var receiver = f.Client.CreateReceiver("no-such-queue");
        var receive = await Assert.ThrowsAsync<ServiceBusException>(() => receiver.ReceiveMessageAsync(TimeSpan.FromSeconds(5)));
        Assert.Equal(ServiceBusFailureReason.MessagingEntityNotFound, receive.Reason);
    }

    [Fact]
    public async Task A_message_over_the_size_limit_is_refused_with_MessageSizeExceeded()
    {
        await using var f = EmulatorFixture.Start();
        await using var sender = f.Client.CreateSender("orders");
        var tooBig = await Assert.ThrowsAsync<ServiceBusException>(() => sender.SendMessageAsync(new ServiceBusMessage(new byte[300 * 1024])));
        Assert.Equal(ServiceBusFailureReason.MessageSizeExceeded, tooBig.Reason);

        await sender.SendMessageAsync(new ServiceBusMessage(new byte[200 * 1024]));
        await using var receiver = f.Client.CreateReceiver("orders");
        Assert.Equal(200 * 1024, (await receiver.ReceiveMessageAsync(EmulatorFixture.Wait)).Body.ToArray().Length);
    }

    [Theory]
    [InlineData("garbage")]
    [InlineData("header-then-garbage")]
    [InlineData("truncated-open")]
    public async Task Bad_frames_close_that_connection_and_the_endpoint_keeps_serving(string kind)
    {
        await using var f = EmulatorFixture.Start();
        using (var tcp = new TcpClient())
        {
            await tcp.ConnectAsync("127.0.0.1", f.Emulator.Port);
            var stream = tcp.GetStream();
            byte[] bytes = kind switch
            {
                "garbage" => "GET / HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray(),
                "header-then-garbage" => [.. "AMQP"u8.ToArray(), 0, 1, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 2, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8],
                _ => [.. "AMQP"u8.ToArray(), 0, 1, 0, 0, 0, 0, 0, 0x40, 2, 0, 0, 0, 0, 0x53, 0x10, 0xC0],
            };
            await stream.WriteAsync(bytes);
            // A client that stops mid-frame: the server sees the end of the stream and must let go of the connection.
            tcp.Client.Shutdown(SocketShutdown.Send);
            var buffer = new byte[256];
            using var timeout = new CancellationTokenSource(EmulatorFixture.Wait);
            try
            {
                // The server answers with its protocol header and/or closes; either way the read ends.
                while (await stream.ReadAsync(buffer, timeout.Token) > 0)
                {
                }
            }
            catch (IOException)
            {
            }
        }

        await using var sender = f.Client.CreateSender("orders");
        await sender.SendMessageAsync(new ServiceBusMessage("still here"));
        await using var receiver = f.Client.CreateReceiver("orders");
        Assert.Equal("still here", (await receiver.ReceiveMessageAsync(EmulatorFixture.Wait)).Body.ToString());
    }
}
