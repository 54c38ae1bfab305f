using System.Net;
using System.Runtime.CompilerServices;
using Microsoft.Azure.Amqp;
using Microsoft.Azure.Amqp.Framing;
using Microsoft.Azure.Amqp.Sasl;
using Microsoft.Azure.Amqp.Transport;
using Microsoft.Extensions.Logging;

namespace Bridge.Emulators.ServiceBus.Internal;

/// <summary>
/// The AMQP side: accepts connections (SASL ANONYMOUS or MSSBCBS, then AMQP 1.0), authorizes links with the CBS
/// grants of their connection, and attaches each link to the broker: senders to queues and topics, receivers to queues,
/// subscriptions and dead-letter queues, request/response pairs to <c>$cbs</c> and <c>&lt;entity&gt;/$management</c>.
/// </summary>
internal sealed partial class AmqpEndpoint : IRuntimeProvider, IDisposable
{
    public const string CbsAddress = "$cbs";
    public const string ManagementSuffix = "/$management";
    const uint ConnectionIdleTimeoutMs = 120_000;
    const int MaxConnections = 1000;

    readonly Broker broker;
    readonly ServiceBusEmulatorFaults faults;
    readonly SasTokenValidator tokens;
    readonly ServiceBusEmulatorOptions options;
    readonly TimeProvider time;
    readonly ILogger logger;
    readonly ConditionalWeakTable<AmqpConnection, List<SasTokenValidator.Grant>> grants = new();
    readonly HashSet<AmqpConnection> connections = [];
    readonly RequestResponseNode cbs;
    readonly RequestResponseNode management;
    SocketTransportListener? socketListener;
    AmqpTransportListener? listener;
    AmqpSettings? settings;

    public AmqpEndpoint(Broker broker, ServiceBusEmulatorFaults faults, SasTokenValidator tokens, ServiceBusEmulatorOptions options, TimeProvider time, ILogger logger)
    {
        this.broker = broker;
        this.faults = faults;
        this.tokens = tokens;
        this.options = options;
        this.time = time;
        this.logger = logger;
        cbs = new RequestResponseNode(HandleCbs, logger);
        management = new RequestResponseNode((link, request) => new ManagementOperations(broker).Handle(EntityOf(link), request), logger);
    }

    public int Port => socketListener?.Port ?? 0;

    public void Start()
    {
        var address = string.Equals(options.ListenAddress, "localhost", StringComparison.OrdinalIgnoreCase) ? IPAddress.Loopback : IPAddress.Parse(options.ListenAddress);
        socketListener = new SocketTransportListener(address, options.Port);
        settings = new AmqpSettings { RuntimeProvider = this };
        var sasl = new SaslTransportProvider();
        sasl.Versions.Add(new AmqpVersion(1, 0, 0));
        sasl.AddHandler(new SaslAnonymousHandler());
        sasl.AddHandler(new SaslAnonymousHandler("MSSBCBS"));
        settings.TransportProviders.Add(sasl);
        var amqp = new AmqpTransportProvider();
        amqp.Versions.Add(new AmqpVersion(1, 0, 0));
        settings.TransportProviders.Add(amqp);
        listener = new AmqpTransportListener([socketListener], settings);
        listener.Listen(OnAcceptTransport);
    }

    void OnAcceptTransport(TransportListener source, TransportAsyncCallbackArgs args)
    {
        lock (connections)
        {
            if (connections.Count >= MaxConnections)
            {
                Log.ConnectionFailed(logger, $"more than {MaxConnections} connections");
                args.Transport.Abort();
                return;
            }
        }

        AmqpConnection? connection = null;
        try
        {
            connection = CreateConnection(args.Transport, (ProtocolHeader)args.UserToken, false, settings!, new AmqpConnectionSettings
            {
                ContainerId = "bridge-servicebus-emulator",
                MaxFrameSize = 65536,
                IdleTimeOut = ConnectionIdleTimeoutMs,
                ChannelMax = 4999,
            });
            connection.BeginOpen(AmqpConstants.DefaultTimeout, OnConnectionOpened, connection);
        }
        catch (Exception e) when (e is AmqpException or InvalidOperationException or ObjectDisposedException or IOException)
        {
            Log.ConnectionFailed(logger, e.Message);
            connection?.SafeClose();
            args.Transport?.Abort();
        }
    }

