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
    /// hand-back can't be scheduled: a topic subscription, whose copy would reach every subscription.
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

    /// <summary>Sends <paramref name="copy"/> (its ScheduledEnqueueTime set) to the entity the message came from.</summary>
    Task ScheduleCopyAsync(ServiceBusMessage copy, CancellationToken cancellationToken);
}

/// <summary>
/// The one decision both hosts (the function app and the self-hosted runner's ServiceBusProcessor) make per message,
/// so they can't drift apart: forward (the client retries within the call's deadline), then complete; dead-letter a
/// permanent failure at once; hand a failure worth waiting for back with a growing delay until the route's retry
/// budget is spent, then dead-letter it as <c>RetriesExhausted</c>.
/// </summary>
public sealed partial class ServiceBusMessageHandler
{
    private readonly ServiceBusIntake _intake;
    private readonly IEventForwarder _forwarder;
    private readonly RouteTable _routes;
    private readonly BridgeOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    internal ServiceBusMessageHandler(ServiceBusIntake intake, IEventForwarder forwarder, RouteTable routes, BridgeOptions options, TimeProvider time, ILogger<ServiceBusMessageHandler>? logger = null)
    {
        _intake = intake;
        _forwarder = forwarder;
        _routes = routes;
        _options = options.Clone();
        _time = time;
        _logger = logger ?? (ILogger)NullLogger.Instance;
    }

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
        var route = settlement.Result?.Route ?? RouteOf(data, entity) ?? string.Empty;
        switch (settlement.Action)
        {
            case SettlementAction.Complete:
                await settler.CompleteAsync(cancellationToken).ConfigureAwait(false);
                break;
            case SettlementAction.DeadLetter:
                await settler.DeadLetterAsync(settlement.DeadLetterReason!, settlement.DeadLetterDescription!, cancellationToken).ConfigureAwait(false);
                if (settlement.RetriesExhausted)
                {
                    BridgeDiagnostics.RetriesExhausted.Add(1, new(BridgeDiagnostics.Tags.Route, route), new(BridgeDiagnostics.Tags.Reason, settlement.Error!.ReasonCode));
                    LogRetriesExhausted(route, message.MessageId, settlement.Attempt, settlement.Error.ReasonCode);
                }

                break;
            case SettlementAction.HandBack:
                // Schedule first, complete second: a crash in between leaves two messages for one task name, which
                // CreateTask deduplicates; the other order could lose the message.
                var retryAt = settlement.RetryAt!.Value;
                var error = settlement.Error!;
                var copy = ServiceBusHandBack.Copy(message, settlement.Attempt + 1, settlement.FirstFailure!.Value, retryAt, error);
                await settler.ScheduleCopyAsync(copy, cancellationToken).ConfigureAwait(false);
                await settler.CompleteAsync(cancellationToken).ConfigureAwait(false);
                BridgeDiagnostics.HandBacks.Add(1, new(BridgeDiagnostics.Tags.Route, route), new(BridgeDiagnostics.Tags.Reason, error.ReasonCode));
                System.Diagnostics.Activity.Current?.AddEvent(new("bridge.handback", tags: new System.Diagnostics.ActivityTagsCollection
                {
                    [BridgeDiagnostics.Tags.Reason] = error.ReasonCode,
                    ["bridge.handback.attempt"] = settlement.Attempt + 1,
                    ["bridge.handback.retry_at"] = retryAt.ToString("O", System.Globalization.CultureInfo.InvariantCulture),
                }));
                LogHandedBack(route, message.MessageId, settlement.Attempt + 1, error.ReasonCode, retryAt);
                break;
            default:
                await settler.AbandonAsync(cancellationToken).ConfigureAwait(false);
                break;
        }
    }

    /// <summary>Forwards the message and says how to settle it, without settling.</summary>
    internal async Task<Settlement> DecideAsync(ServiceBusMessageData message, string entity, CancellationToken cancellationToken)
    {
        try
        {
            var result = await _forwarder.ForwardAsync(_intake.Map(message, entity), cancellationToken).ConfigureAwait(false);
            return new Settlement(SettlementAction.Complete, result);
        }
        catch (ForwardingException ex) when (ServiceBusHandBack.IsRetriedWithinBudget(ex))
        {
            return DecideRetry(message, entity, ex);
        }
        catch (ForwardingException ex)
        {
            return new Settlement(SettlementAction.DeadLetter, Error: ex);
        }
    }

    private Settlement DecideRetry(ServiceBusMessageData message, string entity, ForwardingException error)
    {
        var now = _time.GetUtcNow();
        var attempt = ServiceBusHandBack.Attempt(message.ApplicationProperties);
        var firstFailure = ServiceBusHandBack.FirstFailure(message.ApplicationProperties, now);
        if (IsSubscription(entity))
        {
            // TODO(issue 14): a copy sent to the topic would reach every subscription; subscriptions keep redelivery.
            return new Settlement(SettlementAction.Abandon, Error: error) { Attempt = attempt, FirstFailure = firstFailure };
        }

        var budget = RouteOf(message, entity) is { } routeName && _routes.TryFind(routeName, out var route)
            ? route.Options.RetryBudget
            : new RouteOptions().RetryBudget;
        var deadline = firstFailure + budget;
        if (now >= deadline)
        {
            return new Settlement(SettlementAction.DeadLetter, Error: error) { Attempt = attempt, FirstFailure = firstFailure, RetriesExhausted = true };
        }

        var delay = ServiceBusHandBack.Delay(attempt + 1, _options, Random.Shared);
        if (error.RetryAfter is { } asked && asked > delay && asked <= _options.RetryMaxDelay)
        {
            delay = asked; // the service said when
        }

        // The last try comes at the budget's end, so a message is dead-lettered only after the whole budget.
        var retryAt = now + delay < deadline ? now + delay : deadline;
        return new Settlement(SettlementAction.HandBack, Error: error) { Attempt = attempt, FirstFailure = firstFailure, RetryAt = retryAt };
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

    private static bool IsSubscription(string entity) => entity.Contains("/subscriptions/", StringComparison.OrdinalIgnoreCase);

    [LoggerMessage(EventId = 110, Level = LogLevel.Warning, Message = "Handed Service Bus message {MessageId} on route {Route} back (hand-back {Attempt}, {Reason}); it comes back at {RetryAt:O}")]
    private partial void LogHandedBack(string route, string messageId, int attempt, string reason, DateTimeOffset retryAt);

    [LoggerMessage(EventId = 111, Level = LogLevel.Warning, Message = "Dead-lettered Service Bus message {MessageId} on route {Route}: retry budget spent after {Attempt} hand-backs (last: {Reason})")]
    private partial void LogRetriesExhausted(string route, string messageId, int attempt, string reason);
}
