using Azure.Messaging.ServiceBus;
using Bridge.Core.Forwarding;
using Bridge.Core.Internal;
using Bridge.Core.Routing;
using Bridge.Core.Telemetry;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Bridge.Core.Intake;

/// <summary>What to do with a Service Bus message after forwarding it.</summary>
public enum SettlementAction
{
    /// <summary>The task exists (created or deduplicated): remove the message.</summary>
    Complete,

    /// <summary>Permanent failure, or the route's retry budget spent: move to the dead-letter queue with the reason.</summary>
    DeadLetter,

    /// <summary>
    /// Release the lock so Service Bus redelivers at once (and dead-letters after MaxDeliveryCount). Only where a
    /// hand-back can't be scheduled: a topic subscription with no hand-back queue configured (a copy sent to the
    /// topic would reach every subscription).
    /// </summary>
    Abandon,

    /// <summary>Failure worth waiting for: a copy scheduled for later (<see cref="Settlement.RetryAt"/>), then the original completed.</summary>
    HandBack,
}

public sealed record Settlement(SettlementAction Action, ForwardResult? Result = null, ForwardingException? Error = null)
{
    public const int MaxDeadLetterTextLength = 4096;

    /// <summary>The dead-letter reason when the route's retry budget ran out: the last error is in the description.</summary>
    public const string RetriesExhaustedReason = "RetriesExhausted";

    /// <summary>Hand-backs before this delivery (0 on the first).</summary>
    public int Attempt { get; init; }

    /// <summary>When the message first failed; null when it never has.</summary>
    public DateTimeOffset? FirstFailure { get; init; }

    /// <summary>For <see cref="SettlementAction.HandBack"/>: when the copy comes back.</summary>
    public DateTimeOffset? RetryAt { get; init; }

    /// <summary>For <see cref="SettlementAction.HandBack"/>: the wait from the decision to <see cref="RetryAt"/>.</summary>
    public TimeSpan? RetryDelay { get; init; }

    /// <summary>For <see cref="SettlementAction.HandBack"/>: the queue the copy is sent to (the message's own, or the hand-back queue).</summary>
    public string? HandBackEntity { get; init; }

    /// <summary>The entity whose route the message takes: where it was received, or for a hand-back copy where it first came from.</summary>
    public string? OriginEntity { get; init; }

    /// <summary>True when the message is dead-lettered because its route's retry budget is spent.</summary>
    public bool RetriesExhausted { get; init; }

    public string? DeadLetterReason => RetriesExhausted ? RetriesExhaustedReason : Error?.ReasonCode;

    public string? DeadLetterDescription => Truncate(RetriesExhausted && Error is not null
        ? $"{Error.ReasonCode}: {Error.Message} (tried since {FirstFailure:O}, {Attempt + 1} deliveries)"
        : Error?.Message);

    private static string? Truncate(string? text) => text is { Length: > MaxDeadLetterTextLength } ? text[..MaxDeadLetterTextLength] : text;
}

/// <summary>
/// How a host settles the one message it holds. The function app implements it over <c>ServiceBusMessageActions</c>
/// and a sender, the runner over <c>ProcessMessageEventArgs</c> and a sender; the decision itself is
/// <see cref="ServiceBusMessageHandler"/>'s.
/// </summary>
public interface IServiceBusSettler
{
    Task CompleteAsync(CancellationToken cancellationToken);

    Task DeadLetterAsync(string reason, string description, CancellationToken cancellationToken);

    Task AbandonAsync(CancellationToken cancellationToken);

    /// <summary>Sends <paramref name="copy"/> (its ScheduledEnqueueTime set) to the queue <paramref name="entity"/> (the message's own, or the hand-back queue).</summary>
    Task ScheduleCopyAsync(string entity, ServiceBusMessage copy, CancellationToken cancellationToken);

    /// <summary>
    /// The sender copies to <paramref name="entity"/> go out on, so a batch's copies to one entity are sent together
    /// (in as few ServiceBusMessageBatch as the size limit allows) before their originals are completed; null (the
    /// default): each copy goes through <see cref="ScheduleCopyAsync"/> on its own.
    /// </summary>
    ServiceBusSender? CopySender(string entity) => null;
}

