using Azure.Messaging.ServiceBus;

namespace Bridge.Emulators.ServiceBus.Tests;

/// <summary>One receiver's $management link carries any number of requests, not just the first credit's worth.</summary>
public sealed class ManagementLinkCreditTests
{
    [Fact]
    public async Task A_receiver_can_peek_many_more_times_than_the_request_links_credit()
    {
        await using var f = EmulatorFixture.Start();
        await using var sender = f.Client.CreateSender("orders");
        await sender.SendMessageAsync(new ServiceBusMessage("one"));
        await using var receiver = f.Client.CreateReceiver("orders");

        for (var i = 0; i < 200; i++)
        {
            IReadOnlyList<ServiceBusReceivedMessage> peeked;
            try
            {
                peeked = await receiver.PeekMessagesAsync(1, fromSequenceNumber: 0);
            }
            catch (ServiceBusException e)
            {
                throw new InvalidOperationException($"Peek {i} failed.", e);
            }

            Assert.Equal("one", Assert.Single(peeked).Body.ToString());
        }
    }
}
