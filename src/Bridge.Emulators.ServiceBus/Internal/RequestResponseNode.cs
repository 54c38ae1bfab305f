using System.Collections.Concurrent;
using Microsoft.Azure.Amqp;
using Microsoft.Azure.Amqp.Framing;
using Microsoft.Extensions.Logging;

namespace Bridge.Emulators.ServiceBus.Internal;

/// <summary>
/// An AMQP request/response node ($cbs, $management): requests arrive on one link, each answer goes back on the link
/// whose target is the request's reply-to, correlated by the request's message id.
/// </summary>
internal sealed partial class RequestResponseNode(Func<AmqpLink, AmqpMessage, AmqpMessage> handle, ILogger logger)
{
    const uint RequestCredit = 50;
    readonly ConcurrentDictionary<string, SendingAmqpLink> replyLinks = new(StringComparer.Ordinal);

    public void Attach(AmqpLink link)
    {
        if (link is ReceivingAmqpLink requests)
        {
            requests.RegisterMessageListener(request => OnRequest(requests, request));
            requests.SetTotalLinkCredit(RequestCredit, true, true);
            return;
        }

        var replies = (SendingAmqpLink)link;
        // The .NET SDK names the reply address as the link's target; the Node.js SDK (rhea) leaves the target out and
        // uses the link's name as the request's reply-to, which Service Bus accepts too.
        var replyTo = (replies.Settings.Target as Target)?.Address?.ToString() ?? replies.Settings.LinkName;
        var key = replyTo is null ? null : Key(replies, replyTo);
        if (key is null || !replyLinks.TryAdd(key, replies))
        {
            throw new AmqpException(AmqpErrorCode.NotAllowed, "A reply link needs a target address of its own.");
        }

        replies.SafeAddClosed((_, _) => replyLinks.TryRemove(new KeyValuePair<string, SendingAmqpLink>(key, replies)));
    }

    // Reply addresses are the client's to choose: scoped to its connection so no one else can take them.
    static string Key(AmqpLink link, string replyTo) => $"{link.Session.Connection.Identifier}|{replyTo}";

    void OnRequest(ReceivingAmqpLink link, AmqpMessage request)
    {
        try
        {
            var replyTo = request.Properties?.ReplyTo?.ToString();
            // Settles the request (if the client did not) and hands its credit back: without it a link stopped at its
            // 51st request (a peek, a lock renewal) and the client timed out.
            link.DisposeMessage(request, AmqpConstants.AcceptedOutcome, true, false);

            if (replyTo is null || !replyLinks.TryGetValue(Key(link, replyTo), out var replies))
            {
                return;
            }

            AmqpMessage response;
            try
            {
                response = handle(link, request);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // A request the node cannot read gets a 400 naming the problem, never a dropped link.
                Log.BadRequest(logger, e.GetType().Name);
                response = ManagementOperations.Error(400, "com.microsoft:argument-error", $"The request could not be processed: {e.Message}");
            }

            response.Properties.CorrelationId = request.Properties!.MessageId;
            replies.SendMessageNoWait(response, new ArraySegment<byte>(Guid.NewGuid().ToByteArray()), AmqpConstants.NullBinary);
        }
        catch (Exception e) when (e is InvalidOperationException or ObjectDisposedException or AmqpException)
        {
            Log.ReplyFailed(logger, e.GetType().Name);
        }
        finally
        {
            request.Dispose();
        }
    }

    static partial class Log
    {
        [LoggerMessage(EventId = 20, Level = LogLevel.Information, Message = "Request refused: {Error}")]
        public static partial void BadRequest(ILogger logger, string error);

        [LoggerMessage(EventId = 21, Level = LogLevel.Debug, Message = "Reply not sent: {Error}")]
        public static partial void ReplyFailed(ILogger logger, string error);
    }
}