    void OnConnectionOpened(IAsyncResult result)
    {
        var connection = (AmqpConnection)result.AsyncState!;
        try
        {
            connection.EndOpen(result);
            lock (connections)
            {
                connections.Add(connection);
            }

            connection.SafeAddClosed((_, _) =>
            {
                lock (connections)
                {
                    connections.Remove(connection);
                }
            });
        }
        catch (Exception e) when (e is AmqpException or InvalidOperationException or ObjectDisposedException or IOException or TimeoutException or OperationCanceledException)
        {
            Log.ConnectionFailed(logger, e.Message);
            connection.SafeClose();
        }
    }

    public AmqpConnection CreateConnection(TransportBase transport, ProtocolHeader protocolHeader, bool isInitiator, AmqpSettings amqpSettings, AmqpConnectionSettings connectionSettings) =>
        new(transport, protocolHeader, isInitiator, amqpSettings, connectionSettings);

    public AmqpSession CreateSession(AmqpConnection connection, AmqpSessionSettings sessionSettings) =>
        new(connection, sessionSettings, this);

    public AmqpLink CreateLink(AmqpSession session, AmqpLinkSettings linkSettings)
    {
        if (linkSettings.Role == true)
        {
            // The client sends on this link: cap what one transfer may carry.
            linkSettings.MaxMessageSize = (ulong)options.MaxMessageSizeBytes;
            return new ReceivingAmqpLink(session, linkSettings);
        }

        return new SendingAmqpLink(session, linkSettings);
    }

    public IAsyncResult BeginOpenLink(AmqpLink link, TimeSpan timeout, AsyncCallback callback, object state)
    {
        var address = link.IsReceiver ? (link.Settings.Target as Target)?.Address : (link.Settings.Source as Source)?.Address;
        if (address is null)
        {
            throw new AmqpException(AmqpErrorCode.InvalidField, "The link has no address.");
        }

        var path = EntityAddress.Normalize(address.ToString());
        if (path == CbsAddress)
        {
            cbs.Attach(link);
        }
        else if (path.EndsWith(ManagementSuffix, StringComparison.Ordinal))
        {
            var entity = path[..^ManagementSuffix.Length];
            RequireEntity(entity, broker.IsEntityOrSubQueue(entity));
            RequireAuthorized(link, path);
            management.Attach(link);
        }
        else if (link.IsReceiver)
        {
            RequireEntity(path, broker.CanSendTo(path));
            RequireAuthorized(link, path);
            var receiving = (ReceivingAmqpLink)link;
            receiving.RegisterMessageListener(message => OnMessageSent(receiving, path, message));
        }
        else
        {
            RequireEntity(path, broker.CanReceiveFrom(path));
            RequireAuthorized(link, path);
            AttachConsumer((SendingAmqpLink)link, path);
        }

        var completed = new CompletedOpen(state);
        callback(completed);
        return completed;
    }

    /// <summary>Links open synchronously; the library still expects an IAsyncResult carrying its state.</summary>
    sealed class CompletedOpen(object state) : IAsyncResult
    {
        public object AsyncState { get; } = state;

        public WaitHandle AsyncWaitHandle => throw new NotSupportedException();

        public bool CompletedSynchronously => true;

        public bool IsCompleted => true;
    }

    public void EndOpenLink(IAsyncResult result)
    {
    }

    static void RequireEntity(string path, bool exists)
    {
        if (!exists)
        {
            throw new AmqpException(AmqpErrorCode.NotFound, $"The messaging entity '{path}' could not be found.");
        }
    }

    void RequireAuthorized(AmqpLink link, string path)
    {
        var now = time.GetUtcNow();
        var list = grants.GetOrCreateValue(link.Session.Connection);
        lock (list)
        {
            if (list.Any(g => g.ExpiresAt > now && EntityAddress.Covers(g.ResourcePath, path)))
            {
                return;
            }
        }

        throw new AmqpException(AmqpErrorCode.UnauthorizedAccess, $"Unauthorized access to '{path}': put a token for it on $cbs first.");
    }

