using Azure.Messaging.ServiceBus;

namespace Bridge.Emulators.ServiceBus.Tests;

public sealed class SendReceiveTests
{
    [Fact]
    public async Task A_message_sent_with_the_official_client_is_received_with_its_properties()
    {
        await using var f = EmulatorFixture.Start();
        await using var sender = f.Client.CreateSender("orders");
        var sent = new ServiceBusMessage(BinaryData.FromString("hello"))
        {
            MessageId = "m-1",
            CorrelationId = "c-1",
            Subject = "greeting",
            ContentType = "text/plain",
            ApplicationProperties = { ["tenant"] = "t1", ["attempt"] = 3 },
        };
        await sender.SendMessageAsync(sent);

        await using var receiver = f.Client.CreateReceiver("orders");
        var received = await receiver.ReceiveMessageAsync(EmulatorFixture.Wait);

        Assert.NotNull(received);
        Assert.Equal("hello", received.Body.ToString());
        Assert.Equal("m-1", received.MessageId);
        Assert.Equal("c-1", received.CorrelationId);
        Assert.Equal("greeting", received.Subject);
        Assert.Equal("text/plain", received.ContentType);
        Assert.Equal("t1", received.ApplicationProperties["tenant"]);
        Assert.Equal(3, received.ApplicationProperties["attempt"]);
        Assert.Equal(1, received.DeliveryCount);
        Assert.True(received.SequenceNumber > 0);
        Assert.NotEqual(default, received.EnqueuedTime);
        Assert.True(received.LockedUntil > received.EnqueuedTime);
        Assert.NotEqual(Guid.Empty.ToString(), received.LockToken);
        await receiver.CompleteMessageAsync(received);

        Assert.Null(await receiver.ReceiveMessageAsync(TimeSpan.FromSeconds(1)));
    }
}
