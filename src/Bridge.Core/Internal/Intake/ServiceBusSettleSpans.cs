using System.Diagnostics;
using System.Globalization;
using Azure.Messaging.ServiceBus;
using Bridge.Core.Intake;
using Bridge.Core.Telemetry;

namespace Bridge.Core.Internal;

/// <summary>
/// The span of a settlement other than a plain complete: a hand-back, a dead-letter or an abandon, with the reason,
/// the attempt and (for a hand-back) the delay and the entity on its event. The forward span has ended by the time a
/// message is settled, and the runner has no span of its own around a received batch, so an event on
/// <see cref="Activity.Current"/> would be dropped; this span hangs where the forward span does (the host's recorded
/// activity, else the message's own trace context), so it joins the message's trace.
/// </summary>
internal static class ServiceBusSettleSpans
{
    public const string HandBackEvent = "bridge.handback";
    public const string DeadLetterEvent = "bridge.deadletter";
    public const string AbandonEvent = "bridge.abandon";

    /// <summary>Starts the span (null for a complete, or when nobody listens); the caller ends it once the settlement is done.</summary>
    public static Activity? Start(ServiceBusReceivedMessage message, IReadOnlyDictionary<string, object?> properties, string entity, string route, Settlement settlement)
    {
        var operation = settlement.Action switch
        {
            SettlementAction.HandBack => "handback",
            SettlementAction.DeadLetter => "dead_letter",
            SettlementAction.Abandon => "abandon",
            _ => null,
        };
        if (operation is null || !BridgeDiagnostics.ActivitySource.HasListeners())
        {
            return null;
        }

        var parent = TraceParents.Choose(ServiceBusIntake.TraceParentOf(properties), null);
        var span = BridgeDiagnostics.ActivitySource.StartActivity($"{operation} {entity}", ActivityKind.Client, parent);
        if (span is null)
        {
            return null;
        }

        span.SetTag(BridgeDiagnostics.Tags.MessagingSystem, "servicebus");
        span.SetTag(BridgeDiagnostics.Tags.MessagingOperation, "settle");
        span.SetTag(BridgeDiagnostics.Tags.MessagingOperationName, operation);
        span.SetTag(BridgeDiagnostics.Tags.MessagingDestination, entity);
        span.SetTag(BridgeDiagnostics.Tags.MessagingMessageId, message.MessageId);
        span.SetTag(BridgeDiagnostics.Tags.Route, route);
        span.SetTag(BridgeDiagnostics.Tags.Reason, settlement.Action == SettlementAction.DeadLetter ? settlement.DeadLetterReason : settlement.Error?.ReasonCode);
        return span;
    }

    /// <summary>The hand-back done: its reason, attempt, when it comes back and where the copy went.</summary>
    public static void HandedBack(Activity? span, Settlement settlement, string handBackEntity)
    {
        if (span is null || settlement.Error is null || settlement.RetryAt is not { } retryAt)
        {
            return;
        }

        span.AddEvent(new(HandBackEvent, tags: new ActivityTagsCollection
        {
            [BridgeDiagnostics.Tags.Reason] = settlement.Error.ReasonCode,
            [BridgeDiagnostics.Tags.HandBackAttempt] = settlement.Attempt + 1,
            [BridgeDiagnostics.Tags.HandBackRetryAt] = retryAt.ToString("O", CultureInfo.InvariantCulture),
            [BridgeDiagnostics.Tags.HandBackDelay] = (settlement.RetryDelay ?? TimeSpan.Zero).TotalSeconds,
            [BridgeDiagnostics.Tags.HandBackEntity] = handBackEntity,
        }));
    }

    /// <summary>The dead-letter done: its reason (never the description, which may quote the event), the hand-backs before it, and whether the budget was spent.</summary>
    public static void DeadLettered(Activity? span, Settlement settlement) =>
        span?.AddEvent(new(DeadLetterEvent, tags: new ActivityTagsCollection
        {
            [BridgeDiagnostics.Tags.Reason] = settlement.DeadLetterReason,
            [BridgeDiagnostics.Tags.HandBackAttempt] = settlement.Attempt,
            [BridgeDiagnostics.Tags.RetriesExhausted] = settlement.RetriesExhausted,
        }));

    public static void Abandoned(Activity? span, string reason) =>
        span?.AddEvent(new(AbandonEvent, tags: new ActivityTagsCollection { [BridgeDiagnostics.Tags.Reason] = reason }));

    /// <summary>The settlement failed: the host gives the message back; the span says so, by exception type only.</summary>
    public static void Failed(Activity? span, Exception error)
    {
        span?.SetStatus(ActivityStatusCode.Error, "settlement failed");
        span?.SetTag(BridgeDiagnostics.Tags.ErrorType, error.GetType().FullName);
    }
}
