using Microsoft.Azure.Amqp;
using Microsoft.Azure.Amqp.Encoding;

namespace Bridge.Emulators.ServiceBus.Internal;

/// <summary>AMQP names Service Bus uses, and turning stored bytes into messages on the wire and back.</summary>
internal static class MessageCodec
{
    public const uint BatchedMessageFormat = 0x80013700;

    public static readonly AmqpSymbol SequenceNumberName = "x-opt-sequence-number";
    public static readonly AmqpSymbol EnqueuedTimeName = "x-opt-enqueued-time";
    public static readonly AmqpSymbol LockedUntilName = "x-opt-locked-until";
    public static readonly AmqpSymbol LockTokenName = "x-opt-lock-token";
    public static readonly AmqpSymbol ScheduledEnqueueTimeName = "x-opt-scheduled-enqueue-time";
    public static readonly AmqpSymbol DeadLetterSourceName = "x-opt-deadletter-source";
    public static readonly AmqpSymbol MessageStateName = "x-opt-message-state";
    public static readonly AmqpSymbol EnqueueSequenceNumberName = "x-opt-enqueue-sequence-number";
    public const string DeadLetterReasonProperty = "DeadLetterReason";
    public const string DeadLetterDescriptionProperty = "DeadLetterErrorDescription";

    static readonly AmqpSymbol[] BrokerAnnotations =
        [SequenceNumberName, EnqueuedTimeName, LockedUntilName, LockTokenName, DeadLetterSourceName, MessageStateName, EnqueueSequenceNumberName];

    /// <summary>A message over stored bytes whose sections can be changed; the body is carried over as it is.</summary>
    public static AmqpMessage Decode(byte[] encoded)
    {
        var message = AmqpMessage.CreateAmqpStreamMessage(new BufferListStream([new ArraySegment<byte>(encoded)]));
        message.Deserialize(SectionFlag.All);
        return message;
    }

    /// <summary>The bytes of a decoded message, with any changed sections encoded again.</summary>
    public static byte[] Encode(AmqpMessage message)
    {
        var segments = message.GetPayload(int.MaxValue, out _);
        var result = new byte[segments.Sum(s => s.Count)];
        var offset = 0;
        foreach (var segment in segments)
        {
            segment.AsSpan().CopyTo(result.AsSpan(offset));
            offset += segment.Count;
        }

        return result;
    }

    /// <summary>The bytes a client transferred (a received message's own payload, not re-encoded).</summary>
    public static byte[] RawBytes(AmqpMessage received)
    {
        var stream = received.ToStream();
        if (stream is BufferListStream list)
        {
            using var copy = (BufferListStream)list.Clone();
            copy.Position = 0;
            var buffers = copy.ReadBuffers(int.MaxValue, true, out _);
            var result = new byte[buffers.Sum(s => s.Count)];
            var offset = 0;
            foreach (var segment in buffers)
            {
                segment.AsSpan().CopyTo(result.AsSpan(offset));
                offset += segment.Count;
            }

            return result;
        }

        using var memory = new MemoryStream();
        stream.CopyTo(memory);
        return memory.ToArray();
    }

    /// <summary>A sent message as the broker stores it: its own sections, minus annotations only the broker may set.</summary>
    public static byte[] Canonicalize(byte[] sent)
    {
        using var message = Decode(sent);
        foreach (var name in BrokerAnnotations)
        {
            message.MessageAnnotations.Map.TryRemoveValue<object>(name, out _);
        }

        if (message.DeliveryAnnotations is { } deliveryAnnotations)
        {
            foreach (var key in deliveryAnnotations.Map.Select(p => p.Key).ToList())
            {
                deliveryAnnotations.Map.TryRemoveValue<object>((AmqpSymbol)key.Key, out _);
            }
        }

        return Encode(message);
    }

    /// <summary>The inner messages of a Service Bus batch (format 0x80013700), or the message itself.</summary>
    public static IReadOnlyList<byte[]> Unbatch(AmqpMessage message)
    {
        if (message.MessageFormat != BatchedMessageFormat)
        {
            return [RawBytes(message)];
        }

        var inner = new List<byte[]>();
        foreach (var data in message.DataBody ?? [])
        {
            inner.Add(BytesOf(data.Value));
        }

        return inner;
    }

    public static byte[] BytesOf(object? value) => value switch
    {
        ArraySegment<byte> segment => segment.AsSpan().ToArray(),
        byte[] bytes => bytes,
        _ => throw new AmqpException(AmqpErrorCode.DecodeError, "A batch entry is not binary data."),
    };

    /// <summary>Builds the message a receiver gets: the stored message plus sequence number, times, lock and delivery count.</summary>
    public static AmqpMessage ForDelivery(BrokerMessage message, bool peeked)
    {
        var outgoing = Decode(message.Encoded);
        outgoing.Header.DeliveryCount = (uint)Math.Max(0, peeked ? message.DeliveryCount : message.DeliveryCount - 1);
        var annotations = outgoing.MessageAnnotations.Map;
        annotations[SequenceNumberName] = message.SequenceNumber;
        annotations[EnqueuedTimeName] = message.EnqueuedTime.UtcDateTime;
        if (message.ScheduledEnqueueTime is { } scheduled)
        {
            annotations[ScheduledEnqueueTimeName] = scheduled.UtcDateTime;
        }

        if (message.State != MessageState.Active)
        {
            annotations[MessageStateName] = (int)message.State;
        }

        if (message.DeadLetterSource is { } source)
        {
            annotations[DeadLetterSourceName] = source;
        }

        if (!peeked && message.IsLocked)
        {
            annotations[LockedUntilName] = message.LockedUntil.UtcDateTime;
            annotations[LockTokenName] = message.LockToken;
        }

        return outgoing;
    }

    /// <summary>Applies a settlement's properties-to-modify (and dead-letter reason) to the stored message's application properties.</summary>
    public static byte[] WithApplicationProperties(byte[] encoded, IEnumerable<KeyValuePair<string, object?>> changes)
    {
        using var message = Decode(encoded);
        message.ApplicationProperties ??= new Microsoft.Azure.Amqp.Framing.ApplicationProperties();
        foreach (var (key, value) in changes)
        {
            message.ApplicationProperties.Map[key] = value;
        }

        return Encode(message);
    }

    /// <summary>The fields filters and duplicate detection look at.</summary>
    public static MessageView View(byte[] encoded)
    {
        using var decoded = Decode(encoded);
        var p = decoded.Properties ?? new Microsoft.Azure.Amqp.Framing.Properties();
        var properties = new Dictionary<string, object?>(StringComparer.Ordinal);
        if (decoded.ApplicationProperties is { } applicationProperties)
        {
            foreach (var pair in applicationProperties.Map)
            {
                properties[pair.Key.ToString()] = pair.Value is AmqpSymbol symbol ? symbol.Value : pair.Value;
            }
        }

        return new MessageView(
            p.MessageId?.ToString(),
            p.CorrelationId?.ToString(),
            p.To?.ToString(),
            p.ReplyTo?.ToString(),
            p.Subject,
            p.GroupId,
            p.ReplyToGroupId,
            p.ContentType.Value,
            properties);
    }
}

/// <summary>A message's system and application properties, as filters see them.</summary>
internal sealed record MessageView(
    string? MessageId,
    string? CorrelationId,
    string? To,
    string? ReplyTo,
    string? Subject,
    string? SessionId,
    string? ReplyToSessionId,
    string? ContentType,
    IReadOnlyDictionary<string, object?> ApplicationProperties);