    static string EntityOf(AmqpLink link)
    {
        var address = link.IsReceiver ? (link.Settings.Target as Target)?.Address : (link.Settings.Source as Source)?.Address;
        var path = EntityAddress.Normalize(address?.ToString());
        return path.EndsWith(ManagementSuffix, StringComparison.Ordinal) ? path[..^ManagementSuffix.Length] : path;
    }

    // ------------------------------------------------------------ $cbs

    AmqpMessage HandleCbs(AmqpLink link, AmqpMessage request)
    {
        var map = request.ApplicationProperties.Map;
        var operation = map["operation"] as string;
        var type = map["type"] as string;
        var audience = map["name"] as string;
        if (operation != "put-token")
        {
            return CbsResponse(400, $"Unknown $cbs operation '{operation}'.");
        }

        if (type is not ("servicebus.windows.net:sastoken" or "azure-sb:sastoken"))
        {
            return CbsResponse(401, $"Token type '{type}' is not accepted here; use a shared access signature.");
        }

        var token = request.ValueBody?.Value as string;
        if (!tokens.TryValidate(token, out var grant, out var error))
        {
            Log.TokenRefused(logger, error);
            return CbsResponse(401, error);
        }

        var audiencePath = EntityAddress.Normalize(audience);
        if (!EntityAddress.Covers(grant!.ResourcePath, audiencePath))
        {
            return CbsResponse(401, "The token does not cover the audience it was put for.");
        }

        var list = grants.GetOrCreateValue(link.Session.Connection);
        lock (list)
        {
            list.RemoveAll(g => g.ExpiresAt <= time.GetUtcNow());
            if (list.Count < 1000)
            {
                list.Add(grant with { ResourcePath = audiencePath });
            }
        }

        return CbsResponse(202, "Accepted");
    }

    static AmqpMessage CbsResponse(int status, string description)
    {
        var response = AmqpMessage.Create();
        response.ApplicationProperties.Map["status-code"] = status;
        response.ApplicationProperties.Map["status-description"] = description;
        return response;
    }

    // ------------------------------------------------------------ sending clients

    void OnMessageSent(ReceivingAmqpLink link, string path, AmqpMessage message)
    {
        Outcome outcome;
        List<Outbound>? outbound = null;
        try
        {
            outbound = broker.Send(path, MessageCodec.Unbatch(message));
            outcome = AmqpConstants.AcceptedOutcome;
        }
        catch (BrokerException e)
        {
            outcome = new Rejected { Error = new Error { Condition = e.Condition, Description = e.Message } };
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A message whose sections do not decode is refused; the link and the connection carry on.
            Log.MessageRefused(logger, path, e.GetType().Name);
            outcome = new Rejected { Error = new Error { Condition = AmqpErrorCode.DecodeError, Description = "The message could not be decoded." } };
        }

        try
        {
            link.DisposeMessage(message, outcome, settled: true, batchable: message.Batchable);
        }
        finally
        {
            message.Dispose();
        }

        if (outbound is not null)
        {
            Broker.Flush(outbound);
        }
    }

    // ------------------------------------------------------------ receiving clients

    void AttachConsumer(SendingAmqpLink link, string path)
    {
        var consumer = broker.CreateConsumer(path, link, receiveAndDelete: link.Settings.SettleType == SettleMode.SettleOnSend);
        link.RegisterCreditListener((credit, drain, _) =>
        {
            Broker.Flush(broker.OnCredit(consumer, credit));
            if (drain)
            {
                broker.OnDrained(consumer);
            }
        });
        link.RegisterDispositionListener(delivery => OnDisposition(consumer, delivery));
        link.SafeAddClosed((_, _) => broker.RemoveConsumer(consumer));
    }