/// <summary>
/// The one decision both hosts (the function app and the self-hosted runner's ServiceBusProcessor) make per message,
/// so they can't drift apart: forward (the client retries within the call's deadline), then complete; dead-letter a
/// permanent failure at once; hand a failure worth waiting for back with a growing delay until the route's retry
/// budget is spent, then dead-letter it as <c>RetriesExhausted</c>. A topic subscription's message is handed back
/// to the hand-back queue (<see cref="HandBackQueue"/>), which the hosts receive from too; the copy carries the
/// subscription, so it keeps its route.
/// </summary>
public sealed partial class ServiceBusMessageHandler
{
    private readonly ServiceBusIntake _intake;
    private readonly IEventForwarder _forwarder;
    private readonly RouteTable _routes;
    private readonly BridgeOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    internal ServiceBusMessageHandler(ServiceBusIntake intake, IEventForwarder forwarder, RouteTable routes, BridgeOptions options, TimeProvider time, ILogger<ServiceBusMessageHandler>? logger = null, string? handBackQueue = null)
    {
        HandBackQueue = string.IsNullOrWhiteSpace(handBackQueue) ? null : handBackQueue;
        _intake = intake;
        _forwarder = forwarder;
        _routes = routes;
        _options = options.Clone();
        _time = time;
        _logger = logger ?? (ILogger)NullLogger.Instance;
    }

    /// <summary>
    /// The queue topic subscriptions' messages are handed back to (<see cref="ServiceBusConnection.HandBackQueueSetting"/>);
    /// null: none, and a subscription's message that can't be forwarded yet is abandoned (redelivered at once).
    /// </summary>
    public string? HandBackQueue { get; }

    /// <summary>True when messages from <paramref name="entity"/> can't be handed back with a delay: a subscription and no hand-back queue.</summary>
    public bool AbandonsInsteadOfHandingBack(string entity) => HandBackQueue is null && IsSubscription(entity);

    /// <summary>Forwards the message and settles it through <paramref name="settler"/>; returns what was done.</summary>
    public async Task<Settlement> HandleAsync(ServiceBusReceivedMessage message, string entity, IServiceBusSettler settler, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(settler);
        var data = ServiceBusMessages.ToMessageData(message);
        var settlement = await DecideAsync(data, entity, cancellationToken).ConfigureAwait(false);
        await SettleAsync(message, data, entity, settlement, settler, cancellationToken).ConfigureAwait(false);
        return settlement;
    }

    /// <summary>Carries out one message's decision; shared by the single and the batched path.</summary>
    private async Task SettleAsync(ServiceBusReceivedMessage message, ServiceBusMessageData data, string entity, Settlement settlement, IServiceBusSettler settler, CancellationToken cancellationToken)
    {
        var route = RouteFor(data, entity, settlement);
        if (settlement.Action == SettlementAction.Complete)
        {
            await settler.CompleteAsync(cancellationToken).ConfigureAwait(false);
            return;
        }

        using var span = ServiceBusSettleSpans.Start(message, data.ApplicationProperties, entity, route, settlement);
        try
        {
            await SettleOtherwiseAsync(message, entity, route, settlement, settler, span, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            ServiceBusSettleSpans.Failed(span, ex);
            throw;
        }
    }

    /// <summary>A hand-back, dead-letter or abandon, recorded on <paramref name="span"/>.</summary>
    private async Task SettleOtherwiseAsync(ServiceBusReceivedMessage message, string entity, string route, Settlement settlement, IServiceBusSettler settler, System.Diagnostics.Activity? span, CancellationToken cancellationToken)
    {
        switch (settlement.Action)
        {
            case SettlementAction.DeadLetter:
                await settler.DeadLetterAsync(settlement.DeadLetterReason!, settlement.DeadLetterDescription!, cancellationToken).ConfigureAwait(false);
                ServiceBusSettleSpans.DeadLettered(span, settlement);
                if (settlement.RetriesExhausted)
                {
                    BridgeDiagnostics.RetriesExhausted.Add(1, new(BridgeDiagnostics.Tags.Route, route), new(BridgeDiagnostics.Tags.Reason, settlement.Error!.ReasonCode));
                    LogRetriesExhausted(route, message.MessageId, settlement.Attempt, settlement.Error.ReasonCode);
                }

                break;
            case SettlementAction.HandBack:
                // Schedule first, complete second: a crash in between leaves two messages for one task name, which
                // CreateTask deduplicates; the other order could lose the message.
                var (handBackEntity, copy) = HandBackCopy(message, entity, settlement);
                await settler.ScheduleCopyAsync(handBackEntity, copy, cancellationToken).ConfigureAwait(false);
                await CompleteHandedBackAsync(message, route, handBackEntity, settlement, settler, span, cancellationToken).ConfigureAwait(false);
                break;
            default:
                await settler.AbandonAsync(cancellationToken).ConfigureAwait(false);
                if (settlement.Error is { } abandoned)
                {
                    BridgeDiagnostics.Abandoned.Add(1, new(BridgeDiagnostics.Tags.Route, route), new(BridgeDiagnostics.Tags.Reason, abandoned.ReasonCode));
                    ServiceBusSettleSpans.Abandoned(span, abandoned.ReasonCode);
                    LogAbandoned(route, message.MessageId, abandoned.ReasonCode);
                }

                break;
        }
    }

    private string RouteFor(ServiceBusMessageData data, string entity, Settlement settlement) =>
        settlement.Result?.Route ?? RouteOf(data, settlement.OriginEntity ?? entity) ?? string.Empty;

    /// <summary>For a <see cref="SettlementAction.HandBack"/>: where the copy goes and the copy itself.</summary>
    private static (string Entity, ServiceBusMessage Copy) HandBackCopy(ServiceBusReceivedMessage message, string entity, Settlement settlement)
    {
        var handBackEntity = settlement.HandBackEntity ?? entity;
        var origin = settlement.OriginEntity is { } o && !string.Equals(o, handBackEntity, StringComparison.OrdinalIgnoreCase) ? o : null;
        return (handBackEntity, ServiceBusHandBack.Copy(message, settlement.Attempt + 1, settlement.FirstFailure!.Value, settlement.RetryAt!.Value, settlement.Error!, origin));
    }

    /// <summary>The hand-back's second step, once its copy is sent: completes the original and records the hand-back.</summary>
    private async Task CompleteHandedBackAsync(ServiceBusReceivedMessage message, string route, string handBackEntity, Settlement settlement, IServiceBusSettler settler, System.Diagnostics.Activity? span, CancellationToken cancellationToken)
    {
        await settler.CompleteAsync(cancellationToken).ConfigureAwait(false);
        var retryAt = settlement.RetryAt!.Value;
        var error = settlement.Error!;
        BridgeDiagnostics.HandBacks.Add(1, new(BridgeDiagnostics.Tags.Route, route), new(BridgeDiagnostics.Tags.Reason, error.ReasonCode), new(BridgeDiagnostics.Tags.MessagingDestination, handBackEntity));
        ServiceBusSettleSpans.HandedBack(span, settlement, handBackEntity);
        LogHandedBack(route, message.MessageId, settlement.Attempt + 1, error.ReasonCode, retryAt);
    }

    /// <summary>Forwards the message and says how to settle it, without settling.</summary>
    internal async Task<Settlement> DecideAsync(ServiceBusMessageData message, string entity, CancellationToken cancellationToken)
    {
        var origin = entity;
        if (HandBackQueue is not null && string.Equals(entity, HandBackQueue, StringComparison.OrdinalIgnoreCase))
        {
            // A copy handed back here takes the route of the subscription it came from.
            origin = ServiceBusHandBack.OriginEntity(message.ApplicationProperties) ?? string.Empty;
            if (origin.Length == 0 || string.Equals(origin, HandBackQueue, StringComparison.OrdinalIgnoreCase))
            {
                return new Settlement(SettlementAction.DeadLetter, Error: new ForwardingException(
                    ForwardingFailureReason.InvalidEvent,
                    $"A message on the hand-back queue '{HandBackQueue}' must name the entity it came from in property '{ServiceBusHandBack.OriginEntityProperty}' (at most {ServiceBusHandBack.MaxOriginEntityLength} characters)."));
            }
        }

        try
        {
            var result = await _forwarder.ForwardAsync(_intake.Map(message, origin), cancellationToken).ConfigureAwait(false);
            return new Settlement(SettlementAction.Complete, result) { OriginEntity = origin };
        }
        catch (ForwardingException ex) when (ServiceBusHandBack.IsRetriedWithinBudget(ex))
        {
            return DecideRetry(message, entity, origin, ex);
        }
        catch (ForwardingException ex)
        {
            return new Settlement(SettlementAction.DeadLetter, Error: ex) { OriginEntity = origin };
        }
    }

    private Settlement DecideRetry(ServiceBusMessageData message, string entity, string origin, ForwardingException error)
    {
        var now = _time.GetUtcNow();
        var attempt = ServiceBusHandBack.Attempt(message.ApplicationProperties);
        var firstFailure = ServiceBusHandBack.FirstFailure(message.ApplicationProperties, now);
        // A copy sent to a topic would reach every subscription: a subscription's message goes to the hand-back queue.
        var handBackEntity = IsSubscription(entity) ? HandBackQueue : entity;
        if (handBackEntity is null)
        {
            return new Settlement(SettlementAction.Abandon, Error: error) { Attempt = attempt, FirstFailure = firstFailure, OriginEntity = origin };
        }

        var budget = RouteOf(message, origin) is { } routeName && _routes.TryFind(routeName, out var route)
            ? route.Options.RetryBudget
            : new RouteOptions().RetryBudget;
        var deadline = firstFailure + budget;
        if (now >= deadline)
        {
            return new Settlement(SettlementAction.DeadLetter, Error: error) { Attempt = attempt, FirstFailure = firstFailure, RetriesExhausted = true, OriginEntity = origin };
        }

        var delay = ServiceBusHandBack.Delay(attempt + 1, _options, Random.Shared);
        if (error.RetryAfter is { } asked && asked > delay && asked <= _options.RetryMaxDelay)
        {
            delay = asked; // the service said when
        }

        // The last try comes at the budget's end, so a message is dead-lettered only after the whole budget.
        var retryAt = now + delay < deadline ? now + delay : deadline;
        return new Settlement(SettlementAction.HandBack, Error: error) { Attempt = attempt, FirstFailure = firstFailure, RetryAt = retryAt, RetryDelay = retryAt - now, HandBackEntity = handBackEntity, OriginEntity = origin };
    }

    private string? RouteOf(ServiceBusMessageData message, string entity)
    {
        try
        {
            return _intake.Map(message, entity).Route;
        }
        catch (ForwardingException)
        {
            return null;
        }
    }

    internal static bool IsSubscription(string entity) => entity.Contains("/subscriptions/", StringComparison.OrdinalIgnoreCase);

    [LoggerMessage(EventId = 110, Level = LogLevel.Warning, Message = "Handed Service Bus message {MessageId} on route {Route} back (hand-back {Attempt}, {Reason}); it comes back at {RetryAt:O}")]
    private partial void LogHandedBack(string route, string messageId, int attempt, string reason, DateTimeOffset retryAt);

    [LoggerMessage(EventId = 118, Level = LogLevel.Warning, Message = "Abandoned Service Bus message {MessageId} on route {Route} ({Reason}): it comes from a topic subscription and no hand-back queue is configured, so it is redelivered at once")]
    private partial void LogAbandoned(string route, string messageId, string reason);

    [LoggerMessage(EventId = 111, Level = LogLevel.Warning, Message = "Dead-lettered Service Bus message {MessageId} on route {Route}: retry budget spent after {Attempt} hand-backs (last: {Reason})")]
    private partial void LogRetriesExhausted(string route, string messageId, int attempt, string reason);
}