    void OnDisposition(Consumer consumer, Delivery delivery)
    {
        var state = delivery.State;
        if (delivery.DeliveryTag.Count != 16 || state is null)
        {
            if (!delivery.Settled)
            {
                consumer.Link.DisposeDelivery(delivery, true, new Rejected { Error = new Error { Condition = AmqpErrorCode.NotFound, Description = "Unknown delivery." } });
            }

            return;
        }

        var lockToken = new Guid(delivery.DeliveryTag.AsSpan());
        Settlement settlement;
        Dictionary<string, object?>? properties = null;
        string? reason = null, description = null;
        Outcome reply;
        switch (state)
        {
            case Accepted:
                settlement = Settlement.Complete;
                reply = AmqpConstants.AcceptedOutcome;
                break;
            case Rejected rejected:
                settlement = Settlement.DeadLetter;
                if (rejected.Error?.Info is { } info)
                {
                    properties = [];
                    foreach (var pair in info)
                    {
                        var key = pair.Key.ToString();
                        if (key == MessageCodec.DeadLetterReasonProperty)
                        {
                            reason = pair.Value as string;
                        }
                        else if (key == MessageCodec.DeadLetterDescriptionProperty)
                        {
                            description = pair.Value as string;
                        }
                        else
                        {
                            properties[key] = pair.Value;
                        }
                    }
                }

                reply = new Rejected();
                break;
            case Modified modified:
                settlement = modified.UndeliverableHere == true ? Settlement.Defer : Settlement.Abandon;
                if (modified.MessageAnnotations is { } annotations)
                {
                    properties = annotations.ToDictionary(p => p.Key.ToString(), p => (object?)p.Value, StringComparer.Ordinal);
                }

                reply = new Modified { UndeliverableHere = modified.UndeliverableHere, DeliveryFailed = modified.DeliveryFailed };
                break;
            case Released:
                settlement = Settlement.Release;
                reply = AmqpConstants.ReleasedOutcome;
                break;
            default:
                // Received (a progress report) and transactional states: nothing to settle.
                return;
        }

        if (faults.TryHold(consumer.Entity.Path, settlement, ApplyLate, () => consumer.Link.State == AmqpObjectState.Opened))
        {
            return; // a test holds it: neither applied nor answered until the fault ends
        }

        Apply();

        void ApplyLate()
        {
            // Held until now: a receiver link closed meanwhile took its settlement with it.
            if (consumer.Link.State == AmqpObjectState.Opened)
            {
                Apply();
            }
        }

        void Apply()
        {
            bool settled;
            List<Outbound> outbound;
            try
            {
                settled = broker.Settle(consumer.Entity.Path, lockToken, settlement, properties, reason, description, out outbound);
            }
            catch (BrokerException e)
            {
                consumer.Link.DisposeDelivery(delivery, true, new Rejected { Error = new Error { Condition = e.Condition, Description = e.Message } });
                return;
            }

            if (!delivery.Settled)
            {
                consumer.Link.DisposeDelivery(delivery, true, settled ? reply : LockLost());
            }

            Broker.Flush(outbound);
        }
    }

    public static Rejected LockLost() => new()
    {
        Error = new Error
        {
            Condition = "com.microsoft:message-lock-lost",
            Description = "The lock supplied is invalid. Either the lock expired, or the message has already been removed from the queue.",
        },
    };

    public void Dispose()
    {
        listener?.SafeClose();
        AmqpConnection[] open;
        lock (connections)
        {
            open = [.. connections];
        }

        foreach (var connection in open)
        {
            connection.SafeClose();
        }
    }

    static partial class Log
    {
        [LoggerMessage(EventId = 10, Level = LogLevel.Debug, Message = "AMQP connection failed: {Reason}")]
        public static partial void ConnectionFailed(ILogger logger, string reason);

        [LoggerMessage(EventId = 11, Level = LogLevel.Information, Message = "CBS token refused: {Reason}")]
        public static partial void TokenRefused(ILogger logger, string reason);

        [LoggerMessage(EventId = 12, Level = LogLevel.Information, Message = "Message sent to {Entity} refused: {Error}")]
        public static partial void MessageRefused(ILogger logger, string entity, string error);
    }
}
